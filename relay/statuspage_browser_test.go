package relay

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/testkit/webhookrecv"
)

// findChromium returns Debian's chromium. Without it the test fails under
// CI=true and is skipped otherwise; scripts/chromium.sh installs it.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "chromium is not installed: run scripts/chromium.sh (Debian package chromium)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// browser starts a headless chromium with a fresh profile and returns a
// tab's context.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(findChromium(t)),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox, // tests run as root
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(cancel)
	// The first Run starts the browser; no timeout on it, or the timeout
	// would stop the browser.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// TestStatusPageBrowser drives the status page in a real browser: the
// login form, a webhook target going down with its lag rising on the page
// and in its sparkline, and the retry button re-driving a quarantined
// event that then arrives.
func TestStatusPageBrowser(t *testing.T) {
	ctx := browser(t)
	rcv := webhookrecv.New(t, "")
	var reject atomic.Bool
	rcv.Reject = func(b []byte) bool { return reject.Load() && bytes.Contains(b, []byte("poison.jpg")) }
	const token = "page-token-8d1f"
	r := openRelay(t, testConfig(t, t.TempDir(), rcv.URL(), `,"accessToken":"`+token+`"`))
	r.live.sampleEvery = 250 * time.Millisecond
	srv := serveRelay(t, r)

	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// waitPage waits for a JavaScript condition on the page, which
	// refreshes itself every two seconds.
	waitPage := func(what, cond string) {
		t.Helper()
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)))
		if err != nil {
			html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("live") ? document.getElementById("live").outerHTML : document.body.outerHTML`))
			t.Fatalf("waiting for the page to show %s: %v\n%s", what, err, html)
		}
	}
	evalInt := func(expr string) int {
		t.Helper()
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](expr))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return n
	}
	publish := func(recs ...event.Record) {
		t.Helper()
		if err := r.Publish(context.Background(), recs...); err != nil {
			t.Fatal(err)
		}
	}
	const row = `document.querySelector("tr.target")`

	// The page asks for the token, then shows the target up.
	do("logging in",
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), token),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#targets")),
	)
	publish(records("images", 0, 3)...)
	waitBodies(t, rcv, 3, 10*time.Second)
	waitPage("the target up with no lag", `(() => { const r = `+row+`; return !!r && r.dataset.arn === "`+webhookARN+`" && r.dataset.state === "up" && r.dataset.lag === "0"; })()`)

	// The receiver stops: the target goes down and its lag rises.
	rcv.Stop()
	publish(records("images", 3, 10)...)
	waitPage("the target down with lag 10 and the error", `(() => { const r = `+row+`; return r.dataset.state === "down" && +r.dataset.lag >= 10 && r.querySelector(".lasterror").textContent.includes("connection refused") && r.querySelector(".oldest").textContent !== "–"; })()`)
	lag1 := evalInt(`+` + row + `.dataset.lag`)
	waitPage("the lag's size shown", `(() => { const r = `+row+`; return +r.dataset.lagBytes > 0 && /^[0-9.]+(B|KiB)$/.test(r.querySelector(".lagbytes").textContent) && r.querySelector(".lagbytes").textContent !== "0B"; })()`)
	bytes1 := evalInt(`+` + row + `.dataset.lagBytes`)
	publish(records("images", 13, 15)...)
	waitPage("the lag rising", row+`.dataset.lag >= `+strconv.Itoa(lag1+15))
	waitPage("the lag's size rising", row+`.dataset.lagBytes > `+strconv.Itoa(bytes1))
	waitPage("the sparkline rising", `(() => {
		const p = `+row+`.querySelector("polyline").getAttribute("points").trim().split(" ").map(s => +s.split(",")[1]);
		return p.length >= 3 && p[p.length - 1] < p[0];
	})()`)

	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(90))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(t.TempDir(), "statuspage.jpg")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Fatalf("screenshot %s: %v, size 0", path, err)
	}

	// The receiver is back: the backlog drains. Then it rejects an event,
	// which is quarantined and listed with a retry button.
	reject.Store(true)
	rcv.Start(t)
	waitBodies(t, rcv, 28, 20*time.Second)
	waitPage("the target up again with no lag", `(() => { const r = `+row+`; return r.dataset.state === "up" && r.dataset.lag === "0" && r.dataset.lagBytes === "0" && r.querySelector(".lagbytes").textContent === "0B"; })()`)
	publish(targettest.Record("images", "poison.jpg", event.ObjectCreatedPut, 99))
	waitPage("the quarantined event", `(() => { const q = document.querySelector("tr.quarantined"); return !!q && q.textContent.includes("poison.jpg") && q.textContent.includes("400"); })()`)

	// The cause is fixed; the retry button re-drives the event.
	reject.Store(false)
	do("clicking retry", chromedp.Click(chromedp.CSS("tr.quarantined button.retry")))
	waitPage("the retry's outcome", `document.getElementById("flash").textContent !== ""`)
	flash, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("flash").textContent`))
	if strings.Contains(flash, "failed") {
		t.Fatalf("the retry button: %q (POST /v1/targets/{arn}/quarantine/retry is the operate branch's endpoint)", flash)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !containsBody(rcv.Bodies(), "poison.jpg") {
		if time.Now().After(deadline) {
			t.Fatalf("the re-driven event did not arrive in 20s (page said %q)", flash)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func containsBody(bodies [][]byte, s string) bool {
	for _, b := range bodies {
		if bytes.Contains(b, []byte(s)) {
			return true
		}
	}
	return false
}
