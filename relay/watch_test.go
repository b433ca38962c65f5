package relay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/testkit/webhookrecv"
)

// openWatch starts a watch of bucket with query q and returns its body,
// once the relay has registered the watcher.
func openWatch(t *testing.T, r *Relay, base, bucket, q string, hdr ...string) (*http.Response, *bufio.Reader) {
	t.Helper()
	before := r.live.watching()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/v1/buckets/"+bucket+"/events?"+q, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("watch answered %s: %s", resp.Status, b)
	}
	waitFor(t, func() bool { return r.live.watching() > before })
	return resp, bufio.NewReader(resp.Body)
}

// serveRelay serves r's API until the test ends (after the test's watches
// are closed: httptest.Server.Close waits for their handlers).
func serveRelay(t *testing.T, r *Relay) *httptest.Server {
	srv := httptest.NewServer(r.Handler())
	t.Cleanup(srv.Close)
	return srv
}

// nextRecord reads NDJSON lines until one carries a record (keep-alive
// lines are blank) and returns the record's bucket/key.
func nextRecord(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			t.Fatalf("reading the watch: %v (line %q)", err, line)
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var m struct{ Records []event.Record }
		if err := json.Unmarshal(line, &m); err != nil || len(m.Records) != 1 {
			t.Fatalf("watch line %q: %v, want {\"Records\":[one record]}", line, err)
		}
		rec := m.Records[0]
		return rec.S3.Bucket.Name + "/" + rec.ObjectKey() + " " + string(rec.EventName)
	}
}

// TestWatchFilters: a watcher sees the live events of its bucket that its
// events, prefix and suffix select, in order, from both publish paths;
// events no rule routes are seen too.
func TestWatchFilters(t *testing.T) {
	rcv := webhookrecv.New(t, "")
	r := openRelay(t, testConfig(t, t.TempDir(), rcv.URL(), ""))
	srv := serveRelay(t, r)
	ctx := context.Background()

	if err := r.Publish(ctx, targettest.Record("images", "a/before.jpg", event.ObjectCreatedPut, 0)); err != nil {
		t.Fatal(err)
	}
	_, images := openWatch(t, r, srv.URL, "images", "events=put&prefix=a/&suffix=.jpg")
	_, docs := openWatch(t, r, srv.URL, "docs", "events=s3:ObjectRemoved:*,s3:ObjectAccessed:Get")

	recs := []event.Record{
		targettest.Record("images", "a/x.jpg", event.ObjectCreatedPut, 1),    // seen
		targettest.Record("images", "a/x.txt", event.ObjectCreatedPut, 2),    // suffix
		targettest.Record("images", "b/x.jpg", event.ObjectCreatedPut, 3),    // prefix
		targettest.Record("images", "a/y.jpg", event.ObjectRemovedDelete, 4), // event
		targettest.Record("docs", "a/z.jpg", event.ObjectCreatedPut, 5),      // event (docs watcher)
		targettest.Record("images", "a/w.jpg", event.ObjectCreatedCopy, 6),   // seen: put = s3:ObjectCreated:*
		targettest.Record("docs", "d.txt", event.ObjectRemovedDelete, 7),     // seen by docs (no rule routes docs)
		targettest.Record("docs", "e.txt", event.ObjectAccessedHead, 8),      // event (docs watcher)
	}
	if err := r.Publish(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	// The JSON path (POST /v1/events), with an encoded key.
	raw, _ := json.Marshal(targettest.Record("images", "a/two+words.jpg", event.ObjectCreatedPut, 9))
	raw2, _ := json.Marshal(targettest.Record("docs", "f.txt", event.ObjectAccessedGet, 10))
	if w := do(t, r.Handler(), "POST", "/v1/events", `{"Records":[`+string(raw)+`,`+string(raw2)+`]}`); w.Code != 200 {
		t.Fatalf("POST /v1/events: %d %s", w.Code, w.Body)
	}
	for _, want := range []string{"images/a/x.jpg s3:ObjectCreated:Put", "images/a/w.jpg s3:ObjectCreated:Copy", "images/a/two words.jpg s3:ObjectCreated:Put"} {
		if got := nextRecord(t, images); got != want {
			t.Fatalf("images watcher got %q, want %q", got, want)
		}
	}
	for _, want := range []string{"docs/d.txt s3:ObjectRemoved:Delete", "docs/f.txt s3:ObjectAccessed:Get"} {
		if got := nextRecord(t, docs); got != want {
			t.Fatalf("docs watcher got %q, want %q", got, want)
		}
	}
	// Delivery is not affected: the target got every routed images event.
	waitBodies(t, rcv, 6, 10*time.Second)
}

// TestWatchBadInput: a bad filter is a 400 naming it.
func TestWatchBadInput(t *testing.T) {
	rcv := webhookrecv.New(t, "")
	r := openRelay(t, testConfig(t, t.TempDir(), rcv.URL(), ""))
	w := do(t, r.Handler(), "GET", "/v1/buckets/images/events?events=put,bogus", "")
	if w.Code != 400 || !strings.Contains(w.Body.String(), `bogus`) || !strings.Contains(w.Body.String(), "events") {
		t.Fatalf("got %d %s, want 400 naming events and bogus", w.Code, w.Body)
	}
	if r.live.watching() != 0 {
		t.Fatalf("got %d watchers after a refused watch, want 0", r.live.watching())
	}
}

// TestWatchKeepAlive: an idle NDJSON stream gets blank lines.
func TestWatchKeepAlive(t *testing.T) {
	rcv := webhookrecv.New(t, "")
	r := openRelay(t, testConfig(t, t.TempDir(), rcv.URL(), ""))
	r.live.keepAlive = 50 * time.Millisecond
	srv := serveRelay(t, r)
	resp, br := openWatch(t, r, srv.URL, "images", "")
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Fatalf("Content-Type %q, want application/x-ndjson", ct)
	}
	for i := 0; i < 3; i++ {
		line, err := br.ReadString('\n')
		if err != nil || line != "\n" {
			t.Fatalf("got %q, %v; want a blank keep-alive line", line, err)
		}
	}
}

