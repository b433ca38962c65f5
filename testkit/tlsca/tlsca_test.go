package tlsca

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestSet checks the chain: the server certificate verifies for 127.0.0.1
// against CA, not for WrongHost, and not against WrongCA; the client
// certificate verifies as a client.
func TestSet(t *testing.T) {
	s := New(t, "")
	pool := func(file string) *x509.CertPool {
		pem, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		p := x509.NewCertPool()
		if !p.AppendCertsFromPEM(pem) {
			t.Fatalf("no certificate in %s", file)
		}
		return p
	}
	leaf := func(p Pair) *x509.Certificate {
		kp, err := tls.LoadX509KeyPair(p.Cert, p.Key)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(kp.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	srv, cli := leaf(s.Server), leaf(s.Client)
	if _, err := srv.Verify(x509.VerifyOptions{Roots: pool(s.CA.File), DNSName: ServerIP}); err != nil {
		t.Errorf("server certificate for %s: got %v, want it verified", ServerIP, err)
	}
	var he x509.HostnameError
	if _, err := srv.Verify(x509.VerifyOptions{Roots: pool(s.CA.File), DNSName: WrongHost}); !errors.As(err, &he) {
		t.Errorf("server certificate for %s: got %v, want a host name error", WrongHost, err)
	}
	var ua x509.UnknownAuthorityError
	if _, err := srv.Verify(x509.VerifyOptions{Roots: pool(s.WrongCA.File), DNSName: ServerIP}); !errors.As(err, &ua) {
		t.Errorf("server certificate against the wrong CA: got %v, want an unknown authority error", err)
	}
	if _, err := cli.Verify(x509.VerifyOptions{Roots: pool(s.CA.File), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate: got %v, want it verified", err)
	}
	if cli.Subject.CommonName != ClientName {
		t.Errorf("client common name: got %q, want %q", cli.Subject.CommonName, ClientName)
	}
	if _, err := leaf(s.WrongClient).Verify(x509.VerifyOptions{Roots: pool(s.CA.File), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); !errors.As(err, &ua) {
		t.Errorf("wrong client certificate against CA: got %v, want an unknown authority error", err)
	}
}

// TestReissue: a server certificate for Loopback verifies for each of its
// names; reissued under the same name it replaces the files whole, with a
// new serial that Serial reads.
func TestReissue(t *testing.T) {
	dir := t.TempDir()
	ca := NewCA(t, dir, "ca")
	first := ca.Server(t, "relay", Loopback...)
	s1 := Serial(t, first.Cert)
	b, err := os.ReadFile(ca.File)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(b)
	kp, err := tls.LoadX509KeyPair(first.Cert, first.Key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(kp.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range Loopback {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: h}); err != nil {
			t.Errorf("certificate for %s: got %v, want it verified", h, err)
		}
	}
	second := ca.Server(t, "relay", Loopback...)
	if second != first {
		t.Fatalf("reissued files: got %+v, want the same paths %+v", second, first)
	}
	if s2 := Serial(t, second.Cert); s2.Cmp(s1) == 0 {
		t.Errorf("reissued serial: got %v again, want a new one", s2)
	}
	if _, err := tls.LoadX509KeyPair(second.Cert, second.Key); err != nil {
		t.Errorf("reissued pair: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
