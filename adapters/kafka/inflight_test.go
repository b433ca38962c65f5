package kafka

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
)

// TestFailureBesideSendsInFlight: a send that fails (an oversized record:
// the producer is dropped and closed) while another send of the window is
// still handing its records to the same producer ends that send with an
// answer, never a panic (sarama closes its input channel at shutdown:
// feeding it after would panic the relay), and leaves the target usable.
func TestFailureBesideSendsInFlight(t *testing.T) {
	b := NewBroker(t, "inflight", false)
	tg := newTarget(t, Config{Brokers: []string{b.Addr}, Topic: "inflight"})
	defer tg.Close()
	r := targettest.Record("images", "huge.jpg", event.ObjectCreatedPut, 0)
	r.S3.Object.UserMetadata = map[string]string{"X-Amz-Meta-Blob": strings.Repeat("x", 2<<20)}
	e := targettest.Entry(r, "x")
	huge := []delivery.Item{{Seq: 1, Key: e.Key, EventName: event.Name(e.Name), Record: e.Data}}
	big := items(3000)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for round := range 10 {
		done := make(chan error, 1)
		go func() { done <- tg.Send(ctx, big) }()
		err := tg.Send(ctx, huge)
		var be *delivery.BatchError
		if !errors.As(err, &be) || len(be.Failed) != 1 || !delivery.IsPermanent(be.Failed[0].Err) {
			t.Fatalf("round %d: oversized send: got %v, want its item failed permanently", round, err)
		}
		if err := <-done; err != nil && delivery.IsPermanent(err) {
			t.Fatalf("round %d: the send beside it: got %v, want delivered or a retryable error", round, err)
		}
	}
	if err := tg.Send(ctx, items(10)); err != nil {
		t.Fatalf("a send after the rounds: got %v, want nil", err)
	}
}
