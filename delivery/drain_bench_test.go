package delivery_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/testkit/cpuclock"
	"github.com/bucketrelay/bucketrelay/wal"
)

// BenchmarkDrain measures how fast a loop drains a backlog into a target
// that acknowledges at once: the relay's own cost per event.
func BenchmarkDrain(b *testing.B) { benchDrain(b, 1, 0, 0, nil) }

// benchDrain drains b.N events (rounded up to thousands) of objects
// objects into a target that calls answer, if not nil, before it
// acknowledges a send, with batches of maxBatch and inFlight of them in
// flight (0: the defaults). It reports the process's CPU per event.
func benchDrain(b *testing.B, objects, maxBatch, inFlight int, answer func()) {
	l, err := wal.Open(filepath.Join(b.TempDir(), "wal.db"), wal.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	l.Register(id)
	batch := make([]*wal.Entry, 1000)
	for i := range batch {
		batch[i] = targettest.Entry(targettest.Record("images", fmt.Sprintf("photos/%d.jpg", i%objects), event.ObjectCreatedPut, i), id)
	}
	for n := 0; n < b.N; n += len(batch) {
		if _, err := l.Append(context.Background(), batch...); err != nil {
			b.Fatal(err)
		}
	}
	var got atomic.Int64
	e := delivery.New(l, delivery.Options{})
	err = e.Add(delivery.Spec{ID: id, MaxBatch: maxBatch, Policy: delivery.Policy{InFlight: inFlight}, Target: &fakeTarget{send: func(items []delivery.Item) error {
		if answer != nil {
			answer()
		}
		got.Add(int64(len(items)))
		return nil
	}}})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	cpu0 := cpuclock.Process()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	want := int64((b.N + 999) / 1000 * 1000)
	for got.Load() < want {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	// CPU per event stays steady on a loaded machine, where ns/op does not.
	b.ReportMetric(float64(cpuclock.Process()-cpu0)/float64(want), "cpu-ns/event")
	cancel()
	<-done
}
