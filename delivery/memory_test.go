package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/wal"
)

// heapPeak samples the live heap until stop is called, which returns the
// largest sample. Each sample forces a collection and reads the bytes it
// marked live (/gc/heap/live:bytes): unlike MemStats.HeapAlloc read after
// runtime.GC, it does not count what other goroutines allocated while the
// collection ran.
func heapPeak() (stop func() uint64) {
	var mu sync.Mutex
	var peak uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	sample := func() {
		runtime.GC()
		m := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		metrics.Read(m)
		mu.Lock()
		peak = max(peak, m[0].Value.Uint64())
		mu.Unlock()
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				sample()
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		sample()
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// TestNamespaceDrainMemoryIsBounded: a namespace target catching up after
// an outage on a backlog of 100,000 records of 2 KB over 1,000 keys (200
// MB of records; 30,000 records, 60 MB, under the race detector, which
// makes compressing and reading them several times slower) keeps its heap
// small, and writes each key once.
//
// The bound: a coalescing window keeps one item per key, 1,000 × ~2.2 KB
// ≈ 2.2 MB, and a loop holds two windows (one read ahead); reading
// decompresses one frame at a time (the log caps a frame at 8 MiB of
// records, here about 2 MiB since the test appends 1,000 records at a
// time); the log and the test hold a few MB more. 64 MiB leaves room for
// garbage the collector has not yet returned on a loaded machine (peaks
// of 40-50 MiB were seen) while staying far below the 200+ MB the engine
// held when it kept superseded items and the frames their data pointed
// into.
func TestNamespaceDrainMemoryIsBounded(t *testing.T) {
	records := 100_000
	if raceEnabled {
		records = 30_000
	}
	const (
		keys  = 1_000
		size  = 2 << 10
		bound = 64 << 20
	)
	start := time.Now()
	l := openLog(t)
	l.Register(id)
	appendPadded(t, l, records, keys, size)
	t.Logf("backlog appended in %s", time.Since(start))
	var mu sync.Mutex
	outage := 1 // the first send fails: the window is read again
	writes := map[string]int{}
	newest := map[string]uint64{}
	peak := heapPeak()
	e, _ := runEngine(t, l, delivery.Options{MinBackoff: 20 * time.Millisecond, MaxBackoff: 20 * time.Millisecond},
		delivery.Spec{ID: id, Namespace: true, MaxBatch: 100, Target: &fakeTarget{send: func(items []delivery.Item) error {
			mu.Lock()
			defer mu.Unlock()
			if outage > 0 {
				outage--
				return errors.New("connection refused")
			}
			for _, it := range items {
				writes[it.Key]++
				newest[it.Key] = it.Seq
			}
			return nil
		}}})
	for deadline := time.Now().Add(2 * time.Minute); e.Stats()[0].Pending != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d records still pending after 2 minutes", e.Stats()[0].Pending)
		}
	}
	got := peak()
	t.Logf("drained in %s", time.Since(start))
	t.Logf("heap peak %.1f MiB while draining %d records of %d B over %d keys", float64(got)/(1<<20), records, size, keys)
	if got > bound {
		t.Fatalf("heap peaked at %.1f MiB, want under %d MiB", float64(got)/(1<<20), bound>>20)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(writes) != keys {
		t.Fatalf("%d keys written, want %d", len(writes), keys)
	}
	for k, n := range writes {
		if n != 1 {
			t.Fatalf("key %s written %d times after the outage, want once", k, n)
		}
		// The newest record of key k%d is the last n with n%keys == k.
		var i int
		fmt.Sscanf(k, "b/k%d", &i)
		if want := uint64(records - keys + i + 1); newest[k] != want {
			t.Fatalf("key %s written with sequence %d, want its newest, %d", k, newest[k], want)
		}
	}
}

// appendPadded appends records puts of size bytes each to l for id, over
// keys keys (b/k0, b/k1, …) in turn, a thousand per append.
func appendPadded(t *testing.T, l *wal.Log, records, keys, size int) {
	t.Helper()
	pad := make([]byte, size-64)
	for i := range pad {
		pad[i] = 'a' + byte(i%26)
	}
	for i := 0; i < records; i += 1000 {
		entries := make([]*wal.Entry, 1000)
		for j := range entries {
			n := i + j
			entries[j] = &wal.Entry{
				Targets: []string{id}, Key: fmt.Sprintf("b/k%d", n%keys), Name: string(event.ObjectCreatedPut),
				Data: fmt.Appendf(nil, `{"n":%d,"pad":"%s"}`, n, pad),
			}
		}
		if _, err := l.Append(context.Background(), entries...); err != nil {
			t.Fatal(err)
		}
	}
}
