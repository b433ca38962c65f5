package webhook

// A small HTTP/1.1 client for plain http:// endpoints reached without a
// proxy: one POST, one answer, on pooled keep-alive connections. It does
// what net/http's client does for the webhook's POSTs with about half its
// CPU per POST (bench_test.go's BenchmarkSend compares them): no
// goroutines per connection handing requests and responses over channels,
// no header map per answer, the request written with one write. https://
// endpoints (TLS settings, HTTP/2) and endpoints behind a proxy
// (HTTP_PROXY) keep net/http. github.com/valyala/fasthttp's client saves
// as much CPU per POST (measured), but it cannot be cancelled: a send
// must end when its context does (shutdown grace, Remove, Replace), not
// only at its timeout.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// h1MaxHeaderBytes bounds an answer's status line and headers, as
// net/http's Transport does by default.
const h1MaxHeaderBytes = 1 << 20

// h1DrainLimit is how much of an answer's body is read so that its
// connection can be reused; a longer body closes the connection instead.
const h1DrainLimit = 64 << 10

// h1IdleTimeout closes a connection idle for longer instead of reusing it:
// servers close idle keep-alive connections, and a write to one they
// closed may fail.
const h1IdleTimeout = 90 * time.Second

// h1Client posts to one endpoint.
type h1Client struct {
	addr    string // host:port dialled
	head    []byte // "POST <request-target> HTTP/1.1\r\nHost: <host>\r\n"
	basic   string // Authorization of the URL's user info, "" without
	dialer  net.Dialer
	maxIdle int

	mu     sync.Mutex
	idle   []*h1Conn // most recently used last
	closed bool

	dials atomic.Int64 // connections dialled, for tests
}

// h1Conn is one keep-alive connection.
type h1Conn struct {
	nc     net.Conn
	br     *bufio.Reader
	buf    []byte    // the request being written; kept between POSTs
	line   []byte    // a header line longer than br's buffer
	usedAt time.Time // when it went idle
}

// h1Answer is what a POST's answer says that the webhook uses.
type h1Answer struct {
	status     int
	retryAfter string
	location   string
}

// newH1Client returns a client for u, or nil when u needs net/http: https,
// a proxy from the environment, or a host that is not plain ASCII (IDNA)
// or has an IPv6 zone.
func newH1Client(u *url.URL, proxy func(*http.Request) (*url.URL, error), dialer net.Dialer, maxIdle int) *h1Client {
	if u.Scheme != "http" || u.Opaque != "" {
		return nil
	}
	if proxy != nil {
		if p, err := proxy(&http.Request{URL: u}); err != nil || p != nil {
			return nil
		}
	}
	host := removeEmptyPort(u.Host)
	for i := 0; i < len(host); i++ {
		if host[i] >= 0x80 || host[i] <= ' ' || host[i] == '%' {
			return nil
		}
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	c := &h1Client{addr: net.JoinHostPort(u.Hostname(), port), dialer: dialer, maxIdle: maxIdle}
	c.head = fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: %s\r\n", u.RequestURI(), host)
	if u.User != nil {
		pw, _ := u.User.Password()
		c.basic = "Basic " + base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pw))
	}
	return c
}

// errStale is a kept-alive connection that failed before any byte of an
// answer arrived: the server had closed it.
var errStale = errors.New("webhook: the endpoint closed the connection before answering")

// errTimeout is a POST that got no whole answer within the target's
// timeout.
var errTimeout = errors.New("webhook: no answer within the timeout")

// post sends one POST of body with hdr and reads its answer. On a
// kept-alive connection the endpoint closed before answering it posts once
// more on a new connection, as a browser would (at least once: the event
// may arrive twice, with the same webhook-id).
func (c *h1Client) post(ctx context.Context, hdr http.Header, body []byte, timeout time.Duration) (h1Answer, error) {
	for attempt := 0; ; attempt++ {
		cn, reused, err := c.get(ctx, attempt > 0)
		if err != nil {
			return h1Answer{}, err
		}
		a, keep, err := cn.roundTrip(ctx, c, hdr, body, timeout)
		if err != nil && ctx.Err() == nil && errors.Is(err, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("%w (%v): %w", errTimeout, timeout, err)
		}
		if err == nil && keep {
			c.put(cn)
		} else {
			cn.nc.Close()
		}
		if err != nil && errors.Is(err, errStale) && reused && attempt == 0 && ctx.Err() == nil {
			continue
		}
		return a, err
	}
}

