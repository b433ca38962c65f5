package main

// Shared helpers of the core scenarios: records, latency percentiles, a
// keep-alive HTTP receiver, a target that acknowledges everything, and
// memory readings.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/relay"
)

var cpuProfile = flag.String("cpuprofile", "", "write a CPU profile of each core scenario to `prefix`-<scenario>.prof")

// benchBucket is the bucket every core scenario publishes to.
const benchBucket = "images"

// Record fields the scenarios use to carry an event's identity and publish
// time to the receiver.
const (
	fieldID   = "benchID"
	fieldTime = "benchT"
)

// epoch is the origin of the monotonic publish stamps.
var epoch = time.Now()

// since returns the monotonic nanoseconds since epoch.
func since() int64 { return int64(time.Since(epoch)) }

// padding is user metadata that brings a record's JSON to about 1 KiB.
var padding = map[string]string{
	"X-Amz-Meta-Camera":   "NIKON D850 / AF-S NIKKOR 24-70mm f/2.8E ED VR",
	"X-Amz-Meta-Uploader": "ingest-pipeline-07.eu-west.example.internal",
	"X-Amz-Meta-Checksum": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
}

// benchRecord returns a realistic record of about 1 KiB of JSON for the
// i-th object of the bench bucket.
func benchRecord(i int) event.Record {
	r := targettest.Record(benchBucket, fmt.Sprintf("photos/2026/11/25/IMG_%08d.jpg", i), event.ObjectCreatedPut, i)
	r.S3.Object.UserMetadata = padding
	return r
}

// stamped returns benchRecord(id) carrying id and the current publish stamp
// in its request parameters.
func stamped(id int) event.Record {
	r := benchRecord(id)
	r.RequestParameters = map[string]string{
		"sourceIPAddress": "127.0.0.1:38062",
		fieldID:           strconv.Itoa(id),
		fieldTime:         strconv.FormatInt(since(), 10),
	}
	return r
}

// recordPool returns n distinct records, to be published over and over.
func recordPool(n int) []event.Record {
	out := make([]event.Record, n)
	for i := range out {
		out[i] = benchRecord(i)
	}
	return out
}

// recordSize returns the JSON size of a bench record.
func recordSize() int {
	b, _ := json.Marshal(benchRecord(123456))
	return len(b)
}

// latencies collects per-call latencies from many goroutines.
type latencies struct {
	mu  sync.Mutex
	all []time.Duration
}

func (l *latencies) add(d []time.Duration) {
	l.mu.Lock()
	l.all = append(l.all, d...)
	l.mu.Unlock()
}

// pct returns the p-th percentile (0 < p ≤ 100) in milliseconds.
func (l *latencies) pct(p float64) float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return percentile(l.all, p)
}

// percentile sorts d and returns its p-th percentile in milliseconds.
func percentile(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	i := int(float64(len(d))*p/100+0.5) - 1
	i = max(0, min(i, len(d)-1))
	return float64(d[i]) / float64(time.Millisecond)
}

// ackTarget is a delivery.Target that acknowledges everything at once.
type ackTarget struct{ n atomic.Int64 }

func (t *ackTarget) Send(_ context.Context, items []delivery.Item) error {
	t.n.Add(int64(len(items)))
	return nil
}

func (t *ackTarget) Close() error { return nil }

// receiver is a keep-alive HTTP endpoint standing in for a webhook
// consumer. It counts bodies, and for bodies carrying a bench id it counts
// receipts per id and records publish-to-receipt latency.
type receiver struct {
	addr string
	srv  *http.Server

	bodies atomic.Int64

	ids idSet

	mu   sync.Mutex
	lat  []time.Duration
	keep bool // record latencies
}

// newReceiver reserves a loopback port and returns a receiver that is not
// yet listening on it.
func newReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	return &receiver{addr: addr}, nil
}

// URL is the endpoint to configure.
func (rv *receiver) URL() string { return "http://" + rv.addr + "/events" }

// start listens on the receiver's port.
func (rv *receiver) start() error {
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", rv.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	rv.srv = &http.Server{Handler: http.HandlerFunc(rv.serve), ReadHeaderTimeout: 10 * time.Second}
	go rv.srv.Serve(ln)
	return nil
}

// stop closes the listener and every connection, as a crashed consumer
// would.
func (rv *receiver) stop() {
	if rv.srv != nil {
		rv.srv.Close()
		rv.srv = nil
	}
}

var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (rv *receiver) serve(w http.ResponseWriter, r *http.Request) {
	now := since()
	buf := bodyPool.Get().(*bytes.Buffer)
	buf.Reset()
	_, err := buf.ReadFrom(r.Body)
	if err != nil {
		bodyPool.Put(buf)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rv.bodies.Add(1)
	b := buf.Bytes()
	id, okID := field(b, fieldID)
	t, okT := field(b, fieldTime)
	bodyPool.Put(buf)
	if okID {
		rv.ids.mark(int(id))
		if okT && rv.keep {
			rv.mu.Lock()
			rv.lat = append(rv.lat, time.Duration(now-t))
			rv.mu.Unlock()
		}
	}
	w.WriteHeader(http.StatusOK)
}

// field finds "name":"digits" in a JSON body.
func field(b []byte, name string) (int64, bool) {
	key := `"` + name + `":"`
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0, false
	}
	b = b[i+len(key):]
	j := bytes.IndexByte(b, '"')
	if j < 0 {
		return 0, false
	}
	v, err := strconv.ParseInt(string(b[:j]), 10, 64)
	return v, err == nil
}

