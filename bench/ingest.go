package main

// Scenario "ingest": durable ingest through the library and through HTTP,
// beside two baselines (one bbolt transaction per event, one fsynced file
// per event).

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bucketrelay/bucketrelay/bench/harness"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/relay"
	"github.com/bucketrelay/bucketrelay/rules"
	"github.com/bucketrelay/bucketrelay/wal"
)

func init() { harness.Register("ingest", runIngest) }

func runIngest(ctx context.Context, o harness.Options) (harness.Result, error) {
	var res harness.Result
	d := o.Duration
	baseD := min(d, 3*time.Second)
	if o.Quick {
		d = min(d, time.Second)
		baseD = min(baseD, time.Second)
	}
	stopProfile, err := harness.StartProfile(o, "ingest")
	if err != nil {
		return res, err
	}
	defer stopProfile()

	r, err := ingestRelay(filepath.Join(o.Dir, "relay"))
	if err != nil {
		return res, err
	}
	defer r.Close(context.Background())
	pool := harness.RecordPool(4096)
	res.Notes = append(res.Notes,
		fmt.Sprintf("records are targettest.Record padded with user metadata: %d bytes of JSON each; Publish marshals them (part of the measured cost)", harness.RecordSize()),
		"every event is routed by a bucket rule (s3:ObjectCreated:*) to a target given in relay.Options.Targets that acknowledges every Send at once, so events are logged, read back and delivered while ingest runs; fsync on (default relay settings)",
		fmt.Sprintf("each load runs %v after a %v warm-up; latency is per call, from Publish to its return (durable acknowledgement)", d, d/10),
		"wal.Append rows: entries encoded before the run (json.Marshal, the bytes Publish writes), appended to a wal.Log with default options while a delivery engine (the relay's default batch size) reads them back and hands them to an acknowledging target, as behind the library and HTTP rows; until issue 11's ingest work the reader there only advanced a cursor, which made the ratio unfair to the relay")

	type lib struct {
		pubs, per int
		rateGoal  string
		p50Goal   string
	}
	rates, cpus := map[string]float64{}, map[string]float64{}
	for _, c := range []lib{{1, 1, "", "< 2"}, {16, 1, "", ""}, {64, 1, "", ""}, {256, 1, "≥ 100000", ""}, {16, 100, "≥ 300000", ""}} {
		r := r
		if c.per > 1 {
			// The row of the goal gets a fresh log, as the wal.Append row
			// does, rather than one the rows before it filled and emptied.
			fresh, err := ingestRelay(filepath.Join(o.Dir, "relay-batches"))
			if err != nil {
				return res, err
			}
			defer fresh.Close(context.Background())
			r = fresh
		}
		lr, err := harness.ClosedLoop(ctx, c.pubs, d, func(w, i int) (int, error) {
			k := (w*7919 + i*c.per) % (len(pool) - c.per)
			return c.per, r.Publish(ctx, pool[k:k+c.per]...)
		})
		if err != nil {
			return res, fmt.Errorf("library %d×%d: %w", c.pubs, c.per, err)
		}
		name := fmt.Sprintf("library %d publisher(s) × %d record(s)/call", c.pubs, c.per)
		rates[fmt.Sprintf("%d×%d", c.pubs, c.per)] = lr.Rate
		cpus[fmt.Sprintf("%d×%d", c.pubs, c.per)] = lr.CPU
		res.Add(name+": rate", lr.Rate, "events/s", c.rateGoal)
		res.Add(name+": p50 ack", lr.P50, "ms", c.p50Goal)
		res.Add(name+": p99 ack", lr.P99, "ms", "")
		res.Add(name+": CPU per event", lr.CPU, "µs", "")
	}

	// The log alone, with entries encoded before the run and the same
	// delivery engine behind it: what the relay layer (marshalling,
	// validation, routing) costs on top of it.
	for _, c := range []lib{{256, 1, "", ""}, {16, 100, "", ""}} {
		lr, err := walOnly(ctx, filepath.Join(o.Dir, fmt.Sprintf("wal-%d", c.pubs)), c.pubs, c.per, d, pool)
		if err != nil {
			return res, fmt.Errorf("wal only: %w", err)
		}
		name := fmt.Sprintf("wal.Append only, %d appender(s) × %d entries/call", c.pubs, c.per)
		rates[fmt.Sprintf("wal%d×%d", c.pubs, c.per)] = lr.Rate
		cpus[fmt.Sprintf("wal%d×%d", c.pubs, c.per)] = lr.CPU
		res.Add(name+": rate", lr.Rate, "events/s", "")
		res.Add(name+": p50 ack", lr.P50, "ms", "")
		res.Add(name+": CPU per event", lr.CPU, "µs", "")
	}

	// Through HTTP: POST /v1/events with 100 records from 16 keep-alive
	// clients, to a relay with a fresh log like the library row's.
	hr, err := ingestRelay(filepath.Join(o.Dir, "relay-http"))
	if err != nil {
		return res, err
	}
	defer hr.Close(context.Background())
	srv := httptest.NewServer(hr.Handler())
	defer srv.Close()
	bodies := make([][]byte, 32)
	for i := range bodies {
		raws := make([]json.RawMessage, 100)
		for j := range raws {
			raws[j], _ = json.Marshal(pool[(i*100+j)%len(pool)])
		}
		bodies[i], _ = json.Marshal(map[string]any{"Records": raws})
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()
	lr, err := harness.ClosedLoop(ctx, 16, d, func(w, i int) (int, error) {
		resp, err := client.Post(srv.URL+"/v1/events", "application/json", bytes.NewReader(bodies[(w+i)%len(bodies)]))
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("POST /v1/events: %s", resp.Status)
		}
		return 100, nil
	})
	if err != nil {
		return res, fmt.Errorf("http: %w", err)
	}
	rates["http"], cpus["http"] = lr.Rate, lr.CPU
	res.Add("HTTP 16 clients × 100 records/POST: rate", lr.Rate, "events/s", "≥ 100000")
	res.Add("HTTP 16 clients × 100 records/POST: p50 request", lr.P50, "ms", "")
	res.Add("HTTP 16 clients × 100 records/POST: p99 request", lr.P99, "ms", "")
	res.Add("HTTP 16 clients × 100 records/POST: CPU per event (client and server)", lr.CPU, "µs", "")
	res.Notes = append(res.Notes, fmt.Sprintf("HTTP: a loopback httptest server with r.Handler(); %d-byte bodies built before the run; client and server share the machine's cores (the HTTP row's CPU and rate carry its clients' work, which the library row's publishers do not have)", len(bodies[0])),
		"the library 16×100 row, the HTTP row and each wal.Append row run on a log of their own, fresh, with the same delivery behind it; the 1-record library rows share one")
	if st := hr.Stats(); len(st) > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("HTTP row: its target delivered %d events in %d sends during the run; backlog at the end %d", st[0].Delivered, st[0].Sends, st[0].Pending))
	}

	// Baselines, each with the same records.
	raws := make([][]byte, len(pool))
	for i := range pool {
		raws[i], _ = json.Marshal(pool[i])
	}
	for _, w := range []int{1, 16} {
		b, err := boltBaseline(ctx, filepath.Join(o.Dir, fmt.Sprintf("bolt-%d.db", w)), w, baseD, raws)
		if err != nil {
			return res, fmt.Errorf("bbolt baseline: %w", err)
		}
		rates[fmt.Sprintf("bolt%d", w)] = b.Rate
		res.Add(fmt.Sprintf("baseline bbolt tx per event, %d writer(s): rate", w), b.Rate, "events/s", "")
		res.Add(fmt.Sprintf("baseline bbolt tx per event, %d writer(s): p50", w), b.P50, "ms", "")
		f, err := fileBaseline(ctx, filepath.Join(o.Dir, fmt.Sprintf("queue-%d", w)), w, baseD, raws)
		if err != nil {
			return res, fmt.Errorf("file baseline: %w", err)
		}
		rates[fmt.Sprintf("file%d", w)] = f.Rate
		res.Add(fmt.Sprintf("baseline file+fsync per event, %d writer(s): rate", w), f.Rate, "events/s", "")
		res.Add(fmt.Sprintf("baseline file+fsync per event, %d writer(s): p50", w), f.P50, "ms", "")
	}
	ratio := func(name, a, b string) {
		if rates[b] > 0 {
			res.Add(name, rates[a]/rates[b], "×", "")
		}
	}
	// The goals of issue 11, same run: by rate, and by CPU per event (the
	// rate each would reach on the same cores alone, steadier when other
	// work shares the machine).
	ratio("ratio library 16×100 / wal.Append 16×100 (goal ≥ 0.8)", "16×100", "wal16×100")
	ratio("ratio HTTP 16×100 / library 16×100 (goal ≥ 0.8)", "http", "16×100")
	if cpus["16×100"] > 0 && cpus["http"] > 0 {
		res.Add("ratio library 16×100 / wal.Append 16×100, by CPU per event", cpus["wal16×100"]/cpus["16×100"], "×", "")
		res.Add("ratio HTTP / library 16×100, by CPU per event (HTTP's includes its clients)", cpus["16×100"]/cpus["http"], "×", "")
	}
	ratio("ratio library 1×1 / bbolt 1 writer", "1×1", "bolt1")
	ratio("ratio library 1×1 / file 1 writer", "1×1", "file1")
	ratio("ratio library 16×1 / bbolt 16 writers", "16×1", "bolt16")
	ratio("ratio library 16×1 / file 16 writers", "16×1", "file16")
	ratio("ratio library 256×1 / bbolt 16 writers", "256×1", "bolt16")
	ratio("ratio library 256×1 / file 16 writers", "256×1", "file16")
	ratio("ratio library 16×100 / bbolt 16 writers", "16×100", "bolt16")
	ratio("ratio library 16×100 / file 16 writers", "16×100", "file16")
	res.Notes = append(res.Notes,
		fmt.Sprintf("baselines run %v each with the same record bytes: bbolt = go.etcd.io/bbolt default options (fsync on), one db.Update with one Put per event; file = one file per event in a queue directory: create, write, fsync, close (the seed's per-event queue store design)", baseD))
	return res, nil
}