// get returns an idle connection (reused true) or, with fresh or none
// idle, dials one.
func (c *h1Client) get(ctx context.Context, fresh bool) (*h1Conn, bool, error) {
	c.mu.Lock()
	for !fresh && len(c.idle) > 0 {
		cn := c.idle[len(c.idle)-1]
		c.idle = c.idle[:len(c.idle)-1]
		if time.Since(cn.usedAt) < h1IdleTimeout {
			c.mu.Unlock()
			return cn, true, nil
		}
		cn.nc.Close()
	}
	c.mu.Unlock()
	nc, err := c.dialer.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, false, err
	}
	c.dials.Add(1)
	return &h1Conn{nc: nc, br: bufio.NewReaderSize(nc, 4<<10)}, false, nil
}

// put keeps cn for the next POST, or closes it when the pool is full or
// closed.
func (c *h1Client) put(cn *h1Conn) {
	if cap(cn.buf) > 256<<10 {
		cn.buf = nil // one large event does not pin its buffer
	}
	cn.usedAt = time.Now()
	c.mu.Lock()
	// The least recently used connection is closed once idle too long:
	// after a burst, the connections it needed do not stay open for good.
	for len(c.idle) > 0 && cn.usedAt.Sub(c.idle[0].usedAt) > h1IdleTimeout {
		c.idle[0].nc.Close()
		c.idle = c.idle[1:]
	}
	if c.closed || len(c.idle) >= c.maxIdle {
		c.mu.Unlock()
		cn.nc.Close()
		return
	}
	c.idle = append(c.idle, cn)
	c.mu.Unlock()
}

// closeIdle closes the idle connections; with final, connections in use
// are closed when their POST ends.
func (c *h1Client) closeIdle(final bool) {
	c.mu.Lock()
	idle := c.idle
	c.idle = nil
	c.closed = c.closed || final
	c.mu.Unlock()
	for _, cn := range idle {
		cn.nc.Close()
	}
}

// longAgo is a deadline in the past: it ends a connection's I/O at once.
var longAgo = time.Unix(1, 0)

// roundTrip writes the request and reads its answer. keep reports whether
// the connection can carry another request. An error wrapping errStale
// means nothing of an answer arrived and the connection failed.
func (cn *h1Conn) roundTrip(ctx context.Context, c *h1Client, hdr http.Header, body []byte, timeout time.Duration) (a h1Answer, keep bool, err error) {
	b, err := cn.appendRequest(c, hdr, body)
	if err != nil {
		return a, false, err
	}
	cn.buf = b[:0]
	if err := cn.nc.SetDeadline(time.Now().Add(timeout)); err != nil {
		return a, false, err
	}
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { cn.nc.SetDeadline(longAgo) })
		defer func() {
			if !stop() && err == nil {
				keep = false // the deadline may have been cut: start afresh
			}
			if ctx.Err() != nil && err != nil {
				err = fmt.Errorf("%w (%w)", ctx.Err(), err)
			}
		}()
	}
	if _, werr := cn.nc.Write(b); werr != nil {
		if errors.Is(werr, os.ErrDeadlineExceeded) {
			return a, false, werr
		}
		// An endpoint may answer (413, say) and hang up before it read
		// the whole body: its answer counts.
		if a, _, err := cn.readAnswer(); err == nil {
			return a, false, nil
		}
		return a, false, fmt.Errorf("%w: %w", errStale, werr)
	}
	return cn.readAnswer()
}

