// Package certs makes throwaway certificate authorities and certificates
// for TLS tests: a CA, server certificates for 127.0.0.1 and localhost,
// and client certificates, written as PEM files to a test's directory.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// serial numbers the certificates of one test binary.
var serial atomic.Int64

// CA is a certificate authority valid for an hour either side of now.
type CA struct {
	// File is the PEM file of the CA's certificate, for a trust pool.
	File string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// NewCA creates a CA named name and writes its certificate to dir.
func NewCA(tb testing.TB, dir, name string) *CA {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	file := filepath.Join(dir, name+".pem")
	write(tb, file, "CERTIFICATE", der)
	return &CA{File: file, cert: cert, key: key}
}

// Server issues a server certificate for 127.0.0.1, ::1 and localhost with
// the common name name and writes it and its key to dir as name.crt and
// name.key.
func (ca *CA) Server(tb testing.TB, dir, name string) (certFile, keyFile string) {
	tb.Helper()
	return ca.issue(tb, dir, name, x509.ExtKeyUsageServerAuth)
}

// Client issues a client certificate with the common name name, written
// to dir as name.crt and name.key.
func (ca *CA) Client(tb testing.TB, dir, name string) (certFile, keyFile string) {
	tb.Helper()
	return ca.issue(tb, dir, name, x509.ExtKeyUsageClientAuth)
}

func (ca *CA) issue(tb testing.TB, dir, name string, usage x509.ExtKeyUsage) (certFile, keyFile string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	if usage == x509.ExtKeyUsageServerAuth {
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1"), net.IPv6loopback}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		tb.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	write(tb, certFile, "CERTIFICATE", der)
	write(tb, keyFile, "EC PRIVATE KEY", kder)
	return certFile, keyFile
}

// Serial returns the serial number of the first certificate in the PEM
// file certFile, to tell which certificate a server presented.
func Serial(tb testing.TB, certFile string) *big.Int {
	tb.Helper()
	b, err := os.ReadFile(certFile)
	if err != nil {
		tb.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		tb.Fatalf("no PEM block in %s", certFile)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		tb.Fatal(err)
	}
	return c.SerialNumber
}

// write writes a PEM file through a temporary file and a rename, so a
// server re-reading it never sees half of it.
func write(tb testing.TB, file, typ string, der []byte) {
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(tmp, file); err != nil {
		tb.Fatal(err)
	}
}
