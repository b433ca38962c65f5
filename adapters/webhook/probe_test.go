package webhook

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/testkit/tlsca"
	"github.com/bucketrelay/bucketrelay/testkit/webhookrecv"
)

// TestProbe: a probe succeeds against a live endpoint without sending it
// anything, and fails when the endpoint cannot be reached.
func TestProbe(t *testing.T) {
	rcv := webhookrecv.New(t, "s3cret-token")
	probe := func(endpoint, token string) error {
		tg, err := New(Config{Enable: true, Endpoint: endpoint, AuthToken: token}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tg.Close()
		return tg.Probe(context.Background())
	}
	if err := probe(rcv.URL(), "s3cret-token"); err != nil {
		t.Fatalf("probe with the right token: %v", err)
	}
	if n := len(rcv.Bodies()); n != 0 {
		t.Fatalf("a probe delivered %d bodies", n)
	}
	rcv.Stop()
	if err := probe(rcv.URL(), "s3cret-token"); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("probe of a stopped endpoint: %v, want connection refused", err)
	}
}

// TestProbeTLS: over https the probe completes the handshake, so an
// endpoint whose certificate is not trusted is reported at once.
func TestProbeTLS(t *testing.T) {
	s := tlsca.New(t, "")
	caFile := s.CA.File
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("a probe sent a request")
	}))
	srv.TLS = s.ServerConfig(t, false)
	srv.StartTLS()
	defer srv.Close()
	untrusted, _ := New(Config{Endpoint: srv.URL}, nil)
	if err := untrusted.Probe(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("probe of an untrusted server: %v, want a certificate error", err)
	}
	trusted, _ := New(Config{Endpoint: srv.URL, TLSFiles: kit.TLSFiles{CAFile: caFile}}, nil)
	if err := trusted.Probe(context.Background()); err != nil {
		t.Fatalf("probe with the CA: %v", err)
	}
}
