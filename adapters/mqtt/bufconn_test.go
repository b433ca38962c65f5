package mqtt

import "testing"

// TestBufferedDialSchemes: tcp:// and tls:// brokers are dialled by the
// target and read through a buffer; WebSocket and unix brokers, and any
// broker when a proxy is set in the environment, keep paho's dialling.
func TestBufferedDialSchemes(t *testing.T) {
	for scheme, want := range map[string]bool{"tcp": true, "tls": true, "ssl": true, "tcps": true, "ws": false, "wss": false, "unix": false} {
		if got := bufferedDial(scheme) != nil; got != want {
			t.Errorf("scheme %s: buffered dial %v, want %v", scheme, got, want)
		}
	}
	t.Setenv("all_proxy", "socks5://127.0.0.1:1")
	if bufferedDial("tcp") != nil {
		t.Error("with all_proxy set: buffered dial used, want paho's (which honours the proxy)")
	}
}
