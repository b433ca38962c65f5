package relay

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// TestGonePausePersists: a webhook answering 410 pauses the target, the
// pause is written to paused.json, so a restarted relay keeps holding the
// events (without trying the endpoint) until resume, which delivers them
// in order.
func TestGonePausePersists(t *testing.T) {
	rcv := newTestReceiver(t)
	var gone atomic.Bool
	var calls atomic.Int64
	gone.Store(true)
	rcv.Answer = func([]byte) (int, http.Header) {
		calls.Add(1)
		if gone.Load() {
			return http.StatusGone, nil
		}
		return 0, nil
	}
	dir := t.TempDir()
	r := openRelay(t, testConfig(t, dir, rcv.URL(), ""))
	srv := httptest.NewServer(r.Handler())
	if err := r.Publish(context.Background(), records("images", 1, 2)...); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the 410 pause", func() bool { return status(t, srv, webhookARN).State == "paused" })
	b, err := os.ReadFile(filepath.Join(dir, pausedFile))
	if err != nil {
		t.Fatalf("paused.json after a 410: %v", err)
	}
	var doc struct{ Paused []string }
	if err := json.Unmarshal(b, &doc); err != nil || !slices.Contains(doc.Paused, webhookARN) {
		t.Fatalf("paused.json = %s (%v), want it to hold %s", b, err, webhookARN)
	}
	srv.Close()
	r.Close(context.Background())

	gone.Store(false)
	before := calls.Load()
	r = openRelay(t, testConfig(t, dir, rcv.URL(), ""))
	srv = httptest.NewServer(r.Handler())
	defer srv.Close()
	time.Sleep(300 * time.Millisecond)
	if s := status(t, srv, webhookARN); s.State != "paused" || s.Lag != 2 || calls.Load() != before {
		t.Fatalf("after a restart: %+v, %d requests; want still paused with 2 pending and no request", s, calls.Load()-before)
	}
	apiJSON(t, srv, "POST", "/v1/targets/"+webhookARN+"/resume", 200, nil)
	got := waitBodies(t, rcv, 2, 10*time.Second)
	for i := range got {
		if seqOf(t, got[i]) != i+1 {
			t.Fatalf("body %d is event %d, want the held events in order", i, seqOf(t, got[i]))
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, pausedFile)); json.Unmarshal(b, &doc) != nil || slices.Contains(doc.Paused, webhookARN) {
		t.Fatalf("paused.json after resume = %s, want the target gone from it", b)
	}
}
