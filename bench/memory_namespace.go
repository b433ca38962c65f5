package main

// Scenario "memory-namespace": a namespace target catching up after a long
// outage. 1,000,000 records of about 2 KB over 1,000 keys are logged while
// the target's Redis is down, then Redis comes up and the backlog drains
// with one write per key per coalescing window. RSS is sampled throughout:
// the goal is < 200 MiB at every moment. The Redis server is the scenario's
// own (redis-server on a free loopback port), so the shared one at 6379 is
// never stopped.

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/bucketrelay/bucketrelay/bench/harness"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/relay"
	"github.com/bucketrelay/bucketrelay/wal"
)

const (
	nsKeys    = 1000
	nsHashKey = "bench-namespace"
)

func namespaceMemoryChild(ctx context.Context, o harness.Options) (harness.Result, error) {
	var res harness.Result
	n := 1_000_000
	if o.Quick {
		n = 100_000
	}
	if v, err := strconv.Atoi(os.Getenv("BENCH_NS_EVENTS")); err == nil && v > 0 {
		n = v // a size between quick and full, for investigations
	}
	addr, err := harness.FreeLoopbackAddr()
	if err != nil {
		return res, err
	}
	const arn = "arn:minio:sqs::1:redis"
	cfg := fmt.Sprintf(`{"relay":{"dataDir":%q,"listen":"127.0.0.1:0","maxBackoff":"1s","queueLimitBytes":%d},
		"notify":{"redis":{"1":{"enable":true,"format":"namespace","address":%q,"key":%q}}},
		"buckets":{%q:[{"arn":%q,"events":["put","delete"]}]}}`,
		filepath.Join(o.Dir, "relay-ns"), int64(8)<<30, addr, nsHashKey, harness.Bucket, arn)
	c, err := relay.ParseConfig([]byte(cfg))
	if err != nil {
		return res, err
	}
	r, err := relay.Open(c, relay.Options{Logger: harness.QuietLogger()})
	if err != nil {
		return res, err
	}
	defer r.Close(context.Background())

	peak := &harness.RSSSampler{}
	stopSampling := peak.Start(100 * time.Millisecond)
	defer stopSampling()
	before := harness.MemStatus("VmRSS")["VmRSS"]

	// Publish n records of about 2 KB over nsKeys keys while Redis is down.
	const perCall, publishers = 100, 8
	start := time.Now()
	if err := publishAll(ctx, r, n, perCall, publishers, namespaceRecord); err != nil {
		return res, err
	}
	pubTime := time.Since(start)
	backlog, _ := harness.Pending(r)
	afterPublish := peak.Max()
	// The newest event of each key is the last one in the log. Concurrent
	// Publish calls are logged in the order they reach the log, not in the
	// order their publishers took ids, so the highest id of a key is not
	// always its newest event: read the log before the drain reclaims it.
	want, err := newestInLog(ctx, r.Log())
	if err != nil {
		return res, err
	}

	// Redis comes up: drain.
	srv, err := startRedis(ctx, addr, o.Dir)
	if err != nil {
		return res, err
	}
	defer srv.Process.Kill()
	limit := 10 * time.Minute
	if o.Quick {
		limit = 2 * time.Minute
	}
	up := time.Now()
	drained := harness.WaitFor(ctx, limit, func() bool { p, _ := harness.Pending(r); return p == 0 })
	drain := time.Since(up)
	wrong, fields, wrongSample, err := checkNamespace(addr, want)
	if err != nil {
		return res, err
	}
	var sends, quarantined, delivered uint64
	for _, s := range r.Stats() {
		sends, quarantined, delivered = s.Sends, s.Quarantined, s.Delivered
	}
	res.Add("events delivered (counted by the engine)", float64(delivered), "events", fmt.Sprint(n))
	res.Add("events dropped by the target's bound", float64(r.Log().Dropped(arn)), "events", "0")
	if wrong > 0 {
		res.Notes = append(res.Notes, "keys not holding their newest event:"+wrongSample)
	}
	res.Add("backlog (pending events)", float64(backlog), "events", fmt.Sprint(n))
	sample := namespaceRecord(0)
	res.Add("record size (JSON)", float64(len(sample.AppendJSON(nil))), "bytes", "~2000")
	res.Add("publish time (8 publishers × 100 records/call, Redis down)", pubTime.Seconds(), "s", "")
	res.Add("RSS before publishing", before, "MiB", "")
	res.Add("peak RSS while publishing (sampled every 100 ms)", afterPublish, "MiB", "< 200")
	res.Add("drain time (Redis up → nothing pending)", drain.Seconds(), "s", "")
	res.Add("peak RSS throughout, drain included (sampled)", peak.Max(), "MiB", "< 200")
	res.Add("  peak anonymous RSS (Go heap, stacks; sampled)", peak.MaxAnon(), "MiB", "")
	res.Add("peak RSS throughout (VmHWM)", harness.MemStatus("VmHWM")["VmHWM"], "MiB", "< 200")
	res.Add("writes to Redis (successful sends)", float64(sends), "batches", fmt.Sprintf("≈ %d keys per window", nsKeys))
	res.Add("hash fields in Redis", float64(fields), "keys", fmt.Sprint(nsKeys))
	res.Add("events quarantined", float64(quarantined), "events", "0")
	res.Add("keys whose value is not the newest event", float64(wrong), "keys", "0")
	res.Add("  keys whose newest event is not their highest id (publishers overtaking)", float64(overtaken(want, n)), "keys", "")
	res.Add("wal file size", float64(r.Log().FileSize())/(1<<20), "MiB", "")
	if !drained {
		res.Notes = append(res.Notes, fmt.Sprintf("drain did not finish within %v", limit))
	}
	res.Notes = append(res.Notes,
		"redis-server started by the scenario on a free loopback port after publishing (the outage); fsync on; relay.maxBackoff 1s",
		"RSS sampled from /proc/self/status every 100 ms in the measuring child process; VmHWM is the kernel's own peak")
	return res, nil
}

