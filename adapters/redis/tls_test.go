package redis

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	redigo "github.com/gomodule/redigo/redis"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/testkit/tlsca"
	"github.com/bucketrelay/bucketrelay/testkit/tlsserver"
)

// tlsSend sends one event through a new target for cfg.
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

// llen reads the length of the list at key through the plain port.
func llen(t *testing.T, plain, key string) int {
	t.Helper()
	c, err := redigo.Dial("tcp", plain, redigo.DialConnectTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n, err := redigo.Int(c.Do("LLEN", key))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestTLS writes through a TLS port of a second redis-server, read back
// through its plain port, and checks that a wrong CA, a wrong host name and
// a plain port fail, saying so.
func TestTLS(t *testing.T) {
	s := tlsca.New(t, "")
	r := tlsserver.StartRedis(t, s, false)
	const key = "relay-tls"
	base := Config{Format: "access", Address: r.TLSAddr(), Key: key, Timeout: "5s", TLSFiles: kit.TLSFiles{CAFile: s.CA.File}}
	if err := tlsSend(t, base, 0); err != nil {
		t.Fatalf("send over TLS with the right CA: %v", err)
	}
	if n := llen(t, r.PlainAddr(), key); n != 1 {
		t.Fatalf("list length: got %d, want 1", n)
	}
	// tls: true without caFile trusts the system's CAs, which do not know
	// the test's CA.
	sys := base
	sys.CAFile, sys.TLS = "", true
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"wrong CA", func() Config { c := base; c.CAFile = s.WrongCA.File; return c }(), tlsca.UnknownAuthorityText},
		{"wrong host name", func() Config { c := base; c.Address = fmt.Sprintf("%s:%d", tlsca.WrongHost, r.TLSPort); return c }(), tlsca.WrongHostText},
		{"system CAs", sys, tlsca.UnknownAuthorityText},
		{"plain port", func() Config { c := base; c.Address = r.PlainAddr(); c.Timeout = "1s"; return c }(), "TLS handshake timeout"},
	}
	for i, c := range cases {
		start := time.Now()
		err := tlsSend(t, c.cfg, i+1)
		took := time.Since(start)
		t.Logf("%s (%v): %v", c.name, took.Round(time.Millisecond), err)
		// timeout bounds the handshake too: against a plain port, which
		// never answers a ClientHello, the handshake took 10 s whatever the
		// timeout before.
		if took > 8*time.Second {
			t.Errorf("%s: took %v, want the configured timeout (at most %s) and some slack", c.name, took, c.cfg.Timeout)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
	}
	if n := llen(t, r.PlainAddr(), key); n != 1 {
		t.Errorf("list length: got %d, want 1 (only the first send)", n)
	}
}

// TestMutualTLS writes through a TLS port that requires a client
// certificate (tls-auth-clients yes).
func TestMutualTLS(t *testing.T) {
	s := tlsca.New(t, "")
	r := tlsserver.StartRedis(t, s, true)
	const key = "relay-mtls"
	base := Config{Format: "access", Address: r.TLSAddr(), Key: key, Timeout: "5s",
		TLSFiles: kit.TLSFiles{CAFile: s.CA.File, ClientCert: s.Client.Cert, ClientKey: s.Client.Key}}
	if err := tlsSend(t, base, 0); err != nil {
		t.Fatalf("send with the client certificate: %v", err)
	}
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
	if n := llen(t, r.PlainAddr(), key); n != 1 {
		t.Errorf("list length: got %d, want 1", n)
	}
}
