package webhook

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/testkit/tlsca"
)

// TestTLSWithCAAndClientCert: the endpoint's certificate is trusted only
// through caFile, and the endpoint requires a client certificate.
func TestTLSWithCAAndClientCert(t *testing.T) {
	s := tlsca.New(t, "")
	caFile, cliCert, cliKey := s.CA.File, s.Client.Cert, s.Client.Key
	got := make(chan string, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.TLS.PeerCertificates[0].Subject.CommonName
	}))
	srv.TLS = s.ServerConfig(t, true)
	srv.StartTLS()
	defer srv.Close()

	item := []delivery.Item{{Key: "images/a.jpg", EventName: event.ObjectCreatedPut, Record: []byte(`{}`)}}
	// Without the CA the server is not trusted: a retryable failure.
	plain, _ := New(Config{Endpoint: srv.URL, TLSFiles: kit.TLSFiles{ClientCert: cliCert, ClientKey: cliKey}}, nil)
	if err := plain.Send(context.Background(), item); err == nil {
		t.Fatal("send to an untrusted server succeeded")
	}
	tg, err := New(Config{Endpoint: srv.URL, TLSFiles: kit.TLSFiles{CAFile: caFile, ClientCert: cliCert, ClientKey: cliKey}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tg.Send(context.Background(), item); err != nil {
		t.Fatalf("send over mutual TLS: %v", err)
	}
	if cn := <-got; cn != tlsca.ClientName {
		t.Fatalf("server saw client certificate %q, want %s", cn, tlsca.ClientName)
	}
	if _, err := New(Config{Endpoint: srv.URL, TLSFiles: kit.TLSFiles{CAFile: filepath.Join(s.Dir, "missing.pem")}}, nil); err == nil {
		t.Fatal("New with a missing caFile succeeded")
	}
}
