package webhook

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/event"
)

// rawEndpoint is a TCP server answering each request (read with net/http's
// own parser) with the bytes answer returns, to test answers a Go
// http.Server never writes.
type rawEndpoint struct {
	ln     net.Listener
	answer func(n int) (resp string, hangUp bool) // n counts requests from 0
	conns  atomic.Int64
	reqs   atomic.Int64
	mu     sync.Mutex
	got    []*http.Request
	bodies []string
	open   []net.Conn
}

func newRawEndpoint(t *testing.T, answer func(n int) (string, bool)) *rawEndpoint {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &rawEndpoint{ln: ln, answer: answer}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.conns.Add(1)
			e.mu.Lock()
			e.open = append(e.open, c)
			e.mu.Unlock()
			go e.serve(c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, c := range e.open {
			c.Close()
		}
	})
	return e
}

func (e *rawEndpoint) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return
		}
		n := int(e.reqs.Add(1) - 1)
		e.mu.Lock()
		e.got = append(e.got, req)
		e.bodies = append(e.bodies, string(body))
		e.mu.Unlock()
		resp, hangUp := e.answer(n)
		if _, err := io.WriteString(c, resp); err != nil || hangUp {
			return
		}
	}
}

func (e *rawEndpoint) url() string { return "http://" + e.ln.Addr().String() + "/hook?a=1" }

// oneItem is an event of key k.
func oneItem(k string) []delivery.Item {
	return []delivery.Item{{Key: "b/" + k, EventName: event.ObjectCreatedPut, Record: []byte(`{"k":"` + k + `"}`), LogID: "00000000000000" + k}}
}

