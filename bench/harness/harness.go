package harness

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"text/tabwriter"
	"time"
)

// Options are the settings every scenario gets.
type Options struct {
	// Duration is how long a steady-state measurement runs.
	Duration time.Duration
	// Outage is how long a target is down in outage scenarios.
	Outage time.Duration
	// Dir is a scratch directory on the disk under test, one per scenario
	// run, removed afterwards.
	Dir string
	// Quick shrinks every scenario for a smoke run.
	Quick bool
	// CPUProfile, if set, is the prefix of the CPU profile StartProfile
	// writes (prefix-<scenario>.prof). Empty: no profile.
	CPUProfile string
	// Scenario is the running scenario's name (set by Run), for the names
	// of its profiles.
	Scenario string
}

// Metric is one measured figure.
type Metric struct {
	// Name identifies the figure across runs (RESULTS.md compares by it).
	Name string `json:"name"`
	// Value is in Unit.
	Value float64 `json:"value"`
	// Unit is events/s, ms, MiB, ×, …
	Unit string `json:"unit"`
	// Goal, if set, is the figure the issue asks for, in the same unit.
	Goal string `json:"goal,omitempty"`
}

// Result is what a scenario measured.
type Result struct {
	// Scenario is the scenario's name (set by Run).
	Scenario string `json:"scenario"`
	// Metrics are the figures, in the order measured.
	Metrics []Metric `json:"metrics"`
	// Notes say how the figures were taken, and carry a failed
	// scenario's error.
	Notes []string `json:"notes,omitempty"`
	// Files lists files the scenario wrote (plots).
	Files []string `json:"files,omitempty"`
}

// Add appends a metric.
func (r *Result) Add(name string, value float64, unit, goal string) {
	r.Metrics = append(r.Metrics, Metric{name, value, unit, goal})
}

// Note appends a note.
func (r *Result) Note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// Func runs one scenario.
type Func func(ctx context.Context, o Options) (Result, error)

// Scenario is a registered scenario.
type Scenario struct {
	// Name is what the command line names the scenario by.
	Name string
	// Run measures.
	Run Func
	// Explicit scenarios run only when named (they need tools built
	// beforehand, or take long).
	Explicit bool
}

var scenarios []Scenario

// Register adds a scenario that runs by default; call it from an init
// function.
func Register(name string, fn Func) {
	scenarios = append(scenarios, Scenario{Name: name, Run: fn})
}

// RegisterExplicit adds a scenario that runs only when named.
func RegisterExplicit(name string, fn Func) {
	scenarios = append(scenarios, Scenario{Name: name, Run: fn, Explicit: true})
}

// Scenarios returns the registered scenarios sorted by name.
func Scenarios() []Scenario {
	out := append([]Scenario(nil), scenarios...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Report is the --json output: the machine and every result.
type Report struct {
	Machine Machine  `json:"machine"`
	Results []Result `json:"results"`
}

// Main parses the command line (flags registered by scenarios with the flag
// package included), runs the scenarios asked for and prints their results;
// it exits 1 if a scenario failed and 2 on a usage error.
//
//	go run ./bench [--json] [--duration 5s] [--outage 30s] [--quick] [scenario ...]
func Main() {
	jsonOut := flag.Bool("json", false, "print results as JSON")
	dur := flag.Duration("duration", 5*time.Second, "steady-state measurement time")
	outage := flag.Duration("outage", 30*time.Second, "target outage in outage scenarios")
	dir := flag.String("dir", "", "scratch directory (default: a temporary one)")
	quick := flag.Bool("quick", false, "shrink every scenario (smoke run)")
	list := flag.Bool("list", false, "list scenarios and exit")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of each core scenario to `prefix`-<scenario>.prof (broker and store scenarios: one per phase)")
	flag.Parse()
	if *list {
		for _, s := range Scenarios() {
			if s.Explicit {
				fmt.Println(s.Name, "(only when named)")
			} else {
				fmt.Println(s.Name)
			}
		}
		return
	}
	o := Options{Duration: *dur, Outage: *outage, Dir: *dir, Quick: *quick, CPUProfile: *cpuProfile}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	results, err := Run(ctx, o, flag.Args(), func(r Result) {
		if !*jsonOut {
			PrintResult(os.Stdout, r)
		}
	})
	stop()
	if err != nil && results == nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if *jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(Report{Machine: ReadMachine(), Results: results})
	}
	if err != nil {
		os.Exit(1)
	}
}

// Run runs the named scenarios (every default one if names is empty), each
// in its own directory under o.Dir (a temporary directory if empty), and
// calls done after each. It returns the results and an error if a name is
// unknown (then no result) or a scenario failed (its error is also a note
// of its result).
func Run(ctx context.Context, o Options, names []string, done func(Result)) ([]Result, error) {
	all := Scenarios()
	want := map[string]bool{}
	for _, n := range names {
		known := false
		for _, s := range all {
			known = known || s.Name == n
		}
		if !known {
			return nil, fmt.Errorf("unknown scenario %q (see --list)", n)
		}
		want[n] = true
	}
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "relay-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		o.Dir = d
	}
	results := []Result{}
	var failed error
	for _, s := range all {
		if (len(want) > 0 && !want[s.Name]) || (len(want) == 0 && s.Explicit) {
			continue
		}
		fmt.Fprintf(os.Stderr, "bench: running %s\n", s.Name)
		sub, err := os.MkdirTemp(o.Dir, s.Name+"-")
		if err != nil {
			return results, err
		}
		so := o
		so.Dir = sub
		so.Scenario = s.Name
		r, err := s.Run(ctx, so)
		r.Scenario = s.Name
		if err != nil {
			failed = fmt.Errorf("%s: %w", s.Name, err)
			r.Notes = append(r.Notes, "error: "+err.Error())
			fmt.Fprintf(os.Stderr, "bench: %s: %v\n", s.Name, err)
		}
		os.RemoveAll(sub)
		results = append(results, r)
		if done != nil {
			done(r)
		}
	}
	return results, failed
}

// PrintResult writes r as an aligned table.
func PrintResult(w io.Writer, r Result) {
	fmt.Fprintf(w, "== %s\n", r.Scenario)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, m := range r.Metrics {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", m.Name, FormatValue(m.Value), m.Unit, m.Goal)
	}
	tw.Flush()
	for _, n := range r.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	for _, f := range r.Files {
		fmt.Fprintf(w, "  wrote: %s\n", f)
	}
}

// FormatValue prints integers without decimals and others with three.
func FormatValue(v float64) string {
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%.3f", v)
}
