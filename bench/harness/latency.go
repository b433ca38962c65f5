package harness

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bucketrelay/bucketrelay/testkit/cpuclock"
)

// Latencies collects per-call latencies from many goroutines. Its zero
// value is ready to use.
type Latencies struct {
	mu  sync.Mutex
	all []time.Duration
}

// Add appends d.
func (l *Latencies) Add(d []time.Duration) {
	l.mu.Lock()
	l.all = append(l.all, d...)
	l.mu.Unlock()
}

// Pct returns the p-th percentile (0 < p ≤ 100) in milliseconds.
func (l *Latencies) Pct(p float64) float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Percentile(l.all, p)
}

// Percentile sorts d and returns its p-th percentile in milliseconds (0 if
// d is empty).
func Percentile(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	i := int(float64(len(d))*p/100+0.5) - 1
	i = max(0, min(i, len(d)-1))
	return float64(d[i]) / float64(time.Millisecond)
}

// CPUTime returns the process's user+sys CPU time (cpuclock.Process, the
// clock the micro-benchmarks use).
func CPUTime() time.Duration { return cpuclock.Process() }

// Load is what one closed-loop load measured.
type Load struct {
	Rate     float64 // events/s
	P50, P99 float64 // ms per call
	Events   int64
	CPU      float64 // process CPU time (user+sys) per event, µs
}

// ClosedLoop runs workers that each call call(worker, i) back to back for
// d, and measures events/s and per-call latency after a warm-up of d/10.
// call returns the events it handled; the first error ends the run.
func ClosedLoop(ctx context.Context, workers int, d time.Duration, call func(w, i int) (int, error)) (Load, error) {
	warm := d / 10
	start := time.Now()
	measureFrom := start.Add(warm)
	end := measureFrom.Add(d)
	var lat Latencies
	var events atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	var cpu0 atomic.Int64
	go func() {
		time.Sleep(time.Until(measureFrom))
		cpu0.Store(int64(CPUTime()))
	}()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for i := 0; ; i++ {
				t0 := time.Now()
				if t0.After(end) || ctx.Err() != nil {
					break
				}
				n, err := call(w, i)
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
					break
				}
				if t0.After(measureFrom) {
					mine = append(mine, time.Since(t0))
					events.Add(int64(n))
				}
			}
			lat.Add(mine)
		}()
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return Load{}, *p
	}
	wall := time.Since(measureFrom).Seconds()
	cpu := float64(CPUTime()-time.Duration(cpu0.Load())) / float64(time.Microsecond)
	return Load{
		CPU:    cpu / float64(max(1, events.Load())),
		Rate:   float64(events.Load()) / wall,
		P50:    lat.Pct(50),
		P99:    lat.Pct(99),
		Events: events.Load(),
	}, nil
}

// WaitFor polls cond every 10 ms until it holds (true) or timeout passes or
// ctx ends (false).
func WaitFor(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	end := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(end) || ctx.Err() != nil {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}
