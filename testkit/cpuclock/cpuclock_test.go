package cpuclock

import (
	"testing"
	"time"
)

// TestProcessCountsCPU: a loop that burns CPU for a while moves the clock
// by about as much (at least a part of it: the machine may be shared).
func TestProcessCountsCPU(t *testing.T) {
	start := Process()
	if start <= 0 {
		t.Fatalf("Process() = %v, want the CPU used so far", start)
	}
	var x uint64
	for t0 := time.Now(); time.Since(t0) < 100*time.Millisecond; {
		for i := range 10000 {
			x += uint64(i) * x
		}
	}
	if used := Process() - start; used < 10*time.Millisecond {
		t.Fatalf("100 ms of work used %v of CPU, want at least 10 ms (%d)", used, x)
	}
}

// BenchmarkReport shows the metric a benchmark gets:
// go test -bench Report ./testkit/cpuclock
func BenchmarkReport(b *testing.B) {
	var x uint64
	c := Start(b)
	for i := 0; i < b.N; i++ {
		x += uint64(i) * x
	}
	c.Report(b, 1, "op")
	_ = x
}
