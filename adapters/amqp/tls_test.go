package amqp

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

const tlsExchange = "relay-tls"

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

// waitBodies waits until c has n bodies.
func waitBodies(t *testing.T, c *Consumer, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for len(c.Bodies()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("consumer: got %d messages, want %d", len(c.Bodies()), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tlsURL returns the amqps:// URL of r for host.
func tlsURL(r *tlsserver.RabbitMQ, host string) string {
	return fmt.Sprintf("amqps://%s:%s@%s:%d/", r.User, r.Password, host, r.TLSPort)
}

// TestTLS publishes through the amqps listener of a second RabbitMQ node,
// consumed from its plain listener, and checks that a wrong CA, a wrong
// host name and a plain listener fail, saying so. The node asks for a
// client certificate and verifies one that is sent, but lets clients
// without one in (a client holding only a certificate of another CA sends
// none: Go picks only certificates of the CAs the server names).
func TestTLS(t *testing.T) {
	s := tlsca.New(t, "")
	r := tlsserver.StartRabbitMQ(t, s, false)
	c := NewConsumer(t, fmt.Sprintf("amqp://%s:%s@%s/", r.User, r.Password, r.PlainAddr()), tlsExchange, "relay-tls-q")
	base := Config{URL: tlsURL(r, tlsca.ServerIP), Exchange: tlsExchange, ExchangeType: "fanout", Durable: true,
		TLSFiles: kit.TLSFiles{CAFile: s.CA.File}}
	if err := tlsSend(t, base, 0); err != nil {
		t.Fatalf("send over TLS with the right CA: %v", err)
	}
	mtls := base
	mtls.ClientCert, mtls.ClientKey = s.Client.Cert, s.Client.Key
	if err := tlsSend(t, mtls, 1); err != nil {
		t.Fatalf("send over TLS with a client certificate: %v", err)
	}
	waitBodies(t, c, 2)

	cases := []struct {
		name string
		cfg  func(c *Config)
		want string
	}{
		{"wrong CA", func(c *Config) { c.CAFile = s.WrongCA.File }, tlsca.UnknownAuthorityText},
		{"wrong host name", func(c *Config) { c.URL = tlsURL(r, tlsca.WrongHost) }, tlsca.WrongHostText},
		{"system CAs", func(c *Config) { c.CAFile = "" }, tlsca.UnknownAuthorityText},
		{"plain listener", func(c *Config) { c.URL = fmt.Sprintf("amqps://%s:%s@%s/", r.User, r.Password, r.PlainAddr()) }, ""},
	}
	for i, tc := range cases {
		cfg := base
		tc.cfg(&cfg)
		err := tlsSend(t, cfg, 2+i)
		t.Logf("%s: %v", tc.name, err)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), r.Password) {
			t.Errorf("%s: the error quotes the password: %v", tc.name, err)
		}
	}
	time.Sleep(200 * time.Millisecond) // a stray delivery would arrive by now
	if n := len(c.Bodies()); n != 2 {
		t.Errorf("consumer: got %d messages, want 2", n)
	}
}

// TestMutualTLS publishes through an amqps listener that refuses clients
// without a certificate (fail_if_no_peer_cert).
func TestMutualTLS(t *testing.T) {
	s := tlsca.New(t, "")
	r := tlsserver.StartRabbitMQ(t, s, true)
	c := NewConsumer(t, fmt.Sprintf("amqp://%s:%s@%s/", r.User, r.Password, r.PlainAddr()), tlsExchange, "relay-mtls-q")
	base := Config{URL: tlsURL(r, tlsca.ServerIP), Exchange: tlsExchange, ExchangeType: "fanout", Durable: true,
		TLSFiles: kit.TLSFiles{CAFile: s.CA.File, ClientCert: s.Client.Cert, ClientKey: s.Client.Key}}
	if err := tlsSend(t, base, 0); err != nil {
		t.Fatalf("send with the client certificate: %v", err)
	}
	waitBodies(t, c, 1)
	none := base
	none.ClientCert, none.ClientKey = "", ""
	wrong := base
	wrong.ClientCert, wrong.ClientKey = s.WrongClient.Cert, s.WrongClient.Key
	for i, cfg := range []Config{none, wrong} {
		err := tlsSend(t, cfg, 1+i)
		t.Logf("client certificate %q: %v", cfg.ClientCert, err)
		if err == nil {
			t.Errorf("client certificate %q: got nil, want an error", cfg.ClientCert)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(c.Bodies()); n != 1 {
		t.Errorf("consumer: got %d messages, want 1", n)
	}
}
