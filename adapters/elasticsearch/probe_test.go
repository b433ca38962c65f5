package elasticsearch

import (
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
	probetest.Up(t, newTarget(t, Config{Enable: true, URL: b.url, Index: "probe-index"}), "of the node")
	if code, _ := b.do(t, http.MethodHead, "/probe-index", ""); code != http.StatusNotFound {
		t.Fatalf("HEAD /probe-index after a probe: got %d, want 404 (the probe creates nothing)", code)
	}

	auth, err := esfake.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer auth.Stop()
	auth.Username, auth.Password = "elastic", "right-pass"
	probetest.Up(t, newTarget(t, Config{Enable: true, URL: auth.URL(), Index: "probe-index", Username: "elastic", Password: "right-pass"}), "with the right password")
	probetest.Down(t, newTarget(t, Config{Enable: true, URL: auth.URL(), Index: "probe-index", Username: "elastic", Password: "wrong-s3cret"}), "401 Unauthorized", "wrong-s3cret")
	probetest.Down(t, newTarget(t, Config{Enable: true, URL: "http://127.0.0.1:1", Index: "probe-index"}), "connection refused")
}
