package webhook

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/testkit/webhookrecv"
	"github.com/bucketrelay/bucketrelay/wal"
)

// deliverKeyed runs spec (its ID set here) through a delivery engine on a
// fresh log holding n events over keys objects, waits until rcv accepted
// all of them, checks each object's order, and returns the engine, still
// running until the test ends.
func deliverKeyed(t *testing.T, rcv *webhookrecv.Receiver, spec delivery.Spec, n, keys int) *delivery.Engine {
	t.Helper()
	l, err := wal.Open(filepath.Join(t.TempDir(), "wal.db"), wal.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	spec.ID = "arn:minio:sqs::1:webhook"
	e := delivery.New(l, delivery.Options{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	if err := e.Add(spec); err != nil {
		t.Fatal(err)
	}
	entries := make([]*wal.Entry, n)
	for i := range entries {
		entries[i] = targettest.Entry(targettest.Record("b", fmt.Sprintf("k%d", i%keys), event.ObjectCreatedPut, i), spec.ID)
	}
	if _, err := l.Append(context.Background(), entries...); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	deadline := time.Now().Add(60 * time.Second)
	for len(rcv.Accepted()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("got %d of %d events in 60 s", len(rcv.Accepted()), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := rcv.CheckKeyOrder(); err != nil {
		t.Fatal(err)
	}
	return e
}
