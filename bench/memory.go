package main

// Scenario "memory": the relay's memory with a backlog of 1,000,000
// pending events, measured in a child process so that other scenarios do
// not pollute its RSS; then the drain of that backlog. Scenario
// "memory-namespace" does the same for a namespace target (memory_namespace.go).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bucketrelay/bucketrelay/bench/harness"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/relay"
)

func init() {
	harness.Register("memory", func(ctx context.Context, o harness.Options) (harness.Result, error) {
		return runChild(ctx, "memory", o)
	})
	harness.Register("memory-namespace", func(ctx context.Context, o harness.Options) (harness.Result, error) {
		return runChild(ctx, "memory-namespace", o)
	})
	// The child does its work here, before main parses flags and picks
	// scenarios, and exits: it runs nothing else.
	if v := os.Getenv(memoryChildEnv); v != "" {
		var c childArgs
		if err := json.Unmarshal([]byte(v), &c); err != nil {
			fatal(fmt.Errorf("memory child: %w", err))
		}
		child := memoryChild
		if c.Scenario == "memory-namespace" {
			child = namespaceMemoryChild
		}
		res, err := child(context.Background(), c.Options)
		if err != nil {
			res.Notes = append(res.Notes, "error: "+err.Error())
		}
		json.NewEncoder(os.Stdout).Encode(res)
		if err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// childArgs is what the re-executed bench process is told to measure.
type childArgs struct {
	Scenario string
	Options  harness.Options
}

// memoryChildEnv carries the Options of the re-executed bench process that
// measures.
const memoryChildEnv = "BUCKETRELAY_BENCH_MEMORY_CHILD"

// runChild runs scenario in a re-executed bench process and returns what it
// measured.
func runChild(ctx context.Context, scenario string, o harness.Options) (harness.Result, error) {
	exe, err := os.Executable()
	if err != nil {
		return harness.Result{}, err
	}
	args, _ := json.Marshal(childArgs{scenario, o})
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), memoryChildEnv+"="+string(args))
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	runErr := cmd.Run()
	var res harness.Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return harness.Result{}, fmt.Errorf("memory child: %v (output %q, decode %v)", runErr, out.String(), err)
	}
	res.Notes = append(res.Notes, "measured in a child process (the bench binary re-executed) so no other scenario's memory counts")
	if runErr != nil {
		return res, fmt.Errorf("memory child: %w", runErr)
	}
	return res, nil
}

func memoryChild(ctx context.Context, o harness.Options) (harness.Result, error) {
	var res harness.Result
	n := 1_000_000
	if o.Quick {
		n = 100_000
	}
	const perCall, publishers = 100, 8
	rv, err := harness.NewReceiver()
	if err != nil {
		return res, err
	}
	r, err := harness.WebhookRelay(filepath.Join(o.Dir, "relay"), rv.URL(), `,"maxBackoff":"1s"`)
	if err != nil {
		return res, err
	}
	defer r.Close(context.Background())
	defer rv.Stop()
	fields := []string{"VmRSS", "VmHWM", "RssAnon", "RssFile"}
	before := harness.MemStatus(fields...)

	// Publish n stamped records in calls of 100 while the receiver is down.
	start := time.Now()
	if err := publishAll(ctx, r, n, perCall, publishers, harness.Stamped); err != nil {
		return res, err
	}
	pubTime := time.Since(start)
	backlog, _ := harness.Pending(r)
	after := harness.MemStatus(fields...)
	heap, sys := harness.HeapMiB()
	runtime.GC()
	gced := harness.MemStatus(fields...)
	heapGC, _ := harness.HeapMiB()

	res.Add("backlog (pending events)", float64(backlog), "events", fmt.Sprint(n))
	res.Add("publish time (8 publishers × 100 records/call, target down)", pubTime.Seconds(), "s", "")
	res.Add("RSS before publishing", before["VmRSS"], "MiB", "")
	res.Add("RSS with the backlog", after["VmRSS"], "MiB", "< 200")
	res.Add("  of which anonymous (Go heap, stacks)", after["RssAnon"], "MiB", "")
	res.Add("  of which file-backed (bbolt mmap, binary)", after["RssFile"], "MiB", "")
	res.Add("RSS after runtime.GC", gced["VmRSS"], "MiB", "< 200")
	res.Add("peak RSS while publishing (VmHWM)", after["VmHWM"], "MiB", "")
	res.Add("Go heap in use", heap, "MiB", "")
	res.Add("Go heap in use after GC", heapGC, "MiB", "")
	res.Add("Go runtime memory from the OS (MemStats.Sys)", sys, "MiB", "")
	res.Add("wal file size", float64(r.Log().FileSize())/(1<<20), "MiB", "")

	// Bring the receiver up and drain.
	limit := 5 * time.Minute
	if o.Quick {
		limit = time.Minute
	}
	if err := rv.Start(); err != nil {
		return res, err
	}
	up := time.Now()
	ok := harness.WaitFor(ctx, limit, func() bool { u, _ := rv.Counts(); return u >= n })
	drain := time.Since(up)
	u, dups := rv.Counts()
	if !ok {
		res.Notes = append(res.Notes, fmt.Sprintf("drain stopped after %v with %d of %d events received", limit, u, n))
	}
	end := harness.MemStatus(fields...)
	res.Add("drain time (receiver up → all received)", drain.Seconds(), "s", "")
	res.Add("drain rate", float64(u)/drain.Seconds(), "events/s", "")
	res.Add("peak RSS including the drain (VmHWM)", end["VmHWM"], "MiB", "< 200")
	res.Add("lost", float64(rv.Missing(n)), "events", "0")
	res.Add("duplicates", float64(dups), "events", "")
	res.Notes = append(res.Notes,
		"webhook target from a config whose endpoint is a reserved loopback port nobody listens on while publishing; relay.maxBackoff 1s so the drain starts within a second of the receiver coming up; fsync on",
		"RSS from /proc/self/status (VmRSS, VmHWM, RssAnon, RssFile); Go heap from runtime.MemStats. File-backed RSS is the bbolt file's mmap pages the process touched; the kernel can drop them under pressure.")
	return res, nil
}

// publishAll publishes records mk(0) … mk(n-1) through r from publishers
// goroutines in calls of perCall records, and returns the first error.
func publishAll(ctx context.Context, r *relay.Relay, n, perCall, publishers int, mk func(int) event.Record) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var pubErr atomic.Pointer[error]
	for range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			recs := make([]event.Record, perCall)
			for ctx.Err() == nil {
				first := int(next.Add(int64(perCall))) - perCall
				if first >= n {
					return
				}
				k := min(perCall, n-first)
				for i := range k {
					recs[i] = mk(first + i)
				}
				if err := r.Publish(ctx, recs[:k]...); err != nil {
					pubErr.CompareAndSwap(nil, &err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if p := pubErr.Load(); p != nil {
		return *p
	}
	return ctx.Err()
}
