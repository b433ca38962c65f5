package relay

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/rules"
)

// Watching: GET /v1/buckets/{bucket}/events streams the events the relay
// accepts for a bucket as they are logged, like MinIO's
// ListenBucketNotification and `mc watch`. It is live only: a watcher sees
// what is published while it is connected, nothing before, and nothing it
// missed while it was away. The durable way to receive events is a target.

// Watch settings.
const (
	// DefaultWatchBuffer is how many events a watcher may fall behind
	// before it is dropped.
	DefaultWatchBuffer = 1024
	// DefaultWatchKeepAlive is how often an idle stream gets a keep-alive
	// (a blank line, or an SSE comment).
	DefaultWatchKeepAlive = 5 * time.Second
	// DefaultWatchWriteTimeout bounds one write to a watcher: a client that
	// stops reading is cut off after it.
	DefaultWatchWriteTimeout = 10 * time.Second
)

// watchARN stands in for the target ARN rules.Rule needs: a watch is
// matched with the rules' semantics but delivers to no target.
const watchARN = "arn:minio:sqs::watch:live"

// defaultWatchEvents are the events a watch selects when it names none,
// as `mc watch` defaults to.
var defaultWatchEvents = []event.Name{"put", "delete", "get"}

// live is what the watch stream and the status page keep in memory: the
// watchers and the lag samples. Its zero value is ready; Handler registers
// its metric and starts the sampler.
type live struct {
	// watchers is replaced as a whole (copy on write) so that publishers
	// read it with one atomic load; nil or empty means nobody watches.
	watchers atomic.Pointer[[]*watcher]
	mu       sync.Mutex                // serializes changes to watchers and servers
	servers  map[*http.Server]struct{} // servers whose shutdown ends their streams
	dropped  prometheus.Counter        // set by Handler; nil before
	once     sync.Once                 // Handler's set-up
	lag      lagHistory                // statuspage.go

	// Zero means the Default* value; tests shorten them before Handler.
	buffer       int
	keepAlive    time.Duration
	writeTimeout time.Duration
	sampleEvery  time.Duration
}

// orDefault returns v, or def when v is not positive.
func orDefault[T int | int64 | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// watcher is one connected watch: its filter and its bounded buffer.
type watcher struct {
	bucket string
	rule   rules.Rule
	remote string
	srv    *http.Server // nil when not served by an http.Server
	ch     chan []byte  // {"Records":[record]} lines
	done   chan struct{}
	ended  sync.Once
	reason string // why done was closed; read after done
}

// end closes w.done once, saying why.
func (w *watcher) end(reason string) bool {
	first := false
	w.ended.Do(func() {
		w.reason = reason
		close(w.done)
		first = true
	})
	return first
}

// publishLive offers records to the watchers whose filters select them. It
// never blocks: a watcher whose buffer is full is dropped. With nobody
// watching it costs one atomic load.
func (r *Relay) publishLive(evs []liveEvent) {
	if len(evs) == 0 {
		return
	}
	p := r.live.watchers.Load()
	if p == nil || len(*p) == 0 {
		return
	}
	ws := *p
	for i := range evs {
		ev := &evs[i]
		var line []byte
		for _, w := range ws {
			if w.bucket != ev.bucket || !w.rule.Matches(ev.key, ev.name) {
				continue
			}
			if line == nil {
				// A copy: the watcher may hold it longer than the
				// caller's buffer lives.
				line = make([]byte, 0, len(ev.raw)+len(`{"Records":[]}`))
				line = append(line, `{"Records":[`...)
				line = append(line, ev.raw...)
				line = append(line, `]}`...)
			}
			select {
			case w.ch <- line:
			default:
				r.dropWatcher(w, fmt.Sprintf("it fell %d events behind", cap(w.ch)))
			}
		}
	}
}

// liveEvent is an accepted record as watchers match it.
type liveEvent struct {
	bucket, key string
	name        event.Name
	raw         []byte
}

// watching reports whether anyone watches: one atomic load, so ingest
// pays nothing else when nobody does.
func (r *Relay) watching() bool {
	p := r.live.watchers.Load()
	return p != nil && len(*p) > 0
}

// dropWatcher removes a watcher that fell behind, counts and logs it; why
// says how it fell behind.
func (r *Relay) dropWatcher(w *watcher, why string) {
	if !w.end("relay: watch dropped: " + why + " (a watcher must read as fast as events are published)") {
		return
	}
	r.live.remove(w)
	if c := r.live.dropped; c != nil {
		c.Inc()
	}
	r.lg.Warn("dropped a watcher that fell behind; ingest is not slowed for it",
		"bucket", w.bucket, "remote", w.remote, "why", why)
}

// subscribe adds a watcher.
func (lv *live) subscribe(w *watcher) {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	var next []*watcher
	if p := lv.watchers.Load(); p != nil {
		next = append(next, *p...)
	}
	next = append(next, w)
	lv.watchers.Store(&next)
	if w.srv != nil {
		if lv.servers == nil {
			lv.servers = map[*http.Server]struct{}{}
		}
		if _, ok := lv.servers[w.srv]; !ok {
			lv.servers[w.srv] = struct{}{}
			srv := w.srv
			srv.RegisterOnShutdown(func() { lv.shutdown(srv) })
		}
	}
}

// remove takes a watcher out of the list.
func (lv *live) remove(w *watcher) {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	p := lv.watchers.Load()
	if p == nil {
		return
	}
	next := make([]*watcher, 0, len(*p))
	for _, x := range *p {
		if x != w {
			next = append(next, x)
		}
	}
	lv.watchers.Store(&next)
}

// shutdown ends the streams srv serves: http.Server.Shutdown waits for
// active connections, and a watch stays active until it is ended.
func (lv *live) shutdown(srv *http.Server) {
	lv.mu.Lock()
	delete(lv.servers, srv)
	var ws []*watcher
	if p := lv.watchers.Load(); p != nil {
		ws = *p
	}
	lv.mu.Unlock()
	for _, w := range ws {
		if w.srv == srv {
			w.end("")
		}
	}
}

// watching returns how many watchers are connected.
func (lv *live) watching() int {
	if p := lv.watchers.Load(); p != nil {
		return len(*p)
	}
	return 0
}

// watchRule builds a watch's filter from the query: events (repeated or
// comma-separated; shorthands and wildcards as in rules), prefix, suffix.
func watchRule(q map[string][]string) (rules.Rule, error) {
	var names []event.Name
	for _, v := range q["events"] {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				names = append(names, event.Name(p))
			}
		}
	}
	if len(names) == 0 {
		names = defaultWatchEvents
	}
	first := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	rl, err := rules.Rule{ARN: watchARN, Events: names, Prefix: first("prefix"), Suffix: first("suffix")}.Normalize()
	if err != nil {
		return rl, fmt.Errorf("events: %s", strings.TrimPrefix(err.Error(), "rules: "))
	}
	return rl, nil
}

