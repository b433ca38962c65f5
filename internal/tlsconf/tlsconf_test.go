package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// selfSigned writes a self-signed certificate and its key to dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tlsconf test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	write(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	write(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
	return certFile, keyFile
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
