package harness

import (
	"bufio"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MemStatus returns the named fields of /proc/self/status (VmRSS, RssAnon,
// …) in MiB; fields it cannot read are absent.
func MemStatus(names ...string) map[string]float64 {
	out := map[string]float64{}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || !slices.Contains(names, k) {
			continue
		}
		fs := strings.Fields(v)
		if len(fs) == 0 {
			continue
		}
		kb, _ := strconv.ParseFloat(fs[0], 64)
		out[k] = kb / 1024
	}
	return out
}

// HeapMiB returns the Go heap in use and the memory the runtime holds from
// the OS, in MiB.
func HeapMiB() (inuse, sys float64) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapInuse) / (1 << 20), float64(m.Sys) / (1 << 20)
}

// RSSSampler records the highest VmRSS seen, and the highest anonymous RSS
// (Go heap and stacks; the rest is the bbolt file's mmap and the binary).
// Its zero value is ready to use.
type RSSSampler struct{ peak, anon atomic.Uint64 }

// Start samples now and every interval until stop is called.
func (s *RSSSampler) Start(every time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			s.Sample()
			select {
			case <-t.C:
			case <-done:
				return
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// Sample takes one reading.
func (s *RSSSampler) Sample() {
	m := MemStatus("VmRSS", "RssAnon")
	raise(&s.peak, uint64(m["VmRSS"]*1024))
	raise(&s.anon, uint64(m["RssAnon"]*1024))
}

func raise(v *atomic.Uint64, kb uint64) {
	for {
		old := v.Load()
		if kb <= old || v.CompareAndSwap(old, kb) {
			return
		}
	}
}

// Max returns the highest VmRSS seen, in MiB.
func (s *RSSSampler) Max() float64 { return float64(s.peak.Load()) / 1024 }

// MaxAnon returns the highest RssAnon seen, in MiB.
func (s *RSSSampler) MaxAnon() float64 { return float64(s.anon.Load()) / 1024 }

// StartProfile starts a CPU profile of scenario if o.CPUProfile is set; the
// returned stop writes it.
func StartProfile(o Options, scenario string) (stop func(), err error) {
	if o.CPUProfile == "" {
		return func() {}, nil
	}
	f, err := os.Create(o.CPUProfile + "-" + scenario + ".prof")
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
