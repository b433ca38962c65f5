// Package cpuclock measures the CPU time (user and system) this process
// uses. CPU per event is steadier than wall time on a shared machine, so
// benchmarks and bench/ report it beside their rates.
//
// It imports nothing of the relay, so any package's tests may use it,
// including the leaves' (event) own.
package cpuclock

import (
	"syscall"
	"testing"
	"time"
)

// Process returns the CPU time (user and system) this process has used
// so far, or 0 where the system does not say.
func Process() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Clock is the process's CPU time at a benchmark's start (see Start).
type Clock struct{ start time.Duration }

// Start resets b's timer and starts a CPU clock: call it after the
// benchmark's set-up, just before its loop.
func Start(b *testing.B) Clock {
	b.ResetTimer()
	return Clock{start: Process()}
}

// Report adds the CPU nanoseconds used since Start per unit as the metric
// "cpu-ns/<unit>", where each of b's ops handles perOp units (1 and "op"
// for a plain per-op figure; 100 and "record" for 100 records per op).
func (c Clock) Report(b *testing.B, perOp int, unit string) {
	used := Process() - c.start
	b.ReportMetric(float64(used.Nanoseconds())/float64(b.N*perOp), "cpu-ns/"+unit)
}
