package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/testkit/webhookrecv"
)

// newTestReceiver starts the webhook receiver the operating tests deliver
// to (the one place that names its package).
func newTestReceiver(t testing.TB) *webhookrecv.Receiver { return webhookrecv.New(t, "") }

// api calls the relay's HTTP API and returns the status and body.
func api(t testing.TB, srv *httptest.Server, method, path string) (int, string) {
	t.Helper()
	return apiBody(t, srv, method, path, "")
}

func apiJSON(t testing.TB, srv *httptest.Server, method, path string, code int, v any) {
	t.Helper()
	got, body := api(t, srv, method, path)
	if got != code {
		t.Fatalf("%s %s: %d %s, want %d", method, path, got, body, code)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(body), v); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, body)
		}
	}
}

func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type quarantineList struct {
	Target  string
	Entries []QuarantinedEvent
}

func status(t testing.TB, srv *httptest.Server, arn string) TargetStatus {
	t.Helper()
	var doc struct{ Targets []TargetStatus }
	apiJSON(t, srv, "GET", "/v1/targets", 200, &doc)
	for _, s := range doc.Targets {
		if s.ARN == arn {
			return s
		}
	}
	t.Fatalf("GET /v1/targets has no %s", arn)
	return TargetStatus{}
}

// TestQuarantineRedriveAPI: a webhook answering 400 quarantines an event;
// once it is fixed, POST …/quarantine/retry?all=1 delivers it once and
// empties the quarantine. Bad input is answered 4xx naming the problem.
func TestQuarantineRedriveAPI(t *testing.T) {
	rcv := newTestReceiver(t)
	var reject atomic.Bool
	reject.Store(true)
	rcv.Reject = func([]byte) bool { return reject.Load() }
	r := openRelay(t, testConfig(t, t.TempDir(), rcv.URL(), ""))
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	if err := r.Publish(context.Background(), records("images", 1, 1)...); err != nil {
		t.Fatal(err)
	}
	base := "/v1/targets/" + webhookARN + "/quarantine"
	var list quarantineList
	waitUntil(t, "the quarantine entry", func() bool {
		apiJSON(t, srv, "GET", base, 200, &list)
		return len(list.Entries) == 1
	})
	q := list.Entries[0]
	if q.Seq != 1 || q.Key != "images/obj-00001.jpg" || q.EventName != "s3:ObjectCreated:Put" || !strings.Contains(q.Reason, "400") ||
		q.Attempts != 1 || q.FirstFailure.IsZero() || !q.LastFailure.Equal(q.FirstFailure) || q.Record != nil {
		t.Fatalf("entry = %+v, want seq 1 of images/obj-00001.jpg, the 400, 1 attempt, its failure times, no record", q)
	}
	var one QuarantinedEvent
	apiJSON(t, srv, "GET", base+"/1", 200, &one)
	if !strings.Contains(string(one.Record), `"key":"obj-00001.jpg"`) {
		t.Fatalf("GET %s/1: record %s, want the event", base, one.Record)
	}

	for _, c := range []struct {
		method, path string
		code         int
		want         string
	}{
		{"GET", "/v1/targets/arn:minio:sqs::9:webhook/quarantine", 404, "no such target arn:minio:sqs::9:webhook"},
		{"POST", "/v1/targets/arn:minio:sqs::9:webhook/quarantine/retry?all=1", 404, "arn:minio:sqs::9:webhook"},
		{"POST", base + "/retry", 400, "give seq=A-B or all=1"},
		{"POST", base + "/retry?seq=5-2", 400, `"5-2": want N or A-B`},
		{"POST", base + "/drop?seq=x", 400, `"x"`},
		{"POST", base + "/retry?seq=7-9", 404, "has no event in 7-9 (it holds 1-1)"},
		{"POST", base + "/retry?seq=1&all=1", 400, "not both"},
		{"GET", base + "/42", 404, "has no event 42"},
		{"GET", base + "/abc", 400, `"abc": want a sequence number`},
		{"POST", "/v1/targets/arn:minio:sqs::9:webhook/pause", 404, "enabled targets: " + webhookARN},
	} {
		code, body := api(t, srv, c.method, c.path)
		var e struct{ Error string }
		json.Unmarshal([]byte(body), &e)
		if code != c.code || !strings.Contains(e.Error, c.want) || strings.HasPrefix(e.Error, "relay: ") {
			t.Errorf("%s %s = %d %s, want %d naming %q", c.method, c.path, code, body, c.code, c.want)
		}
	}

	reject.Store(false)
	var retried struct{ Redriving int }
	apiJSON(t, srv, "POST", base+"/retry?all=1", 202, &retried)
	if retried.Redriving != 1 {
		t.Fatalf("retry answered %+v, want 1 re-driving", retried)
	}
	waitBodies(t, rcv, 1, 10*time.Second)
	waitUntil(t, "an empty quarantine", func() bool {
		apiJSON(t, srv, "GET", base, 200, &list)
		return len(list.Entries) == 0
	})
	time.Sleep(100 * time.Millisecond)
	if b := rcv.Bodies(); len(b) != 1 || seqOf(t, b[0]) != 1 {
		t.Fatalf("receiver got %d bodies, want the event once", len(b))
	}
	if s := status(t, srv, webhookARN); s.Redriven != 1 || s.Quarantined != 1 || s.InQuarantine != 0 {
		t.Fatalf("status = %+v, want 1 re-driven, 1 quarantined, none in quarantine", s)
	}
	if code, body := api(t, srv, "POST", base+"/retry?all=1"); code != 404 || !strings.Contains(body, "is empty") {
		t.Fatalf("retry of an empty quarantine = %d %s, want 404 saying it is empty", code, body)
	}
}

