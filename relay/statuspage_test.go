package relay

import (
	"bytes"
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/testkit/webhookrecv"
)

// TestStatusPageRenders: the page shows each target's state, lag, last
// error and quarantine, with a retry and a drop button per quarantined
// event, under a nonce-only script policy.
func TestStatusPageRenders(t *testing.T) {
	rcv := webhookrecv.New(t, "")
	rcv.Reject = func(b []byte) bool { return bytes.Contains(b, []byte("obj-00003.jpg")) }
	r := openRelay(t, testConfig(t, t.TempDir(), rcv.URL(), ""))
	h := r.Handler()
	if err := r.Publish(context.Background(), records("images", 0, 5)...); err != nil {
		t.Fatal(err)
	}
	waitBodies(t, rcv, 4, 10*time.Second)
	// The quarantine is written with the next commit of the cursors.
	waitFor(t, func() bool { q, _ := r.Log().Quarantined(webhookARN); return len(q) == 1 })

	w := do(t, h, "GET", "/", "")
	body := w.Body.String()
	if w.Code != 200 || w.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET / = %d %q, want 200 text/html", w.Code, w.Header().Get("Content-Type"))
	}
	for _, want := range []string{
		`<tr class="target" data-arn="arn:minio:sqs::1:webhook" data-state="up" data-lag="0" data-lag-bytes="0">`,
		`<td class="num lagbytes">0B</td>`,
		`<span class="state up">up</span>`,
		`obj-00003.jpg`, // the quarantined event's key
		`400`,           // and its error
		`data-action="retry" data-arn="arn:minio:sqs::1:webhook" data-seq="4-4"`,
		`data-action="drop" data-arn="arn:minio:sqs::1:webhook" data-seq="4-4"`,
		`class="retry-all"`,
		`<polyline class="line"`,
	} {
		if !strings.Contains(body, want) {
			t.Fatalf("page lacks %q:\n%s", want, body)
		}
	}
	csp := w.Header().Get("Content-Security-Policy")
	m := regexp.MustCompile(`script-src 'nonce-([^']+)'`).FindStringSubmatch(csp)
	if m == nil || !strings.Contains(body, `<script nonce="`+m[1]+`">`) || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("CSP %q does not match the page's script nonce or allows frames", csp)
	}
	if strings.Contains(body, "src=\"http") || strings.Contains(body, "href=\"http") {
		t.Fatal("the page loads an external asset")
	}
}

// TestStatusPageToken: with an access token the page asks for it, a right
// token buys a session cookie (not the token) that opens the page and the
// API; changes with the cookie alone need the page's header.
func TestStatusPageToken(t *testing.T) {
	rcv := webhookrecv.New(t, "")
	const token = "s3cret-token"
	r := openRelay(t, testConfig(t, t.TempDir(), rcv.URL(), `,"accessToken":"`+token+`"`))
	h := r.Handler()

	if w := do(t, h, "GET", "/", ""); w.Code != 401 || !strings.Contains(w.Body.String(), `name="token"`) || strings.Contains(w.Body.String(), "data-arn") {
		t.Fatalf("GET / without a token = %d, want 401 with the login form and no target:\n%s", w.Code, w.Body)
	}
	if w := do(t, h, "POST", "/login", "token=wrong", "Content-Type", "application/x-www-form-urlencoded"); w.Code != 401 || len(w.Result().Cookies()) != 0 {
		t.Fatalf("login with a wrong token = %d with cookies %v, want 401 and none", w.Code, w.Result().Cookies())
	}
	w := do(t, h, "POST", "/login", "token="+token, "Content-Type", "application/x-www-form-urlencoded")
	cs := w.Result().Cookies()
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "./" || len(cs) != 1 || !cs[0].HttpOnly || cs[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("login = %d %q %v, want 303 to ./ with an HttpOnly SameSite=Strict cookie", w.Code, w.Header().Get("Location"), cs)
	}
	if strings.Contains(cs[0].Value, token) {
		t.Fatal("the session cookie carries the token")
	}
	cookie := cs[0].Name + "=" + cs[0].Value
	if w := do(t, h, "GET", "/", "", "Cookie", cookie); w.Code != 200 || !strings.Contains(w.Body.String(), webhookARN) {
		t.Fatalf("GET / with the session = %d, want 200 with the target", w.Code)
	}
	if w := do(t, h, "GET", "/", "", "Authorization", "Bearer "+token); w.Code != 200 {
		t.Fatalf("GET / with the bearer token = %d, want 200", w.Code)
	}
	if w := do(t, h, "GET", "/metrics", "", "Cookie", cookie); w.Code != 200 {
		t.Fatalf("GET /metrics with the session = %d, want 200", w.Code)
	}
	// A cross-site form can send the cookie but not a header.
	retry := "/v1/targets/" + webhookARN + "/quarantine/retry?all=1"
	if w := do(t, h, "POST", retry, "", "Cookie", cookie); w.Code != 401 {
		t.Fatalf("POST with the cookie alone = %d, want 401", w.Code)
	}
	if w := do(t, h, "POST", retry, "", "Cookie", cookie, "X-Relay-Page", "1"); w.Code == 401 {
		t.Fatal("POST from the page (cookie and header) = 401, want it past the token check")
	}
	if w := do(t, h, "POST", "/v1/events", `{"Records":[]}`, "Cookie", "relay_session=forged", "X-Relay-Page", "1"); w.Code != 401 {
		t.Fatalf("POST with a forged session = %d, want 401", w.Code)
	}
	w = do(t, h, "POST", "/logout", "", "Cookie", cookie)
	if cs := w.Result().Cookies(); w.Code != http.StatusSeeOther || len(cs) != 1 || cs[0].MaxAge >= 0 {
		t.Fatalf("logout = %d %v, want 303 clearing the cookie", w.Code, cs)
	}
}

// TestStatusPageLagHistory: the sampler keeps the last lagWindow of
// samples and the sparkline scales them to its box.
func TestStatusPageLagHistory(t *testing.T) {
	var h lagHistory
	now := time.Now()
	for i := 0; i < 400; i++ {
		h.add("a", lagSample{now.Add(time.Duration(i-399) * time.Second), int64(i)})
	}
	xs := h.get("a")
	if len(xs) != 301 || xs[0].v != 99 {
		t.Fatalf("kept %d samples from %d, want 301 from 99 (the last %v)", len(xs), xs[0].v, lagWindow)
	}
	sp := newSparkline([]lagSample{{now.Add(-lagWindow), 0}, {now.Add(-lagWindow / 2), 50}, {now, 100}}, now)
	if sp.Max != 100 || sp.Line != "0.0,31.0 80.0,16.5 160.0,2.0" || sp.Area != sp.Line+" 160.0,32 0.0,32" {
		t.Fatalf("sparkline %+v, want points 0.0,31.0 80.0,16.5 160.0,2.0", sp)
	}
	if sp := newSparkline(nil, now); sp.Line != "" {
		t.Fatalf("empty history drew %q", sp.Line)
	}

	// The relay's own sampler, fast.
	rcv := webhookrecv.New(t, "")
	rcv.Stop()
	r := openRelay(t, testConfig(t, t.TempDir(), rcv.URL(), ""))
	r.live.sampleEvery = 20 * time.Millisecond
	r.Handler()
	if err := r.Publish(context.Background(), records("images", 0, 7)...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		s := r.live.lag.get(webhookARN)
		return len(s) > 3 && s[len(s)-1].v == 7
	})
}
