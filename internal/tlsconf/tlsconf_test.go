package tlsconf

import (
	"crypto/tls"
	"errors"
	"github.com/bucketrelay/bucketrelay/testkit/tlsca"
	"os"
	"path/filepath"
	"testing"
)

// selfSigned writes a self-signed certificate and its key to dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	// A leaf of a test CA serves as both the CA file and the client pair:
	// the tests check parsing and loading, not a chain.
	p := tlsca.NewCA(t, dir, "ca").Client(t, "client", "tlsconf test")
	return p.Cert, p.Key
}

func write(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)

	tc, err := Load("", "", "")
	if err != nil || tc == nil || tc.MinVersion != tls.VersionTLS12 || tc.RootCAs != nil || len(tc.Certificates) != 0 {
		t.Fatalf("Load with no files: got %+v, %v; want a bare TLS 1.2 configuration", tc, err)
	}
	tc, err = Load(cert, cert, key)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if tc.RootCAs == nil || len(tc.Certificates) != 1 || tc.MinVersion != tls.VersionTLS12 {
		t.Fatalf("Load: got RootCAs %v, %d certificates, MinVersion %x; want a pool, 1, TLS 1.2", tc.RootCAs, len(tc.Certificates), tc.MinVersion)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	notPEM := filepath.Join(dir, "not.pem")
	write(t, notPEM, []byte("not a certificate"))
	for _, c := range []struct {
		name         string
		ca, crt, key string
		field        string
	}{
		{"CA file missing", filepath.Join(dir, "missing.pem"), "", "", "caFile"},
		{"CA file not PEM", notPEM, "", "", "caFile"},
		{"cert without key", "", cert, "", "clientCert"},
		{"cert with the wrong file as key", "", cert, cert, "clientCert"},
		{"cert missing", "", filepath.Join(dir, "missing.crt"), key, "clientCert"},
	} {
		tc, err := Load(c.ca, c.crt, c.key)
		var fe *Error
		if !errors.As(err, &fe) || fe.Field != c.field || tc != nil {
			t.Errorf("%s: got %v, %v; want nil and an error on %s", c.name, tc, err, c.field)
		}
	}
}
