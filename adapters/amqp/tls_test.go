package amqp

import (
	"fmt"
	"testing"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/testkit/tlsca"
	"github.com/bucketrelay/bucketrelay/testkit/tlsserver"
	"github.com/bucketrelay/bucketrelay/testkit/tlstest"
)

const tlsExchange = "relay-tls"

// checker sends through new amqp targets.
func checker(secret string) tlstest.Checker[Config] {
	return tlstest.Checker[Config]{New: func(c Config) (delivery.Target, error) { return New(c, nil) }, Secret: secret}
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
	k := checker(r.Password)
	if err := k.Send(t, base, 0); err != nil {
		t.Fatalf("send over TLS with the right CA: %v", err)
	}
	mtls := base
	mtls.ClientCert, mtls.ClientKey = s.Client.Cert, s.Client.Key
	if err := k.Send(t, mtls, 1); err != nil {
		t.Fatalf("send over TLS with a client certificate: %v", err)
	}
	tlstest.WaitFor(t, "consumer", func() int { return len(c.Bodies()) }, 2)
	k.Fails(t, base, 2, []tlstest.Case[Config]{
		tlstest.Bad("wrong CA", func(c *Config) { c.CAFile = s.WrongCA.File }, tlsca.UnknownAuthorityText),
		tlstest.Bad("wrong host name", func(c *Config) { c.URL = tlsURL(r, tlsca.WrongHost) }, tlsca.WrongHostText),
		tlstest.Bad("system CAs", func(c *Config) { c.CAFile = "" }, tlsca.UnknownAuthorityText),
		tlstest.Bad("plain listener", func(c *Config) { c.URL = fmt.Sprintf("amqps://%s:%s@%s/", r.User, r.Password, r.PlainAddr()) }, ""),
	})
	tlstest.Stays(t, "consumer", func() int { return len(c.Bodies()) }, 2)
}

// TestMutualTLS publishes through an amqps listener that refuses clients
// without a certificate (fail_if_no_peer_cert).
func TestMutualTLS(t *testing.T) {
	s := tlsca.New(t, "")
	r := tlsserver.StartRabbitMQ(t, s, true)
	c := NewConsumer(t, fmt.Sprintf("amqp://%s:%s@%s/", r.User, r.Password, r.PlainAddr()), tlsExchange, "relay-mtls-q")
	base := Config{URL: tlsURL(r, tlsca.ServerIP), Exchange: tlsExchange, ExchangeType: "fanout", Durable: true,
		TLSFiles: kit.TLSFiles{CAFile: s.CA.File, ClientCert: s.Client.Cert, ClientKey: s.Client.Key}}
	checker(r.Password).MutualTLS(t, s, base, func(c *Config, cert, key string) { c.ClientCert, c.ClientKey = cert, key })
	tlstest.WaitFor(t, "consumer", func() int { return len(c.Bodies()) }, 1)
	tlstest.Stays(t, "consumer", func() int { return len(c.Bodies()) }, 1)
}
