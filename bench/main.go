// Command bench measures the relay: durable ingest, delivery to each kind of
// target, drain after an outage, and memory under a backlog. It prints a
// table, or JSON with --json (with the machine it ran on). Figures are
// recorded in bench/RESULTS.md.
//
//	go run ./bench [--json] [--duration 5s] [--outage 30s] [--quick] [scenario ...]
//
// With no scenario it runs every default one; --list names them. Each
// scenario is one file of this package that registers itself with the
// harness (bench/harness) from an init function.
package main

import (
	"fmt"
	"os"

	"github.com/bucketrelay/bucketrelay/bench/harness"
)

func main() { harness.Main() }

// fatal ends the process for an error no scenario can report (a child
// process's bad arguments, no free port).
func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(2)
}
