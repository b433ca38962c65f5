package delivery_test

import (
	"context"
	"fmt"
	"math/rand"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/testkit/cpuclock"
	"github.com/bucketrelay/bucketrelay/wal"
)

// BenchmarkDrainInFlight is BenchmarkDrain through a pipeline of 4
// batches in flight (the default of every kind but the webhook) over
// 1000 objects, so batches do not wait for each other's keys: the
// relay's own cost per event in a sliding pipeline.
func BenchmarkDrainInFlight(b *testing.B) {
	benchDrainInFlight(b, 1000, func() {})
}

// BenchmarkDrainInFlightJitter drains through 4 batches of 10 in flight
// into a target that answers each after 0–10 ms: how much of the target's
// parallelism the pipeline uses when answers take uneven times, as a
// broker's do (ns/op: the wall time per event; a pipeline that empties at
// each window's end waits for its slowest last batch there).
func BenchmarkDrainInFlightJitter(b *testing.B) {
	var mu sync.Mutex
	rng := rand.New(rand.NewSource(1))
	benchDrainInFlight(b, 10, func() {
		mu.Lock()
		d := time.Duration(rng.Intn(10000)) * time.Microsecond
		mu.Unlock()
		time.Sleep(d)
	})
}

func benchDrainInFlight(b *testing.B, maxBatch int, answer func()) {
	l, err := wal.Open(filepath.Join(b.TempDir(), "wal.db"), wal.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	l.Register(id)
	batch := make([]*wal.Entry, 1000)
	for i := range batch {
		batch[i] = targettest.Entry(targettest.Record("images", fmt.Sprintf("photos/%d.jpg", i), event.ObjectCreatedPut, i), id)
	}
	for n := 0; n < b.N; n += len(batch) {
		if _, err := l.Append(context.Background(), batch...); err != nil {
			b.Fatal(err)
		}
	}
	var got atomic.Int64
	e := delivery.New(l, delivery.Options{})
	err = e.Add(delivery.Spec{ID: id, MaxBatch: maxBatch, Policy: delivery.Policy{InFlight: 4}, Target: &fakeTarget{send: func(items []delivery.Item) error {
		answer()
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
	b.ReportMetric(float64(cpuclock.Process()-cpu0)/float64(want), "cpu-ns/event")
	cancel()
	<-done
}
