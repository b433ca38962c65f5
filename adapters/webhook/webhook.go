// Package webhook delivers events to an HTTP endpoint: one POST per event
// with the body {"EventName":…,"Key":…,"Records":[event]}, over keep-alive
// connections, up to Config.Concurrency POSTs of a send at once (each
// object's events one after another, in log order). A 2xx response is success; 3xx (redirects are never
// followed), 408, 429, 5xx and network errors are retried (a 429 or 503
// with Retry-After after the wait it asks for, capped by
// delivery.MaxRetryAfter); 410 Gone pauses the target until an operator
// resumes it, dropping nothing; any other status means the endpoint
// rejected the event for good, and it is quarantined.
package webhook

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/adapters/webhook/stdwebhooks"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/event/cloudevent"
)

// maxPOSTs is the most POSTs a target with concurrency conc may have in
// flight: the relay's "lanes" (at most 256) times its "inflight" (at most
// 64) sends at once, each posting conc at once.
func maxPOSTs(conc int) int { return 256 * 64 * conc }

// DefaultTimeout bounds one POST when Config.Timeout is empty.
const DefaultTimeout = 10 * time.Second

// Config is a webhook target's entry under notify.webhook.<id>.
type Config struct {
	// Enable starts the target; a disabled target is parsed, not started.
	Enable bool `json:"enable"`
	// Endpoint is the URL events are POSTed to. Required.
	Endpoint string `json:"endpoint"`
	// AuthToken, if set, is sent as "Authorization: Bearer <token>" (a value
	// that already has a scheme, such as "Basic …", is sent as it is).
	AuthToken string `json:"authToken,omitempty"`
	// TLSFiles are the CA file and the client certificate for https://
	// endpoints: caFile, clientCert and clientKey.
	kit.TLSFiles
	// Timeout bounds each POST, as a Go duration ("10s"); empty means
	// DefaultTimeout.
	Timeout string `json:"timeout,omitempty"`
	// SigningSecrets, if set, sign every POST as Standard Webhooks 1.0 does
	// (webhook-timestamp and webhook-signature, one v1 signature per
	// secret, so an endpoint can rotate its secret); each is "whsec_" and
	// base64. Every POST carries webhook-id, the event's id, either way.
	SigningSecrets []string `json:"signingSecrets,omitempty"`
	// Format is the body: "" for the guide's {"EventName","Key","Records"},
	// "cloudevents" for a CloudEvent 1.0 (HTTP binding).
	Format kit.Format `json:"format,omitempty"`
	// CloudEventsMode is "binary" (the default: ce-* headers, the record
	// as the body) or "structured" (application/cloudevents+json).
	CloudEventsMode kit.CloudEventsMode `json:"cloudeventsMode,omitempty"`
	// Concurrency is how many POSTs of one send may be in flight at once,
	// each on its own keep-alive connection; events of one object are
	// always posted one after another, in log order. 1 posts every event
	// in log order, one at a time; 0 means DefaultConcurrency.
	Concurrency int `json:"concurrency,omitempty"`
}

// Validate checks the configuration. Errors are *kit.FieldError.
func (c *Config) Validate() error {
	if c.Endpoint == "" {
		return kit.Fieldf("endpoint", "required")
	}
	u, err := url.Parse(c.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return kit.Fieldf("endpoint", "must be an http:// or https:// URL")
	}
	if err := c.TLSFiles.Validate(""); err != nil {
		return err
	}
	if err := kit.RequireTLSScheme(&c.TLSFiles, u.Scheme == "https", "an https:// endpoint"); err != nil {
		return err
	}
	if c.Timeout != "" {
		if d, err := time.ParseDuration(c.Timeout); err != nil || d <= 0 {
			return kit.Fieldf("timeout", "must be a positive duration such as \"10s\"")
		}
	}
	if c.Concurrency < 0 || c.Concurrency > MaxConcurrency {
		return kit.Fieldf("concurrency", "must be between 1 and %d (0 or absent: %d)", MaxConcurrency, DefaultConcurrency)
	}
	if err := c.Format.ValidateMessage(); err != nil {
		return err
	}
	if err := c.CloudEventsMode.Validate(true); err != nil {
		return err
	}
	for i, sec := range c.SigningSecrets {
		if _, err := stdwebhooks.ParseSecret(sec); err != nil {
			// Never the secret itself: its position.
			return kit.Fieldf(fmt.Sprintf("signingSecrets.%d", i), "must be whsec_ followed by base64")
		}
	}
	return nil
}

