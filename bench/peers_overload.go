package main

// Measurement (d) of scenario "peers": the relay under overload. Sixteen
// clients post 50 records a POST flat out for the window while the
// receiver is up; then the clients stop and the same relay drains the
// backlog they left, with no ingest. Delivery during ingest ÷ delivery
// after it is the goal's ratio: the same process, the same receiver, the
// same backlog, seconds apart, so the load of a shared machine moves both
// alike.
//
// The clients run in a child process (the bench binary re-executed), not
// beside the receiver: in one process, the receiver's handlers wait in
// the Go scheduler's run queues behind 16 clients encoding and posting
// flat out, and the harness, not the relay, would slow delivery. Producers
// and receivers are different programs in production too.

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bucketrelay/bucketrelay/bench/harness"
)

var peersLoadInline = flag.Bool("peers-overload-inline", false, "peers: (d) runs its 16 clients in the bench process, beside the receiver (the old setup), instead of a child process")

// overloadChildEnv carries the loadArgs of a re-executed bench process
// that only posts.
const overloadChildEnv = "BUCKETRELAY_BENCH_PEERS_LOAD"

// loadArgs is what the load child does: workers clients posting per
// records a POST to URL for Window.
type loadArgs struct {
	URL     string
	Workers int
	Per     int
	Window  time.Duration
}

// loadResult is what the load child reports: records acknowledged and
// the seconds it posted.
type loadResult struct {
	Acked   int64
	Seconds float64
}

func init() {
	v := os.Getenv(overloadChildEnv)
	if v == "" {
		return
	}
	// The child does its work here, before main parses flags, and exits.
	var a loadArgs
	if err := json.Unmarshal([]byte(v), &a); err != nil {
		fatal(fmt.Errorf("peers load child: %w", err))
	}
	// "start" tells the parent the clients are about to post: it counts
	// the receiver's events from there.
	fmt.Println("start")
	res := postFlatOut(context.Background(), a)
	json.NewEncoder(os.Stdout).Encode(res)
	os.Exit(0)
}

// postFlatOut runs a.Workers clients posting a.Per records a POST, ids from
// 0, for a.Window.
func postFlatOut(ctx context.Context, a loadArgs) loadResult {
	var n, acked atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for range a.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Since(t0) < a.Window {
				id := int(n.Add(int64(a.Per)) - int64(a.Per))
				if err := postRecords(ctx, a.URL, id, a.Per); err != nil {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				acked.Add(int64(a.Per))
			}
		}()
	}
	wg.Wait()
	return loadResult{Acked: acked.Load(), Seconds: time.Since(t0).Seconds()}
}

// overloadFigures is what (d) measured.
type overloadFigures struct {
	ingest  float64 // events/s acknowledged during the window
	during  float64 // events/s delivered during the window
	after   float64 // events/s delivered after it, no ingest, backlog left
	cpuEach float64 // µs of relay CPU per event, acknowledged plus delivered, during the window
	inline  bool
}

// overload runs (d) on a fresh relay (the default configuration).
func overload(ctx context.Context, fresh freshFunc, relayBin string, window time.Duration, workers int) (overloadFigures, error) {
	fg := overloadFigures{inline: *peersLoadInline}
	s, rv, done, err := fresh("relay-d", func(dir string, rv *harness.Receiver) (peerSystem, error) {
		return newRelaySystem(relayBin, dir, rv.URL(), 1)
	}, true)
	if err != nil {
		return fg, err
	}
	defer done()
	// Fifty records a POST: single-record POSTs wait for an fsync each
	// and, on a slow disk, offer less than delivery can do.
	a := loadArgs{URL: s.(*relaySystem).eventsURL(), Workers: workers, Per: 50, Window: window}
	var got0 int
	var cpu0 time.Duration
	var cpuOK bool
	var t0 time.Time
	begin := func() {
		got0, _ = rv.Counts()
		cpu0, cpuOK = systemCPU(s)
		t0 = time.Now()
	}
	var res loadResult
	if fg.inline {
		begin()
		res = postFlatOut(ctx, a)
	} else {
		res, err = loadChild(ctx, a, begin)
		if err != nil {
			return fg, err
		}
	}
	elapsed := time.Since(t0)
	got1, _ := rv.Counts()
	cpu1, cpuOK1 := systemCPU(s)
	fg.ingest = float64(res.Acked) / res.Seconds
	fg.during = float64(got1-got0) / elapsed.Seconds()
	if cpuOK && cpuOK1 && res.Acked+int64(got1-got0) > 0 {
		fg.cpuEach = float64((cpu1 - cpu0).Microseconds()) / float64(res.Acked+int64(got1-got0))
	}

	// The drain that follows, with no ingest: as long as the window, or
	// until the backlog is gone (then up to the last receipt).
	t1 := time.Now()
	last, lastAt := got1, t1
	for time.Since(t1) < window && ctx.Err() == nil && int64(last) < res.Acked {
		time.Sleep(20 * time.Millisecond)
		if u, _ := rv.Counts(); u != last {
			last, lastAt = u, time.Now()
		}
	}
	if d := lastAt.Sub(t1).Seconds(); d > 0 {
		fg.after = float64(last-got1) / d
	}
	return fg, ctx.Err()
}

// loadChild runs the clients of a in a re-executed bench process; begin
// runs when the child is about to post.
func loadChild(ctx context.Context, a loadArgs, begin func()) (loadResult, error) {
	var res loadResult
	exe, err := os.Executable()
	if err != nil {
		return res, err
	}
	args, _ := json.Marshal(a)
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), overloadChildEnv+"="+string(args))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return res, err
	}
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("peers load child: %w", err)
	}
	sc := bufio.NewScanner(out)
	var decodeErr error
	for sc.Scan() {
		switch line := sc.Bytes(); {
		case string(line) == "start":
			begin()
		default:
			decodeErr = json.Unmarshal(line, &res)
		}
	}
	if err := cmd.Wait(); err != nil {
		return res, fmt.Errorf("peers load child: %w", err)
	}
	if decodeErr != nil || res.Seconds == 0 {
		return res, fmt.Errorf("peers load child: no result (%v)", decodeErr)
	}
	return res, nil
}