// namespaceRecord is the i-th record: about 2 KB of JSON for object
// i mod nsKeys, carrying i so the newest value per key can be checked.
func namespaceRecord(i int) event.Record {
	r := harness.Stamped(i)
	r.S3.Object.Key = fmt.Sprintf("photos/ns/IMG_%04d.jpg", i%nsKeys)
	meta := maps.Clone(r.S3.Object.UserMetadata)
	meta["X-Amz-Meta-Pad"] = strings.Repeat("p", 1000)
	r.S3.Object.UserMetadata = meta
	return r
}

// nsField is the hash field (bucket/object) of the k-th key.
func nsField(k int) string {
	return fmt.Sprintf("%s/photos/ns/IMG_%04d.jpg", harness.Bucket, k)
}

// newestInLog returns the id of the newest event of each key: the last of
// the key's records in log order.
func newestInLog(ctx context.Context, l *wal.Log) (map[string]int64, error) {
	want := map[string]int64{}
	var bad error
	_, err := l.Read(ctx, 1, "", func(r wal.Record) bool {
		id, ok := harness.Field(r.Data, harness.FieldID)
		if !ok {
			bad = fmt.Errorf("record %d (%s) carries no %s", r.Seq, r.Key, harness.FieldID)
			return false
		}
		want[r.Key] = id
		return true
	})
	if err == nil {
		err = bad
	}
	return want, err
}

// overtaken counts the keys whose newest event in the log is not the last
// id published for them (n records over nsKeys keys).
func overtaken(want map[string]int64, n int) int {
	c := 0
	for k := range min(n, nsKeys) {
		if want[nsField(k)] != int64(n-min(n, nsKeys)+k) {
			c++
		}
	}
	return c
}

// checkNamespace compares the hash with the model: each of the nsKeys
// fields holds the newest event of its key, as want (newestInLog) has it.
func checkNamespace(addr string, want map[string]int64) (wrong, fields int, sample string, err error) {
	c, err := redis.Dial("tcp", addr)
	if err != nil {
		return 0, 0, "", err
	}
	defer c.Close()
	m, err := redis.StringMap(c.Do("HGETALL", nsHashKey))
	if err != nil {
		return 0, 0, "", err
	}
	for k := range nsKeys {
		f := nsField(k)
		newest, logged := want[f]
		if id, ok := harness.Field([]byte(m[f]), harness.FieldID); !logged || !ok || id != newest {
			if wrong < 5 {
				sample += fmt.Sprintf(" key %d holds %d, want %d;", k, id, newest)
			}
			wrong++
		}
	}
	return wrong, len(m), sample, nil
}

// startRedis runs a private redis-server on addr, with no persistence.
func startRedis(ctx context.Context, addr, dir string) (*exec.Cmd, error) {
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.CommandContext(ctx, "redis-server", "--bind", host, "--port", port,
		"--save", "", "--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("redis-server (scripts/services.sh install brings it): %w", err)
	}
	if !harness.WaitFor(ctx, 10*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		cmd.Process.Kill()
		return nil, fmt.Errorf("redis-server did not listen on %s", addr)
	}
	return cmd, nil
}