// TestH1Answers: the answers an endpoint may give, each read to its end so
// that the next POST can use the same connection, or the connection
// dropped when it cannot carry another one.
func TestH1Answers(t *testing.T) {
	for _, c := range []struct {
		name   string
		resp   string
		hangUp bool
		want   string // "ok", "retry", "permanent", "gone"
		dials  int    // connections for two POSTs
	}{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false, "ok", 1},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\nok\r\n3\r\n!!!\r\n0\r\nTrailer: 1\r\n\r\n", false, "ok", 1},
		{"interim 100 then 204", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", false, "ok", 1},
		{"lower-case headers", "HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\nconnection: keep-alive\r\n\r\n", false, "ok", 1},
		{"long header line", "HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("x", 10000) + "\r\nContent-Length: 0\r\n\r\n", false, "ok", 1},
		{"connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", true, "ok", 2},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false, "ok", 2},
		{"HTTP/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", false, "ok", 1},
		{"body to the end", "HTTP/1.1 200 OK\r\n\r\nall of it", true, "ok", 2},
		{"body too long to drain", "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + strings.Repeat("z", 100000), false, "ok", 2},
		{"404", "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found", false, "permanent", 1},
		{"410", "HTTP/1.1 410 Gone\r\nContent-Length: 0\r\n\r\n", false, "gone", 1},
		{"500", "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n", false, "retry", 1},
		{"garbage", "SMTP ready\r\n\r\n", true, "retry", 2},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n", true, "retry", 2},
		{"hang up before answering", "", true, "retry", 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newRawEndpoint(t, func(int) (string, bool) { return c.resp, c.hangUp })
			tg, err := New(Config{Enable: true, Endpoint: e.url(), Timeout: "5s"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			if tg.h1 == nil {
				t.Fatal("an http:// endpoint without a proxy: got net/http, want h1")
			}
			for i, k := range []string{"k1", "k2"} {
				err := tg.Send(context.Background(), oneItem(k))
				if got := classify(err); got != c.want {
					t.Fatalf("POST %d: got %s (%v), want %s", i+1, got, err, c.want)
				}
			}
			if n := tg.h1.dials.Load(); n != int64(c.dials) {
				t.Errorf("connections dialled for two POSTs: got %d, want %d", n, c.dials)
			}
		})
	}
}

// classify names what err means to the engine.
func classify(err error) string {
	var be *delivery.BatchError
	if errors.As(err, &be) {
		err = be.Failed[0].Err
	}
	switch {
	case err == nil:
		return "ok"
	case delivery.IsGone(err):
		return "gone"
	case delivery.IsPermanent(err):
		return "permanent"
	}
	return "retry"
}

// TestH1Request: what the endpoint reads is the POST net/http would send:
// the path and query, Host, Content-Length, the headers, the body, and
// Basic authorization from the endpoint's user info when there is no
// token.
func TestH1Request(t *testing.T) {
	e := newRawEndpoint(t, func(int) (string, bool) { return "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false })
	u := strings.Replace(e.url(), "http://", "http://ann:pa55@", 1)
	for _, token := range []string{"", "t0ken"} {
		tg, err := New(Config{Enable: true, Endpoint: u, AuthToken: token}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := tg.Send(context.Background(), oneItem("k1")); err != nil {
			t.Fatal(err)
		}
		tg.Close()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.got) != 2 {
		t.Fatalf("got %d requests, want 2", len(e.got))
	}
	r := e.got[0]
	if r.Method != "POST" || r.RequestURI != "/hook?a=1" || r.Host != e.ln.Addr().String() || r.ContentLength != int64(len(e.bodies[0])) {
		t.Errorf("got %s %s Host %s length %d, want POST /hook?a=1 Host %s", r.Method, r.RequestURI, r.Host, r.ContentLength, e.ln.Addr())
	}
	if user, pw, ok := r.BasicAuth(); !ok || user != "ann" || pw != "pa55" {
		t.Errorf("without a token: got Authorization %q, want Basic of the URL's user info", r.Header.Get("Authorization"))
	}
	if got := e.got[1].Header.Get("Authorization"); got != "Bearer t0ken" {
		t.Errorf("with a token: got Authorization %q, want Bearer t0ken", got)
	}
	id := oneItem("k1")[0].EventID()
	for k, want := range map[string]string{"Content-Type": "application/json", "User-Agent": "bucketrelay", "Webhook-Id": id} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("header %s: got %q, want %q", k, got, want)
		}
	}
	if !strings.Contains(e.bodies[0], `"Key":"b/k1"`) || !strings.Contains(e.bodies[0], `{"k":"k1"}`) {
		t.Errorf("body: got %s, want the guide's message of the event", e.bodies[0])
	}
}

// TestConnectionsReused: POSTs travel on kept-alive connections: three
// sends of 200 events with concurrency 8 dial at most 8 connections over
// http:// (h1), a few more over https (net/http); and no POST asks for a
// compressed answer.
func TestConnectionsReused(t *testing.T) {
	var conns atomic.Int64
	var gzip atomic.Int64 // requests asking for a compressed answer
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept-Encoding") != "" {
			gzip.Add(1)
		}
		io.Copy(io.Discard, r.Body)
	})
	for _, tls := range []bool{false, true} {
		conns.Store(0)
		srv := httptest.NewUnstartedServer(h)
		srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		}
		if tls {
			srv.StartTLS()
		} else {
			srv.Start()
		}
		tg, err := New(Config{Enable: true, Endpoint: srv.URL + "/hook", Concurrency: 8}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tls {
			// The test server's certificate, trusted as caFile would.
			tg.client.Transport.(*http.Transport).TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig
		}
		items := make([]delivery.Item, 200)
		for i := range items {
			items[i] = delivery.Item{Key: fmt.Sprintf("b/k%d", i), EventName: event.ObjectCreatedPut, Record: []byte(`{}`)}
		}
		dials := func() int64 {
			if tg.h1 != nil {
				return tg.h1.dials.Load()
			}
			return tg.dials.Load()
		}
		var after []int64
		for range 3 {
			if err := tg.Send(context.Background(), items); err != nil {
				t.Fatal(err)
			}
			after = append(after, dials())
		}
		// h1 dials only when none is idle: at most concurrency 8 for all
		// the sends. net/http may dial more than it uses at first (a dial
		// started while another connection came free is kept: 20 for 8
		// under load with TLS handshakes). Either way, far fewer than one
		// per POST.
		// The server counts a connection when it accepts it, which may
		// come after the dial returned.
		for deadline := time.Now().Add(10 * time.Second); conns.Load() < after[2] && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		if after[0] < 1 || after[2] > 50 || conns.Load() != after[2] {
			t.Errorf("tls %v: got %v connections dialled after each send of 200 POSTs (%d accepted), want 1 to 50 for the 600", tls, after, conns.Load())
		}
		if n := gzip.Swap(0); n > 0 {
			t.Errorf("tls %v: %d POSTs asked for a compressed answer, whose body is discarded; want none", tls, n)
		}
		if tg.h1 != nil && after[2] > 8 {
			t.Errorf("h1 dialled %d connections for 600 POSTs, want at most concurrency 8", after[2])
		}
		if (tg.h1 != nil) == tls {
			t.Errorf("tls %v: h1 in use %v, want %v", tls, tg.h1 != nil, !tls)
		}
		tg.Close()
		srv.Close()
	}
}

