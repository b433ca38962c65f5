// Package sendtest calls a target's Send from several goroutines at once,
// as the delivery engine does with batches in flight
// (delivery.Policy.InFlight), and checks what the server received: every
// event, each object's events in order, and each failure reported by the
// send whose batch held it. Tests of targets whose kind allows concurrent
// sends (kit.Kind.InFlight above 0) use it against their real server.
package sendtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
)

// Rounds returns rounds of batches to send: in each round, batches
// batches of size items, no two batches of a round sharing a key, each
// batch holding size/keys events of each of its keys in order; round r+1
// reuses round r's keys, so the order per key spans the rounds. Events
// are numbered from 0 in send order (targettest.Item's i), so that event
// i has the request id fmt.Sprintf("%016X", i).
func Rounds(bucket string, rounds, batches, size, keys int) [][][]delivery.Item {
	out := make([][][]delivery.Item, rounds)
	n := 0
	for r := range out {
		out[r] = make([][]delivery.Item, batches)
		for b := range out[r] {
			batch := make([]delivery.Item, size)
			for i := range batch {
				key := fmt.Sprintf("b%02d/k%03d.jpg", b, i%keys)
				batch[i] = targettest.Item(bucket, key, event.ObjectCreatedPut, n)
				n++
			}
			out[r][b] = batch
		}
	}
	return out
}

// Send sends batches at once, one goroutine each, started together, and
// returns each Send's error.
func Send(ctx context.Context, tg delivery.Target, batches [][]delivery.Item) []error {
	errs := make([]error, len(batches))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range batches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = tg.Send(ctx, batches[i])
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

// SendAll sends each round's batches at once (Send), the rounds one after
// another, and fails t on any error.
func SendAll(t testing.TB, tg delivery.Target, rounds [][][]delivery.Item) {
	t.Helper()
	for r, batches := range rounds {
		for b, err := range Send(context.Background(), tg, batches) {
			if err != nil {
				t.Fatalf("round %d, batch %d: Send: %v", r, b, err)
			}
		}
	}
}

// ID returns the event number a body carries (the record's
// x-amz-request-id, in hex): a message body, an access-format row, a
// structured CloudEvent or a bare record (a binary-mode CloudEvent).
func ID(body []byte) (int, bool) {
	var v struct {
		Records []event.Record
		Data    *event.Record `json:"data"`
		event.Record
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return 0, false
	}
	r := &v.Record
	switch {
	case len(v.Records) > 0:
		r = &v.Records[0]
	case v.Data != nil:
		r = v.Data
	}
	id, err := strconv.ParseUint(r.ResponseElements["x-amz-request-id"], 16, 64)
	return int(id), err == nil
}

// Check checks that got (bodies in arrival order) holds every item of
// want, each object's events in the order of want, and nothing else;
// with once, each exactly once. It fails t with the first problems.
func Check(t testing.TB, got [][]byte, want []delivery.Item, once bool) {
	t.Helper()
	keyOf := make(map[int]string, len(want))
	for i := range want {
		keyOf[int(want[i].Seq-1)] = want[i].Key
	}
	seen := map[int]int{}
	last := map[string]int{}
	for _, b := range got {
		id, ok := ID(b)
		k, known := keyOf[id]
		if !ok || !known {
			t.Fatalf("received a body that is none of the events sent: %.200s", b)
		}
		seen[id]++
		if seen[id] > 1 {
			if once {
				t.Fatalf("event %d (%s) arrived %d times, want once", id, k, seen[id])
			}
			continue // a re-sent event: its first arrival was checked
		}
		if p, ok := last[k]; ok && id < p {
			t.Fatalf("key %s: event %d arrived after event %d, want them in order", k, id, p)
		}
		last[k] = id
	}
	var missing []int
	for id := range keyOf {
		if seen[id] == 0 {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d of %d events never arrived (got %d bodies), first %v", len(missing), len(want), len(got), missing[:min(10, len(missing))])
	}
}

// Wait polls received until it holds n bodies or timeout passes, and
// returns what it holds then.
func Wait(t testing.TB, received func(testing.TB) [][]byte, n int, timeout time.Duration) [][]byte {
	t.Helper()
	end := time.Now().Add(timeout)
	for {
		got := received(t)
		if len(got) >= n || time.Now().After(end) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Flatten returns the items of rounds in one slice.
func Flatten(rounds ...[][]delivery.Item) []delivery.Item {
	var out []delivery.Item
	for _, r := range rounds {
		for _, b := range r {
			out = append(out, b...)
		}
	}
	return out
}

// Failed returns the indexes of the items of an n-item send that err
// reports as not delivered: those a *delivery.BatchError lists, every one
// for another error, none for nil.
func Failed(err error, n int) map[int]bool {
	out := map[int]bool{}
	var be *delivery.BatchError
	switch {
	case err == nil:
	case errors.As(err, &be):
		for _, f := range be.Failed {
			out[f.Index] = true
		}
	default:
		for i := 0; i < n; i++ {
			out[i] = true
		}
	}
	return out
}

// Delivered returns the items of batches that errs (Send's answers, one
// per batch) do not report as failed: what the target says it delivered.
func Delivered(batches [][]delivery.Item, errs []error) []delivery.Item {
	var out []delivery.Item
	for b, batch := range batches {
		failed := Failed(errs[b], len(batch))
		for i := range batch {
			if !failed[i] {
				out = append(out, batch[i])
			}
		}
	}
	return out
}