// Target posts events to one endpoint.
type Target struct {
	cfg    Config
	client *http.Client
	signer *stdwebhooks.Signer // nil without signing secrets
	// binding is the CloudEvents HTTP binding in binary mode, nil for the
	// guide's body and for structured mode.
	binding *cloudevent.Binding
	lg      *slog.Logger
	conc    int      // POSTs of one send in flight at once
	url     *url.URL // the endpoint, parsed once; requests only read it
	authHdr []string // the Authorization header's value, nil without a token
	host    string   // the Host header: url's host without an empty port
	timeout time.Duration
	// h1 posts to a plain http:// endpoint without a proxy (h1.go); nil:
	// client does.
	h1 *h1Client
	// dials counts the connections client dialled, for tests.
	dials atomic.Int64
}

var _ delivery.Target = (*Target)(nil)

// New returns a target for cfg. It reads the TLS files but does not connect.
func New(cfg Config, lg *slog.Logger) (*Target, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if lg == nil {
		lg = slog.Default()
	}
	timeout := DefaultTimeout
	if cfg.Timeout != "" {
		timeout, _ = time.ParseDuration(cfg.Timeout)
	}
	conc := cfg.Concurrency
	if conc == 0 {
		conc = DefaultConcurrency
	}
	tlsConf, err := cfg.TLSFiles.Config("", "")
	if err != nil {
		return nil, err
	}
	dialer := net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	t := &Target{cfg: cfg, lg: lg, conc: conc, timeout: timeout}
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			t.dials.Add(1)
			return dialer.DialContext(ctx, network, addr)
		},
		TLSClientConfig: tlsConf,
		// Every connection the target's sends may use at once stays open
		// between sends: lanes × inflight × concurrency. Only connections
		// that were in use at once are ever idle, so the cap opens none;
		// IdleConnTimeout closes those a burst left.
		MaxIdleConnsPerHost: maxPOSTs(conc),
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
		// The answer's body is discarded: no Accept-Encoding, nothing to
		// decompress.
		DisableCompression: true,
	}
	auth := ""
	if cfg.AuthToken != "" {
		auth = "Bearer " + cfg.AuthToken
		if i := bytes.IndexByte([]byte(cfg.AuthToken), ' '); i > 0 {
			auth = cfg.AuthToken
		}
	}
	client := &http.Client{
		Transport: tr,
		Timeout:   timeout,
		// A redirect is never followed: Go's client would turn the POST into
		// a GET without the body, and the final 2xx would count as delivered.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	u, err := url.Parse(cfg.Endpoint)
	if err != nil {
		return nil, kit.Fieldf("endpoint", "must be an http:// or https:// URL")
	}
	t.client, t.url, t.host = client, u, removeEmptyPort(u.Host)
	t.h1 = newH1Client(u, tr.Proxy, dialer, tr.MaxIdleConnsPerHost)
	if auth != "" {
		t.authHdr = []string{auth}
	}
	if cfg.Format.CloudEvents() && !cfg.CloudEventsMode.Structured(true) {
		t.binding = &cloudevent.HTTP
	}
	if len(cfg.SigningSecrets) > 0 {
		if t.signer, err = stdwebhooks.NewSigner(cfg.SigningSecrets...); err != nil {
			return nil, kit.Fieldf("signingSecrets", "%v", err)
		}
	}
	return t, nil
}

func (t *Target) post(ctx context.Context, it *delivery.Item) error {
	if t.h1 != nil {
		return t.postH1(ctx, it)
	}
	req, err := t.request(ctx, it)
	if err != nil {
		return err
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %s", t.redact(err.Error()))
	}
	// Drain a little of the body so the connection can be reused.
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		where := "no Location"
		if loc, err := resp.Location(); err == nil {
			where = "Location " + t.redact(loc.String())
		} else if h := resp.Header.Get("Location"); h != "" {
			where = "Location " + t.redact(h)
		}
		return redirectError(resp.StatusCode, where)
	}
	return t.statusError(resp.StatusCode, resp.Header.Get("Retry-After"))
}

// postH1 is post through h1 (h1.go).
func (t *Target) postH1(ctx context.Context, it *delivery.Item) error {
	hdr := headerPool.Get().(http.Header)
	defer func() { clear(hdr); headerPool.Put(hdr) }()
	body := t.message(it, hdr)
	a, err := t.h1.post(ctx, hdr, body, t.timeout)
	if err != nil {
		// As net/http words it: Post "<endpoint>": <error>.
		return fmt.Errorf("webhook: %s", t.redact(fmt.Sprintf("Post %q: %v", t.cfg.Endpoint, err)))
	}
	if a.status >= 300 && a.status < 400 {
		where := "no Location"
		if a.location != "" {
			if loc, err := t.url.Parse(a.location); err == nil {
				where = "Location " + t.redact(loc.String())
			} else {
				where = "Location " + t.redact(a.location)
			}
		}
		return redirectError(a.status, where)
	}
	return t.statusError(a.status, a.retryAfter)
}

// headerPool holds the header maps of h1's POSTs, which only read them.
var headerPool = sync.Pool{New: func() any { return make(http.Header, 8) }}