// TestH1StaleConnection: a kept-alive connection the endpoint closed
// while it was idle (without saying so) fails the POST written on it
// before any answer; the POST is sent once more on a new connection and
// succeeds, instead of failing and waiting out a backoff.
func TestH1StaleConnection(t *testing.T) {
	e := newRawEndpoint(t, func(int) (string, bool) { return "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true })
	tg, err := New(Config{Enable: true, Endpoint: e.url()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	for _, k := range []string{"k1", "k2", "k3"} {
		if err := tg.Send(context.Background(), oneItem(k)); err != nil {
			t.Fatalf("POST of %s on a connection the endpoint closed: %v", k, err)
		}
	}
	if n := e.reqs.Load(); n != 3 {
		t.Errorf("endpoint read %d requests, want 3", n)
	}
}

// TestH1Deadlines: a POST the endpoint never answers ends at the target's
// timeout, or when the send's context is cancelled, with an error saying
// which.
func TestH1Deadlines(t *testing.T) {
	e := newRawEndpoint(t, func(int) (string, bool) {
		time.Sleep(30 * time.Second)
		return "", true
	})
	tg, err := New(Config{Enable: true, Endpoint: e.url(), Timeout: "300ms"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	start := time.Now()
	err = tg.Send(context.Background(), oneItem("k1"))
	if classify(err) != "retry" || !strings.Contains(err.Error(), errTimeout.Error()) || time.Since(start) > 10*time.Second {
		t.Errorf("timeout: got %v after %v, want a retryable timeout after 300ms", err, time.Since(start))
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	tg2, err := New(Config{Enable: true, Endpoint: e.url(), Timeout: "60s"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tg2.Close()
	start = time.Now()
	err = tg2.Send(ctx, oneItem("k2"))
	if !strings.Contains(err.Error(), context.Canceled.Error()) || time.Since(start) > 10*time.Second {
		t.Errorf("cancel: got %v after %v, want context.Canceled soon after 200ms", err, time.Since(start))
	}
}

// TestH1OnlyWherePlain: https endpoints and endpoints behind a proxy are
// posted to by net/http.
func TestH1OnlyWherePlain(t *testing.T) {
	proxy := func(*http.Request) (*url.URL, error) { return url.Parse("http://proxy:3128") }
	noProxy := func(*http.Request) (*url.URL, error) { return nil, nil }
	for _, c := range []struct {
		endpoint string
		proxy    func(*http.Request) (*url.URL, error)
		want     bool
	}{
		{"http://127.0.0.1:9/hook", noProxy, true},
		{"http://example.com/hook", nil, true},
		{"http://example.com/hook", proxy, false},
		{"https://example.com/hook", noProxy, false},
		{"http://bücher.example/hook", noProxy, false},
		{"http://[fe80::1%25eth0]:8080/hook", noProxy, false},
		{"http://[::1]:8080/hook", noProxy, true},
	} {
		u, err := url.Parse(c.endpoint)
		if err != nil {
			t.Fatal(err)
		}
		if got := newH1Client(u, c.proxy, net.Dialer{}, 8) != nil; got != c.want {
			t.Errorf("%s (proxy %v): got h1 %v, want %v", c.endpoint, c.proxy != nil, got, c.want)
		}
	}
}

// TestH1RejectsLineBreaks: a header value with a line break would split
// the request in two; it is refused, as net/http refuses it.
func TestH1RejectsLineBreaks(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1:9/hook")
	c := newH1Client(u, nil, net.Dialer{}, 8)
	cn := &h1Conn{}
	for _, h := range []http.Header{
		{"X-A": {"ok\r\nX-Injected: 1"}},
		{"X-A\r\nX-Injected": {"1"}},
		{"": {"1"}},
	} {
		if _, err := cn.appendRequest(c, h, nil); err == nil {
			t.Errorf("header %q: got no error, want a refusal", h)
		}
	}
	b, err := cn.appendRequest(c, http.Header{"X-A": {"tab\tok"}}, []byte("body"))
	if err != nil || !strings.HasSuffix(string(b), "X-A: tab\tok\r\nContent-Length: 4\r\n\r\nbody") {
		t.Errorf("got %q, %v, want the header, the length and the body", b, err)
	}
}

// TestH1EarlyAnswer: an endpoint that answers before it read the whole
// body and hangs up (a 413 for an event too large) is heard: the answer
// counts, not the failed write.
func TestH1EarlyAnswer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				// Read the request's head only, answer, hang up.
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil || line == "\r\n" {
						break
					}
				}
				io.WriteString(c, "HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
				c.(*net.TCPConn).CloseWrite()
				time.Sleep(100 * time.Millisecond)
			}()
		}
	}()
	tg, err := New(Config{Enable: true, Endpoint: "http://" + ln.Addr().String() + "/hook"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	it := oneItem("big")
	it[0].Record = []byte(`{"pad":"` + strings.Repeat("p", 32<<20) + `"}`)
	if err := tg.Send(context.Background(), it); classify(err) != "permanent" || !strings.Contains(err.Error(), "413") {
		t.Fatalf("got %v, want the endpoint's 413: a permanent rejection", err)
	}
}

// TestManyLanesKeepTheirConnections: 40 sends at once (a target with 40
// lanes) of 8 POSTs each keep their 320 connections between rounds:
// the second round dials none (the idle cap was 256 connections, so 64
// were closed after each round and dialled again in the next).
func TestManyLanesKeepTheirConnections(t *testing.T) {
	const posts = 40 * 8
	var arrived atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		// Answer once every POST of the round arrived: all in flight at
		// once (10 s at most, if some never come).
		n := arrived.Add(1)
		round := (n - 1) / posts
		for deadline := time.Now().Add(10 * time.Second); arrived.Load() < (round+1)*posts && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
	}))
	defer srv.Close()
	for _, client := range []string{"h1", "net/http"} {
		arrived.Store(0)
		tg, err := New(Config{Enable: true, Endpoint: srv.URL + "/hook", Concurrency: 8}, nil)
		if err != nil {
			t.Fatal(err)
		}
		dials := &tg.dials
		if client == "h1" {
			dials = &tg.h1.dials
		} else {
			tg.h1 = nil
		}
		var rounds []int64
		for round := range 2 {
			var wg sync.WaitGroup
			for lane := range 40 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					items := make([]delivery.Item, 8)
					for i := range items {
						items[i] = delivery.Item{Key: fmt.Sprintf("b/%d-%d-%d", round, lane, i), EventName: event.ObjectCreatedPut, Record: []byte(`{}`)}
					}
					if err := tg.Send(context.Background(), items); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			rounds = append(rounds, dials.Load())
		}
		if rounds[0] < posts || rounds[0] > 2*posts || rounds[1] != rounds[0] {
			t.Errorf("%s: got %v connections dialled after each round of 320 POSTs at once, want no more after the first", client, rounds)
		}
		tg.Close()
	}
}

// TestH1IdleConnectionsClosed: a connection idle longer than
// h1IdleTimeout is closed, not reused: when the next one is taken, and
// when another goes idle (what a burst opened does not stay open).
func TestH1IdleConnectionsClosed(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1:9/hook")
	c := newH1Client(u, nil, net.Dialer{}, 8)
	pipe := func() (*h1Conn, net.Conn) {
		a, b := net.Pipe()
		return &h1Conn{nc: a, br: bufio.NewReader(a)}, b
	}
	closed := func(peer net.Conn) bool {
		peer.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := peer.Read(make([]byte, 1))
		return errors.Is(err, io.EOF)
	}
	old, oldPeer := pipe()
	fresh, freshPeer := pipe()
	c.idle = []*h1Conn{old}
	old.usedAt = time.Now().Add(-2 * h1IdleTimeout)
	c.put(fresh)
	if len(c.idle) != 1 || c.idle[0] != fresh || !closed(oldPeer) {
		t.Errorf("put beside a connection idle for %v: got %d idle, want only the fresh one and the old one closed", 2*h1IdleTimeout, len(c.idle))
	}
	fresh.usedAt = time.Now().Add(-2 * h1IdleTimeout)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // get must not dial: only the stale one is there, and it is dropped
	if cn, reused, err := c.get(ctx, false); err == nil || reused || cn != nil {
		t.Errorf("get with only a stale connection idle: got %v, reused %v, %v; want it dropped and a dial (cancelled)", cn, reused, err)
	}
	if len(c.idle) != 0 || !closed(freshPeer) {
		t.Errorf("got %d idle connections, want 0 and the stale one closed", len(c.idle))
	}
}

// TestH1AllIdleStale: when the endpoint closed every idle connection (it
// restarted), a POST that finds one of them closed is sent again on a
// newly dialled connection, not on the next stale one.
func TestH1AllIdleStale(t *testing.T) {
	e := newRawEndpoint(t, func(int) (string, bool) { return "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false })
	tg, err := New(Config{Enable: true, Endpoint: e.url()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	ctx := context.Background()
	var conns []*h1Conn
	for range 3 {
		cn, _, err := tg.h1.get(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, cn)
	}
	for _, cn := range conns {
		tg.h1.put(cn)
	}
	for deadline := time.Now().Add(10 * time.Second); e.conns.Load() < 3 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	e.mu.Lock()
	for _, c := range e.open {
		c.Close()
	}
	e.mu.Unlock()
	if err := tg.Send(ctx, oneItem("k1")); err != nil {
		t.Fatalf("POST with every idle connection closed by the endpoint: %v", err)
	}
	if n := tg.h1.dials.Load(); n != 4 {
		t.Errorf("got %d connections dialled, want 4 (3 stale, then a new one)", n)
	}
}
