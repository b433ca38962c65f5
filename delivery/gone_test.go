package delivery_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
)

// TestGoneMidBatch: a target that takes the first items of a send and
// answers Gone for the next pauses the target; the items it took are not
// sent again, the others are held (no attempt counted, nothing
// quarantined) and sent in order on resume.
func TestGoneMidBatch(t *testing.T) {
	var mu sync.Mutex
	var sent []string
	gone := true
	tg := &fakeTarget{send: func(items []delivery.Item) error {
		mu.Lock()
		defer mu.Unlock()
		var failed []delivery.ItemError
		for i, it := range items {
			if gone && it.Key == "b/k2" {
				failed = append(failed, delivery.ItemError{Index: i, Err: delivery.Gone(errors.New("fake: 410 Gone"))})
				for j := i + 1; j < len(items); j++ {
					failed = append(failed, delivery.ItemError{Index: j, Err: delivery.ErrEarlierFailed})
				}
				return &delivery.BatchError{Failed: failed}
			}
			sent = append(sent, it.Key)
		}
		return nil
	}}
	l, e := run(t, delivery.Spec{ID: id, Target: tg}, delivery.Options{MaxAttempts: 1})
	appendRecs(t, l, put("k0", 0), put("k1", 1), put("k2", 2), put("k3", 3))
	waitFor(t, "the pause", func() bool { return e.Stats()[0].State == delivery.StatePaused })
	st := e.Stats()[0]
	if st.LastError != "fake: 410 Gone" || st.Quarantined != 0 || st.Delivered != 2 || st.Retried != 0 {
		t.Fatalf("stats after Gone: %+v, want last error 410, 2 delivered, none retried or quarantined", st)
	}
	mu.Lock()
	gone = false
	mu.Unlock()
	if err := e.Resume(id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the held events", func() bool { mu.Lock(); defer mu.Unlock(); return len(sent) == 4 })
	mu.Lock()
	defer mu.Unlock()
	for i, want := range []string{"b/k0", "b/k1", "b/k2", "b/k3"} {
		if sent[i] != want {
			t.Fatalf("sent %v, want k0 k1 k2 k3 once each", sent)
		}
	}
}

// TestRetryAfter: a retryable error with RetryAfter is retried after that
// wait, not the engine's (millisecond) backoff.
func TestRetryAfter(t *testing.T) {
	var mu sync.Mutex
	var times []time.Time
	tg := &fakeTarget{send: func(items []delivery.Item) error {
		mu.Lock()
		defer mu.Unlock()
		times = append(times, time.Now())
		if len(times) == 1 {
			return delivery.RetryAfter(errors.New("fake: 429"), 300*time.Millisecond)
		}
		return nil
	}}
	l, _ := run(t, delivery.Spec{ID: id, Target: tg}, delivery.Options{})
	appendRecs(t, l, put("k0", 0))
	waitFor(t, "the retry", func() bool { mu.Lock(); defer mu.Unlock(); return len(times) == 2 })
	mu.Lock()
	defer mu.Unlock()
	if d := times[1].Sub(times[0]); d < 300*time.Millisecond {
		t.Fatalf("retried after %v, want at least the 300ms asked", d)
	}
}
