package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/internal/human"

	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/relay"
	"github.com/bucketrelay/bucketrelay/testkit/webhookrecv"
)

// newTestReceiver starts the webhook receiver the operating tests deliver
// to (the one place that names its package).
func newTestReceiver(t testing.TB) *webhookrecv.Receiver { return webhookrecv.New(t, "") }

const hookARN = "arn:minio:sqs::1:webhook"

// runServe runs `relay serve args` in the test until it ends and returns
// the API's address once it listens.
func runServe(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- (&serveCommand{ready: func(a string) { addrc <- a }}).Run(ctx, args) }()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		cancel()
		t.Fatalf("serve %v: %v", args, err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return addr
}

// serveOperate serves a relay with one webhook target posting to endpoint
// and the rule images: put, and returns its address.
func serveOperate(t *testing.T, endpoint string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "relay.json")
	os.WriteFile(path, []byte(fmt.Sprintf(`{"relay":{"dataDir":%q,"listen":"127.0.0.1:0","minBackoff":"10ms","maxBackoff":"100ms"},
"notify":{"webhook":{"1":{"enable":true,"endpoint":%q}}},
"buckets":{"images":[{"arn":%q,"events":["put"]}]}}`, t.TempDir(), endpoint, hookARN)), 0o600)
	// relay serve FILE: the file as an argument, not --config.
	addr := runServe(t, path)
	return "http://" + addr
}

func postEvents(t *testing.T, server string, from, n int) {
	t.Helper()
	var recs []event.Record
	for i := from; i < from+n; i++ {
		recs = append(recs, targettest.Record("images", fmt.Sprintf("obj-%d.jpg", i), event.ObjectCreatedPut, i))
	}
	body, _ := json.Marshal(map[string]any{"Records": recs})
	resp, err := http.Post(server+"/v1/events", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST /v1/events: %s", resp.Status)
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestQuarantineCommands: the walk-through. A webhook answering
// 400 quarantines an event; after the receiver is fixed, `relay quarantine
// retry ARN --all` delivers it once and empties the quarantine; drop saves
// what it removes.
func TestQuarantineCommands(t *testing.T) {
	rcv := newTestReceiver(t)
	var reject atomic.Bool
	reject.Store(true)
	rcv.Reject = func([]byte) bool { return reject.Load() }
	server := serveOperate(t, rcv.URL())
	q := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := (&quarantineCommand{out: &out, errOut: &errOut}).Run(context.Background(), append(args, "--server", server))
		return out.String() + errOut.String(), err
	}
	postEvents(t, server, 1, 1)
	var out string
	eventually(t, "the quarantined event", func() bool {
		out, _ = q("list", hookARN)
		return strings.Contains(out, "images/obj-1.jpg")
	})
	if !strings.HasPrefix(out, "SEQ  KEY") || !strings.Contains(out, "endpoint rejected the event: 400 Bad Request") || !strings.Contains(out, "s3:ObjectCreated:Put  1 ") {
		t.Fatalf("list:\n%s", out)
	}
	out, err := q("show", hookARN, "--seq", "1")
	if err != nil || !strings.Contains(out, `"key": "obj-1.jpg"`) || !strings.Contains(out, `"firstFailure"`) {
		t.Fatalf("show: %v\n%s", err, out)
	}

	reject.Store(false)
	out, err = q("retry", hookARN, "--all")
	if err != nil || !strings.Contains(out, "Re-driving 1 event(s) of "+hookARN+" (seq 1)") {
		t.Fatalf("retry --all: %v\n%s", err, out)
	}
	eventually(t, "an empty quarantine", func() bool { out, _ = q("list", hookARN); return out == "The quarantine is empty.\n" })
	time.Sleep(100 * time.Millisecond)
	if n := len(rcv.Bodies()); n != 1 {
		t.Fatalf("the receiver got %d bodies, want the event once", n)
	}

	// drop: saved to --out before removal.
	reject.Store(true)
	postEvents(t, server, 2, 2)
	eventually(t, "2 entries", func() bool { out, _ = q("list", hookARN, "--json"); return strings.Count(out, "\n") == 2 })
	file := filepath.Join(t.TempDir(), "dropped.jsonl")
	out, err = q("drop", hookARN, "--seq", "2-3", "--out", file)
	if err != nil || !strings.Contains(out, "Dropped 2 event(s) from the quarantine of "+hookARN+"; saved to "+file) {
		t.Fatalf("drop: %v\n%s", err, out)
	}
	saved, _ := os.ReadFile(file)
	lines := strings.Split(strings.TrimSpace(string(saved)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"key":"obj-2.jpg"`) || !strings.Contains(lines[1], `"seq":3`) || !strings.Contains(lines[0], `"target":"`+hookARN) {
		t.Fatalf("saved file:\n%s", saved)
	}
	if out, _ = q("list", hookARN); out != "The quarantine is empty.\n" {
		t.Fatalf("after drop: %s", out)
	}

	// Usage errors exit 2, failures 1, with the problem named.
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"quarantine", "retry", hookARN}, 2},
		{[]string{"quarantine", "retry", hookARN, "--seq", "1", "--all"}, 2},
		{[]string{"quarantine", "drop", hookARN, "--seq", "9-1"}, 2},
		{[]string{"quarantine", "list", "not-an-arn"}, 2},
		{[]string{"quarantine", "show", hookARN, "--seq", "1-2"}, 2},
		{[]string{"quarantine", "frob", hookARN}, 2},
		{[]string{"quarantine", "retry", "arn:minio:sqs::9:webhook", "--all"}, 1},
		{[]string{"quarantine", "retry", hookARN, "--all"}, 1}, // empty
		{[]string{"targets", "pause", "arn:minio:sqs::9:webhook"}, 1},
		{[]string{"targets", "pause"}, 2},
	} {
		if code := run(context.Background(), append(c.args, "--server", server)); code != c.code {
			t.Errorf("relay %s exited %d, want %d", strings.Join(c.args, " "), code, c.code)
		}
	}
	_, err = q("retry", "arn:minio:sqs::9:webhook", "--all")
	if err == nil || !strings.HasPrefix(err.Error(), "no such target arn:minio:sqs::9:webhook") || !strings.HasSuffix(err.Error(), "(enabled targets: "+hookARN+") (HTTP 404)") {
		t.Fatalf("retry of an unknown target: %v", err)
	}
}

