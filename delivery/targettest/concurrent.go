package targettest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/wal"
)

// RunConcurrent checks a target whose kind allows concurrent sends
// (kit.Kind.InFlight above 0): delivered through an engine with batches
// in flight (delivery.Policy.InFlight), in several lanes ("Lanes") and in
// one lane whose pipeline slides across windows ("Slide"), a stream over
// few keys arrives whole and each object's events in order, or, for a
// namespace target, leaves the state replaying it in order gives. Run it
// with -race: Send runs on several goroutines at once.
func RunConcurrent(t *testing.T, h Harness) {
	t.Run("Lanes", func(t *testing.T) { runConcurrent(t, h, delivery.Policy{InFlight: 4, Lanes: 2}) })
	// Windows of 4 × InFlight batches of 20: the stream spans four.
	t.Run("Slide", func(t *testing.T) { runConcurrent(t, h, delivery.Policy{InFlight: 4}) })
}

func runConcurrent(t *testing.T, h Harness, policy delivery.Policy) {
	l, err := wal.Open(filepath.Join(t.TempDir(), "wal.db"), wal.Options{CursorSyncInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	p := &pipeline{log: l, id: "arn:minio:sqs::test:concurrent", done: make(chan struct{})}
	p.eng = delivery.New(l, delivery.Options{MinBackoff: 20 * time.Millisecond, MaxBackoff: 500 * time.Millisecond, ShutdownGrace: 2 * time.Second})
	spec := delivery.Spec{ID: p.id, Target: h.New(t), Namespace: h.Features.Namespace, MaxBatch: 20, Policy: policy}
	if err := p.eng.Add(spec); err != nil {
		t.Fatal(err)
	}
	bucket := uniqueBucket("concurrent")
	recs := stream(bucket, 1000, 37, h.Features.Namespace)
	p.publish(t, recs...) // a backlog: the pipeline fills at once
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() { p.eng.Run(ctx); close(p.done) }()
	t.Cleanup(p.stop)
	h.check(t, bucket, recs)
	if st := p.eng.Stats()[0]; st.Quarantined != 0 {
		t.Fatalf("quarantined %d events, want 0 (last error %s)", st.Quarantined, st.LastError)
	}
}
