package delivery_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
)

// TestNoOpWindowReadsOn: a namespace window full of records that change
// nothing (reads) is passed, and the loop reads on at once instead of
// waiting for the next append: the put behind them is delivered without
// another event arriving.
func TestNoOpWindowReadsOn(t *testing.T) {
	var mu sync.Mutex
	var got []string
	l, _ := run(t, delivery.Spec{ID: id, Namespace: true, MaxBatch: 100, Target: &fakeTarget{send: func(items []delivery.Item) error {
		mu.Lock()
		defer mu.Unlock()
		for _, it := range items {
			got = append(got, it.Key)
		}
		return nil
	}}}, delivery.Options{CoalesceEvents: 10})
	var recs []event.Record
	for i := range 25 {
		recs = append(recs, targettest.Record("b", fmt.Sprintf("read%d", i), event.ObjectAccessedGet, i))
	}
	recs = append(recs, targettest.Record("b", "put", event.ObjectCreatedPut, 25))
	appendRecs(t, l, recs...)
	waitFor(t, "the put behind 25 reads", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 1
	})
	if got[0] != "b/put" {
		t.Fatalf("delivered %q, want b/put", got)
	}
}
