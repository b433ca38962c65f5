package sendtest

import (
	"sync"
	"testing"

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
