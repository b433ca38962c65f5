package relay

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bucketrelay/bucketrelay/testkit/tlsca"
)

// TestTLSConfigErrorsNameTheField: a relay.tls block that cannot be served
// is refused at load with the field that names the problem.
func TestTLSConfigErrorsNameTheField(t *testing.T) {
	dir := t.TempDir()
	ca := tlsca.NewCA(t, dir, "ca")
	relay := ca.Server(t, "relay", tlsca.Loopback...)
	cert, key := relay.Cert, relay.Key
	otherKey := ca.Server(t, "other", tlsca.Loopback...).Key
	junk := filepath.Join(dir, "junk.pem")
	os.WriteFile(junk, []byte("not a certificate"), 0o600)
	missing := filepath.Join(dir, "missing.pem")
	for _, c := range []struct{ tls, path, msg string }{
		{fmt.Sprintf(`{"key":%q}`, key), "relay.tls.cert", "required"},
		{fmt.Sprintf(`{"cert":%q}`, cert), "relay.tls.key", "required"},
		{fmt.Sprintf(`{"cert":%q,"key":%q}`, missing, key), "relay.tls.cert", "no such file"},
		{fmt.Sprintf(`{"cert":%q,"key":%q}`, cert, missing), "relay.tls.key", "no such file"},
		{fmt.Sprintf(`{"cert":%q,"key":%q}`, cert, otherKey), "relay.tls.cert", "does not match"},
		{fmt.Sprintf(`{"cert":%q,"key":%q,"clientCA":%q}`, cert, key, junk), "relay.tls.clientCA", "no PEM certificate"},
		{fmt.Sprintf(`{"cert":%q,"key":%q,"ca":%q}`, cert, key, ca.File), "relay.tls.ca", "unknown field"},
	} {
		_, err := ParseConfig([]byte(`{"relay":{"tls":` + c.tls + `}}`))
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Path != c.path || !strings.Contains(ce.Msg, c.msg) {
			t.Errorf("relay.tls %s: got %v, want an error at %s saying %q", c.tls, err, c.path, c.msg)
		}
	}
	c, err := ParseConfig([]byte(fmt.Sprintf(`{"relay":{"tls":{"cert":%q,"key":%q,"clientCA":%q}}}`, cert, key, ca.File)))
	if err != nil || c.Relay.TLS == nil || c.Relay.TLS.ClientCA != ca.File {
		t.Fatalf("a good relay.tls: got %+v, %v", c, err)
	}
	tc, err := ServerTLSConfig(*c.Relay.TLS, nil)
	if err != nil || tc.ClientAuth != tls.RequireAndVerifyClientCert || tc.MinVersion < tls.VersionTLS12 {
		t.Fatalf("ServerTLSConfig: got %+v, %v; want client certificates required, TLS 1.2 at least", tc, err)
	}
}

// TestCertReloadKeepsGoodPair: a replacement pair that does not load is
// logged once (not at every handshake) and the previous certificate stays
// in service; once the files are fixed the new one is served.
func TestCertReloadKeepsGoodPair(t *testing.T) {
	dir := t.TempDir()
	ca := tlsca.NewCA(t, dir, "ca")
	relay := ca.Server(t, "relay", tlsca.Loopback...)
	cert, key := relay.Cert, relay.Key
	var logs bytes.Buffer
	tc, err := ServerTLSConfig(TLSSettings{Cert: cert, Key: key}, newTestLogger(&logs))
	if err != nil {
		t.Fatal(err)
	}
	serial := func() string {
		c, err := tc.GetCertificate(&tls.ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf.SerialNumber.String()
	}
	first := serial()
	os.WriteFile(cert, []byte("-----BEGIN CERTIFICATE-----\ntruncated"), 0o600)
	for range 3 {
		if got := serial(); got != first {
			t.Fatalf("after a broken certificate file: served %s, want the previous %s", got, first)
		}
	}
	if n := strings.Count(logs.String(), "does not load"); n != 1 {
		t.Fatalf("got %d error lines for one bad change, want 1:\n%s", n, logs.String())
	}
	ca.Server(t, "relay", tlsca.Loopback...)
	if got, want := serial(), tlsca.Serial(t, cert).String(); got != want {
		t.Fatalf("after fixing the files: served %s, want %s", got, want)
	}
}