// statusError is StatusError with a 429's or 503's Retry-After.
func (t *Target) statusError(code int, retryAfter string) error {
	err := StatusError(code)
	if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
		if d, ok := RetryAfter(retryAfter, time.Now()); ok {
			err = delivery.RetryAfter(fmt.Errorf("%w (Retry-After %s)", err, d.Round(time.Second)), d)
		}
	}
	return err
}

// message sets it's headers in hdr and returns its body: the target's
// format (CloudEvents binary mode's headers among them), the event's id,
// the signature and the authorization. The constant headers' values are
// shared by every request (they are only read).
func (t *Target) message(it *delivery.Item, hdr http.Header) []byte {
	body, ctype := t.cfg.Format.Encode(it, t.binding, func(k, v string) { hdr.Set(k, v) })
	if ctype == kit.JSONContentType {
		hdr["Content-Type"] = jsonContentType
	} else {
		hdr["Content-Type"] = []string{ctype}
	}
	hdr["User-Agent"] = userAgent
	// The event's id, the same on every retry: consumers drop duplicates
	// by it. Signed, the timestamp is this attempt's.
	if id := it.EventID(); t.signer != nil {
		t.signer.SetHeaders(hdr, id, time.Now(), body)
	} else if id != "" {
		hdr[stdwebhooks.HeaderID] = []string{id}
	}
	if t.authHdr != nil {
		hdr["Authorization"] = t.authHdr
	}
	return body
}

// request builds it's POST for net/http (message). The endpoint is parsed
// once (New).
func (t *Target) request(ctx context.Context, it *delivery.Item) (*http.Request, error) {
	hdr := make(http.Header, 6)
	body := t.message(it, hdr)
	// What http.NewRequestWithContext builds, without parsing the URL:
	// GetBody lets the transport send the POST again on a fresh connection
	// when a kept-alive one turns out closed before it was written.
	req := (&http.Request{
		Method:        http.MethodPost,
		URL:           t.url,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        hdr,
		Body:          io.NopCloser(bytes.NewReader(body)),
		GetBody:       func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil },
		ContentLength: int64(len(body)),
		Host:          t.host,
	}).WithContext(ctx)
	return req, nil
}

// removeEmptyPort strips the colon of a host with an empty port
// ("example.com:"), as http.NewRequest does.
func removeEmptyPort(host string) string {
	if strings.LastIndexByte(host, ':') > strings.LastIndexByte(host, ']') {
		return strings.TrimSuffix(host, ":")
	}
	return host
}

// Header values every request shares.
var (
	jsonContentType = []string{kit.JSONContentType}
	userAgent       = []string{"bucketrelay"}
)

// RetryAfter parses a Retry-After header, seconds ("120") or an HTTP date,
// into the wait from now. It reports false for an empty or unreadable
// value, which leaves the engine's backoff in charge; a date in the past
// is a wait of 0. The engine caps the wait at delivery.MaxRetryAfter.
func RetryAfter(h string, now time.Time) (time.Duration, bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(h, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		return time.Duration(min(secs, int64(delivery.MaxRetryAfter/time.Second)+1)) * time.Second, true
	}
	at, err := http.ParseTime(h)
	if err != nil {
		return 0, false
	}
	return max(at.Sub(now), 0), true
}

// redirectError is the retryable error of a 3xx answer, naming the status
// and where it pointed (where, redacted): the operator must point the
// endpoint at the final URL.
func redirectError(code int, where string) error {
	return fmt.Errorf("webhook: endpoint answered %d %s with %s: redirects are not followed, set endpoint to the final URL", code, http.StatusText(code), where)
}

// StatusError classifies an HTTP status: nil for 2xx, a retryable error for
// 3xx (a redirect is never followed), 408, 429 and 5xx (and anything
// unexpected), a delivery.Gone one for 410 (the engine pauses the target),
// a permanent one for the other 4xx.
func StatusError(code int) error {
	switch {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusGone:
		return delivery.Gone(fmt.Errorf("webhook: endpoint answered 410 Gone: the target is paused until resumed"))
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests:
		return fmt.Errorf("webhook: endpoint answered %d %s", code, http.StatusText(code))
	case code >= 400 && code < 500:
		return delivery.Permanent(fmt.Errorf("webhook: endpoint rejected the event: %s", strconv.Itoa(code)+" "+http.StatusText(code)))
	default:
		return fmt.Errorf("webhook: endpoint answered %d %s", code, http.StatusText(code))
	}
}

// redact removes the auth token, the endpoint's password and every query
// value of a URL from s.
func (t *Target) redact(s string) string {
	return kit.Redact(s, append([]string{t.cfg.AuthToken}, t.cfg.SigningSecrets...)...)
}

// Close closes idle connections (and those in use once their POST ends).
func (t *Target) Close() error {
	t.client.CloseIdleConnections()
	if t.h1 != nil {
		t.h1.closeIdle(true)
	}
	return nil
}
