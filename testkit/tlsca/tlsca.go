// Package tlsca generates, for tests, a certificate authority and the
// certificates it signs: a server certificate for loopback and client
// certificates, written as PEM files into a directory so that real servers
// and the relay's targets can read them. A second, unrelated CA stands in
// for "the wrong CA".
//
// Keys are ECDSA P-256, written as PKCS #8 ("PRIVATE KEY") with mode 0600;
// certificates are valid from an hour ago for a day.
package tlsca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// ServerIP is the only name in the default server certificate (Set.Server):
// tests connect by 127.0.0.1, and connecting by "localhost" is the wrong
// host name.
const ServerIP = "127.0.0.1"

// WrongHost is a name that reaches the loopback servers but is not in the
// default server certificate.
const WrongHost = "localhost"

// Loopback lists the loopback names (127.0.0.1, ::1, localhost): a server
// certificate for all of them fits whichever way a test connects.
var Loopback = []string{ServerIP, "::1", WrongHost}

// ClientName is the common name of the default client certificate
// (Set.Client), the user name servers that map certificates to users see.
const ClientName = "relay"

// CA is a certificate authority whose certificate is in File.
type CA struct {
	// File is the CA's certificate, PEM.
	File string

	dir  string
	name string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// Pair is a certificate and its key, both PEM files.
type Pair struct {
	Cert, Key string
}

var serial atomic.Int64

// NewCA makes a CA named name (its common name, and the stem of its files
// in dir: name.pem, name-key.pem). It fails t on error.
func NewCA(t testing.TB, dir, name string) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          next(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"bucketrelay tests"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("tlsca: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("tlsca: %v", err)
	}
	ca := &CA{dir: dir, name: name, cert: cert, key: key}
	ca.File = filepath.Join(dir, name+".pem")
	writePEM(t, ca.File, "CERTIFICATE", der)
	writeKey(t, filepath.Join(dir, name+"-key.pem"), key)
	return ca
}

// Server signs a server certificate for hosts (IP addresses or DNS names)
// and writes it as name.pem and name-key.pem.
func (ca *CA) Server(t testing.TB, name string, hosts ...string) Pair {
	t.Helper()
	tmpl := ca.leaf(hosts[0])
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return ca.sign(t, name, tmpl)
}

// Client signs a client certificate with common name cn and writes it as
// name.pem and name-key.pem.
func (ca *CA) Client(t testing.TB, name, cn string) Pair {
	t.Helper()
	tmpl := ca.leaf(cn)
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	return ca.sign(t, name, tmpl)
}

func (ca *CA) leaf(cn string) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: next(),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"bucketrelay tests"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
}

func (ca *CA) sign(t testing.TB, name string, tmpl *x509.Certificate) Pair {
	t.Helper()
	key := newKey(t)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("tlsca: signing %s: %v", name, err)
	}
	p := Pair{Cert: filepath.Join(ca.dir, name+".pem"), Key: filepath.Join(ca.dir, name+"-key.pem")}
	writePEM(t, p.Cert, "CERTIFICATE", der)
	writeKey(t, p.Key, key)
	return p
}

// Set is what a TLS test needs, all in one directory.
type Set struct {
	// Dir holds every file.
	Dir string
	// CA signs Server and Client.
	CA *CA
	// Server is a server certificate for 127.0.0.1 only (ServerIP).
	Server Pair
	// Client is a client certificate with common name ClientName.
	Client Pair
	// WrongCA is an unrelated CA: trusting it instead of CA must fail.
	WrongCA *CA
	// WrongClient is a client certificate (ClientName) signed by WrongCA:
	// a server that checks client certificates must refuse it.
	WrongClient Pair
}

// New writes a Set into dir ("" means t.TempDir()). Files are mode 0600:
// a server running as another user needs copies of its own.
func New(t testing.TB, dir string) *Set {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	s := &Set{Dir: dir, CA: NewCA(t, dir, "ca")}
	s.Server = s.CA.Server(t, "server", ServerIP)
	s.Client = s.CA.Client(t, "client", ClientName)
	s.WrongCA = NewCA(t, dir, "wrong-ca")
	s.WrongClient = s.WrongCA.Client(t, "wrong-client", ClientName)
	return s
}

func next() *big.Int { return big.NewInt(time.Now().UnixNano() + serial.Add(1)) }

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("tlsca: %v", err)
	}
	return key
}

func writeKey(t testing.TB, name string, key *ecdsa.PrivateKey) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("tlsca: %v", err)
	}
	writePEM(t, name, "PRIVATE KEY", der)
}

// writePEM writes through a temporary file and a rename, so that a server
// re-reading a rotated file never sees half of it.
func writePEM(t testing.TB, name, typ string, der []byte) {
	t.Helper()
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatalf("tlsca: %v", fmt.Errorf("writing %s: %w", name, err))
	}
	if err := os.Rename(tmp, name); err != nil {
		t.Fatalf("tlsca: %v", err)
	}
}

// Serial returns the serial number of the first certificate in the PEM
// file certFile, to tell which certificate a server presented.
func Serial(t testing.TB, certFile string) *big.Int {
	t.Helper()
	b, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatalf("tlsca: %v", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("tlsca: no PEM block in %s", certFile)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatalf("tlsca: %s: %v", certFile, err)
	}
	return c.SerialNumber
}

// Texts of crypto/x509's verification errors, which adapters pass on in
// their messages: tests check a failure says which certificate problem it
// is.
const (
	// UnknownAuthorityText is in the error for a server certificate
	// signed by a CA the client does not trust.
	UnknownAuthorityText = "certificate signed by unknown authority"
	// WrongHostText is in the error for connecting to WrongHost with the
	// default server certificate (whole: "x509: certificate is not valid
	// for any names, but wanted to match localhost").
	WrongHostText = "but wanted to match " + WrongHost
)

// ServerConfig returns a TLS configuration for an in-process server (kfake,
// httptest) presenting s.Server; with requireClientCert it demands a
// client certificate signed by s.CA.
func (s *Set) ServerConfig(t testing.TB, requireClientCert bool) *tls.Config {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(s.Server.Cert, s.Server.Key)
	if err != nil {
		t.Fatalf("tlsca: %v", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if requireClientCert {
		tc.ClientAuth = tls.RequireAndVerifyClientCert
		tc.ClientCAs = s.Pool(t)
	}
	return tc
}

// Pool returns a pool holding s.CA's certificate.
func (s *Set) Pool(t testing.TB) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(s.CA.File)
	if err != nil {
		t.Fatalf("tlsca: %v", err)
	}
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(b)
	return p
}
