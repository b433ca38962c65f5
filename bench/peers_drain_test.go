package main

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestMedians(t *testing.T) {
	runs := []drainRun{{rate: 300}, {rate: 0, note: "none"}, {rate: 100}, {rate: 200}}
	if d, ok := medianDrain(runs); !ok || d.rate != 200 {
		t.Errorf("medianDrain: got %v %v, want 200 (the runs that measured a drain)", d.rate, ok)
	}
	if _, ok := medianDrain([]drainRun{{note: "none"}}); ok {
		t.Error("medianDrain of runs that measured nothing: got ok, want none")
	}
	if got := median([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("median of 4 values: got %v, want 2.5", got)
	}
	if got := median([]float64{5, 1, 3}); got != 3 {
		t.Errorf("median of 3 values: got %v, want 3", got)
	}
	got := pairedRatios([]drainRun{{rate: 10}, {rate: 20}, {rate: 30}}, []drainRun{{rate: 5}, {rate: 0}, {rate: 10}})
	if len(got) != 2 || got[0] != 2 || got[1] != 3 {
		t.Errorf("pairedRatios: got %v, want [2 3] (the round where one measured nothing left out)", got)
	}
}

// TestSystemCPU: the CPU of a busy child process grows, read from /proc.
func TestSystemCPU(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	s := &relaySystem{p: proc{name: "busy", bin: sh, args: []string{"-c", "while :; do :; done"}, log: os.DevNull}}
	if err := s.p.start(); err != nil {
		t.Fatal(err)
	}
	defer s.Kill()
	c0, ok := systemCPU(s)
	if !ok {
		t.Fatal("systemCPU: not ok")
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c1, ok := systemCPU(s)
		if ok && c1 >= c0+50*time.Millisecond {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU of a busy loop: got %v then %v after 20 s, want it to grow by 50 ms", c0, c1)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