// ingestRelay opens a relay with default settings in dir whose bucket rule
// routes every created object to a target that acknowledges at once.
func ingestRelay(dir string) (*relay.Relay, error) {
	const arn = "arn:minio:sqs::bench:webhook"
	cfg, err := relay.ParseConfig(fmt.Appendf(nil, `{"relay":{"dataDir":%q,"listen":"127.0.0.1:0"}}`, dir))
	if err != nil {
		return nil, err
	}
	r, err := relay.Open(cfg, relay.Options{Logger: harness.QuietLogger(), Targets: map[string]delivery.Target{arn: &harness.AckTarget{}}})
	if err != nil {
		return nil, err
	}
	if err := r.SetBucketRules(harness.Bucket, []rules.Rule{{ARN: arn, Events: []event.Name{"s3:ObjectCreated:*"}}}); err != nil {
		r.Close(context.Background())
		return nil, err
	}
	return r, nil
}

// boltBaseline stores one event per bbolt transaction.
func boltBaseline(ctx context.Context, path string, workers int, d time.Duration, raws [][]byte) (harness.Load, error) {
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		return harness.Load{}, err
	}
	defer os.Remove(path)
	defer db.Close()
	name := []byte("events")
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucketIfNotExists(name); return err }); err != nil {
		return harness.Load{}, err
	}
	return harness.ClosedLoop(ctx, workers, d, func(w, i int) (int, error) {
		return 1, db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(name)
			seq, _ := b.NextSequence()
			return b.Put(binary.BigEndian.AppendUint64(nil, seq), raws[(w+i)%len(raws)])
		})
	})
}

