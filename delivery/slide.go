package delivery

import (
	"context"
	"slices"
)

// sliding reports whether the loop's pipeline slides across windows: a
// pipelined target in one lane. With lanes each lane pipelines its share
// of one window (deliverWindow), and the window ends in a barrier.
func (l *loop) sliding() bool {
	return l.spec.InFlight > 1 && l.spec.Lanes <= 1
}

// span is a window taken into a sliding pipeline.
type span struct {
	w        window
	rest     []Item // not sent yet, in log order
	inflight int    // its flights in the pipeline
	// settled is set once some of its items were delivered: after that a
	// namespace window is no longer read again on a failure.
	settled bool
}

// done reports whether every item of the span was delivered or
// quarantined.
func (s *span) done() bool { return len(s.rest) == 0 && s.inflight == 0 }

// slider is the state of one slide: the windows taken and not yet passed
// by the cursor (two at most: the one being finished and the next), the
// batches in flight, in log order, and the read of the next window.
type slider struct {
	l       *loop
	spans   []*span
	q       []*flight
	reading chan window // the read in progress, nil if none
	from    uint64      // where the next read starts
	end     *window     // a read that ends the slide
}

// slide delivers w and the windows after it through one pipeline of up to
// InFlight batches that does not empty at a window's end: once a window's
// items are all sent, the next window's batches go while its last ones are
// still awaited. Everything pipeline promises holds across windows:
// answers are taken in log order, a batch that shares a key with one in
// flight (of either window) waits for it, and a failed batch sends again
// what was sent behind it. The cursor moves past a window as soon as each
// of its items, and every item before it, is delivered or quarantined.
//
// The next window is read while one is sent, and only while fewer than two
// are taken, so a loop holds two windows at most, as without sliding.
// slide ends at a read that finds nothing to send (or fails), or a pause
// or re-drive met at a window's start, once every window taken is passed:
// it returns delivered and that read, for run to handle. Any other
// outcome is returned as deliverWindow's is: the cursor stays after the
// last window passed, and run reads again from it.
func (l *loop) slide(ctx context.Context, w window) (outcome, window, error) {
	s := &slider{l: l}
	defer s.wait()
	if err := s.take(w); err != nil {
		return delivered, window{}, err
	}
	for {
		s.issue(ctx)
		s.readAhead(ctx)
		if len(s.q) == 0 {
			switch {
			case s.unsent() && ctx.Err() != nil:
				return stopped, window{}, nil
			case s.unsent():
				return held, window{}, nil // paused: nothing is in flight
			case s.end != nil:
				return delivered, *s.end, nil
			case ctx.Err() != nil:
				return stopped, window{}, nil
			case l.paused.Load():
				return held, window{}, nil
			}
			if s.reading == nil {
				continue // a pause ended under readAhead: read now
			}
			// Every window taken is passed: only the read is left.
			if err := s.received(<-s.reading); err != nil {
				return delivered, window{}, err
			}
			continue
		}
		select {
		case <-s.q[0].done:
			if o, err := s.answer(ctx); err != nil || o != delivered {
				return o, window{}, err
			}
		case w := <-s.reading: // a nil channel when no read is in progress
			if err := s.received(w); err != nil {
				return delivered, window{}, err
			}
		}
	}
}

// wait lets the sends in flight and the read in progress end: no Send
// runs, and no read holds the log, once slide returned.
func (s *slider) wait() {
	for _, f := range s.q {
		<-f.done
	}
	if s.reading != nil {
		<-s.reading
	}
}

// take adds w to the pipeline, its expired items quarantined first. An
// error is the log's.
func (s *slider) take(w window) error {
	kept, err := s.l.expire(w.items)
	if err != nil {
		return err
	}
	s.spans = append(s.spans, &span{w: w, rest: kept})
	s.from = w.next
	return s.pass() // every item may have expired
}

