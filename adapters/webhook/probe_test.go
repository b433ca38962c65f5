package webhook

import (
	"context"
	"strings"
	"testing"
)

// TestProbe: a probe succeeds against a live endpoint, fails when the
// endpoint refuses the token or cannot be reached, and never shows the
// token.
func TestProbe(t *testing.T) {
	rcv := NewReceiver(t, "s3cret-token")
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
	if err := probe(rcv.URL(), "wrong-token"); err == nil || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "wrong-token") {
		t.Fatalf("probe with a wrong token: %v, want a 401 error without the token", err)
	}
	rcv.Stop()
	if err := probe(rcv.URL(), "s3cret-token"); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("probe of a stopped endpoint: %v, want connection refused", err)
	}
	if n := len(rcv.Bodies()); n != 0 {
		t.Fatalf("a probe delivered %d bodies", n)
	}
}