// TestTargetsCommands: the status table, --json, --watch, and pause and
// resume of a running relay.
func TestTargetsCommands(t *testing.T) {
	rcv := newTestReceiver(t)
	server := serveOperate(t, rcv.URL())
	tc := func(ctx context.Context, args ...string) (string, error) {
		var out bytes.Buffer
		err := (&targetsCommand{out: &out}).Run(ctx, append(args, "--server", server))
		return out.String(), err
	}
	postEvents(t, server, 1, 2)
	eventually(t, "2 deliveries", func() bool { return len(rcv.Bodies()) == 2 })
	out, err := tc(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "TARGET") || !strings.Contains(lines[0], "LAST ERROR") {
		t.Fatalf("table:\n%s", out)
	}
	if f := strings.Fields(lines[1]); len(f) < 13 || f[0] != hookARN || f[1] != "up" || f[2] != "3" || f[3] != "0" || f[4] != "0B" || f[6] != "2" || f[11] != "images" {
		t.Fatalf("row %q: want the target up, cursor 3, lag 0 (0 bytes), 2 delivered, bucket images", lines[1])
	}

	out, err = tc(context.Background(), "pause", hookARN)
	if err != nil || !strings.Contains(out, "Paused "+hookARN) {
		t.Fatalf("pause: %v %s", err, out)
	}
	postEvents(t, server, 3, 1)
	time.Sleep(150 * time.Millisecond)
	out, _ = tc(context.Background(), "--json")
	var st relay.TargetStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.State != "paused" || st.Lag != 1 || st.LagBytes <= 0 || st.OldestPending == nil {
		t.Fatalf("--json while paused: %v\n%s", err, out)
	}
	out, _ = tc(context.Background())
	if f := strings.Fields(strings.Split(out, "\n")[1]); f[3] != "1" || f[4] != human.Bytes(st.LagBytes) || !strings.HasSuffix(f[4], "B") {
		t.Fatalf("table while paused: got LAG %s LAG-BYTES %s, want 1 and %s\n%s", f[3], f[4], human.Bytes(st.LagBytes), out)
	}
	if _, err := tc(context.Background(), "resume", hookARN); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the held event", func() bool { return len(rcv.Bodies()) == 3 })

	ctx, cancel := context.WithTimeout(context.Background(), 350*time.Millisecond)
	defer cancel()
	out, err = tc(ctx, "--watch", "--interval", "100ms")
	if err != nil || strings.Count(out, "TARGET") < 2 || !strings.Contains(out, "Every 100ms: relay targets at "+server) {
		t.Fatalf("--watch: %v\n%q", err, out)
	}
	if _, err := tc(context.Background(), "frob"); !errors.Is(err, errUsage) {
		t.Fatalf("targets frob: %v, want a usage error", err)
	}
}