// counts returns the distinct ids received and the duplicate receipts.
func (rv *receiver) counts() (unique, dups int) { return rv.ids.counts() }

// missing returns how many ids below n were never received.
func (rv *receiver) missing(n int) int { return rv.ids.missing(n) }

// idSet counts receipts per event id, for lost and duplicate counts. It is
// safe for concurrent use.
type idSet struct {
	mu     sync.Mutex
	seen   []uint8 // receipts per id, saturating at 255
	unique int
	dups   int
}

// mark records one receipt of id.
func (s *idSet) mark(id int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id >= len(s.seen) {
		s.seen = slices.Grow(s.seen, id+1-len(s.seen)+1<<16)[:max(id+1, len(s.seen))]
	}
	if s.seen[id] > 0 {
		s.dups++
	} else {
		s.unique++
	}
	if s.seen[id] < 255 {
		s.seen[id]++
	}
}

// counts returns the distinct ids received and the duplicate receipts.
func (s *idSet) counts() (unique, dups int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unique, s.dups
}

// missing returns how many ids below n were never received.
func (s *idSet) missing(n int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	miss := 0
	for i := range n {
		if i >= len(s.seen) || s.seen[i] == 0 {
			miss++
		}
	}
	return miss
}

// takeLatencies returns and clears the recorded latencies.
func (rv *receiver) takeLatencies() []time.Duration {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	l := rv.lat
	rv.lat = nil
	return l
}

// webhookRelay opens a relay with one webhook target posting to url and a
// rule sending every object creation in the bench bucket to it.
func webhookRelay(dir, url string, extra string) (*relay.Relay, string, error) {
	const arn = "arn:minio:sqs::1:webhook"
	cfg := fmt.Sprintf(`{"relay":{"dataDir":%q,"listen":"127.0.0.1:0"%s},
		"notify":{"webhook":{"1":{"enable":true,"endpoint":%q}}},
		"buckets":{%q:[{"arn":%q,"events":["put"]}]}}`, dir, extra, url, benchBucket, arn)
	c, err := relay.ParseConfig([]byte(cfg))
	if err != nil {
		return nil, "", err
	}
	r, err := relay.Open(c, relay.Options{Logger: quietLogger()})
	return r, arn, err
}

// pending returns the relay's backlog for its first target.
func pending(r *relay.Relay) (pending int64, delivered uint64) {
	for _, s := range r.Stats() {
		return s.Pending, s.Delivered
	}
	return 0, 0
}

// waitFor polls cond every 10 ms until it holds or timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	end := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(end) || ctx.Err() != nil {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// pacer publishes stamped records at rate events/s from a pool of workers
// until ctx ends, in calls of up to batch records. It returns the number of
// records published (ids 0..n-1 from base) once every call has returned.
type pacer struct {
	r     *relay.Relay
	rate  float64
	batch int
	next  atomic.Int64 // next id
	errs  atomic.Int64
	lastE atomic.Pointer[string]
}

func (p *pacer) run(ctx context.Context, workers int) {
	jobs := make(chan int, 1024)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range jobs {
				recs := make([]event.Record, n)
				for i := range recs {
					recs[i] = stamped(int(p.next.Add(1) - 1))
				}
				if err := p.r.Publish(context.Background(), recs...); err != nil {
					p.errs.Add(1)
					s := err.Error()
					p.lastE.Store(&s)
				}
			}
		}()
	}
	start := time.Now()
	tick := time.NewTicker(time.Millisecond)
	var offered int64
	for ctx.Err() == nil {
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
		due := int64(time.Since(start).Seconds()*p.rate) - offered
		for due > 0 && ctx.Err() == nil {
			n := min(due, int64(p.batch))
			select {
			case jobs <- int(n):
				offered += n
				due -= n
			case <-ctx.Done():
			}
		}
	}
	tick.Stop()
	close(jobs)
	wg.Wait()
}

// memStatus returns the named fields of /proc/self/status in MiB.
func memStatus(names ...string) map[string]float64 {
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

// heapMiB returns the Go heap in use and the memory the runtime holds from
// the OS, in MiB.
func heapMiB() (inuse, sys float64) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapInuse) / (1 << 20), float64(m.Sys) / (1 << 20)
}

// startProfile starts the CPU profile if --cpuprofile was given.
func startProfile(scenario string) (stop func(), err error) {
	if *cpuProfile == "" {
		return func() {}, nil
	}
	f, err := os.Create(*cpuProfile + "-" + scenario + ".prof")
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// quietLogger logs only errors, so retries during outages do not flood
// the output.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}
