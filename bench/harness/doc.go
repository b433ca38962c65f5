// Package harness is the library behind go run ./bench: the scenario
// registry and the command line (Main), results and their table and JSON
// output with the machine they ran on, SVG charts, the bench records, a
// webhook receiver that counts event ids, a log-and-engine Pipeline with
// feeders, a closed-loop load driver and a paced publisher, latency
// percentiles, memory readings, and control of the services of
// scripts/services.sh.
//
// A scenario is a function from Options to a Result, registered by name
// from an init function:
//
//	func init() { harness.Register("ingest", runIngest) }
//
// Metric names are what bench/RESULTS.md compares across runs: keep them
// when code moves.
//
// The broker consumers the scenarios check deliveries with live in
// testkit/consumers, shared with the adapters' tests.
package harness
