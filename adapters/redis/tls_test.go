package redis

import (
	"fmt"
	"testing"
	"time"

	redigo "github.com/gomodule/redigo/redis"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/testkit/probetest"
	"github.com/bucketrelay/bucketrelay/testkit/tlsca"
	"github.com/bucketrelay/bucketrelay/testkit/tlsserver"
	"github.com/bucketrelay/bucketrelay/testkit/tlstest"
)

// checker sends through new redis targets. timeout bounds the handshake
// too: against a plain port, which never answers a ClientHello, the
// handshake took 10 s whatever the timeout before.
var checker = tlstest.Checker[Config]{New: func(c Config) (delivery.Target, error) { return New(c, nil) }, MaxTook: 8 * time.Second}

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
	if err := checker.Send(t, base, 0); err != nil {
		t.Fatalf("send over TLS with the right CA: %v", err)
	}
	if n := llen(t, r.PlainAddr(), key); n != 1 {
		t.Fatalf("list length: got %d, want 1", n)
	}
	checker.Fails(t, base, 1, []tlstest.Case[Config]{
		tlstest.Bad("wrong CA", func(c *Config) { c.CAFile = s.WrongCA.File }, tlsca.UnknownAuthorityText),
		tlstest.Bad("wrong host name", func(c *Config) { c.Address = fmt.Sprintf("%s:%d", tlsca.WrongHost, r.TLSPort) }, tlsca.WrongHostText),
		// tls: true without caFile trusts the system's CAs, which do not
		// know the test's CA.
		tlstest.Bad("system CAs", func(c *Config) { c.CAFile, c.TLS = "", true }, tlsca.UnknownAuthorityText),
		tlstest.Bad("plain port", func(c *Config) { c.Address, c.Timeout = r.PlainAddr(), "1s" }, "TLS handshake timeout"),
	})
	if n := llen(t, r.PlainAddr(), key); n != 1 {
		t.Errorf("list length: got %d, want 1 (only the first send)", n)
	}
	// The probe dials as Send does: over TLS, checking the certificate.
	probetest.Up(t, newTarget(t, base), "of the server")
	wrong := base
	wrong.CAFile = s.WrongCA.File
	probetest.Down(t, newTarget(t, wrong), tlsca.UnknownAuthorityText)
}

// TestMutualTLS writes through a TLS port that requires a client
// certificate (tls-auth-clients yes).
func TestMutualTLS(t *testing.T) {
	s := tlsca.New(t, "")
	r := tlsserver.StartRedis(t, s, true)
	const key = "relay-mtls"
	base := Config{Format: "access", Address: r.TLSAddr(), Key: key, Timeout: "5s",
		TLSFiles: kit.TLSFiles{CAFile: s.CA.File, ClientCert: s.Client.Cert, ClientKey: s.Client.Key}}
	checker.MutualTLS(t, s, base, func(c *Config, cert, key string) { c.ClientCert, c.ClientKey = cert, key })
	if n := llen(t, r.PlainAddr(), key); n != 1 {
		t.Errorf("list length: got %d, want 1", n)
	}
}
