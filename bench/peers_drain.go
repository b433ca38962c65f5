package main

// Measurement (b) of scenario "peers": the drain of a backlog built while
// the receiver was down, repeated and reported as medians.

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bucketrelay/bucketrelay/bench/harness"
)

// freshFunc starts a system on a new directory with a new receiver, up or
// not; done stops both.
type freshFunc func(name string, mk systemFactory, receiverUp bool) (s peerSystem, rv *harness.Receiver, done func(), err error)

// drainRun is one drain of (b).
type drainRun struct {
	rate   float64     // events/s, first to last receipt; 0: not measured
	resume float64     // s, receiver up to first receipt
	note   string      // why rate is 0, or what was not delivered
	curve  []time.Time // first receipts
	start  time.Time   // receiver up
	cpu    float64     // µs of the system's processes' CPU per event delivered; 0: unknown
	rcpu   float64     // µs of the bench process's CPU (the receiver) per event delivered
}

// drainOnce starts a fresh system with its receiver down, has it
// acknowledge backlog events from workers clients, brings the receiver up
// and measures the drain: the rate from the first receipt to the last
// (how long the system took to resume is reported apart).
func drainOnce(ctx context.Context, fresh freshFunc, name string, mk systemFactory, backlog, workers int) (drainRun, error) {
	var d drainRun
	s, rv, done, err := fresh(name+"-b", mk, false)
	if err != nil {
		return d, err
	}
	defer done()
	var next atomic.Int64
	a := &acks{at: map[int]time.Time{}}
	t0 := time.Now()
	publishLoad(ctx, s, workers, 0, &next, a, func() bool {
		return a.n() >= backlog || (time.Since(t0) > 15*time.Second && a.n() == 0)
	})
	n := a.n()
	if n == 0 {
		d.note = "acknowledges nothing while the receiver is down (no backlog to drain)"
		return d, nil
	}
	if err := rv.Start(); err != nil {
		return d, err
	}
	d.start = time.Now()
	cpu0, cpuOK := systemCPU(s)
	rcpu0 := harness.CPUTime()
	missing := waitDelivered(ctx, rv, a, 30*time.Second, 5*time.Minute)
	cpu1, _ := systemCPU(s)
	rcpu1 := harness.CPUTime()
	d.curve = rv.Receipts()
	if cpuOK && len(d.curve) > 0 {
		d.cpu = float64(cpu1-cpu0) / float64(time.Microsecond) / float64(len(d.curve))
	}
	if len(d.curve) > 0 {
		// The publishers are done: the bench process is the receiver
		// (and its polling) now, the same for every system.
		d.rcpu = float64(rcpu1-rcpu0) / float64(time.Microsecond) / float64(len(d.curve))
	}
	if k := len(d.curve); k > 1 {
		d.resume = d.curve[0].Sub(d.start).Seconds()
		d.rate = float64(k-1) / d.curve[k-1].Sub(d.curve[0]).Seconds()
	}
	if len(missing) > 0 {
		d.note = fmt.Sprintf("%d of %d acknowledged events not delivered when the drain stopped", len(missing), n)
	}
	return d, nil
}

// medianDrain returns the drain of runs with the median rate (the lower
// middle one of an even count), ignoring runs that measured none.
func medianDrain(runs []drainRun) (drainRun, bool) {
	var ok []drainRun
	for _, d := range runs {
		if d.rate > 0 {
			ok = append(ok, d)
		}
	}
	if len(ok) == 0 {
		return drainRun{}, false
	}
	slices.SortFunc(ok, func(a, b drainRun) int {
		switch {
		case a.rate < b.rate:
			return -1
		case a.rate > b.rate:
			return 1
		}
		return 0
	})
	return ok[(len(ok)-1)/2], true
}

// pairedRatios returns a[i].rate ÷ b[i].rate for every round i where both
// measured a drain.
func pairedRatios(a, b []drainRun) []float64 {
	var out []float64
	for i := range min(len(a), len(b)) {
		if a[i].rate > 0 && b[i].rate > 0 {
			out = append(out, a[i].rate/b[i].rate)
		}
	}
	return out
}

// median returns the median of xs (the mean of the middle two of an even
// count); xs is not changed.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// joinRatios formats ratios as "2.51×, 3.02×".
func joinRatios(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.2f×", x)
	}
	return strings.Join(parts, ", ")
}

// pider is a system that names its processes.
type pider interface{ pids() []int }

func (s *relaySystem) pids() []int   { return s.p.pids() }
func (s *minioSystem) pids() []int   { return s.p.pids() }
func (s *benthosSystem) pids() []int { return s.p.pids() }
func (s *chainSystem) pids() []int   { return append(s.relay.pids(), s.minio.pids()...) }

func (p *proc) pids() []int {
	if p.cmd == nil || p.cmd.Process == nil {
		return nil
	}
	return []int{p.cmd.Process.Pid}
}

// systemCPU returns the CPU time (user and system) s's processes used so
// far, from /proc: a drain's CPU per event is steadier than its rate on a
// machine other processes load.
func systemCPU(s peerSystem) (time.Duration, bool) {
	ps, ok := s.(pider)
	if !ok || len(ps.pids()) == 0 {
		return 0, false
	}
	var total time.Duration
	for _, pid := range ps.pids() {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, false
		}
		// Fields after the command's closing parenthesis: state is the
		// first, utime and stime the 12th and 13th, in clock ticks
		// (USER_HZ, 100 on Linux).
		i := strings.LastIndexByte(string(b), ')')
		f := strings.Fields(string(b[i+1:]))
		if i < 0 || len(f) < 13 {
			return 0, false
		}
		for _, v := range f[11:13] {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return 0, false
			}
			total += time.Duration(n) * 10 * time.Millisecond
		}
	}
	return total, true
}
