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
	"github.com/bucketrelay/bucketrelay/wal"
)

// BenchmarkDrainInFlight is BenchmarkDrain through a pipeline of 4
// batches in flight (the default of every kind but the webhook) over
// 1000 objects, so batches do not wait for each other's keys: the
// relay's own cost per event in a sliding pipeline.
func BenchmarkDrainInFlight(b *testing.B) {
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
	err = e.Add(delivery.Spec{ID: id, Policy: delivery.Policy{InFlight: 4}, Target: &fakeTarget{send: func(items []delivery.Item) error {
		got.Add(int64(len(items)))
		return nil
	}}})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	cpu0 := cpuTime()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	want := int64((b.N + 999) / 1000 * 1000)
	for got.Load() < want {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(want), "cpu-ns/event")
	cancel()
	<-done
}
