package webhook

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/bucketrelay/bucketrelay/delivery"
)

// DefaultConcurrency is how many POSTs of one send are in flight at once
// when Config.Concurrency is 0: each on its own keep-alive connection
// (net/http has no HTTP/1.1 pipelining), each object's events one after
// another.
const DefaultConcurrency = 8

// MaxConcurrency bounds Config.Concurrency.
const MaxConcurrency = 256

var errNotSent = fmt.Errorf("webhook: not sent: %w", delivery.ErrEarlierFailed)

// Send posts items, one POST per event. Events of one object (one Key)
// are posted one after another in log order; events of different objects
// go out side by side on up to Concurrency connections (with Concurrency
// 1, every event in log order, one at a time). Send goes on past an event
// the endpoint rejects for good. At a retryable failure of item i it
// starts nothing after i in log order (events before i are still posted,
// so every event not sent comes after a real failure, as it would one at a
// time), and never posts a later event of i's object: the engine retries
// the failed and unsent items, in log order, and keeps what was delivered.
func (t *Target) Send(ctx context.Context, items []delivery.Item) error {
	if t.conc <= 1 || len(items) <= 1 {
		return t.sendInOrder(ctx, items)
	}
	// Chain the items of each key: heads in order of first appearance,
	// next[i] the following item of i's key, -1 at the end.
	heads := make([]int, 0, len(items))
	next := make([]int, len(items))
	last := make(map[string]int, len(items))
	for i := range items {
		next[i] = -1
		if j, ok := last[items[i].Key]; ok {
			next[j] = i
		} else {
			heads = append(heads, i)
		}
		last[items[i].Key] = i
	}
	if len(heads) == 1 {
		return t.sendInOrder(ctx, items)
	}
	errs := make([]error, len(items)) // each index written by one worker
	var (
		chain  atomic.Int64 // next chain to take
		stopAt atomic.Int64 // lowest index of a retryable failure
		wg     sync.WaitGroup
	)
	stopAt.Store(int64(len(items)))
	worker := func() {
		defer wg.Done()
		for {
			k := int(chain.Add(1) - 1)
			if k >= len(heads) {
				return
			}
			for i := heads[k]; i >= 0; i = next[i] {
				if int64(i) > stopAt.Load() {
					for ; i >= 0; i = next[i] {
						errs[i] = errNotSent
					}
					break
				}
				err := t.post(ctx, &items[i])
				if err == nil {
					continue
				}
				errs[i] = err
				if delivery.IsPermanent(err) {
					continue
				}
				for cur := stopAt.Load(); int64(i) < cur && !stopAt.CompareAndSwap(cur, int64(i)); cur = stopAt.Load() {
				}
				for j := next[i]; j >= 0; j = next[j] {
					errs[j] = errNotSent
				}
				break
			}
		}
	}
	n := min(t.conc, len(heads))
	wg.Add(n)
	for range n - 1 {
		go worker()
	}
	worker()
	wg.Wait()
	var failed []delivery.ItemError
	for i, err := range errs {
		if err != nil {
			failed = append(failed, delivery.ItemError{Index: i, Err: err})
		}
	}
	if failed == nil {
		return nil
	}
	return &delivery.BatchError{Failed: failed}
}

// sendInOrder posts items one at a time, in order. It goes on past an
// event the endpoint rejects for good and stops at the first retryable
// failure.
func (t *Target) sendInOrder(ctx context.Context, items []delivery.Item) error {
	var failed []delivery.ItemError
	for i := range items {
		err := t.post(ctx, &items[i])
		if err == nil {
			continue
		}
		failed = append(failed, delivery.ItemError{Index: i, Err: err})
		if !delivery.IsPermanent(err) {
			for j := i + 1; j < len(items); j++ {
				failed = append(failed, delivery.ItemError{Index: j, Err: errNotSent})
			}
			break
		}
	}
	if failed == nil {
		return nil
	}
	return &delivery.BatchError{Failed: failed}
}