// TestQuarantineDropAPI: drop answers the entries it removed, records
// included, as JSON lines, and only those selected.
func TestQuarantineDropAPI(t *testing.T) {
	rcv := newTestReceiver(t)
	rcv.Reject = func([]byte) bool { return true }
	r := openRelay(t, testConfig(t, t.TempDir(), rcv.URL(), ""))
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	if err := r.Publish(context.Background(), records("images", 1, 3)...); err != nil {
		t.Fatal(err)
	}
	base := "/v1/targets/" + webhookARN + "/quarantine"
	var list quarantineList
	waitUntil(t, "3 entries", func() bool { apiJSON(t, srv, "GET", base, 200, &list); return len(list.Entries) == 3 })
	code, body := api(t, srv, "POST", base+"/drop?seq=1-2")
	if code != 200 {
		t.Fatalf("drop: %d %s", code, body)
	}
	lines := strings.Split(strings.TrimSpace(body), "\n")
	if len(lines) != 2 {
		t.Fatalf("drop answered %d lines, want 2:\n%s", len(lines), body)
	}
	for i, ln := range lines {
		var e QuarantinedEvent
		if err := json.Unmarshal([]byte(ln), &e); err != nil || e.Seq != uint64(i+1) || e.Target != webhookARN ||
			!strings.Contains(string(e.Record), fmt.Sprintf(`"key":"obj-%05d.jpg"`, i+1)) {
			t.Fatalf("dropped line %d = %s (%v), want entry %d with its record", i, ln, err, i+1)
		}
	}
	apiJSON(t, srv, "GET", base, 200, &list)
	if len(list.Entries) != 1 || list.Entries[0].Seq != 3 {
		t.Fatalf("after drop: %+v, want entry 3 only", list.Entries)
	}
}