// appendRequest appends the request line, the headers and body to cn.buf.
// Header names and values are checked as net/http checks them: a value
// with a line break would split the request.
func (cn *h1Conn) appendRequest(c *h1Client, hdr http.Header, body []byte) ([]byte, error) {
	b := append(cn.buf[:0], c.head...)
	for k, vs := range hdr {
		if !validHeaderName(k) {
			return nil, fmt.Errorf("webhook: invalid header field name %q", k)
		}
		for _, v := range vs {
			if !validHeaderValue(v) {
				return nil, fmt.Errorf("webhook: invalid header field value for %q", k)
			}
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	if c.basic != "" && hdr["Authorization"] == nil {
		b = append(b, "Authorization: "...)
		b = append(b, c.basic...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	return append(b, body...), nil
}

// readAnswer reads a response: its status and the headers the webhook
// uses, skipping interim (1xx) answers, and discards its body.
func (cn *h1Conn) readAnswer() (a h1Answer, keep bool, err error) {
	first := true
	for {
		line, err := cn.readLine()
		if err != nil {
			if first && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
				return a, false, fmt.Errorf("%w: %w", errStale, err)
			}
			return a, false, fmt.Errorf("webhook: reading the answer: %w", err)
		}
		first = false
		// "HTTP/1.1 200 OK": the version, a space, three digits.
		if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
			return a, false, fmt.Errorf("webhook: malformed HTTP status line %q", trim(line))
		}
		minor := line[7]
		code, err := strconv.Atoi(string(line[9:12]))
		if err != nil || code < 100 {
			return a, false, fmt.Errorf("webhook: malformed HTTP status code %q", trim(line[9:12]))
		}
		a = h1Answer{status: code}
		keep = minor == '1'
		length, chunked := int64(-1), false
		total := len(line)
		for {
			line, err = cn.readLine()
			if err != nil {
				return a, false, fmt.Errorf("webhook: reading the answer's headers: %w", err)
			}
			if total += len(line); total > h1MaxHeaderBytes {
				return a, false, errors.New("webhook: answer's headers too long")
			}
			if len(line) == 0 {
				break
			}
			i := bytes.IndexByte(line, ':')
			if i <= 0 {
				if line[0] == ' ' || line[0] == '\t' {
					continue // a folded line, obsolete: a value the webhook does not use
				}
				return a, false, fmt.Errorf("webhook: malformed HTTP header line %q", trim(line))
			}
			name, value := line[:i], bytes.TrimSpace(line[i+1:])
			switch {
			case asciiEqualFold(name, "Content-Length"):
				n, err := strconv.ParseInt(string(value), 10, 64)
				if err != nil || n < 0 || (length >= 0 && n != length) {
					return a, false, fmt.Errorf("webhook: bad Content-Length %q", trim(value))
				}
				length = n
			case asciiEqualFold(name, "Transfer-Encoding"):
				if !asciiEqualFold(value, "chunked") {
					return a, false, fmt.Errorf("webhook: unsupported Transfer-Encoding %q", trim(value))
				}
				chunked = true
			case asciiEqualFold(name, "Connection"):
				for _, tok := range bytes.Split(value, []byte(",")) {
					switch tok = bytes.TrimSpace(tok); {
					case asciiEqualFold(tok, "close"):
						keep = false
					case asciiEqualFold(tok, "keep-alive") && minor == '0':
						keep = true
					}
				}
			case asciiEqualFold(name, "Retry-After"):
				a.retryAfter = string(value)
			case asciiEqualFold(name, "Location"):
				a.location = string(value)
			}
		}
		if code == http.StatusSwitchingProtocols {
			return a, false, errors.New("webhook: endpoint answered 101 Switching Protocols to a POST")
		}
		if code < 200 {
			continue // interim: the answer follows
		}
		switch {
		case code == http.StatusNoContent || code == http.StatusNotModified:
			// no body
		case chunked:
			if !cn.discardChunked() {
				keep = false
			}
		case length >= 0:
			if length > h1DrainLimit {
				return a, false, nil
			}
			if _, err := cn.br.Discard(int(length)); err != nil {
				return a, false, nil
			}
		default:
			// The body runs to the connection's end.
			_, _ = io.CopyN(io.Discard, cn.br, h1DrainLimit)
			keep = false
		}
		return a, keep, nil
	}
}

// discardChunked reads a chunked body and its trailers, up to
// h1DrainLimit; it reports whether the connection is at the next answer.
func (cn *h1Conn) discardChunked() bool {
	var read int64
	for {
		line, err := cn.readLine()
		if err != nil {
			return false
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
		if err != nil || n < 0 {
			return false
		}
		if n == 0 {
			for { // trailers, up to the empty line
				line, err := cn.readLine()
				if err != nil {
					return false
				}
				if len(line) == 0 {
					return true
				}
			}
		}
		if read += n; read > h1DrainLimit {
			return false
		}
		if _, err := cn.br.Discard(int(n)); err != nil {
			return false
		}
		if line, err := cn.readLine(); err != nil || len(line) != 0 {
			return false
		}
	}
}

// readLine returns the next line without its CRLF (or LF). The slice is
// valid until the next read.
func (cn *h1Conn) readLine() ([]byte, error) {
	line, err := cn.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		cn.line = append(cn.line[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			if len(cn.line) > h1MaxHeaderBytes {
				return nil, errors.New("line too long")
			}
			line, err = cn.br.ReadSlice('\n')
			cn.line = append(cn.line, line...)
		}
		line = cn.line
	}
	if err != nil {
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// validHeaderName reports whether k is an HTTP token (RFC 9110 5.1).
func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := range len(k) {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// validHeaderValue reports whether v has no control character but tab
// (RFC 9110 5.5): a line break in it would split the request.
func validHeaderValue(v string) bool {
	for i := range len(v) {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// asciiEqualFold reports whether b equals s, ASCII case folded.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// trim cuts what an error quotes from an answer to 64 bytes.
func trim(b []byte) []byte { return b[:min(len(b), 64)] }
