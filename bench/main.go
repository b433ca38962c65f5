// Command bench measures the relay: durable ingest, delivery to each kind of
// target, drain after an outage, and memory under a backlog. It prints a
// table, or JSON with --json. Figures are recorded in bench/RESULTS.md.
//
//	go run ./bench [--json] [--duration 5s] [--outage 30s] [scenario ...]
//
// With no scenario it runs every registered one.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Options are the settings every scenario gets.
type Options struct {
	// Duration is how long a steady-state measurement runs.
	Duration time.Duration
	// Outage is how long a target is down in outage scenarios.
	Outage time.Duration
	// Dir is a scratch directory on the disk under test.
	Dir string
	// Quick shrinks every scenario for a smoke run.
	Quick bool
}

// Metric is one measured figure.
type Metric struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	// Goal, if set, is the figure the issue asks for, in the same unit.
	Goal string `json:"goal,omitempty"`
}

// Result is what a scenario measured.
type Result struct {
	Scenario string   `json:"scenario"`
	Metrics  []Metric `json:"metrics"`
	Notes    []string `json:"notes,omitempty"`
	// Files lists files the scenario wrote (plots).
	Files []string `json:"files,omitempty"`
}

// Add appends a metric.
func (r *Result) Add(name string, value float64, unit, goal string) {
	r.Metrics = append(r.Metrics, Metric{name, value, unit, goal})
}

type scenario struct {
	name string
	fn   func(ctx context.Context, o Options) (Result, error)
	// explicit scenarios run only when named (they need tools built
	// beforehand, or take long).
	explicit bool
}

var scenarios []scenario

// register adds a scenario; called from init functions.
func register(name string, fn func(ctx context.Context, o Options) (Result, error)) {
	scenarios = append(scenarios, scenario{name: name, fn: fn})
}

// registerExplicit adds a scenario that runs only when named.
func registerExplicit(name string, fn func(ctx context.Context, o Options) (Result, error)) {
	scenarios = append(scenarios, scenario{name: name, fn: fn, explicit: true})
}

func main() {
	jsonOut := flag.Bool("json", false, "print results as JSON")
	dur := flag.Duration("duration", 5*time.Second, "steady-state measurement time")
	outage := flag.Duration("outage", 30*time.Second, "target outage in outage scenarios")
	dir := flag.String("dir", "", "scratch directory (default: a temporary one)")
	quick := flag.Bool("quick", false, "shrink every scenario (smoke run)")
	list := flag.Bool("list", false, "list scenarios and exit")
	flag.Parse()
	sort.SliceStable(scenarios, func(i, j int) bool { return scenarios[i].name < scenarios[j].name })
	if *list {
		for _, s := range scenarios {
			if s.explicit {
				fmt.Println(s.name, "(only when named)")
			} else {
				fmt.Println(s.name)
			}
		}
		return
	}
	want := map[string]bool{}
	for _, a := range flag.Args() {
		want[a] = true
	}
	for n := range want {
		known := false
		for _, s := range scenarios {
			known = known || s.name == n
		}
		if !known {
			fatal(fmt.Errorf("unknown scenario %q (see --list)", n))
		}
	}
	o := Options{Duration: *dur, Outage: *outage, Dir: *dir, Quick: *quick}
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "relay-bench-")
		if err != nil {
			fatal(err)
		}
		defer os.RemoveAll(d)
		o.Dir = d
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var results []Result
	failed := false
	for _, s := range scenarios {
		if (len(want) > 0 && !want[s.name]) || (len(want) == 0 && s.explicit) {
			continue
		}
		fmt.Fprintf(os.Stderr, "bench: running %s\n", s.name)
		sub, _ := os.MkdirTemp(o.Dir, s.name+"-")
		so := o
		so.Dir = sub
		r, err := s.fn(ctx, so)
		r.Scenario = s.name
		if err != nil {
			failed = true
			r.Notes = append(r.Notes, "error: "+err.Error())
			fmt.Fprintf(os.Stderr, "bench: %s: %v\n", s.name, err)
		}
		os.RemoveAll(sub)
		results = append(results, r)
		if !*jsonOut {
			printResult(r)
		}
	}

	if *jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(map[string]any{"machine": machine(), "results": results})
	}
	if failed {
		os.Exit(1)
	}
}

func printResult(r Result) {
	fmt.Printf("== %s\n", r.Scenario)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	for _, m := range r.Metrics {
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", m.Name, fmtValue(m.Value), m.Unit, m.Goal)
	}
	w.Flush()
	for _, n := range r.Notes {
		fmt.Printf("  note: %s\n", n)
	}
	for _, f := range r.Files {
		fmt.Printf("  wrote: %s\n", f)
	}
}

func fmtValue(v float64) string {
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%.3f", v)
}

func machine() map[string]any {
	m := map[string]any{"goos": runtime.GOOS, "goarch": runtime.GOARCH, "cpus": runtime.NumCPU(), "go": runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				m["cpu"] = strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		m["meminfo"] = strings.SplitN(string(b), "\n", 2)[0]
	}
	return m
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(2)
}
