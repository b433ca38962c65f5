package relay

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bucketrelay/bucketrelay/internal/human"

	"github.com/prometheus/client_golang/prometheus"
)

// The status page: GET / renders, on the server, one row per target (state,
// lag in events and bytes, oldest pending age, last error, a sparkline of
// the lag over the last minutes) and each target's quarantine with retry and drop buttons, which
// call POST /v1/targets/{arn}/quarantine/{retry,drop}. It refreshes itself
// every few seconds. When the relay has an access token the page asks for
// it once and keeps a session cookie (see pageAllowed).

// mountLive registers the watch stream and the status page on mux, and on
// the first call registers their metrics and starts the lag sampler (which
// stops when the relay closes).
func (r *Relay) mountLive(mux *http.ServeMux) {
	r.live.once.Do(func() {
		r.live.dropped = prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relay_watchers_dropped_total", Help: "Watch streams dropped because the watcher fell behind.",
		})
		watching := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "relay_watchers", Help: "Watch streams (GET /v1/buckets/{bucket}/events) connected.",
		}, func() float64 { return float64(r.live.watching()) })
		r.metrics.reg.MustRegister(r.live.dropped, watching)
		go r.sampleLag()
	})
	mux.HandleFunc("GET /v1/buckets/{bucket}/events", r.getBucketEvents)
	mux.HandleFunc("GET /{$}", r.statusPage)
	mux.HandleFunc("POST /login", r.pageLogin)
	mux.HandleFunc("POST /logout", r.pageLogout)
}

// Lag history.

// lagWindow is how far back the sparkline reaches.
const lagWindow = 5 * time.Minute

// DefaultLagSampleEvery is how often each target's lag is sampled for the
// status page's sparkline.
const DefaultLagSampleEvery = 2 * time.Second

// maxLagSamples bounds each target's ring whatever the sampling interval.
const maxLagSamples = 600

type lagSample struct {
	t time.Time
	v int64
}

// lagHistory keeps, per target, the lag samples of the last lagWindow.
type lagHistory struct {
	mu sync.Mutex
	m  map[string][]lagSample
}

func (h *lagHistory) add(arn string, s lagSample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[string][]lagSample{}
	}
	xs := append(h.m[arn], s)
	cut := 0
	for cut < len(xs) && (s.t.Sub(xs[cut].t) > lagWindow || len(xs)-cut > maxLagSamples) {
		cut++
	}
	if cut > 0 {
		xs = append(xs[:0], xs[cut:]...)
	}
	h.m[arn] = xs
}

func (h *lagHistory) get(arn string) []lagSample {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]lagSample(nil), h.m[arn]...)
}

// sampleLag records every target's lag each DefaultLagSampleEvery until the
// relay closes.
func (r *Relay) sampleLag() {
	t := time.NewTicker(orDefault(r.live.sampleEvery, DefaultLagSampleEvery))
	defer t.Stop()
	for {
		now := time.Now()
		for _, s := range r.Stats() {
			r.live.lag.add(s.ID, lagSample{now, max(s.Pending, 0)})
		}
		select {
		case <-r.done:
			return
		case <-t.C:
		}
	}
}

// sparkline is a lag history drawn as SVG polyline points.
type sparkline struct {
	W, H       int
	Line, Area string
	Max        int64
}

func newSparkline(xs []lagSample, now time.Time) sparkline {
	sp := sparkline{W: 160, H: 32}
	if len(xs) == 0 {
		return sp
	}
	for _, s := range xs {
		sp.Max = max(sp.Max, s.v)
	}
	from := now.Add(-lagWindow)
	var line []string
	var x0 float64
	for i, s := range xs {
		x := float64(sp.W) * float64(s.t.Sub(from)) / float64(lagWindow)
		x = min(max(x, 0), float64(sp.W))
		y := float64(sp.H) - 1
		if sp.Max > 0 {
			y = float64(sp.H) - 1 - float64(sp.H-3)*float64(s.v)/float64(sp.Max)
		}
		if i == 0 {
			x0 = x
		}
		line = append(line, strconv.FormatFloat(x, 'f', 1, 64)+","+strconv.FormatFloat(y, 'f', 1, 64))
	}
	sp.Line = strings.Join(line, " ")
	last := line[len(line)-1]
	lastX := last[:strings.IndexByte(last, ',')]
	sp.Area = fmt.Sprintf("%s %s,%d %.1f,%d", sp.Line, lastX, sp.H, x0, sp.H)
	return sp
}