// TestTargetStatusAndProbe: GET /v1/targets reports each target's state,
// lag, oldest pending age, last error, next retry, counts and buckets; a
// target that cannot connect is down before any event is sent.
func TestTargetStatusAndProbe(t *testing.T) {
	rcv := newTestReceiver(t)
	doc := fmt.Sprintf(`{"relay":{"dataDir":%q,"minBackoff":"50ms","maxBackoff":"1s"},
"notify":{"webhook":{"1":{"enable":true,"endpoint":%q},"2":{"enable":true,"endpoint":"http://127.0.0.1:1/"}}},
"buckets":{"images":[{"arn":"arn:minio:sqs::1:webhook","events":["put"]},{"arn":"arn:minio:sqs::2:webhook","events":["put"]}],
"logs":[{"arn":"arn:minio:sqs::2:webhook","events":["put"]}]}}`, t.TempDir(), rcv.URL())
	c := parseConfig(t, doc)
	start := time.Now()
	r := openRelay(t, c)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Open took %v with a target down", d)
	}
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	const down = "arn:minio:sqs::2:webhook"
	waitUntil(t, "the unreachable target down", func() bool { return status(t, srv, down).State == "down" })
	s := status(t, srv, down)
	if !strings.Contains(s.LastError, "connection refused") || s.LastErrorTime == nil || s.Lag != 0 || s.Kind != "webhook" ||
		strings.Join(s.Buckets, ",") != "images,logs" {
		t.Fatalf("status of the unreachable target = %+v", s)
	}
	if up := status(t, srv, webhookARN); up.State != "up" || strings.Join(up.Buckets, ",") != "images" {
		t.Fatalf("status of the live target = %+v", up)
	}
	if err := r.Publish(context.Background(), records("images", 1, 3)...); err != nil {
		t.Fatal(err)
	}
	waitBodies(t, rcv, 3, 10*time.Second)
	waitUntil(t, "a retry", func() bool { return status(t, srv, down).Retried > 0 })
	time.Sleep(50 * time.Millisecond)
	s = status(t, srv, down)
	if s.State != "down" || s.Lag != 3 || s.OldestPending == nil || s.OldestPendingAge <= 0 || s.NextRetry == nil || s.Delivered != 0 {
		t.Fatalf("status of the down target with 3 pending = %+v", s)
	}
	if up := status(t, srv, webhookARN); up.Delivered != 3 || up.Lag != 0 || up.OldestPending != nil || up.Cursor != 4 {
		t.Fatalf("status of the live target after 3 events = %+v", up)
	}
}

// TestPausePersists: a paused target is sent nothing, stays paused across
// a restart, and gets the held events in order on resume.
func TestPausePersists(t *testing.T) {
	rcv := newTestReceiver(t)
	dir := t.TempDir()
	r, err := Open(testConfig(t, dir, rcv.URL(), ""), Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r.Handler())
	apiJSON(t, srv, "POST", "/v1/targets/"+webhookARN+"/pause", 200, nil)
	if err := r.Publish(context.Background(), records("images", 1, 2)...); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if s := status(t, srv, webhookARN); s.State != "paused" || s.Lag != 2 {
		t.Fatalf("status while paused = %+v, want paused with 2 pending", s)
	}
	srv.Close()
	r.Close(context.Background())

	r = openRelay(t, testConfig(t, dir, rcv.URL(), ""))
	srv = httptest.NewServer(r.Handler())
	defer srv.Close()
	if err := r.Publish(context.Background(), records("images", 3, 1)...); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if s := status(t, srv, webhookARN); s.State != "paused" || s.Lag != 3 || len(rcv.Bodies()) != 0 {
		t.Fatalf("after a restart: %+v, %d delivered; want still paused with 3 pending", s, len(rcv.Bodies()))
	}
	apiJSON(t, srv, "POST", "/v1/targets/"+webhookARN+"/resume", 200, nil)
	b := waitBodies(t, rcv, 3, 10*time.Second)
	for i := range b {
		if seqOf(t, b[i]) != i+1 {
			t.Fatalf("body %d is event %d, want the held events in order", i, seqOf(t, b[i]))
		}
	}
	if s := status(t, srv, webhookARN); s.State != "up" || s.Lag != 0 {
		t.Fatalf("after resume: %+v", s)
	}
	apiJSON(t, srv, "POST", "/v1/targets/"+webhookARN+"/pause", 200, nil)
	if _, body := api(t, srv, "GET", "/metrics"); !strings.Contains(body, `relay_target_paused{target="`+webhookARN+`"} 1`) {
		t.Fatalf("metrics lack relay_target_paused 1:\n%.2000s", body)
	}
}

