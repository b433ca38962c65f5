package kafka

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/IBM/sarama"
)

// producer is one sarama AsyncProducer shared by the sends in flight (the
// kind's window), with one goroutine taking its answers: a send feeds its
// messages and waits once for the whole batch, instead of a SyncProducer's
// goroutine and channel per message.
type producer struct {
	p sarama.AsyncProducer
	// feeding is read-held while a send feeds Input and write-held by
	// close: sarama closes Input when it shuts down, and a send on a
	// closed channel would panic.
	feeding sync.RWMutex
	closed  bool // guarded by feeding
	done    chan struct{}
}

// flight is the messages of one send: errs[i] is message i's failure,
// left counts the messages not answered yet, done is closed at zero.
type flight struct {
	errs []error
	left atomic.Int64
	done chan struct{}
}

// ref is a message's Metadata: its flight and index. A batch allocates
// its refs in one slice.
type ref struct {
	f *flight
	i int
}

func newProducer(p sarama.AsyncProducer) *producer {
	pr := &producer{p: p, done: make(chan struct{})}
	go pr.answers()
	return pr
}

// answers hands each success and failure to its flight until the
// producer has shut down.
func (pr *producer) answers() {
	defer close(pr.done)
	succ, errs := pr.p.Successes(), pr.p.Errors()
	for succ != nil || errs != nil {
		select {
		case m, ok := <-succ:
			if !ok {
				succ = nil
				continue
			}
			answer(m, nil)
		case e, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			answer(e.Msg, e.Err)
		}
	}
}

func answer(m *sarama.ProducerMessage, err error) {
	r, ok := m.Metadata.(*ref)
	if !ok {
		return
	}
	if err != nil {
		r.f.errs[r.i] = err
	}
	if r.f.left.Add(-1) == 0 {
		close(r.f.done)
	}
}

// send feeds msgs and returns their flight, or ctx's error if it ended
// before every message was fed (those fed are produced all the same), or
// errClosed if the producer was closed.
func (pr *producer) send(ctx context.Context, msgs []sarama.ProducerMessage) (*flight, error) {
	f := &flight{errs: make([]error, len(msgs)), done: make(chan struct{})}
	f.left.Store(int64(len(msgs)))
	refs := make([]ref, len(msgs))
	pr.feeding.RLock()
	defer pr.feeding.RUnlock()
	if pr.closed {
		return nil, errClosed
	}
	in := pr.p.Input()
	for i := range msgs {
		refs[i] = ref{f, i}
		msgs[i].Metadata = &refs[i]
		select {
		case in <- &msgs[i]:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return f, nil
}

// close shuts the producer down once no send is feeding it, and waits
// until what was fed is answered (produced, or failed as sarama gives up
// on it). AsyncClose, not Close: Close would take the answers itself.
func (pr *producer) close() {
	pr.feeding.Lock()
	first := !pr.closed
	pr.closed = true
	pr.feeding.Unlock()
	if first {
		pr.p.AsyncClose()
	}
	<-pr.done
}