// received takes the window a read returned, or keeps it as the end of the
// slide: a read that failed or found nothing, or a pause or re-drive
// waiting, which run handles between windows.
func (s *slider) received(w window) error {
	s.reading = nil
	if w.err != nil || w.n == 0 || s.l.paused.Load() || s.l.redriveQueued() > 0 {
		s.end = &w
		return nil
	}
	return s.take(w)
}

// readAhead starts reading the window after the last one taken, unless one
// is being read, two are taken, or the slide is ending.
func (s *slider) readAhead(ctx context.Context) {
	l := s.l
	if s.reading != nil || s.end != nil || len(s.spans) >= 2 || ctx.Err() != nil || l.paused.Load() {
		return
	}
	ch := make(chan window, 1)
	go func(from uint64) { ch <- l.readAt(ctx, from) }(s.from)
	s.reading = ch
}

// issue sends batches, oldest window first, until InFlight are in flight,
// nothing is left to send, the next batch must wait for a key in flight,
// or the target is paused or ctx ended.
func (s *slider) issue(ctx context.Context) {
	l := s.l
	for len(s.q) < l.spec.InFlight && ctx.Err() == nil && !l.paused.Load() {
		sp := s.sending()
		if sp == nil {
			return
		}
		n := min(len(sp.rest), l.spec.MaxBatch)
		if blocked(s.q, sp.rest[:n]) || !l.takeTokens(ctx, n) {
			return
		}
		f := l.fly(ctx, sp.rest[:n])
		f.span = sp
		sp.rest = sp.rest[n:]
		sp.inflight++
		s.q = append(s.q, f)
	}
}

// sending returns the oldest window with items not sent yet, nil if none.
func (s *slider) sending() *span {
	for _, sp := range s.spans {
		if len(sp.rest) > 0 {
			return sp
		}
	}
	return nil
}

// unsent reports whether some items of the windows taken are not sent yet.
func (s *slider) unsent() bool { return s.sending() != nil }

// answer takes the answer of the oldest flight. On a failure the flights
// behind it are waited for and their items put back to be sent again,
// and the failed batch is retried alone (deliverBatch).
func (s *slider) answer(ctx context.Context) (outcome, error) {
	l := s.l
	f := s.q[0]
	s.q[0] = nil
	s.q = s.q[1:]
	if f.err == nil {
		if err := l.settle(f.batch); err != nil {
			return delivered, err
		}
		l.h.recovered(false)
		l.resetBackoff()
		f.span.inflight--
		f.span.settled = true
		return delivered, s.pass()
	}
	s.goBack()
	// A namespace window none of which was written yet is read again after
	// the backoff; the windows before it are passed, so the cursor is at
	// its start.
	o, err := l.deliverBatch(ctx, f.batch, l.spec.Namespace && !f.span.settled, f.err)
	if err != nil || o != delivered {
		return o, err
	}
	f.span.inflight--
	f.span.settled = true
	return delivered, s.pass()
}

// goBack waits for the flights in the pipeline and puts their items back
// in front of their windows' items not sent yet, counted as resent.
func (s *slider) goBack() {
	for _, g := range s.q {
		<-g.done
	}
	for _, sp := range s.spans {
		var again [][]Item
		for _, g := range s.q {
			if g.span == sp {
				again = append(again, g.batch)
				sp.inflight--
				s.l.resent.Add(uint64(len(g.batch)))
			}
		}
		if len(again) > 0 {
			// A new slice: the batches share the window's array with rest.
			sp.rest = slices.Concat(append(again, sp.rest)...)
		}
	}
	clear(s.q)
	s.q = s.q[:0]
}

// pass moves the cursor past the windows done, oldest first. An error is
// the log's.
func (s *slider) pass() error {
	for len(s.spans) > 0 && s.spans[0].done() {
		w := s.spans[0].w
		s.spans[0] = nil
		s.spans = s.spans[1:]
		if err := s.l.passWindow(w); err != nil {
			return err
		}
	}
	return nil
}