// The page.

//go:embed statuspage.html
var statusPageHTML string

var pageTemplates = template.Must(template.New("statuspage").Parse(statusPageHTML))

// pageQuarantineRows is how many quarantined events the page lists per
// target; the count says how many more there are.
const pageQuarantineRows = 50

type pageData struct {
	Nonce      string
	Refresh    int // milliseconds
	Now        string
	Window     string
	Targets    []pageTarget
	LogEvents  int64
	LogBytes   string
	LastSeq    uint64
	Watchers   int
	HasToken   bool
	LoginError string
}

type pageTarget struct {
	ARN, State, StateClass string
	Lag                    int64
	// LagBytes is TargetStatus.LagBytes; LagSize is it for a reader.
	LagBytes               int64
	LagSize                string
	Oldest                 string
	LastError, LastErrorAt string
	NextRetry              string
	Delivered, Retried     uint64
	Quarantined            uint64
	Spark                  sparkline
	Quarantine             []pageQuarantined
	QuarantineMore         int
	QuarantineErr          string
}

type pageQuarantined struct {
	Seq                   uint64
	Key, EventName, Error string
	Attempts              int
	Time                  string
}

func (r *Relay) pageData(now time.Time) pageData {
	d := pageData{
		Refresh:   int(pageRefresh / time.Millisecond),
		Now:       now.UTC().Format("2006-01-02 15:04:05Z"),
		Window:    fmt.Sprintf("%d min", int(lagWindow.Minutes())),
		LogEvents: r.log.Events(),
		LogBytes:  human.Bytes(r.log.Bytes()),
		LastSeq:   r.log.LastSeq(),
		Watchers:  r.live.watching(),
		HasToken:  r.cfg.Relay.AccessToken != "",
	}
	for _, s := range r.Stats() {
		t := pageTarget{
			ARN: s.ID, State: s.State, StateClass: strings.ReplaceAll(s.State, " ", "-"),
			Lag: max(s.Pending, 0), Oldest: "–", LastError: s.LastError,
			Delivered: s.Delivered, Retried: s.Retried, Quarantined: s.Quarantined,
		}
		t.LagBytes = r.lagBytes(s.ID, t.Lag)
		t.LagSize = human.Bytes(t.LagBytes)
		if at, ok := r.eng.OldestPending(s.ID); ok {
			t.Oldest = human.Age(now.Sub(at))
		}
		if !s.LastErrorTime.IsZero() {
			t.LastErrorAt = human.Age(now.Sub(s.LastErrorTime)) + " ago"
		}
		if !s.NextRetry.IsZero() {
			t.NextRetry = "in " + human.Age(s.NextRetry.Sub(now))
		}
		// The sparkline ends with the lag of now, so it agrees with the
		// number beside it.
		t.Spark = newSparkline(append(r.live.lag.get(s.ID), lagSample{now, t.Lag}), now)
		q, err := r.log.Quarantined(s.ID)
		if err != nil {
			t.QuarantineErr = err.Error()
		}
		for i, e := range q {
			if i == pageQuarantineRows {
				t.QuarantineMore = len(q) - i
				break
			}
			t.Quarantine = append(t.Quarantine, pageQuarantined{
				Seq: e.Seq, Key: e.Key, EventName: e.Name, Error: e.Error, Attempts: e.Attempts,
				Time: e.Time.UTC().Format("2006-01-02 15:04:05Z"),
			})
		}
		d.Targets = append(d.Targets, t)
	}
	return d
}

// lagBytes is the size of target's lag events as logged (what
// relay.queueLimitBytes bounds); 0 without lag or on a cluster log, which
// does not count it.
func (r *Relay) lagBytes(target string, lag int64) int64 {
	if ll, ok := r.log.(limitLog); ok && lag > 0 {
		_, b := ll.Pending(target)
		return b
	}
	return 0
}

// pageRefresh is how often the page reloads its figures.
const pageRefresh = 2 * time.Second

