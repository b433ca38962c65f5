package relay

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/bucketrelay/bucketrelay/testkit/webhookrecv"
)

// statusPagePNG is where TestStatusPageScreenshot writes its picture; the
// README's screenshot is made with
//
//	go test -count=1 -run TestStatusPageScreenshot ./relay/ -args -statuspage.png=$PWD/docs/statuspage.png
var statusPagePNG = flag.String("statuspage.png", "", "TestStatusPageScreenshot writes the status page's screenshot (PNG) to this file")

// TestStatusPageScreenshot renders the status page of a relay with three
// webhook targets in a real browser, one in each state an operator meets
// most: up with no lag, down with its lag (count and size) rising and two
// quarantined events, paused with a lag. It checks each row, and that the
// screenshot is a PNG of the viewport's width; with -statuspage.png it keeps
// the picture (the README's docs/statuspage.png).
func TestStatusPageScreenshot(t *testing.T) {
	ctx := browser(t)
	const (
		upARN     = "arn:minio:sqs::thumbnails:webhook"
		downARN   = "arn:minio:sqs::search:webhook"
		pausedARN = "arn:minio:sqs::archive:webhook"
	)
	up, down, paused := webhookrecv.New(t, ""), webhookrecv.New(t, ""), webhookrecv.New(t, "")
	// The search index refuses two corrupt objects (400): they are
	// quarantined and listed under the table.
	down.Reject = func(b []byte) bool { return bytes.Contains(b, []byte("corrupt")) }
	doc := fmt.Sprintf(`{"relay":{"dataDir":%q,"minBackoff":"10ms","maxBackoff":"5s"},
"notify":{"webhook":{
 "thumbnails":{"enable":true,"endpoint":%q,"timeout":"2s"},
 "search":{"enable":true,"endpoint":%q,"timeout":"2s","concurrency":1},
 "archive":{"enable":true,"endpoint":%q,"timeout":"2s"}}},
"buckets":{"images":[{"arn":%q,"events":["put"]},{"arn":%q,"events":["put"]},{"arn":%q,"events":["put"]}]}}`,
		t.TempDir(), up.URL(), down.URL(), paused.URL(), upARN, downARN, pausedARN)
	c := parseConfig(t, doc)
	r := openRelay(t, c)
	r.live.sampleEvery = 250 * time.Millisecond
	srv := serveRelay(t, r)
	publish := func(from, n int, key string) {
		t.Helper()
		recs := records("images", from, n)
		for i := range recs {
			recs[i].S3.Object.Key = fmt.Sprintf(key, from+i)
		}
		if err := r.Publish(context.Background(), recs...); err != nil {
			t.Fatal(err)
		}
	}

	// Everything is delivered but the two corrupt objects.
	publish(0, 5, "photos/2026/12/IMG_%04d.jpg")
	publish(5, 2, "photos/2026/12/corrupt-%d.jpg")
	waitBodies(t, up, 7, 20*time.Second)
	waitBodies(t, paused, 7, 20*time.Second)
	waitBodies(t, down, 5, 20*time.Second)
	inQuarantine := func() int {
		for _, s := range r.TargetStatus() {
			if s.ARN == downARN {
				return s.InQuarantine
			}
		}
		return 0
	}
	deadline := time.Now().Add(20 * time.Second)
	for inQuarantine() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %d events in quarantine, want the 2 corrupt ones", downARN, inQuarantine())
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The search index goes away, and later the archive is paused by its
	// operator; their backlogs grow in steps for the sparklines.
	down.Stop()
	if _, err := chromedp.Run(ctx, chromedp.EmulateViewport(1500, 400)); err != nil {
		t.Fatalf("viewport: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatalf("opening the page: %v", err)
	}
	waitPage := func(what, cond string) {
		t.Helper()
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)))
		if err != nil {
			html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.outerHTML`))
			t.Fatalf("waiting for the page to show %s: %v\n%s", what, err, html)
		}
	}
	row := func(arn string) string { return `document.querySelector('tr.target[data-arn="` + arn + `"]')` }
	next, pausedAt := 7, 0
	for step := 1; step <= 4; step++ {
		if step == 3 {
			if err := r.Pause(pausedARN); err != nil {
				t.Fatal(err)
			}
			waitBodies(t, paused, next, 20*time.Second)
			pausedAt = next
		}
		publish(next, 12*step, "photos/2026/12/IMG_%04d.jpg")
		next += 12 * step
		waitPage(fmt.Sprintf("lag %d on the down target", next-7), fmt.Sprintf(`(() => {
			const d = %s;
			return !!d && d.dataset.state === "down" && +d.dataset.lag >= %d;
		})()`, row(downARN), next-7))
	}
	waitPage(fmt.Sprintf("lag %d on the paused target", next-pausedAt), fmt.Sprintf(`(() => {
		const p = %s;
		return !!p && p.dataset.state === "paused" && +p.dataset.lag >= %d;
	})()`, row(pausedARN), next-pausedAt))
	waitBodies(t, up, next, 20*time.Second)
	waitPage("every row in its state, with the lag's size, and the down target's sparkline rising", `(() => {
		const u = `+row(upARN)+`, d = `+row(downARN)+`, p = `+row(pausedARN)+`;
		if (u.dataset.state !== "up" || u.dataset.lag !== "0" || u.querySelector(".lagbytes").textContent !== "0B") return false;
		for (const r of [d, p]) {
			if (!(+r.dataset.lagBytes > 0) || !/^[0-9.]+(B|KiB)$/.test(r.querySelector(".lagbytes").textContent)) return false;
		}
		if (!d.querySelector(".lasterror").textContent.includes("connection refused")) return false;
		const pts = d.querySelector("polyline");
		if (!pts) return false;
		const y = pts.getAttribute("points").trim().split(" ").map(s => +s.split(",")[1]);
		return y.length >= 4 && y[y.length - 1] < y[0] && document.querySelectorAll("tr.quarantined").length === 2;
	})()`)

	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot: %v, want a PNG", err)
	}
	if w := img.Bounds().Dx(); w < 1400 || w > 1500 {
		t.Fatalf("screenshot %d pixels wide, want the 1500-pixel viewport (less a scrollbar)", w)
	}
	path := *statusPagePNG
	if path == "" {
		path = filepath.Join(t.TempDir(), "statuspage.png")
	}
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes, %v)", path, len(shot), img.Bounds().Size())
}
