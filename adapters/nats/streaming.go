package nats

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/stan.go"

	"github.com/bucketrelay/bucketrelay/delivery"
)

// stanConn returns the streaming connection, making a new one on first use
// and after the previous one was lost.
func (t *Target) stanConn() (stan.Conn, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, errClosed
	}
	if t.sc != nil && !t.scLost {
		return t.sc, nil
	}
	if t.sc != nil {
		_ = t.sc.Close() // lost: frees its NATS connection
		t.sc = nil
	}
	sopts := []stan.Option{
		stan.NatsURL(t.url),
		stan.NatsOptions(t.options()...),
		stan.ConnectWait(DefaultDialTimeout),
		stan.PubAckWait(DefaultAckTimeout),
		stan.Pings(DefaultStreamingPingInterval, DefaultStreamingPingMaxOut),
	}
	if n := t.cfg.Streaming.MaxPubAcksInflight; n > 0 {
		sopts = append(sopts, stan.MaxPubAcksInflight(n))
	}
	sopts = append(sopts, stan.SetConnectionLostHandler(func(lost stan.Conn, err error) {
		t.mu.Lock()
		defer t.mu.Unlock()
		if lost == t.sc {
			t.scLost = true
		}
		t.lg.Warn("nats: streaming connection lost", "err", t.redact(fmt.Sprint(err)))
	}))
	sc, err := stan.Connect(t.cfg.Streaming.ClusterID, t.cfg.Streaming.ClientID, sopts...)
	if err != nil {
		return nil, fmt.Errorf("nats: connecting to streaming cluster %q at %s: %s", t.cfg.Streaming.ClusterID, t.redact(t.cfg.Address), t.redact(err.Error()))
	}
	t.lg.Info("nats: streaming connected", "cluster", t.cfg.Streaming.ClusterID, "client", t.cfg.Streaming.ClientID)
	t.sc, t.scLost = sc, false
	return sc, nil
}

// dropStan forgets sc so the next Send connects again.
func (t *Target) dropStan(sc stan.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sc == sc {
		t.scLost = true
	}
}

// sendStreaming publishes the batch through NATS Streaming and waits for
// every ack.
func (t *Target) sendStreaming(ctx context.Context, items []delivery.Item) error {
	sc, err := t.stanConn()
	if err != nil {
		return err
	}
	errs := make([]error, len(items))
	var body streamingBody
	if !t.cfg.Streaming.Async {
		for i := range items {
			if ctx.Err() != nil {
				errs[i] = fmt.Errorf("nats: streaming publish: %w", ctx.Err())
			} else if err := sc.Publish(t.cfg.Subject, body.next(t, &items[i])); err != nil {
				errs[i] = t.stanErr(sc, err)
			}
			if errs[i] != nil && !delivery.IsPermanent(errs[i]) {
				for j := i + 1; j < len(items); j++ {
					errs[j] = errNotSent
				}
				break
			}
		}
		return ordered(errs)
	}
	type ack struct {
		i   int
		err error
	}
	acks := make(chan ack, len(items)) // never blocks the client's handler
	sent := 0
	nc := sc.NatsConn()
	reconnects := reconnectCount(nc)
	for i := range items {
		if ctx.Err() != nil {
			for j := i; j < len(items); j++ {
				errs[j] = errNotSent
			}
			break
		}
		if reconnectCount(nc) != reconnects {
			// See errReconnected: what follows waits for the retry.
			for j := i; j < len(items); j++ {
				errs[j] = errReconnected
			}
			break
		}
		_, err := sc.PublishAsync(t.cfg.Subject, body.next(t, &items[i]), func(_ string, err error) { acks <- ack{i, err} })
		if err != nil {
			errs[i] = t.stanErr(sc, err)
			for j := i + 1; j < len(items); j++ {
				errs[j] = errNotSent
			}
			break
		}
		sent++
	}
	timer := time.NewTimer(DefaultAckTimeout + time.Second)
	defer timer.Stop()
	waiting := make([]bool, len(items))
	for i := range items {
		waiting[i] = errs[i] == nil
	}
wait:
	for ; sent > 0; sent-- {
		select {
		case a := <-acks:
			waiting[a.i] = false
			if a.err != nil {
				errs[a.i] = t.stanErr(sc, a.err)
			}
		case <-ctx.Done():
			err = fmt.Errorf("nats: waiting for streaming acks: %w", ctx.Err())
			break wait
		case <-timer.C:
			err = errors.New("nats: waiting for streaming acks: timed out")
			t.dropStan(sc)
			break wait
		}
	}
	if sent > 0 {
		for i, w := range waiting {
			if w {
				errs[i] = err
			}
		}
	}
	return ordered(errs)
}

// stanErr classifies a streaming publish error; a closed or timed-out
// connection is dropped so the next Send connects again.
func (t *Target) stanErr(sc stan.Conn, err error) error {
	switch {
	case errors.Is(err, stan.ErrConnectionClosed), errors.Is(err, stan.ErrBadConnection),
		errors.Is(err, stan.ErrTimeout):
		t.dropStan(sc)
	}
	return t.publishErr(err)
}

// streamingBody builds the bodies of one send in one buffer: stan.go
// copies a message's body (it marshals the message) before Publish or
// PublishAsync returns, so each body may overwrite the previous one.
type streamingBody struct{ buf []byte }

// next returns it's body (body), valid until the next call.
func (b *streamingBody) next(t *Target, it *delivery.Item) []byte {
	if t.cfg.Format.CloudEvents() {
		return t.body(it)
	}
	b.buf = it.AppendMessage(b.buf[:0])
	return b.buf
}

// body returns it's NATS Streaming message: the guide's body or, with
// format "cloudevents", a structured CloudEvent, whose id is the event's
// id. Streaming messages have no headers, so that is the only place the
// id travels.
func (t *Target) body(it *delivery.Item) []byte {
	b, _ := t.cfg.Format.Encode(it, nil, nil)
	return b
}