func (r *Relay) statusPage(w http.ResponseWriter, req *http.Request) {
	if !r.pageAuthorized(req) {
		r.renderPage(w, http.StatusUnauthorized, "login", pageData{HasToken: true})
		return
	}
	r.renderPage(w, http.StatusOK, "page", r.pageData(time.Now()))
}

// renderPage renders a template with headers that keep the page to its own
// inline script and style and out of frames.
func (r *Relay) renderPage(w http.ResponseWriter, code int, name string, d pageData) {
	var nonce [16]byte
	rand.Read(nonce[:])
	d.Nonce = base64.RawURLEncoding.EncodeToString(nonce[:]) // no + or /: the same in HTML and CSP
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+d.Nonce+"'; style-src 'nonce-"+d.Nonce+"'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	w.WriteHeader(code)
	if err := pageTemplates.ExecuteTemplate(w, name, d); err != nil {
		r.lg.Error("rendering the status page", "err", err)
	}
}

// Access.

// sessionCookie holds proof of the access token for the status page: an
// HMAC of a fixed label keyed with the token, never the token itself.
// Changing the token ends every session.
const sessionCookie = "relay_session"

// pageHeader marks requests made by the page's script. A request that is
// authorized by the session cookie alone must carry it to change anything:
// another site can make a browser send the cookie with a form, but not
// with a custom header.
const pageHeader = "X-Relay-Page"

func (r *Relay) sessionValue() string {
	m := hmac.New(sha256.New, []byte(r.cfg.Relay.AccessToken))
	m.Write([]byte("bucketrelay status page session v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (r *Relay) hasSession(req *http.Request) bool {
	c, err := req.Cookie(sessionCookie)
	return err == nil && subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.sessionValue())) == 1
}

func (r *Relay) hasBearer(req *http.Request) bool {
	want := "Bearer " + r.cfg.Relay.AccessToken
	return subtle.ConstantTimeCompare([]byte(req.Header.Get("Authorization")), []byte(want)) == 1
}

// pageAuthorized reports whether req may see the status page.
func (r *Relay) pageAuthorized(req *http.Request) bool {
	return r.cfg.Relay.AccessToken == "" || r.hasBearer(req) || r.hasSession(req)
}

// pageAllowed reports whether Handler's access token check lets req
// through without a bearer token: the page itself and its login and logout
// (they check the token themselves), and requests with the page's session
// cookie: reads, and changes sent by the page's script (pageHeader).
func (r *Relay) pageAllowed(req *http.Request) bool {
	switch {
	case req.URL.Path == "/" && (req.Method == http.MethodGet || req.Method == http.MethodHead),
		(req.URL.Path == "/login" || req.URL.Path == "/logout") && req.Method == http.MethodPost:
		return true
	}
	if !r.hasSession(req) {
		return false
	}
	return req.Method == http.MethodGet || req.Method == http.MethodHead || req.Header.Get(pageHeader) != ""
}

// pageLogin serves POST /login: the form's token, if right, buys a session
// cookie.
func (r *Relay) pageLogin(w http.ResponseWriter, req *http.Request) {
	token := r.cfg.Relay.AccessToken
	if token != "" {
		req.Body = http.MaxBytesReader(w, req.Body, 64<<10)
		given := req.PostFormValue("token")
		if subtle.ConstantTimeCompare([]byte(given), []byte(token)) != 1 {
			r.lg.Warn("status page: wrong access token given", "remote", req.RemoteAddr)
			r.renderPage(w, http.StatusUnauthorized, "login", pageData{HasToken: true, LoginError: "That is not the relay's access token."})
			return
		}
		http.SetCookie(w, &http.Cookie{
			Name: sessionCookie, Value: r.sessionValue(), Path: "/",
			HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: req.TLS != nil,
		})
	}
	seeOther(w)
}

// pageLogout serves POST /logout: it ends the session.
func (r *Relay) pageLogout(w http.ResponseWriter, req *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	seeOther(w)
}

// seeOther sends the browser back to the page. The location is relative so
// that it works where the handler is mounted under a prefix.
func seeOther(w http.ResponseWriter) {
	w.Header().Set("Location", "./")
	w.WriteHeader(http.StatusSeeOther)
}

// Formatting.