// sseEvent is one dispatched Server-Sent Event.
type sseEvent struct {
	typ, data string
}

// sseReader parses an event stream as the HTML standard's algorithm does:
// lines end in \n, \r\n or \r; ':' starts a comment; "field: value" with one
// optional space; a blank line dispatches the event (if it has data).
type sseReader struct {
	br       *bufio.Reader
	comments []string
}

func (s *sseReader) next() (sseEvent, error) {
	var ev sseEvent
	var data []string
	for {
		line, err := s.br.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" {
			if data == nil {
				ev = sseEvent{}
				continue
			}
			ev.data = strings.Join(data, "\n")
			if ev.typ == "" {
				ev.typ = "message"
			}
			return ev, nil
		}
		if strings.HasPrefix(line, ":") {
			s.comments = append(s.comments, strings.TrimPrefix(line[1:], " "))
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			ev.typ = value
		case "data":
			data = append(data, value)
		}
	}
}

// TestWatchSSE: with Accept: text/event-stream the stream is Server-Sent
// Events: one message per record, keep-alive comments, and an error event
// when the watcher is dropped.
func TestWatchSSE(t *testing.T) {
	rcv := webhookrecv.New(t, "")
	r := openRelay(t, testConfig(t, t.TempDir(), rcv.URL(), ""))
	r.live.keepAlive = 50 * time.Millisecond
	srv := serveRelay(t, r)
	resp, br := openWatch(t, r, srv.URL, "images", "events=put", "Accept", "text/event-stream")
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q, want text/event-stream", ct)
	}
	sr := &sseReader{br: br}
	ctx := context.Background()
	if err := r.Publish(ctx, targettest.Record("images", "a.jpg", event.ObjectCreatedPut, 1), targettest.Record("images", "b.jpg", event.ObjectRemovedDelete, 2), targettest.Record("images", "c.jpg", event.ObjectCreatedPut, 3)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"a.jpg", "c.jpg"} {
		ev, err := sr.next()
		if err != nil {
			t.Fatal(err)
		}
		var m struct{ Records []event.Record }
		if ev.typ != "message" || json.Unmarshal([]byte(ev.data), &m) != nil || len(m.Records) != 1 || m.Records[0].S3.Object.Key != want {
			t.Fatalf("got event %q %q, want a message with the record of %s", ev.typ, ev.data, want)
		}
	}
	time.Sleep(200 * time.Millisecond)
	// Make the watcher fall behind: it is dropped with an error event.
	wt := (*r.live.watchers.Load())[0]
	r.dropWatcher(wt, "it fell behind")
	for {
		ev, err := sr.next()
		if err != nil {
			t.Fatalf("stream ended without an error event: %v", err)
		}
		if ev.typ == "error" {
			if !strings.Contains(ev.data, "fell") {
				t.Fatalf("error event %q, want the reason", ev.data)
			}
			break
		}
	}
	if len(sr.comments) < 2 || sr.comments[0] != "watching bucket images" || !contains(sr.comments, "keep-alive") {
		t.Fatalf("comments %q, want the greeting and keep-alives", sr.comments)
	}
	if _, err := sr.next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the error event got %v, want the end of the stream", err)
	}
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// stuckWatch opens a watch whose client never reads, with a tiny receive
// buffer so that the server's writes block soon.
func stuckWatch(t *testing.T, addr, bucket string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET /v1/buckets/%s/events HTTP/1.1\r\nHost: relay\r\n\r\n", bucket)
	return conn
}

