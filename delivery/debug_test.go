package delivery_test

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/bucketrelay/bucketrelay/delivery"
)

// TestDebugLogsEachSend: at debug level every Send is logged with the
// target, the number of events, their sequences and the duration; a
// failed one with its error.
func TestDebugLogsEachSend(t *testing.T) {
	var logs logBuffer
	l := openLog(t)
	var mu sync.Mutex
	fail := true
	e, _ := runEngine(t, l, delivery.Options{Logger: logs.logger()}, delivery.Spec{ID: id, Target: &fakeTarget{send: func(items []delivery.Item) error {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			fail = false
			return errors.New("connection refused")
		}
		return nil
	}}})
	appendRecs(t, l, put("a", 0), put("b", 1))
	waitFor(t, "2 deliveries", func() bool { return e.Stats()[0].Delivered == 2 })
	sent := logs.Lines(`msg=sent`)
	if len(sent) != 1 || !strings.Contains(sent[0], "level=DEBUG") || !strings.Contains(sent[0], "target="+id) ||
		!strings.Contains(sent[0], "events=2") || !strings.Contains(sent[0], "first_seq=1 last_seq=2") || !strings.Contains(sent[0], "duration=") {
		t.Fatalf("debug lines for the send: %q, want one with the target, events=2, the sequences and the duration", sent)
	}
	failed := logs.Lines(`msg="send failed"`)
	if len(failed) != 1 || !strings.Contains(failed[0], "level=DEBUG") || !strings.Contains(failed[0], `err="connection refused"`) {
		t.Fatalf("debug lines for the failed send: %q, want one with its error", failed)
	}
}
