// Package clusterrun runs relay processes as a cluster on a JetStream
// stream and checks what they promise, for the cluster tests (cmd/relay),
// `make cluster-demo` and the cluster benchmark: a webhook receiver that
// counts deliveries and checks per-object order, producers that remember
// which events were acknowledged (answered 200), relay processes that can
// be killed with SIGKILL, and a summary (acknowledged, delivered, lost,
// duplicates, order violations, failover times).
//
// It does not import testing, so the demo program uses it too.
package clusterrun

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bucketrelay/bucketrelay/event"
)

// TargetARN is the webhook target every relay of a run delivers to.
const TargetARN = "arn:minio:sqs::1:webhook"

// Bucket is the bucket whose put events are routed to the webhook.
const Bucket = "images"

// RelayConfig is one relay process's configuration file.
type RelayConfig struct {
	// Listen is the API's host:port; DataDir the relay's data directory.
	Listen, DataDir string
	// Webhook is the receiver's URL.
	Webhook string
	// Servers are the NATS URLs; Stream the stream ("" means RELAY).
	Servers []string
	Stream  string
	// Lanes of the webhook target (0 means 1); LeaseTTL a Go duration
	// ("" means the relay's default); Owner the process's name.
	Lanes    int
	LeaseTTL string
	Owner    string
	// FullWait is relay.fullWait ("" means 3s here).
	FullWait string
	// Rules adds the "images" rule to the file (otherwise rules come from
	// the cluster's rules bucket, set through the API).
	Rules bool
	// MaxInFlight is relay.log.maxInFlight (0: the default).
	MaxInFlight int
}

// JSON returns the configuration file.
func (c RelayConfig) JSON() []byte {
	log := map[string]any{"kind": "jetstream", "servers": c.Servers}
	if c.Stream != "" {
		log["stream"] = c.Stream
	}
	if c.LeaseTTL != "" {
		log["leaseTTL"] = c.LeaseTTL
	}
	if c.Owner != "" {
		log["owner"] = c.Owner
	}
	if c.MaxInFlight > 0 {
		log["maxInFlight"] = c.MaxInFlight
	}
	fw := c.FullWait
	if fw == "" {
		fw = "3s"
	}
	hook := map[string]any{"enable": true, "endpoint": c.Webhook}
	if c.Lanes > 0 {
		hook["lanes"] = c.Lanes
	}
	doc := map[string]any{
		"relay": map[string]any{"listen": c.Listen, "dataDir": c.DataDir, "minBackoff": "20ms", "maxBackoff": "300ms",
			"fullWait": fw, "logLevel": "info", "log": log},
		"notify": map[string]any{"webhook": map[string]any{"1": hook}},
	}
	if c.Rules {
		doc["buckets"] = map[string]any{Bucket: []any{map[string]any{"arn": TargetARN, "events": []string{"put"}}}}
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	return b
}

// FreeAddr returns a free loopback host:port.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Record returns put event id for object key of Bucket; the id is in the
// object's size (1000+id), as the receiver reads it back.
func Record(key string, id int) event.Record {
	return event.Record{
		EventVersion: "2.0", EventSource: "minio:s3",
		EventTime: time.Date(2026, 12, 1, 12, 0, 0, id*1000, time.UTC).Format(time.RFC3339Nano),
		EventName: event.ObjectCreatedPut,
		S3: event.S3{
			SchemaVersion: "1.0", ConfigurationID: "Config",
			Bucket: event.Bucket{Name: Bucket, ARN: "arn:aws:s3:::" + Bucket},
			Object: event.Object{Key: key, Size: int64(1000 + id), ETag: fmt.Sprintf("%032x", id), Sequencer: fmt.Sprintf("%016X", id)},
		},
	}
}

// Receiver is the webhook endpoint: it counts deliveries per event id and
// checks that, for each object key, events are first delivered in the
// order of their ids (a producer posts one key's events in id order, one
// POST after the other, so that is the order the relay acknowledged them
// in). Redeliveries of earlier events are duplicates, not violations.
type Receiver struct {
	Addr string
	srv  *http.Server
	down atomic.Bool

	mu         sync.Mutex
	count      map[int]int
	maxFirst   map[string]int
	violations []string
	last       time.Time
	lastAt     map[string]time.Time // by bucket/object key: its last event taken
	bodies     int
}

// NewReceiver starts a receiver on a free loopback port.
func NewReceiver() (*Receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Receiver{Addr: ln.Addr().String(), count: map[int]int{}, maxFirst: map[string]int{}, lastAt: map[string]time.Time{}}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	go r.srv.Serve(ln)
	return r, nil
}

// URL returns the receiver's endpoint.
func (r *Receiver) URL() string { return "http://" + r.Addr + "/" }

// SetDown makes the receiver answer 503 (down) or accept again.
func (r *Receiver) SetDown(down bool) { r.down.Store(down) }

// Close stops the receiver.
func (r *Receiver) Close() { r.srv.Close() }

// ServeHTTP takes one webhook POST.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if r.down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	b, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	var m struct{ Records []event.Record }
	if err := json.Unmarshal(b, &m); err != nil {
		http.Error(w, "json", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bodies++
	r.last = time.Now()
	for i := range m.Records {
		rec := &m.Records[i]
		id := int(rec.S3.Object.Size - 1000)
		key := rec.S3.Object.Key
		r.lastAt[rec.S3.Bucket.Name+"/"+key] = r.last
		r.count[id]++
		if r.count[id] > 1 {
			continue
		}
		if mx, ok := r.maxFirst[key]; ok && id < mx {
			if len(r.violations) < 20 {
				r.violations = append(r.violations, fmt.Sprintf("key %s: event %d first delivered after event %d", key, id, mx))
			}
			continue
		}
		r.maxFirst[key] = id
	}
	w.WriteHeader(http.StatusOK)
}

// Delivered returns how many distinct events were delivered.
func (r *Receiver) Delivered() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.count)
}

