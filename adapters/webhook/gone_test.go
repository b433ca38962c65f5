package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/testkit/webhookrecv"
	"github.com/bucketrelay/bucketrelay/wal"
)

const arn = "arn:minio:sqs::hook:webhook"

// engine drains a fresh log into a webhook target for rcv; it returns the
// log and the engine, stopped when t ends.
func engine(t *testing.T, rcv *webhookrecv.Receiver, opts delivery.Options) (*wal.Log, *delivery.Engine) {
	t.Helper()
	l, err := wal.Open(filepath.Join(t.TempDir(), "wal.db"), wal.Options{CursorSyncInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// One POST at a time: the tests count the requests a 410 stops and
	// check the log order across objects.
	tg, err := New(Config{Enable: true, Endpoint: rcv.URL(), Concurrency: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	eng := delivery.New(l, opts)
	if err := eng.Add(delivery.Spec{ID: arn, Target: tg, MaxBatch: 10}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { eng.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; l.Close() })
	return l, eng
}

func appendN(t *testing.T, l *wal.Log, n int) {
	t.Helper()
	for i := range n {
		e := targettest.Entry(targettest.Record("b", "k"+string(rune('a'+i)), event.ObjectCreatedPut, i), arn)
		if _, err := l.Append(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
}

func stats(eng *delivery.Engine) delivery.Stats {
	for _, s := range eng.Stats() {
		if s.ID == arn {
			return s
		}
	}
	return delivery.Stats{}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestGonePausesTarget: a 410 pauses the target and reports it, drops and
// quarantines nothing, and Resume delivers every event in order.
func TestGonePausesTarget(t *testing.T) {
	rcv := webhookrecv.New(t, "")
	var gone atomic.Bool
	var refused atomic.Int64
	gone.Store(true)
	rcv.Answer = func([]byte) (int, http.Header) {
		if gone.Load() {
			refused.Add(1)
			return http.StatusGone, nil
		}
		return 0, nil
	}
	l, eng := engine(t, rcv, delivery.Options{MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, MaxAttempts: 2})
	appendN(t, l, 5)
	waitFor(t, "the target to pause", func() bool { return stats(eng).State == delivery.StatePaused })
	s := stats(eng)
	if !strings.Contains(s.LastError, "410 Gone") || !s.Paused {
		t.Fatalf("stats: got paused %v, last error %q; want paused with 410 Gone", s.Paused, s.LastError)
	}
	// Paused: no more requests, however long we wait for the backoff.
	n := refused.Load()
	time.Sleep(200 * time.Millisecond)
	if got := refused.Load(); got != n || n != 1 {
		t.Fatalf("requests while paused: got %d then %d, want 1 and no more", n, got)
	}
	if q, _ := l.Quarantined(arn); len(q) != 0 || s.Quarantined != 0 {
		t.Fatalf("quarantined %d (stats %d), want 0: a gone endpoint drops nothing", len(q), s.Quarantined)
	}
	gone.Store(false)
	if err := eng.Resume(arn); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "5 events after resume", func() bool { return len(rcv.Bodies()) >= 5 })
	for i, b := range rcv.Bodies() {
		var m struct{ Key string }
		json.Unmarshal(b, &m)
		if want := "b/k" + string(rune('a'+i)); m.Key != want {
			t.Errorf("event %d: got key %q, want %q", i, m.Key, want)
		}
	}
	waitFor(t, "state up", func() bool { return stats(eng).State == delivery.StateUp })
}

// TestRetryAfter: a 429 or 503 with Retry-After is retried after the wait
// it asks for, not the (much shorter) backoff, in seconds or as a date.
func TestRetryAfter(t *testing.T) {
	for _, c := range []struct {
		name   string
		code   int
		header func() string
	}{
		{"429 seconds", http.StatusTooManyRequests, func() string { return "1" }},
		{"503 date", http.StatusServiceUnavailable, func() string { return time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			rcv := webhookrecv.New(t, "")
			var refusedAt atomic.Int64
			rcv.Answer = func([]byte) (int, http.Header) {
				if refusedAt.Load() == 0 {
					refusedAt.Store(time.Now().UnixNano())
					return c.code, http.Header{"Retry-After": {c.header()}}
				}
				return 0, nil
			}
			l, _ := engine(t, rcv, delivery.Options{MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
			appendN(t, l, 1)
			waitFor(t, "the retried event", func() bool { return len(rcv.Bodies()) == 1 })
			// An HTTP date has one-second resolution: the wait is at least
			// the header's whole seconds minus one.
			if waited := time.Since(time.Unix(0, refusedAt.Load())); waited < 900*time.Millisecond {
				t.Fatalf("retried after %v, want at least the Retry-After's second", waited)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		h    string
		want time.Duration
		ok   bool
	}{
		{"120", 120 * time.Second, true},
		{" 0 ", 0, true},
		{"Tue, 01 Dec 2026 12:00:30 GMT", 30 * time.Second, true},
		{"Tue, 01 Dec 2026 11:00:00 GMT", 0, true},
		{"", 0, false},
		{"-5", 0, false},
		{"soon", 0, false},
	} {
		got, ok := RetryAfter(c.h, now)
		if got != c.want || ok != c.ok {
			t.Errorf("RetryAfter(%q): got %v %v, want %v %v", c.h, got, ok, c.want, c.ok)
		}
	}
	// A huge value is capped by the engine.
	d, _ := RetryAfter("99999999", now)
	if got, _ := delivery.RetryAfterOf(delivery.RetryAfter(errTest, d)); got != delivery.MaxRetryAfter {
		t.Errorf("capped wait: got %v, want %v", got, delivery.MaxRetryAfter)
	}
}

var errTest = &testError{}

type testError struct{}

func (*testError) Error() string { return "test" }
