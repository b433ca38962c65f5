package delivery_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
)

// TestBackNotLoggedAfterPartialRefusal: a target that refuses one event
// for good and does not send the ones after it in the batch (as the
// webhook does: "not sent: an earlier event failed") was never down, so no
// "target is back" follows when those are sent on the retry.
func TestBackNotLoggedAfterPartialRefusal(t *testing.T) {
	var logs logBuffer
	l := openLog(t)
	var mu sync.Mutex
	got := 0
	e, _ := runEngine(t, l, delivery.Options{Logger: logs.logger(), MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}, delivery.Spec{ID: id, Target: &fakeTarget{send: func(items []delivery.Item) error {
		mu.Lock()
		defer mu.Unlock()
		var be delivery.BatchError
		for i, it := range items {
			switch {
			case be.Failed != nil:
				be.Failed = append(be.Failed, delivery.ItemError{Index: i, Err: fmt.Errorf("not sent: %w", delivery.ErrEarlierFailed)})
			case it.Key == "b/bad":
				be.Failed = append(be.Failed, delivery.ItemError{Index: i, Err: delivery.Permanent(errors.New("400 rejected"))})
			default:
				got++
			}
		}
		if be.Failed != nil {
			return &be
		}
		return nil
	}}})
	appendRecs(t, l, put("a", 0), put("bad", 1), put("c", 2), put("d", 3))
	waitFor(t, "3 deliveries", func() bool { mu.Lock(); defer mu.Unlock(); return got == 3 })
	waitFor(t, "the quarantine", func() bool { return e.Stats()[0].Quarantined == 1 })
	if n := len(logs.Lines("target is back")); n != 0 {
		t.Fatalf("\"target is back\" logged though the target was never down:\n%s", strings.Join(logs.Lines(""), "\n"))
	}
}