// LastDelivered returns, per bucket/object key, when the receiver last
// took one of its events.
func (r *Receiver) LastDelivered() map[string]time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.lastAt)
}

// WaitDelivering waits until the receiver has taken an event of each lane
// named (lane IDs, "arn#i/n") after since, and returns how long after
// since the last of those lanes delivered again: a failover as the
// receiver sees it. Events taken in the first 100 ms are not counted (a
// killed relay's last request may still be answered). keys lists the
// bucket/object keys events were sent for; with none, lanes none of whose
// keys was delivered yet are not waited for.
func WaitDelivering(ctx context.Context, r *Receiver, lanes, keys []string, since time.Time) (time.Duration, error) {
	after := since.Add(100 * time.Millisecond)
	first := map[string]time.Time{}
	for {
		last := r.LastDelivered()
		for _, k := range keys {
			if _, ok := last[k]; !ok {
				last[k] = time.Time{}
			}
		}
		done := true
		for _, id := range lanes {
			if _, ok := first[id]; ok {
				continue
			}
			var lane, n int
			if i := strings.LastIndexByte(id, '#'); i < 0 {
				n = 1
			} else if _, err := fmt.Sscanf(id[i+1:], "%d/%d", &lane, &n); err != nil {
				return 0, fmt.Errorf("clusterrun: lane ID %q: %w", id, err)
			}
			known := false
			var at time.Time
			for key, t := range last {
				if event.LaneOf(key, n) != lane {
					continue
				}
				known = true
				if t.After(after) && (at.IsZero() || t.Before(at)) {
					at = t
				}
			}
			switch {
			case !at.IsZero():
				first[id] = at
			case known:
				done = false
			}
		}
		if done {
			var d time.Duration
			for _, t := range first {
				d = max(d, t.Sub(since))
			}
			return d, nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("clusterrun: lanes %v not delivering again: %w", lanes, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Has reports whether every id was delivered at least once.
func (r *Receiver) Has(ids []int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		if r.count[id] == 0 {
			return false
		}
	}
	return true
}

// IDs hands out event ids, unique across a run.
type IDs struct{ next atomic.Int64 }

// Take returns the first of n fresh ids.
func (g *IDs) Take(n int) int { return int(g.next.Add(int64(n))) - n }

// Acked remembers the events answered 200 and counts every answer.
type Acked struct {
	mu      sync.Mutex
	ids     []int
	status  map[int]int
	latency []time.Duration
}

// Add records one POST's status for the events ids (acknowledged when
// 200), without a latency.
func (a *Acked) Add(code int, ids []int) { a.add(code, ids, -1) }

// add is Add with the POST's latency d (d < 0: none).
func (a *Acked) add(code int, ids []int, d time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.status == nil {
		a.status = map[int]int{}
	}
	a.status[code]++
	if code == http.StatusOK {
		a.ids = append(a.ids, ids...)
		if d >= 0 {
			a.latency = append(a.latency, d)
		}
	}
}

// IDs returns the acknowledged event ids.
func (a *Acked) IDs() []int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]int(nil), a.ids...)
}

