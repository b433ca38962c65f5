package relay

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSendsTotalCountsBatches: relay_target_sends_total counts batches,
// as its help and the README say: 3 events delivered in one batch are 3
// delivered and 1 send.
func TestSendsTotalCountsBatches(t *testing.T) {
	rcv := newTestReceiver(t)
	c := parseConfig(t, fmt.Sprintf(`{"relay":{"dataDir":%q},"notify":{"webhook":{"1":{"enable":true,"endpoint":%q}}},
"buckets":{"images":[{"arn":"arn:minio:sqs::1:webhook"}]}}`, t.TempDir(), rcv.URL()))
	r := openRelay(t, c)
	r.Pause("arn:minio:sqs::1:webhook") // the 3 events wait, then go as one batch
	if err := r.Publish(context.Background(), records("images", 1, 3)...); err != nil {
		t.Fatal(err)
	}
	r.Resume("arn:minio:sqs::1:webhook")
	waitBodies(t, rcv, 3, 10*time.Second)
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	var text string
	waitUntil(t, "the counters", func() bool {
		resp, err := http.Get(srv.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		text = string(b)
		return strings.Contains(text, `relay_target_delivered_total{target="arn:minio:sqs::1:webhook"} 3`)
	})
	if !strings.Contains(text, `relay_target_sends_total{target="arn:minio:sqs::1:webhook"} 1`) {
		t.Fatalf("got %s, want 1 send for 1 batch of 3 events", grepLines(text, "relay_target_sends_total"))
	}
	if !strings.Contains(text, "# HELP relay_target_sends_total "+sendsHelp) {
		t.Fatalf("help: %s", grepLines(text, "HELP relay_target_sends_total"))
	}
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	want := "`relay_target_sends_total` (" + strings.ToLower(sendsHelp[:1]) + strings.TrimSuffix(sendsHelp[1:strings.Index(sendsHelp, " (")], ".") + ")"
	if !strings.Contains(string(readme), want) {
		t.Fatalf("README does not describe relay_target_sends_total as its help does: want %q", want)
	}
}

// TestREADMEStoreTablesAtFirstSend: the README says when the store
// targets create their tables, as the adapters do it (at the first send;
// their probes create nothing, see adapters/*/probe_test.go).
func TestREADMEStoreTablesAtFirstSend(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(string(readme)), " ")
	if strings.Contains(text, "created at start") || !strings.Contains(text, "Tables and indices are created at the first send when missing, not at start") {
		t.Fatal("the README does not say that store tables are created at the first send")
	}
}
