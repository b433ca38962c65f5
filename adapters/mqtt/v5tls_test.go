package mqtt

import (
	"testing"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/testkit/tlsca"
	"github.com/bucketrelay/bucketrelay/testkit/tlsserver"
	"github.com/bucketrelay/bucketrelay/testkit/tlstest"
)

// TestV5TLS: with protocolVersion 5 a tls:// broker is reached through
// the CA file given, and a broker whose certificate another CA signed is
// refused with an error that says so. It runs its own Mosquitto with a TLS
// listener on a free port.
func TestV5TLS(t *testing.T) {
	s := tlsca.New(t, "")
	m := tlsserver.StartMosquitto(t, s, false)
	base := Config{Enable: true, Broker: "tls://" + m.TLSAddr(), Topic: "minio/tls", QoS: 1, ProtocolVersion: 5,
		TLSFiles: kit.TLSFiles{CAFile: s.CA.File}}
	if err := checker.Send(t, base, 1); err != nil {
		t.Fatalf("Send over TLS with the right CA: %v", err)
	}
	checker.Fails(t, base, 2, []tlstest.Case[Config]{
		tlstest.Bad("wrong CA", func(c *Config) { c.CAFile = s.WrongCA.File }, tlsca.UnknownAuthorityText),
	})
}