// Status returns how many POSTs got each status (0: no answer).
func (a *Acked) Status() map[int]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[int]int{}
	for k, v := range a.status {
		out[k] = v
	}
	return out
}

// Latency returns the p50 and p99 of the acknowledged POSTs.
func (a *Acked) Latency() (p50, p99 time.Duration) {
	a.mu.Lock()
	l := append([]time.Duration(nil), a.latency...)
	a.mu.Unlock()
	if len(l) == 0 {
		return 0, 0
	}
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	return l[len(l)/2], l[min(len(l)-1, len(l)*99/100)]
}

// Answer is a POST's outcome.
type Answer struct {
	// Code is the status, 0 when there was no answer (connection refused
	// or broken).
	Code int
	// Header and Body are the answer's (Body at most 1 MiB).
	Header http.Header
	Body   string
}

// Post sends records to a relay's POST /v1/events and returns the status
// (0 when there was no answer).
func Post(ctx context.Context, c *http.Client, addr string, recs ...event.Record) int {
	return PostAnswer(ctx, c, addr, recs...).Code
}

// Body is the JSON body of POST /v1/events for recs.
func Body(recs ...event.Record) []byte {
	var b bytes.Buffer
	b.WriteString(`{"Records":[`)
	for i := range recs {
		if i > 0 {
			b.WriteByte(',')
		}
		j, _ := json.Marshal(&recs[i])
		b.Write(j)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// PostAnswer is Post returning the whole answer.
func PostAnswer(ctx context.Context, c *http.Client, addr string, recs ...event.Record) Answer {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/v1/events", bytes.NewReader(Body(recs...)))
	if err != nil {
		return Answer{}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return Answer{}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	io.Copy(io.Discard, resp.Body)
	return Answer{Code: resp.StatusCode, Header: resp.Header, Body: string(body)}
}

// Producer posts batches of events for its own keys (Name-0 … Name-Keys-1)
// to the relays in turn, one POST at a time, moving to the next relay
// after a failure, until ctx ends or Limit batches were sent.
type Producer struct {
	Name  string
	Addrs []string
	Keys  int
	Batch int
	// Limit stops after that many POSTs; 0 means until ctx ends.
	Limit int
	IDs   *IDs
	Acked *Acked
	// Pause is the wait between POSTs; 0 means none.
	Pause time.Duration
}

// Run posts until ctx ends.
func (p *Producer) Run(ctx context.Context) {
	c := &http.Client{Timeout: 20 * time.Second}
	at := 0
	for n := 0; ctx.Err() == nil && (p.Limit == 0 || n < p.Limit); n++ {
		first := p.IDs.Take(p.Batch)
		recs := make([]event.Record, p.Batch)
		ids := make([]int, p.Batch)
		for i := range recs {
			ids[i] = first + i
			recs[i] = Record(fmt.Sprintf("%s-%d.jpg", p.Name, ids[i]%max(p.Keys, 1)), ids[i])
		}
		start := time.Now()
		code := Post(ctx, c, p.Addrs[at%len(p.Addrs)], recs...)
		if ctx.Err() != nil && code != http.StatusOK {
			return // cut by the end of the run: neither counted nor acked
		}
		p.Acked.add(code, ids, time.Since(start))
		if code != http.StatusOK {
			at++
			sleep(ctx, 50*time.Millisecond)
			continue
		}
		at++ // spread over the relays
		if p.Pause > 0 {
			sleep(ctx, p.Pause)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Proc is one relay process.
type Proc struct {
	Bin, Config, LogPath string
	Addr                 string
	Owner                string
	cmd                  *exec.Cmd
	done                 chan struct{}
}

// Start starts the process (again), appending its output to LogPath, and
// waits until its API answers.
func (p *Proc) Start(timeout time.Duration) error {
	if err := p.Launch(); err != nil {
		return err
	}
	return p.WaitReady(timeout)
}

// Launch starts the process (again), appending its output to LogPath,
// without waiting for it.
func (p *Proc) Launch() error {
	f, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.Bin, "serve", "--config", p.Config)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); f.Close(); close(done) }()
	p.cmd, p.done = cmd, done
	return nil
}

// WaitReady polls Addr's /healthz until it answers 200, failing when the
// process exits or timeout passes.
func (p *Proc) WaitReady(timeout time.Duration) error {
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		if resp, err := c.Get("http://" + p.Addr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("clusterrun: relay %s exited at start (%v); see %s", p.Owner, p.cmd.ProcessState, p.LogPath)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("clusterrun: relay %s did not answer in %v; see %s", p.Owner, timeout, p.LogPath)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Kill sends SIGKILL and waits for the process to go.
func (p *Proc) Kill() {
	if p.cmd == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Wait waits up to d for the process to exit on its own and returns its
// exit code, or -1 if it still runs (or never started).
func (p *Proc) Wait(d time.Duration) int {
	if p.cmd == nil {
		return -1
	}
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		return -1
	}
}

// Stop sends SIGTERM, waits (SIGKILL after 20 s) and returns the exit code
// (-1: killed, or never started).
func (p *Proc) Stop() int {
	if p.cmd == nil {
		return -1
	}
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.Wait(20 * time.Second); code >= 0 {
		return code
	}
	p.Kill()
	return -1
}

// Running reports whether the process runs.
func (p *Proc) Running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Lane is one lane as GET /v1/cluster shows it.
type Lane struct {
	ID     string `json:"id"`
	Owner  string `json:"owner"`
	Cursor uint64 `json:"cursor"`
}

// Lanes reads GET /v1/cluster of the relay at addr.
func Lanes(ctx context.Context, addr string) ([]Lane, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/cluster", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("clusterrun: GET /v1/cluster: %s", resp.Status)
	}
	var info struct{ Lanes []Lane }
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return nil, err
	}
	return info.Lanes, nil
}

// OwnedBy returns the lanes owner holds.
func OwnedBy(lanes []Lane, owner string) []string {
	var out []string
	for _, l := range lanes {
		if l.Owner == owner {
			out = append(out, l.ID)
		}
	}
	return out
}

// WaitTakenOver polls the relay at addr until none of lanes is owned by
// gone and each has an owner, and returns how long after since that was
// seen.
func WaitTakenOver(ctx context.Context, addr, gone string, lanes []string, since time.Time) (time.Duration, error) {
	for {
		ls, err := Lanes(ctx, addr)
		if err == nil {
			ok := true
			for _, l := range ls {
				for _, id := range lanes {
					if l.ID == id && (l.Owner == "" || l.Owner == gone) {
						ok = false
					}
				}
			}
			if ok {
				return time.Since(since), nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("clusterrun: lanes %v of %s not taken over: %w", lanes, gone, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Summary is what a run promised and what was delivered.
type Summary struct {
	Acknowledged    int
	Delivered       int // distinct acknowledged events delivered
	Lost            int // acknowledged, never delivered
	Duplicates      int // extra deliveries of any event
	OrderViolations []string
	Status          map[int]int
	Failovers       []time.Duration
	LostIDs         []int // the first few
}

// Summarize compares the acknowledged events with the receiver's.
func Summarize(a *Acked, r *Receiver, failovers []time.Duration) Summary {
	ids := a.IDs()
	s := Summary{Acknowledged: len(ids), Status: a.Status(), Failovers: failovers}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		if r.count[id] > 0 {
			s.Delivered++
		} else {
			s.Lost++
			if len(s.LostIDs) < 10 {
				s.LostIDs = append(s.LostIDs, id)
			}
		}
	}
	for _, n := range r.count {
		s.Duplicates += max(n-1, 0)
	}
	s.OrderViolations = append([]string(nil), r.violations...)
	return s
}

// String formats the summary for people.
func (s Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "acknowledged %d, delivered %d, lost %d, duplicates %d, order violations %d",
		s.Acknowledged, s.Delivered, s.Lost, s.Duplicates, len(s.OrderViolations))
	codes := make([]int, 0, len(s.Status))
	for c := range s.Status {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	b.WriteString("; POST answers:")
	for _, c := range codes {
		fmt.Fprintf(&b, " %d×%d", c, s.Status[c])
	}
	if len(s.Failovers) > 0 {
		b.WriteString("; failover after kill -9:")
		for _, d := range s.Failovers {
			fmt.Fprintf(&b, " %.2fs", d.Seconds())
		}
	}
	return b.String()
}