// TestWatchSlowWatcherDropped: a watcher that never reads is dropped,
// counted and logged, and ingest does not wait for it: 10,000 events
// published while it is stuck all return promptly, and a watcher that
// reads sees every one of them.
func TestWatchSlowWatcherDropped(t *testing.T) {
	rcv := webhookrecv.New(t, "")
	var logs bytes.Buffer
	lw := &syncWriter{w: &logs}
	cfg := testConfig(t, t.TempDir(), rcv.URL(), `,"noSync":true`)
	r, err := Open(cfg, Options{Logger: newTestLogger(lw)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	r.live.writeTimeout = 2 * time.Second
	// Room for the reading watcher on a loaded machine; the stuck one
	// still overflows it (10,000 events, far more than its socket holds).
	r.live.buffer = 4096
	srv := httptest.NewUnstartedServer(r.Handler())
	closed := make(chan string, 16)
	srv.Config.ConnState = func(c net.Conn, st http.ConnState) {
		if st == http.StateClosed {
			select {
			case closed <- c.RemoteAddr().String():
			default:
			}
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	stuck := stuckWatch(t, srv.Listener.Addr().String(), "images")
	waitFor(t, func() bool { return r.live.watching() == 1 })
	_, reader := openWatch(t, r, srv.URL, "images", "")
	seen := make(chan int, 1)
	go func() {
		n := 0
		defer func() { seen <- n }()
		for n < 10000 {
			line, err := reader.ReadBytes('\n')
			if err != nil {
				return
			}
			if len(bytes.TrimSpace(line)) > 0 {
				n++
			}
		}
	}()

	pad := strings.Repeat("x", 2000) // 10,000 records of about 2.7 KB
	ctx := context.Background()
	var slowest time.Duration
	start := time.Now()
	for i := 0; i < 10000; i += 10 {
		recs := records("images", i, 10)
		for j := range recs {
			recs[j].S3.Object.UserMetadata = map[string]string{"x-amz-meta-pad": pad}
		}
		t0 := time.Now()
		if err := r.Publish(ctx, recs...); err != nil {
			t.Fatal(err)
		}
		slowest = max(slowest, time.Since(t0))
	}
	total := time.Since(start)
	t.Logf("published 10,000 events in %v, slowest call %v", total, slowest)
	if slowest > 2*time.Second {
		t.Fatalf("slowest Publish took %v while a watcher was stuck, want under 2s", slowest)
	}
	select {
	case n := <-seen:
		if n != 10000 {
			t.Fatalf("the reading watcher saw %d events, want 10000", n)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the reading watcher did not see the 10,000 events in 30s")
	}
	waitFor(t, func() bool { return r.live.watching() == 1 })
	if w := do(t, r.Handler(), "GET", "/metrics", ""); !strings.Contains(w.Body.String(), "relay_watchers_dropped_total 1\n") || !strings.Contains(w.Body.String(), "relay_watchers 1\n") {
		t.Fatalf("metrics lack relay_watchers_dropped_total 1 and relay_watchers 1:\n%s", grepLines(w.Body.String(), "relay_watchers"))
	}
	lw.mu.Lock()
	logged := logs.String()
	lw.mu.Unlock()
	if !strings.Contains(logged, "dropped a watcher that fell behind") {
		t.Fatalf("log lacks the drop:\n%s", logged)
	}
	// The stuck watcher's handler gives up its blocked write and the
	// server closes the connection.
	deadline := time.After(20 * time.Second)
	for {
		select {
		case a := <-closed:
			if a == stuck.LocalAddr().String() {
				return
			}
		case <-deadline:
			t.Fatal("the stuck watcher's connection was not closed in 20s")
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestWatchDropIsNonBlocking: with no HTTP in the way, a watcher that
// never reads is dropped at the first event over its buffer, and
// publishing goes on.
func TestWatchDropIsNonBlocking(t *testing.T) {
	rcv := webhookrecv.New(t, "")
	r := openRelay(t, testConfig(t, t.TempDir(), rcv.URL(), `,"noSync":true`))
	rl, err := watchRule(map[string][]string{"events": {"put"}})
	if err != nil {
		t.Fatal(err)
	}
	w := &watcher{bucket: "images", rule: rl, ch: make(chan []byte, 8), done: make(chan struct{})}
	r.live.subscribe(w)
	for i := 0; i < 100; i++ {
		if err := r.Publish(context.Background(), records("images", i, 1)...); err != nil {
			t.Fatal(err)
		}
		if i == 7 && r.live.watching() != 1 {
			t.Fatal("watcher dropped with room in its buffer")
		}
	}
	select {
	case <-w.done:
	default:
		t.Fatal("a watcher that never read was not dropped")
	}
	if len(w.ch) != 8 || r.live.watching() != 0 || !strings.Contains(w.reason, "fell 8 events behind") {
		t.Fatalf("buffer %d, watchers %d, reason %q; want 8, 0 and the reason", len(w.ch), r.live.watching(), w.reason)
	}
}

// TestWatchEndsOnShutdown: http.Server.Shutdown does not wait for watch
// streams to end by themselves.
func TestWatchEndsOnShutdown(t *testing.T) {
	rcv := webhookrecv.New(t, "")
	r := openRelay(t, testConfig(t, t.TempDir(), rcv.URL(), ""))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: r.Handler()}
	go hs.Serve(ln)
	_, br := openWatch(t, r, "http://"+ln.Addr().String(), "images", "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := hs.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v after %v, want the watch ended at once", err, time.Since(start))
	}
	if _, err := io.ReadAll(br); err != nil {
		t.Fatalf("reading the ended stream: %v", err)
	}
}

// BenchmarkPublishLiveIdle measures the publish hook when nobody watches.
func BenchmarkPublishLiveIdle(b *testing.B) {
	r := &Relay{}
	for b.Loop() {
		if r.watching() {
			b.Fatal("watching with no watcher")
		}
	}
}
