package delivery

import (
	"context"
	"sync"

	"github.com/bucketrelay/bucketrelay/event"
)

// deliverWindow delivers a window's items: in one stream, or split by key
// into Policy.Lanes lanes delivered side by side. It returns delivered
// only once every lane delivered or quarantined its share; otherwise the
// loop reads the window again from its cursor, so a lane that finished
// sends its share again (at least once).
func (l *loop) deliverWindow(ctx context.Context, items []Item) (outcome, error) {
	kept, err := l.expire(items)
	if err != nil {
		return delivered, err
	}
	n := l.spec.Lanes
	if n <= 1 || len(kept) <= 1 {
		return l.deliver(ctx, kept)
	}
	lanes := make([][]Item, n)
	for _, it := range kept {
		i := event.LaneOf(it.Key, n)
		lanes[i] = append(lanes[i], it)
	}
	type result struct {
		o   outcome
		err error
	}
	res := make([]result, n)
	var wg sync.WaitGroup
	for i := range lanes {
		if len(lanes[i]) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i].o, res[i].err = l.deliver(ctx, lanes[i])
		}()
	}
	wg.Wait()
	o := delivered
	for _, r := range res {
		switch {
		case r.err != nil:
			return r.o, r.err
		case r.o == stopped:
			o = stopped
		case r.o != delivered && o == delivered:
			o = reread // held or reread: the window is read again
		}
	}
	return o, nil
}

// flight is one batch sent in a pipeline.
type flight struct {
	batch []Item
	keys  map[string]struct{}
	span  *span // the window it belongs to, in a sliding pipeline (slide.go)
	err   error
	done  chan struct{} // closed when Send returned
}

// fly sends batch in the background.
func (l *loop) fly(ctx context.Context, batch []Item) *flight {
	f := &flight{batch: batch, keys: make(map[string]struct{}, len(batch)), done: make(chan struct{})}
	for i := range batch {
		f.keys[batch[i].Key] = struct{}{}
	}
	go func() {
		defer close(f.done)
		f.err = l.send(ctx, f.batch)
	}()
	return f
}

// blocked reports whether batch shares a key with a flight of q: it must
// wait for that one's answer, so that one object's events arrive in order.
func blocked(q []*flight, batch []Item) bool {
	for _, f := range q {
		if f.shares(batch) {
			return true
		}
	}
	return false
}

// shares reports whether a batch with keys shares a key with f.
func (f *flight) shares(batch []Item) bool {
	for i := range batch {
		if _, ok := f.keys[batch[i].Key]; ok {
			return true
		}
	}
	return false
}

// pipeline sends items in batches of MaxBatch with up to InFlight of them
// in flight, taking their answers in log order. A batch that shares a key
// with one in flight waits until that one is answered, so that events of
// one object reach the target in order. When a batch fails, the sends
// after it are waited for and forgotten, the failed batch is retried
// alone (deliverBatch: backoff, attempts, quarantine), and the pipeline
// goes on from the first item after it, sending again what was in flight
// behind it: the cursor never passes an item the target did not
// acknowledge, and a re-sent item may arrive twice. It delivers one lane's
// share of a window; a target in one lane slides over windows instead
// (slide.go), with the same rules.
func (l *loop) pipeline(ctx context.Context, items []Item) (outcome, error) {
	var q []*flight
	defer func() {
		for _, f := range q {
			<-f.done // never leave a Send running on a returned window
		}
	}()
	first := true // the window's first batch: a namespace window that fails before any write is read again
	rest := items
	for {
		for len(q) < l.spec.InFlight && len(rest) > 0 && ctx.Err() == nil && !l.paused.Load() {
			n := min(len(rest), l.spec.MaxBatch)
			if blocked(q, rest[:n]) || !l.takeTokens(ctx, n) {
				break
			}
			q = append(q, l.fly(ctx, rest[:n]))
			rest = rest[n:]
		}
		if len(q) == 0 {
			switch {
			case len(rest) == 0:
				return delivered, nil
			case ctx.Err() != nil:
				return stopped, nil
			default:
				return held, nil // paused: nothing is in flight
			}
		}
		f := q[0]
		<-f.done
		q = q[1:]
		if f.err == nil {
			if err := l.settle(f.batch); err != nil {
				return delivered, err
			}
			l.h.recovered(false)
			l.resetBackoff()
			first = false
			continue
		}
		// Go back to the failed batch: what was sent behind it is sent
		// again once it is settled.
		var again []Item
		for _, g := range q {
			<-g.done
			again = append(again, g.batch...)
		}
		q = nil
		if len(again) > 0 {
			l.resent.Add(uint64(len(again)))
			rest = append(again, rest...)
		}
		o, err := l.deliverBatch(ctx, f.batch, first && l.spec.Namespace, f.err)
		if err != nil || o != delivered {
			return o, err
		}
		first = false
	}
}
