package delivery_test

import (
	"context"
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
func BenchmarkDrain(b *testing.B) {
	l, err := wal.Open(filepath.Join(b.TempDir(), "wal.db"), wal.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	l.Register(id)
	batch := make([]*wal.Entry, 1000)
	for i := range batch {
		batch[i] = targettest.Entry(targettest.Record("images", "photos/a.jpg", event.ObjectCreatedPut, i), id)
	}
	for n := 0; n < b.N; n += len(batch) {
		if _, err := l.Append(context.Background(), batch...); err != nil {
			b.Fatal(err)
		}
	}
	var got atomic.Int64
	e := delivery.New(l, delivery.Options{})
	e.Add(delivery.Spec{ID: id, Target: &fakeTarget{send: func(items []delivery.Item) error { got.Add(int64(len(items))); return nil }}})
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