// TestValidateAndVersion: validate prints ARNs and rules or exits 2 with
// the error; version prints the module version.
func TestValidateAndVersion(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	os.WriteFile(good, []byte(`{"notify":{"webhook":{"1":{"enable":true,"endpoint":"http://127.0.0.1:9/"},"2":{"enable":false,"endpoint":"http://127.0.0.1:9/"}}},
"buckets":{"images":[{"arn":"arn:minio:sqs::1:webhook","events":["put"],"suffix":".jpg"}]}}`), 0o600)
	var out bytes.Buffer
	if err := (&validateCommand{out: &out}).Run(context.Background(), []string{"--config", good}); err != nil {
		t.Fatal(err)
	}
	want := good + ` is valid.
SQS ARNs: arn:minio:sqs::1:webhook
disabled: arn:minio:sqs::2:webhook
Rules:
  images   arn:minio:sqs::1:webhook   s3:ObjectCreated:*   Filter: suffix=".jpg"
`
	if out.String() != want {
		t.Fatalf("validate:\ngot  %q\nwant %q", out.String(), want)
	}
	empty := filepath.Join(dir, "empty.json")
	os.WriteFile(empty, []byte(`{}`), 0o600)
	out.Reset()
	if err := (&validateCommand{out: &out}).Run(context.Background(), []string{empty}); err != nil || !strings.Contains(out.String(), "warning: no target is enabled") {
		t.Fatalf("validate {}: %v\n%s", err, out.String())
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"notify":{"webhook":{"1":{"enable":true}}}}`), 0o600)
	err := (&validateCommand{}).Run(context.Background(), []string{"--config", bad})
	if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "notify.webhook.1.endpoint") {
		t.Fatalf("validate of a bad file: %v, want a usage error naming notify.webhook.1.endpoint", err)
	}
	for args, code := range map[string]int{"validate --config " + bad: 2, "validate --config " + good: 0, "validate": 2, "version": 0, "--version": 0, "serve " + bad: 2} {
		if got := run(context.Background(), strings.Fields(args)); got != code {
			t.Errorf("relay %s exited %d, want %d", args, got, code)
		}
	}
	out.Reset()
	if err := (&versionCommand{out: &out}).Run(context.Background(), nil); err != nil || !strings.HasPrefix(out.String(), "relay ") || !strings.Contains(out.String(), "go1.") {
		t.Fatalf("version: %v %q", err, out.String())
	}
}

// TestMetricsListen: relay.metricsListen serves /metrics without the
// token while the API keeps asking for it; /healthz needs no token.
func TestMetricsListen(t *testing.T) {
	maddr := freePort(t)
	cfg := parseConfig(t, fmt.Sprintf(`{"relay":{"dataDir":%q,"listen":"127.0.0.1:0","accessToken":"tok-123","metricsListen":%q}}`, t.TempDir(), maddr))
	addr, _ := serveInProcess(t, cfg, io.Discard)
	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("http://" + maddr + "/metrics"); code != 200 || !strings.Contains(body, "relay_wal_events") {
		t.Fatalf("metricsListen /metrics: %d %.200s", code, body)
	}
	if code, _ := get("http://" + addr + "/metrics"); code != 401 {
		t.Fatalf("API /metrics without the token: %d, want 401", code)
	}
	if code, _ := get("http://" + addr + "/healthz"); code != 200 {
		t.Fatalf("/healthz without the token: %d, want 200", code)
	}
	if _, err := relay.ParseConfig([]byte(`{"relay":{"metricsListen":"9100"}}`)); err == nil || !strings.Contains(err.Error(), "relay.metricsListen: must be host:port") {
		t.Fatalf("a bad metricsListen: %v", err)
	}
}
