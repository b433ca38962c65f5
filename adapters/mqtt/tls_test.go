package mqtt

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/testkit/tlsca"
	"github.com/bucketrelay/bucketrelay/testkit/tlsserver"
)

// tlsSend sends one event through a new target for cfg and returns the
// error.
func tlsSend(t *testing.T, cfg Config, i int) error {
	t.Helper()
	tg, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer tg.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return tg.Send(ctx, []delivery.Item{targettest.Item("tls", fmt.Sprintf("k%d", i), event.ObjectCreatedPut, i)})
}

// waitBodies waits until sub has n bodies.
func waitBodies(t *testing.T, sub *Subscriber, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for len(sub.Bodies()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("subscriber: got %d messages, want %d", len(sub.Bodies()), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTLS publishes through a Mosquitto TLS listener, checked by a
// subscriber on the same broker's plain listener, and checks that a wrong
// CA, a wrong host name and a plain listener fail, saying so.
func TestTLS(t *testing.T) {
	s := tlsca.New(t, "")
	m := tlsserver.StartMosquitto(t, s, false)
	const topic = "relay-tls"
	sub := NewSubscriber(t, "tcp://"+m.PlainAddr(), topic)
	base := Config{Broker: "tls://" + m.TLSAddr(), Topic: topic, QoS: 1, TLSFiles: kit.TLSFiles{CAFile: s.CA.File}}

	if err := tlsSend(t, base, 0); err != nil {
		t.Fatalf("send over TLS with the right CA: %v", err)
	}
	waitBodies(t, sub, 1)

	cases := []struct {
		name string
		cfg  func(c *Config)
		want string
	}{
		{"wrong CA", func(c *Config) { c.CAFile = s.WrongCA.File }, tlsca.UnknownAuthorityText},
		{"wrong host name", func(c *Config) { c.Broker = fmt.Sprintf("tls://%s:%d", tlsca.WrongHost, m.TLSPort) }, tlsca.WrongHostText},
		{"system CAs", func(c *Config) { c.CAFile = "" }, tlsca.UnknownAuthorityText},
		{"plain listener", func(c *Config) { c.Broker = "tls://" + m.PlainAddr() }, ""},
	}
	for i, c := range cases {
		cfg := base
		c.cfg(&cfg)
		err := tlsSend(t, cfg, i+1)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
	}
	time.Sleep(200 * time.Millisecond) // a stray delivery would arrive by now
	if n := len(sub.Bodies()); n != 1 {
		t.Errorf("subscriber: got %d messages, want only the first", n)
	}
}

// TestMutualTLS publishes through a listener that requires a client
// certificate: the right one is let in, none or one from another CA is not.
func TestMutualTLS(t *testing.T) {
	s := tlsca.New(t, "")
	m := tlsserver.StartMosquitto(t, s, true)
	const topic = "relay-mtls"
	sub := NewSubscriber(t, "tcp://"+m.PlainAddr(), topic)
	base := Config{Broker: "tls://" + m.TLSAddr(), Topic: topic, QoS: 1,
		TLSFiles: kit.TLSFiles{CAFile: s.CA.File, ClientCert: s.Client.Cert, ClientKey: s.Client.Key}}
	if err := tlsSend(t, base, 0); err != nil {
		t.Fatalf("send with the client certificate: %v", err)
	}
	waitBodies(t, sub, 1)

	none := base
	none.ClientCert, none.ClientKey = "", ""
	if err := tlsSend(t, none, 1); err == nil {
		t.Error("send without a client certificate: got nil, want an error")
	} else {
		t.Logf("without a client certificate: %v", err)
	}
	wrong := base
	wrong.ClientCert, wrong.ClientKey = s.WrongClient.Cert, s.WrongClient.Key
	if err := tlsSend(t, wrong, 2); err == nil {
		t.Error("send with a client certificate of another CA: got nil, want an error")
	} else {
		t.Logf("with a client certificate of another CA: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(sub.Bodies()); n != 1 {
		t.Errorf("subscriber: got %d messages, want only the first", n)
	}
}