// getBucketEvents serves GET /v1/buckets/{bucket}/events.
func (r *Relay) getBucketEvents(w http.ResponseWriter, req *http.Request) {
	bucket := req.PathValue("bucket")
	rl, err := watchRule(req.URL.Query())
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	sse := strings.Contains(req.Header.Get("Accept"), "text/event-stream")
	wt := &watcher{
		bucket: bucket, rule: rl, remote: req.RemoteAddr,
		ch: make(chan []byte, orDefault(r.live.buffer, DefaultWatchBuffer)), done: make(chan struct{}),
	}
	wt.srv, _ = req.Context().Value(http.ServerContextKey).(*http.Server)
	r.live.subscribe(wt)
	defer func() {
		wt.end("")
		r.live.remove(wt)
	}()

	h := w.Header()
	if sse {
		h.Set("Content-Type", "text/event-stream")
	} else {
		h.Set("Content-Type", "application/x-ndjson")
	}
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // proxies: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	writeTimeout := orDefault(r.live.writeTimeout, DefaultWatchWriteTimeout)
	var buf []byte
	flush := func() error {
		// Not every ResponseWriter has deadlines (a recorder in tests);
		// those that do must not let a stuck client hold the handler.
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		_, err := w.Write(buf)
		buf = buf[:0]
		if err == nil {
			err = rc.Flush()
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			r.dropWatcher(wt, fmt.Sprintf("a write to it took over %v", writeTimeout))
		}
		return err
	}
	frame := func(line []byte) {
		if sse {
			buf = append(buf, "data: "...)
			buf = append(buf, line...)
			buf = append(buf, "\n\n"...)
		} else {
			buf = append(buf, line...)
			buf = append(buf, '\n')
		}
	}
	if sse {
		buf = append(buf, ": watching bucket "...)
		buf = append(buf, strings.NewReplacer("\n", " ", "\r", " ").Replace(bucket)...)
		buf = append(buf, "\n\n"...)
	}
	if err := flush(); err != nil {
		return
	}
	tick := time.NewTicker(orDefault(r.live.keepAlive, DefaultWatchKeepAlive))
	defer tick.Stop()
	for {
		select {
		case line := <-wt.ch:
			frame(line)
			// Send what else is waiting in one write.
			for more := true; more && len(buf) < 64<<10; {
				select {
				case line := <-wt.ch:
					frame(line)
				default:
					more = false
				}
			}
			if err := flush(); err != nil {
				return
			}
		case <-tick.C:
			if sse {
				buf = append(buf, ": keep-alive\n\n"...)
			} else {
				buf = append(buf, '\n')
			}
			if err := flush(); err != nil {
				return
			}
		case <-wt.done:
			if wt.reason != "" {
				msg, _ := json.Marshal(map[string]string{"error": wt.reason})
				if sse {
					buf = append(buf, "event: error\ndata: "...)
					buf = append(buf, msg...)
					buf = append(buf, "\n\n"...)
				} else {
					buf = append(buf, msg...)
					buf = append(buf, '\n')
				}
				_ = flush()
			}
			return
		case <-req.Context().Done():
			return
		case <-r.done:
			return
		}
	}
}
