package harness

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/relay"
)

// QuietLogger logs only errors, so retries during outages do not flood
// the output.
func QuietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

// AckTarget is a delivery.Target that acknowledges everything at once and
// counts the items.
type AckTarget struct{ n atomic.Int64 }

var _ delivery.Target = (*AckTarget)(nil)

// Send acknowledges items.
func (t *AckTarget) Send(_ context.Context, items []delivery.Item) error {
	t.n.Add(int64(len(items)))
	return nil
}

// Close does nothing.
func (t *AckTarget) Close() error { return nil }

// Sent returns how many items were acknowledged.
func (t *AckTarget) Sent() int64 { return t.n.Load() }

// WebhookARN is the target of WebhookRelay.
const WebhookARN = "arn:minio:sqs::1:webhook"

// WebhookRelay opens a relay in dir with one webhook target posting to url
// and a rule sending every object creation in Bucket to it. extra is
// spliced into the "relay" object of the configuration (`,"key":value…`).
func WebhookRelay(dir, url, extra string) (*relay.Relay, error) {
	cfg := fmt.Sprintf(`{"relay":{"dataDir":%q,"listen":"127.0.0.1:0"%s},
		"notify":{"webhook":{"1":{"enable":true,"endpoint":%q}}},
		"buckets":{%q:[{"arn":%q,"events":["put"]}]}}`, dir, extra, url, Bucket, WebhookARN)
	c, err := relay.ParseConfig([]byte(cfg))
	if err != nil {
		return nil, err
	}
	return relay.Open(c, relay.Options{Logger: QuietLogger()})
}

// Pending returns the relay's backlog and delivered count for its first
// target.
func Pending(r *relay.Relay) (pending int64, delivered uint64) {
	for _, s := range r.Stats() {
		return s.Pending, s.Delivered
	}
	return 0, 0
}

// Pacer publishes Stamped records to a relay at Rate events/s, in calls of
// up to Batch records, ids counting from 0.
type Pacer struct {
	// Relay is published to. Required.
	Relay *relay.Relay
	// Rate is the offered rate in events/s.
	Rate float64
	// Batch is the most records per Publish call. Zero: 1.
	Batch int

	next  atomic.Int64
	errs  atomic.Int64
	lastE atomic.Pointer[string]
}

// Run publishes from a pool of workers until ctx ends and returns once
// every call has returned.
func (p *Pacer) Run(ctx context.Context, workers int) {
	batch := max(1, p.Batch)
	jobs := make(chan int, 1024)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range jobs {
				recs := make([]event.Record, n)
				for i := range recs {
					recs[i] = Stamped(int(p.next.Add(1) - 1))
				}
				if err := p.Relay.Publish(context.Background(), recs...); err != nil {
					p.errs.Add(1)
					s := err.Error()
					p.lastE.Store(&s)
				}
			}
		}()
	}
	start := time.Now()
	tick := time.NewTicker(time.Millisecond)
	var offered int64
	for ctx.Err() == nil {
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
		due := int64(time.Since(start).Seconds()*p.Rate) - offered
		for due > 0 && ctx.Err() == nil {
			n := min(due, int64(batch))
			select {
			case jobs <- int(n):
				offered += n
				due -= n
			case <-ctx.Done():
			}
		}
	}
	tick.Stop()
	close(jobs)
	wg.Wait()
}

// Published returns how many records were handed to Publish (ids
// 0..Published()-1).
func (p *Pacer) Published() int64 { return p.next.Load() }

// Errors returns how many Publish calls failed, and the last error.
func (p *Pacer) Errors() (n int64, last string) {
	if s := p.lastE.Load(); s != nil {
		last = *s
	}
	return p.errs.Load(), last
}

// StartWebhook starts a Receiver and opens a WebhookRelay in dir posting
// to it; stop closes the relay and stops the receiver.
func StartWebhook(dir, extra string) (r *relay.Relay, rv *Receiver, stop func(), err error) {
	rv, err = NewReceiver()
	if err != nil {
		return nil, nil, nil, err
	}
	if err := rv.Start(); err != nil {
		return nil, nil, nil, err
	}
	r, err = WebhookRelay(dir, rv.URL(), extra)
	if err != nil {
		rv.Stop()
		return nil, nil, nil, err
	}
	return r, rv, func() { r.Close(context.Background()); rv.Stop() }, nil
}
