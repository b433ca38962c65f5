package mqtt

import (
	"fmt"
	"testing"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/testkit/tlsca"
	"github.com/bucketrelay/bucketrelay/testkit/tlsserver"
	"github.com/bucketrelay/bucketrelay/testkit/tlstest"
)

// checker sends through new mqtt targets.
var checker = tlstest.Checker[Config]{New: func(c Config) (delivery.Target, error) { return New(c, nil) }}

// TestTLS publishes through a Mosquitto TLS listener, checked by a
// subscriber on the same broker's plain listener, and checks that a wrong
// CA, a wrong host name and a plain listener fail, saying so.
func TestTLS(t *testing.T) {
	s := tlsca.New(t, "")
	m := tlsserver.StartMosquitto(t, s, false)
	const topic = "relay-tls"
	_, sub := NewSubscriber(t, "tcp://"+m.PlainAddr(), topic)
	base := Config{Broker: "tls://" + m.TLSAddr(), Topic: topic, QoS: 1, TLSFiles: kit.TLSFiles{CAFile: s.CA.File}}

	if err := checker.Send(t, base, 0); err != nil {
		t.Fatalf("send over TLS with the right CA: %v", err)
	}
	tlstest.WaitFor(t, "subscriber", func() int { return len(sub.Bodies()) }, 1)
	checker.Fails(t, base, 1, []tlstest.Case[Config]{
		tlstest.Bad("wrong CA", func(c *Config) { c.CAFile = s.WrongCA.File }, tlsca.UnknownAuthorityText),
		tlstest.Bad("wrong host name", func(c *Config) { c.Broker = fmt.Sprintf("tls://%s:%d", tlsca.WrongHost, m.TLSPort) }, tlsca.WrongHostText),
		tlstest.Bad("system CAs", func(c *Config) { c.CAFile = "" }, tlsca.UnknownAuthorityText),
		tlstest.Bad("plain listener", func(c *Config) { c.Broker = "tls://" + m.PlainAddr() }, ""),
	})
	tlstest.Stays(t, "subscriber", func() int { return len(sub.Bodies()) }, 1)
}

// TestMutualTLS publishes through a listener that requires a client
// certificate: the right one is let in, none or one from another CA is not.
func TestMutualTLS(t *testing.T) {
	s := tlsca.New(t, "")
	m := tlsserver.StartMosquitto(t, s, true)
	const topic = "relay-mtls"
	_, sub := NewSubscriber(t, "tcp://"+m.PlainAddr(), topic)
	base := Config{Broker: "tls://" + m.TLSAddr(), Topic: topic, QoS: 1,
		TLSFiles: kit.TLSFiles{CAFile: s.CA.File, ClientCert: s.Client.Cert, ClientKey: s.Client.Key}}
	checker.MutualTLS(t, s, base, func(c *Config, cert, key string) { c.ClientCert, c.ClientKey = cert, key })
	tlstest.WaitFor(t, "subscriber", func() int { return len(sub.Bodies()) }, 1)
	tlstest.Stays(t, "subscriber", func() int { return len(sub.Bodies()) }, 1)
}