// fileBaseline writes each event to its own fsynced file.
func fileBaseline(ctx context.Context, dir string, workers int, d time.Duration, raws [][]byte) (harness.Load, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return harness.Load{}, err
	}
	defer os.RemoveAll(dir)
	var n atomic.Int64
	return harness.ClosedLoop(ctx, workers, d, func(w, i int) (int, error) {
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("%020d.event", n.Add(1))), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return 0, err
		}
		if _, err := f.Write(raws[(w+i)%len(raws)]); err != nil {
			f.Close()
			return 0, err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return 0, err
		}
		return 1, f.Close()
	})
}

// walOnly appends pre-encoded entries straight to a wal.Log (default
// options, fsync on) while a delivery engine reads them back and hands
// them to a target that acknowledges at once: the same reading and
// delivery the relay rows pay (harness.Pipeline, with the relay's default
// batch size), so the ratio isolates what the relay adds before the log.
func walOnly(ctx context.Context, dir string, workers, per int, d time.Duration, pool []event.Record) (harness.Load, error) {
	p, err := harness.OpenPipeline(harness.PipelineConfig{Dir: dir, Target: &harness.AckTarget{}, MaxBatch: delivery.DefaultMaxBatch})
	if err != nil {
		return harness.Load{}, err
	}
	defer os.RemoveAll(dir)
	defer p.Close()
	entries := make([]*wal.Entry, len(pool))
	for i := range pool {
		raw, _ := json.Marshal(pool[i])
		entries[i] = &wal.Entry{Targets: []string{p.ID}, Key: pool[i].Key(), Name: string(pool[i].EventName), EventTime: pool[i].Time(), Data: raw}
	}
	p.Run()
	return harness.ClosedLoop(ctx, workers, d, func(w, i int) (int, error) {
		k := (w*7919 + i*per) % (len(entries) - per)
		_, err := p.Log.Append(ctx, entries[k:k+per]...)
		return per, err
	})
}
