package sendtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/wal"
)

// Outage is a target and its server for RunOutage.
type Outage struct {
	// New returns the target.
	New func(t testing.TB) delivery.Target
	// Received returns every body the server's consumer has received so
	// far, in arrival order.
	Received func(t testing.TB) [][]byte
	// Stop and Start stop and start the server.
	Stop, Start func(t testing.TB)
	// Policy is the engine's policy for the target (InFlight, Lanes).
	Policy delivery.Policy
}

// RunOutage runs the target through a delivery engine with o.Policy
// (batches in flight) while the server is stopped and started again mid
// stream: every event arrives at least once, each object's in order of
// first arrival.
func RunOutage(t *testing.T, o Outage) {
	l, err := wal.Open(filepath.Join(t.TempDir(), "wal.db"), wal.Options{CursorSyncInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	id := "arn:minio:sqs::test:outage"
	eng := delivery.New(l, delivery.Options{MinBackoff: 20 * time.Millisecond, MaxBackoff: 500 * time.Millisecond, ShutdownGrace: 2 * time.Second})
	if err := eng.Add(delivery.Spec{ID: id, Target: o.New(t), MaxBatch: 100, Policy: o.Policy}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { eng.Run(ctx); close(done) }()
	defer func() { cancel(); <-done; l.Close() }()

	bucket := fmt.Sprintf("outage-%d-%d", os.Getpid(), time.Now().UnixNano())
	const n, keys = 3000, 40
	want := make([]delivery.Item, n)
	stopped := false
	defer func() {
		if stopped {
			o.Start(t)
		}
	}()
	for i := 0; i < n; i += 100 {
		entries := make([]*wal.Entry, 100)
		for j := range entries {
			r := targettest.Record(bucket, fmt.Sprintf("k%03d.jpg", (i+j)%keys), event.ObjectCreatedPut, i+j)
			entries[j] = targettest.Entry(r, id)
			want[i+j] = delivery.Item{Seq: uint64(i + j + 1), Key: entries[j].Key}
		}
		if _, err := l.Append(context.Background(), entries...); err != nil {
			t.Fatal(err)
		}
		switch i {
		case 800:
			o.Stop(t)
			stopped = true
		case 2000:
			o.Start(t)
			stopped = false
		}
		time.Sleep(5 * time.Millisecond)
	}
	got := Wait(t, o.Received, n, 60*time.Second)
	// Wait a little longer for stragglers when some are missing.
	if len(distinct(got)) < n {
		end := time.Now().Add(60 * time.Second)
		for len(distinct(got)) < n && time.Now().Before(end) {
			time.Sleep(100 * time.Millisecond)
			got = o.Received(t)
		}
	}
	Check(t, got, want, false)
	if st := eng.Stats()[0]; st.Quarantined != 0 {
		t.Fatalf("quarantined %d events, want 0 (last error %s)", st.Quarantined, st.LastError)
	}
}

// distinct returns the distinct event numbers in bodies.
func distinct(bodies [][]byte) map[int]bool {
	out := map[int]bool{}
	for _, b := range bodies {
		if id, ok := ID(b); ok {
			out[id] = true
		}
	}
	return out
}
