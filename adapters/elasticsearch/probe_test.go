package elasticsearch

import (
	"context"
	"net/http"
	"testing"

	"github.com/bucketrelay/bucketrelay/adapters/elasticsearch/esfake"
	"github.com/bucketrelay/bucketrelay/testkit/probetest"
)

// TestProbe: the probe asks the node for GET / with the target's
// credentials (the stand-in node, or RELAY_TEST_ELASTICSEARCH_URL's
// cluster); a wrong password or a port nothing listens on shows the target
// down before any event, the error never shows the password, and no index
// is created.
func TestProbe(t *testing.T) {
	b := newBackend(t)
	good, err := New(Config{Enable: true, URL: b.url, Index: "probe-index"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := good.Probe(context.Background()); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if code, _ := b.do(t, http.MethodHead, "/probe-index", ""); code != http.StatusNotFound {
		t.Fatalf("HEAD /probe-index after a probe: got %d, want 404 (the probe creates nothing)", code)
	}

	auth, err := esfake.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer auth.Stop()
	auth.Username, auth.Password = "elastic", "right-pass"
	ok, err := New(Config{Enable: true, URL: auth.URL(), Index: "probe-index", Username: "elastic", Password: "right-pass"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ok.Probe(context.Background()); err != nil {
		t.Fatalf("probe with the right password: %v", err)
	}
	bad, err := New(Config{Enable: true, URL: auth.URL(), Index: "probe-index", Username: "elastic", Password: "wrong-s3cret"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	probetest.Down(t, bad, "401 Unauthorized", "wrong-s3cret")
	noPort, err := New(Config{Enable: true, URL: "http://127.0.0.1:1", Index: "probe-index"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	probetest.Down(t, noPort, "connection refused")
}
