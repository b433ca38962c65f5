package sendtest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/testkit/cpuclock"
)

// Measure runs send b.N times in all, from senders goroutines at once (as
// the engine's batches in flight), and reports events/s and cpu-ns/event
// for events events per call: this process's CPU time per event, the
// steadier figure on a shared machine. Benchmarks of a target's Send
// beside its library used directly call it for both.
func Measure(b *testing.B, events, senders int, send func() error) {
	b.Helper()
	work := make(chan struct{}, b.N)
	for range b.N {
		work <- struct{}{}
	}
	close(work)
	errs := make(chan error, max(1, senders))
	var wg sync.WaitGroup
	cpu0 := cpuclock.Process()
	b.ResetTimer()
	for range max(1, senders) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				if err := send(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	n := float64(b.N * events)
	b.ReportMetric(n/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64((cpuclock.Process()-cpu0).Nanoseconds())/n, "cpu-ns/event")
}

// BenchItems returns n put events of distinct objects with a log id, the
// batch a target's Send benchmark sends over and over.
func BenchItems(n int) []delivery.Item {
	items := make([]delivery.Item, n)
	for i := range items {
		items[i] = targettest.Item("images", fmt.Sprintf("photos/%04d.jpg", i), event.ObjectCreatedPut, i)
		items[i].LogID = "3f9a0c1d2e4b5a69"
	}
	return items
}

// BenchTarget runs sub-benchmarks relay-1 and relay-4: the target newTarget
// returns sending items once to connect, then from 1 and from 4 senders at
// once (the default window of most kinds), measured by Measure.
func BenchTarget(b *testing.B, items []delivery.Item, newTarget func() (delivery.Target, error)) {
	for _, senders := range []int{1, 4} {
		b.Run(fmt.Sprintf("relay-%d", senders), func(b *testing.B) {
			tg, err := newTarget()
			if err != nil {
				b.Fatal(err)
			}
			defer tg.Close()
			if err := tg.Send(context.Background(), items); err != nil { // connect
				b.Fatal(err)
			}
			Measure(b, len(items), senders, func() error { return tg.Send(context.Background(), items) })
		})
	}
}
