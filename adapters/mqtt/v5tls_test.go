package mqtt

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/internal/testenv"
)

// writeCA writes a CA and a server certificate for 127.0.0.1 signed by
// it into dir: ca.pem, server.pem, server.key. It returns the CA's path.
func writeCA(t *testing.T, dir, name string) string {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srv := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	srvDER, err := x509.CreateCertificate(rand.Reader, srv, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	write := func(file, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, file), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(name+"-ca.pem", "CERTIFICATE", caDER)
	write("server.pem", "CERTIFICATE", srvDER)
	write("server.key", "EC PRIVATE KEY", keyDER)
	return filepath.Join(dir, name+"-ca.pem")
}

// TestV5TLS: with protocolVersion 5 a tls:// broker is reached through
// the CA file given, and a broker whose certificate another CA signed is
// refused with an error that says so. It runs its own Mosquitto with a TLS
// listener on a free port.
func TestV5TLS(t *testing.T) {
	testenv.Require(t, "mosquitto", brokerAddr) // Mosquitto is installed
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		t.Fatalf("mosquitto: %v", err)
	}
	dir := t.TempDir()
	ca := writeCA(t, dir, "good")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\ncafile %s\ncertfile %s\nkeyfile %s\n",
		port, ca, filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key"))
	if os.Geteuid() == 0 {
		conf += "user root\n" // keep the rights to read the temporary files
	}
	confPath := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", confPath)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto with TLS did not listen: %v\n%s", err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	items := []delivery.Item{
		targettest.Item("images", "k1.jpg", event.ObjectCreatedPut, 1),
		targettest.Item("images", "k2.jpg", event.ObjectCreatedPut, 2),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	good := newTarget(t, Config{Enable: true, Broker: "tls://" + addr, Topic: "minio/tls", QoS: 1, ProtocolVersion: 5,
		TLSFiles: kit.TLSFiles{CAFile: ca}})
	defer good.Close()
	if err := good.Send(ctx, items); err != nil {
		t.Fatalf("Send over TLS with the right CA: %v", err)
	}
	wrongCA := writeCA(t, t.TempDir(), "other")
	bad := newTarget(t, Config{Enable: true, Broker: "tls://" + addr, Topic: "minio/tls", QoS: 1, ProtocolVersion: 5,
		TLSFiles: kit.TLSFiles{CAFile: wrongCA}})
	defer bad.Close()
	err = bad.Send(ctx, items)
	t.Logf("wrong CA: %v", err)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Send with the wrong CA: got %v, want an error about the certificate", err)
	}
}