// TestRedisWrongTypeRedrive: the case. A Redis key of the wrong
// type quarantines events on their first try; after the key is fixed a
// re-drive writes them to the real store.
func TestRedisWrongTypeRedrive(t *testing.T) {
	addr, conn, key := testRedis(t, "redrive")
	if _, err := conn.Do("SET", key, "not a hash"); err != nil {
		t.Fatal(err)
	}
	const arn = "arn:minio:sqs::1:redis"
	c := parseConfig(t, fmt.Sprintf(`{"relay":{"dataDir":%q,"minBackoff":"10ms","maxBackoff":"100ms"},
"notify":{"redis":{"1":{"enable":true,"format":"namespace","address":%q,"key":%q}}},
"buckets":{"images":[{"arn":%q,"events":["put"]}]}}`, t.TempDir(), addr, key, arn))
	r := openRelay(t, c)
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	if err := r.Publish(context.Background(),
		targettest.Record("images", "a.jpg", event.ObjectCreatedPut, 0),
		targettest.Record("images", "b.jpg", event.ObjectCreatedPut, 1)); err != nil {
		t.Fatal(err)
	}
	base := "/v1/targets/" + arn + "/quarantine"
	var list quarantineList
	waitUntil(t, "2 entries", func() bool { apiJSON(t, srv, "GET", base, 200, &list); return len(list.Entries) == 2 })
	if !strings.Contains(list.Entries[0].Reason, "is a string, want a hash") {
		t.Fatalf("reason %q, want the wrong type", list.Entries[0].Reason)
	}
	if _, err := conn.Do("DEL", key); err != nil {
		t.Fatal(err)
	}
	apiJSON(t, srv, "POST", base+"/retry?all=1", 202, nil)
	waitUntil(t, "the hash", func() bool {
		m, err := redis.StringMap(conn.Do("HGETALL", key))
		return err == nil && len(m) == 2
	})
	waitUntil(t, "an empty quarantine", func() bool { apiJSON(t, srv, "GET", base, 200, &list); return len(list.Entries) == 0 })
	// The count follows the quarantine's update: wait for it too.
	waitUntil(t, "2 re-driven", func() bool { return status(t, srv, arn).Redriven == 2 })
	if s := status(t, srv, arn); s.Redriven != 2 || s.Kind != "redis" {
		t.Fatalf("status = %+v, want 2 re-driven", s)
	}
}

// tokenRelay opens a relay with no target whose API needs the access
// token "tok123"; srv is closed when the test ends.
func tokenRelay(t *testing.T) (*Relay, *httptest.Server) {
	t.Helper()
	c := parseConfig(t, `{"relay":{"dataDir":"`+t.TempDir()+`","listen":"0.0.0.0:0","accessToken":"tok123"}}`)
	r := openRelay(t, c)
	srv := httptest.NewServer(r.Handler())
	t.Cleanup(srv.Close)
	return r, srv
}

// TestOperateNeedsToken: with an access token, /healthz answers without
// it (liveness probes), every operating endpoint needs it, and the
// metrics handler for a scrape address of its own needs none.
func TestOperateNeedsToken(t *testing.T) {
	r, srv := tokenRelay(t)
	if code, body := api(t, srv, "GET", "/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz without a token: %d %q, want 200 ok", code, body)
	}
	for _, p := range []string{"GET /v1/targets", "POST /v1/targets/" + webhookARN + "/pause", "GET /v1/targets/" + webhookARN + "/quarantine",
		"POST /v1/targets/" + webhookARN + "/quarantine/drop?all=1", "GET /metrics"} {
		m, path, _ := strings.Cut(p, " ")
		if code, _ := api(t, srv, m, path); code != 401 {
			t.Errorf("%s without a token: %d, want 401", p, code)
		}
	}
	ms := httptest.NewServer(r.MetricsHandler())
	defer ms.Close()
	if code, body := api(t, ms, "GET", "/metrics"); code != 200 || !strings.Contains(body, "relay_wal_events") {
		t.Fatalf("MetricsHandler: %d %.200s", code, body)
	}
	if code, _ := api(t, ms, "GET", "/v1/targets"); code != 404 {
		t.Fatalf("MetricsHandler serves /v1/targets: %d", code)
	}
}
