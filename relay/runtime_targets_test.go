package relay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/rules"
)

const hook2 = "arn:minio:sqs::2:webhook"

// apiBody calls the API with a body and returns the status and body.
func apiBody(t testing.TB, srv *httptest.Server, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func mustAPI(t testing.TB, srv *httptest.Server, method, path, body string, code int) string {
	t.Helper()
	got, b := apiBody(t, srv, method, path, body)
	if got != code {
		t.Fatalf("%s %s: got %d %s, want %d", method, path, got, b, code)
	}
	return b
}

func hookBody(id, endpoint string) string {
	// One POST at a time: the tests check the log order across objects.
	return fmt.Sprintf(`{"webhook":{%q:{"endpoint":%q,"concurrency":1}}}`, id, endpoint)
}

// route makes bucket images route put events to every arn.
func route(t testing.TB, r *Relay, arns ...string) {
	t.Helper()
	var rs []rules.Rule
	for _, a := range arns {
		rs = append(rs, rules.Rule{ARN: a, Events: []event.Name{event.ObjectCreatedPut}})
	}
	if err := r.SetBucketRules("images", rs); err != nil {
		t.Fatal(err)
	}
}

// seqs returns the numbers of the records in bodies, sorted.
func seqs(t testing.TB, bodies [][]byte) []int {
	var out []int
	for _, b := range bodies {
		out = append(out, seqOf(t, b))
	}
	sort.Ints(out)
	return out
}

func span(from, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = from + i
	}
	return out
}

// TestRuntimeTargetAdd: a target added through the API receives only the
// events logged after it, shows in the status and metrics as added
// through the API, and comes back after a restart.
func TestRuntimeTargetAdd(t *testing.T) {
	rcv1, rcv2 := newTestReceiver(t), newTestReceiver(t)
	dir := t.TempDir()
	cfg := testConfig(t, dir, rcv1.URL(), "")
	r := openRelay(t, cfg)
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	ctx := context.Background()
	if err := r.Publish(ctx, records("images", 0, 3)...); err != nil {
		t.Fatal(err)
	}
	waitBodies(t, rcv1, 3, 10*time.Second)

	var added struct{ Target, Source string }
	if err := json.Unmarshal([]byte(mustAPI(t, srv, "POST", "/v1/targets", hookBody("2", rcv2.URL()), 201)), &added); err != nil {
		t.Fatal(err)
	}
	if added.Target != hook2 || added.Source != SourceAPI {
		t.Fatalf("added %+v, want %s from the api", added, hook2)
	}
	route(t, r, webhookARN, hook2)
	if err := r.Publish(ctx, records("images", 3, 3)...); err != nil {
		t.Fatal(err)
	}
	waitBodies(t, rcv2, 3, 10*time.Second)
	waitBodies(t, rcv1, 6, 10*time.Second)
	if got := seqs(t, rcv2.Bodies()); fmt.Sprint(got) != fmt.Sprint(span(3, 3)) {
		t.Fatalf("the added target got %v, want %v (only what was logged after it)", got, span(3, 3))
	}
	if s := status(t, srv, hook2); s.Source != SourceAPI || s.Kind != "webhook" || s.Delivered != 3 {
		t.Fatalf("status %+v, want source api, webhook, 3 delivered", s)
	}
	if s := status(t, srv, webhookARN); s.Source != SourceFile {
		t.Fatalf("status of the file's target: source %q, want file", s.Source)
	}
	_, metrics := api(t, srv, "GET", "/metrics")
	if !strings.Contains(metrics, `relay_target_delivered_total{target="`+hook2+`"} 3`) {
		t.Fatalf("/metrics has no delivered count of 3 for %s", hook2)
	}
	if b, err := os.ReadFile(filepath.Join(dir, targetsFile)); err != nil || !strings.Contains(string(b), rcv2.URL()) {
		t.Fatalf("targets.json = %s, %v; want the added target", b, err)
	}

	// Restart: the added target is started again from its cursor.
	srv.Close()
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	r2 := openRelay(t, testConfig(t, dir, rcv1.URL(), ""))
	if got := r2.ARNs(); fmt.Sprint(got) != fmt.Sprint([]string{webhookARN, hook2}) {
		t.Fatalf("after restart ARNs = %v, want both", got)
	}
	if err := r2.Publish(ctx, records("images", 6, 2)...); err != nil {
		t.Fatal(err)
	}
	waitBodies(t, rcv2, 5, 10*time.Second)
	time.Sleep(100 * time.Millisecond)
	if got := seqs(t, rcv2.Bodies()); fmt.Sprint(got) != fmt.Sprint(span(3, 5)) {
		t.Fatalf("after restart the added target got %v, want %v", got, span(3, 5))
	}
	srv2 := httptest.NewServer(r2.Handler())
	defer srv2.Close()
	if s := status(t, srv2, hook2); s.Source != SourceAPI {
		t.Fatalf("after restart: source %q, want api", s.Source)
	}
}

// withHook2 opens a relay on dir with the file's webhook delivering to
// url1 and hook2, added through the API, to url2, both routed the
// "images" events; srv is closed when the test ends.
func withHook2(t *testing.T, dir, url1, url2 string) (*Relay, *httptest.Server) {
	t.Helper()
	r := openRelay(t, testConfig(t, dir, url1, ""))
	srv := httptest.NewServer(r.Handler())
	t.Cleanup(srv.Close)
	mustAPI(t, srv, "POST", "/v1/targets", hookBody("2", url2), 201)
	route(t, r, webhookARN, hook2)
	return r, srv
}

// TestRuntimeTargetUpdate: an update moves a target to a new endpoint;
// the events logged while the old one was down reach the new one, none
// lost, in order, and the update survives a restart.
func TestRuntimeTargetUpdate(t *testing.T) {
	rcv1, old, nw := newTestReceiver(t), newTestReceiver(t), newTestReceiver(t)
	old.Stop()
	dir := t.TempDir()
	r, srv := withHook2(t, dir, rcv1.URL(), old.URL())
	ctx := context.Background()
	if err := r.Publish(ctx, records("images", 0, 4)...); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the old endpoint failing", func() bool { return status(t, srv, hook2).LastError != "" })
	mustAPI(t, srv, "PUT", "/v1/targets/"+hook2, hookBody("2", nw.URL()), 200)
	if err := r.Publish(ctx, records("images", 4, 2)...); err != nil {
		t.Fatal(err)
	}
	waitBodies(t, nw, 6, 10*time.Second)
	var got []int
	for _, b := range nw.Bodies() {
		got = append(got, seqOf(t, b))
	}
	if fmt.Sprint(got) != fmt.Sprint(span(0, 6)) {
		t.Fatalf("the new endpoint got %v, want %v in order", got, span(0, 6))
	}
	// The file's target updated through the API: an override.
	rcv1b := newTestReceiver(t)
	var upd struct{ Source string }
	json.Unmarshal([]byte(mustAPI(t, srv, "PUT", "/v1/targets/"+webhookARN, hookBody("1", rcv1b.URL()), 200)), &upd)
	if upd.Source != SourceOverride {
		t.Fatalf("update of the file's target: source %q, want override", upd.Source)
	}
	srv.Close()
	r.Close(ctx)
	r2 := openRelay(t, testConfig(t, dir, rcv1.URL(), ""))
	if err := r2.Publish(ctx, records("images", 6, 1)...); err != nil {
		t.Fatal(err)
	}
	waitBodies(t, nw, 7, 10*time.Second)
	waitBodies(t, rcv1b, 1, 10*time.Second) // the override, not the file's endpoint
}

// TestRuntimeTargetRemove: removal is refused while rules route to the
// target, then while events are pending (naming how many); with force the
// pending events are exported (fsynced JSON lines, downloadable) and
// released, and the target is gone from the status, the metrics, the log
// and the next start.
func TestRuntimeTargetRemove(t *testing.T) {
	rcv1, dead := newTestReceiver(t), newTestReceiver(t)
	dead.Stop()
	dir := t.TempDir()
	r, srv := withHook2(t, dir, rcv1.URL(), dead.URL())
	ctx := context.Background()
	if err := r.Publish(ctx, records("images", 0, 5)...); err != nil {
		t.Fatal(err)
	}
	if got := mustAPI(t, srv, "DELETE", "/v1/targets/"+hook2, "", 409); !strings.Contains(got, "images") || !strings.Contains(got, "relay events remove") {
		t.Fatalf("removal with a rule routing to it: %s, want the bucket named and what to do", got)
	}
	route(t, r, webhookARN)
	var refused struct {
		Error   string
		Pending int64
	}
	json.Unmarshal([]byte(mustAPI(t, srv, "DELETE", "/v1/targets/"+hook2, "", 409)), &refused)
	if refused.Pending != 5 || !strings.Contains(refused.Error, "5 pending events") {
		t.Fatalf("removal with pending events: %+v, want 409 naming 5", refused)
	}
	if s := status(t, srv, hook2); s.Lag != 5 {
		t.Fatalf("after a refused removal: lag %d, want 5 (still there)", s.Lag)
	}
	var rm struct {
		Target     string
		Released   int
		Export     string
		ExportName string
	}
	json.Unmarshal([]byte(mustAPI(t, srv, "DELETE", "/v1/targets/"+hook2+"?force=true", "", 200)), &rm)
	if rm.Released != 5 || rm.Export == "" || filepath.Dir(rm.Export) != filepath.Join(dir, exportsDir) {
		t.Fatalf("forced removal: %+v, want 5 released into %s", rm, filepath.Join(dir, exportsDir))
	}
	b, err := os.ReadFile(rm.Export)
	if err != nil {
		t.Fatal(err)
	}
	var exported []int
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var line struct {
			Seq    uint64
			Record event.Record
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil || line.Seq == 0 {
			t.Fatalf("export line %s: %v", sc.Bytes(), err)
		}
		exported = append(exported, int(line.Record.S3.Object.Size-1000))
	}
	if fmt.Sprint(exported) != fmt.Sprint(span(0, 5)) {
		t.Fatalf("export holds %v, want %v", exported, span(0, 5))
	}
	if got := mustAPI(t, srv, "GET", "/v1/exports/"+rm.ExportName, "", 200); got != string(b) {
		t.Fatalf("GET /v1/exports/%s differs from the file", rm.ExportName)
	}
	for _, name := range []string{"..%2Fwal.db", ".hidden.jsonl", "wal.db", "nothere.jsonl"} {
		if code, _ := api(t, srv, "GET", "/v1/exports/"+name); code != 400 && code != 404 {
			t.Errorf("GET /v1/exports/%s: %d, want 400 or 404", name, code)
		}
	}
	if _, ok := r.Log().Cursor(hook2); ok {
		t.Fatal("the released target still has a cursor")
	}
	var doc struct{ Targets []TargetStatus }
	apiJSON(t, srv, "GET", "/v1/targets", 200, &doc)
	if len(doc.Targets) != 1 || doc.Targets[0].ARN != webhookARN {
		t.Fatalf("targets after removal: %+v, want only %s", doc.Targets, webhookARN)
	}
	if _, m := api(t, srv, "GET", "/metrics"); strings.Contains(m, hook2) {
		t.Fatal("/metrics still names the removed target")
	}
	// Removing again: unknown.
	mustAPI(t, srv, "DELETE", "/v1/targets/"+hook2, "", 404)
	srv.Close()
	r.Close(ctx)
	r2 := openRelay(t, testConfig(t, dir, rcv1.URL(), ""))
	if got := r2.ARNs(); len(got) != 1 {
		t.Fatalf("after restart ARNs = %v, want the file's alone", got)
	}
}

// TestRuntimeTargetRemoveNothingPending: a drained target is removed
// without force; nothing is exported.
func TestRuntimeTargetRemoveNothingPending(t *testing.T) {
	rcv2 := newTestReceiver(t)
	r, srv := withHook2(t, t.TempDir(), newTestReceiver(t).URL(), rcv2.URL())
	r.Publish(context.Background(), records("images", 0, 2)...)
	waitBodies(t, rcv2, 2, 10*time.Second)
	route(t, r, webhookARN)
	waitUntil(t, "no lag", func() bool { return status(t, srv, hook2).Lag == 0 })
	var rm Removal
	json.Unmarshal([]byte(mustAPI(t, srv, "DELETE", "/v1/targets/"+hook2, "", 200)), &rm)
	if rm.Released != 0 || rm.Export != "" {
		t.Fatalf("removal of a drained target: %+v, want nothing released", rm)
	}
}

// TestRuntimeTargetPauseResume: a target added at runtime can be paused
// (events held, counted as lag) and resumed (they are delivered).
func TestRuntimeTargetPauseResume(t *testing.T) {
	rcv1, rcv2 := newTestReceiver(t), newTestReceiver(t)
	r, srv := withHook2(t, t.TempDir(), rcv1.URL(), rcv2.URL())
	mustAPI(t, srv, "POST", "/v1/targets/"+hook2+"/pause", "", 200)
	r.Publish(context.Background(), records("images", 0, 4)...)
	waitBodies(t, rcv1, 4, 10*time.Second) // the other target is not held
	if s := status(t, srv, hook2); s.State != "paused" || s.Lag != 4 || len(rcv2.Bodies()) != 0 {
		t.Fatalf("paused: state %s lag %d, %d delivered; want paused, 4, 0", s.State, s.Lag, len(rcv2.Bodies()))
	}
	// An update keeps the pause.
	mustAPI(t, srv, "PUT", "/v1/targets/"+hook2, hookBody("2", rcv2.URL()), 200)
	if s := status(t, srv, hook2); s.State != "paused" {
		t.Fatalf("after an update: state %s, want paused", s.State)
	}
	mustAPI(t, srv, "POST", "/v1/targets/"+hook2+"/resume", "", 200)
	waitBodies(t, rcv2, 4, 10*time.Second)
	if got := seqs(t, rcv2.Bodies()); fmt.Sprint(got) != fmt.Sprint(span(0, 4)) {
		t.Fatalf("after resume: %v, want %v", got, span(0, 4))
	}
}

// TestRuntimeTargetBadInput: every refusal names the problem with the
// right status; the file's field paths are used for validation errors.
func TestRuntimeTargetBadInput(t *testing.T) {
	rcv1 := newTestReceiver(t)
	r := openRelay(t, testConfig(t, t.TempDir(), rcv1.URL(), ""))
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	mustAPI(t, srv, "POST", "/v1/targets", hookBody("2", rcv1.URL()), 201)
	for _, c := range []struct {
		method, path, body string
		code               int
		want, field        string
	}{
		{"POST", "/v1/targets", `{"kafkaa":{"x":{}}}`, 400, "notify.kafkaa: unknown target kind", "notify.kafkaa"},
		{"POST", "/v1/targets", `{"webhook":{"3":{}}}`, 400, "notify.webhook.3.endpoint", "notify.webhook.3.endpoint"},
		{"POST", "/v1/targets", `{"webhook":{"3":{"endpoint":"http://x/","bogus":1}}}`, 400, "notify.webhook.3.bogus: unknown field", "notify.webhook.3.bogus"},
		{"POST", "/v1/targets", `{"webhook":{"3":{"endpoint":"http://x/","timeout":5}}}`, 400, "notify.webhook.3.timeout", "notify.webhook.3.timeout"},
		{"POST", "/v1/targets", `{"webhook":{"3":{"endpoint":"http://x/","enable":false}}}`, 400, "notify.webhook.3.enable: must be true", "notify.webhook.3.enable"},
		{"POST", "/v1/targets", `{"webhook":{"3":{"endpoint":"http://x/"}},"startFrom":"yesterday"}`, 400, "startFrom", "startFrom"},
		{"POST", "/v1/targets", `{"webhook":{"3":{"endpoint":"http://x/"},"4":{"endpoint":"http://x/"}}}`, 400, "exactly one target", "notify.webhook"},
		{"POST", "/v1/targets", `{"webhook":{"3":{"endpoint":"http://x/"}}`, 400, "line 1", ""},
		{"POST", "/v1/targets", `null`, 400, "one target", ""},
		{"POST", "/v1/targets", hookBody("1", "http://x/"), 409, "defined in the configuration file", ""},
		{"POST", "/v1/targets", hookBody("2", "http://x/"), 409, "added already", ""},
		{"PUT", "/v1/targets/arn:minio:sqs::9:webhook", hookBody("9", "http://x/"), 404, "no such target arn:minio:sqs::9:webhook", ""},
		{"PUT", "/v1/targets/" + hook2, hookBody("3", "http://x/"), 400, "describes the target arn:minio:sqs::3:webhook, not " + hook2, "notify.webhook.3"},
		{"PUT", "/v1/targets/" + hook2, `{"webhook":{"2":{"endpoint":"ftp://x/"}}}`, 400, "notify.webhook.2.endpoint", "notify.webhook.2.endpoint"},
		{"DELETE", "/v1/targets/arn:minio:sqs::9:webhook", "", 404, "no such target", ""},
		{"DELETE", "/v1/targets/" + webhookARN, "", 409, "remove it there and reload", ""},
		{"DELETE", "/v1/targets/" + hook2 + "?force=maybe", "", 400, "force must be true or false", "force"},
	} {
		code, body := apiBody(t, srv, c.method, c.path, c.body)
		var e struct{ Error, Field string }
		json.Unmarshal([]byte(body), &e)
		if code != c.code || !strings.Contains(e.Error, c.want) || e.Field != c.field || strings.HasPrefix(e.Error, "relay: ") {
			t.Errorf("%s %s %s = %d %s, want %d naming %q (field %q)", c.method, c.path, c.body, code, body, c.code, c.want, c.field)
		}
	}
	if got := r.ARNs(); len(got) != 2 {
		t.Fatalf("after refusals ARNs = %v, want the two targets", got)
	}
}

// TestRuntimeRedisTarget: a store target added at runtime writes the
// events logged after it to the real Redis.
func TestRuntimeRedisTarget(t *testing.T) {
	addr, conn, key := testRedis(t, "runtime")
	rcv1 := newTestReceiver(t)
	r := openRelay(t, testConfig(t, t.TempDir(), rcv1.URL(), ""))
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	ctx := context.Background()
	r.Publish(ctx, records("images", 0, 2)...)
	waitBodies(t, rcv1, 2, 10*time.Second)
	const arn = "arn:minio:sqs::r1:redis"
	mustAPI(t, srv, "POST", "/v1/targets", fmt.Sprintf(`{"redis":{"r1":{"format":"access","address":%q,"key":%q}}}`, addr, key), 201)
	route(t, r, webhookARN, arn)
	r.Publish(ctx, records("images", 2, 3)...)
	waitUntil(t, "3 entries in the list", func() bool {
		n, err := redis.Int(conn.Do("LLEN", key))
		return err == nil && n == 3
	})
	time.Sleep(100 * time.Millisecond)
	if n, _ := redis.Int(conn.Do("LLEN", key)); n != 3 {
		t.Fatalf("LLEN = %d, want 3 (only what was logged after the add)", n)
	}
	if s := status(t, srv, arn); s.Kind != "redis" || s.Delivered != 3 || s.Source != SourceAPI {
		t.Fatalf("status %+v, want redis, 3 delivered, from the api", s)
	}
}

// TestReload: a re-read file adds, changes and removes targets and
// replaces the file's rules; a removed target's pending events are kept,
// with a note saying how to release them.
func TestReload(t *testing.T) {
	rcv1, rcv2, rcv3 := newTestReceiver(t), newTestReceiver(t), newTestReceiver(t)
	rcv1.Stop() // events for target 1 stay pending
	dir := t.TempDir()
	doc := func(targets, buckets string) *Config {
		c, err := ParseConfig([]byte(fmt.Sprintf(`{"relay":{"dataDir":%q,"minBackoff":"10ms","maxBackoff":"100ms"},"notify":{"webhook":{%s}},"buckets":{%s}}`, dir, targets, buckets)))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	t1 := fmt.Sprintf(`"1":{"enable":true,"endpoint":%q}`, rcv1.URL())
	t2 := fmt.Sprintf(`"2":{"enable":true,"endpoint":%q}`, rcv2.URL())
	t2b := fmt.Sprintf(`"2":{"enable":true,"endpoint":%q}`, rcv3.URL())
	r := openRelay(t, doc(t1+","+t2, `"images":[{"arn":"arn:minio:sqs::1:webhook","events":["put"]},{"arn":"arn:minio:sqs::2:webhook","events":["put"]}]`))
	ctx := context.Background()
	r.Publish(ctx, records("images", 0, 3)...)
	waitBodies(t, rcv2, 3, 10*time.Second)

	ch, err := r.Reload(doc(t2b+`,"3":{"enable":true,"endpoint":"`+rcv3.URL()+`"}`, `"docs":[{"arn":"arn:minio:sqs::3:webhook","events":["put"]}],"images":[{"arn":"arn:minio:sqs::2:webhook","events":["put"]}]`))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(ch.Added, ch.Updated, ch.Removed, ch.Buckets) != "[arn:minio:sqs::3:webhook] [arn:minio:sqs::2:webhook] [arn:minio:sqs::1:webhook] [docs images]" {
		t.Fatalf("changes %+v", ch)
	}
	if len(ch.Notes) != 1 || !strings.Contains(ch.Notes[0], "3 pending events") || !strings.Contains(ch.Notes[0], "relay targets remove --force arn:minio:sqs::1:webhook") {
		t.Fatalf("notes %q, want the 3 pending events kept and how to release them", ch.Notes)
	}
	if _, ok := r.Log().Cursor(webhookARN); !ok {
		t.Fatal("reload released the removed target's cursor")
	}
	r.Publish(ctx, records("images", 3, 1)...)
	r.Publish(ctx, records("docs", 4, 1)...)
	waitBodies(t, rcv3, 2, 10*time.Second) // target 2 now posts to rcv3, and target 3 too
	if got := seqs(t, rcv3.Bodies()); fmt.Sprint(got) != "[3 4]" {
		t.Fatalf("after reload: %v, want [3 4]", got)
	}
	if got := r.Stats(); len(got) != 2 || got[0].ID != "arn:minio:sqs::2:webhook" && got[1].ID != "arn:minio:sqs::2:webhook" {
		t.Fatalf("stats after reload: %+v", got)
	}
	for _, s := range r.Stats() {
		if s.ID == "arn:minio:sqs::2:webhook" && s.Delivered != 4 {
			t.Fatalf("the updated target counts %d delivered, want 4: its counts go on across the update", s.Delivered)
		}
	}
	if n, _ := r.pendingCount(webhookARN); n != 3 {
		t.Fatalf("the removed target has %d pending, want 3 (nothing routed to it since)", n)
	}
	// Unchanged: nothing to do.
	ch, err = r.Reload(doc(t2b+`,"3":{"enable":true,"endpoint":"`+rcv3.URL()+`"}`, `"docs":[{"arn":"arn:minio:sqs::3:webhook","events":["put"]}],"images":[{"arn":"arn:minio:sqs::2:webhook","events":["put"]}]`))
	if err != nil || !ch.Empty() {
		t.Fatalf("second reload: %+v %v, want no change", ch, err)
	}
	// The stale cursor is released through the API.
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	// Adding the ARN again would hand it the events left: refused.
	if got := mustAPI(t, srv, "POST", "/v1/targets", hookBody("1", rcv2.URL()), 409); !strings.Contains(got, "earlier target arn:minio:sqs::1:webhook with 3 pending events") {
		t.Fatalf("add over a stale cursor: %s", got)
	}
	var rm Removal
	json.Unmarshal([]byte(mustAPI(t, srv, "DELETE", "/v1/targets/"+webhookARN+"?force=true", "", 200)), &rm)
	if rm.Released != 3 {
		t.Fatalf("release of the removed target: %+v, want 3", rm)
	}
	mustAPI(t, srv, "POST", "/v1/targets", hookBody("1", rcv2.URL()), 201)
}

// TestReloadKeepsOverride: an update through the API of a target the file
// defines wins over the file's entry on reload; when the file drops the
// target, the override goes with it. A region change is refused.
func TestReloadKeepsOverride(t *testing.T) {
	rcvFile, rcvAPI := newTestReceiver(t), newTestReceiver(t)
	dir := t.TempDir()
	doc := func(region, endpoint string, withTarget bool) *Config {
		notify := ""
		if withTarget {
			notify = fmt.Sprintf(`"notify":{"webhook":{"1":{"enable":true,"endpoint":%q}}},`, endpoint)
		}
		c, err := ParseConfig([]byte(fmt.Sprintf(`{"relay":{"dataDir":%q,"region":%q,"minBackoff":"10ms","maxBackoff":"100ms"},%s"buckets":{}}`, dir, region, notify)))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	r := openRelay(t, doc("", rcvFile.URL(), true))
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	mustAPI(t, srv, "PUT", "/v1/targets/"+webhookARN, hookBody("1", rcvAPI.URL()), 200)
	route(t, r, webhookARN)

	other := newTestReceiver(t)
	ch, err := r.Reload(doc("", other.URL(), true))
	if err != nil || len(ch.Updated) != 0 || len(ch.Notes) != 1 || !strings.Contains(ch.Notes[0], "overridden through the API") {
		t.Fatalf("reload of an overridden entry: %+v %v, want no update and a note", ch, err)
	}
	r.Publish(context.Background(), records("images", 0, 1)...)
	waitBodies(t, rcvAPI, 1, 10*time.Second)
	if len(other.Bodies())+len(rcvFile.Bodies()) != 0 {
		t.Fatal("the file's entry was used over the override")
	}
	if _, err := r.Reload(doc("eu-west-1", rcvFile.URL(), true)); err == nil || !strings.Contains(err.Error(), "relay.region") {
		t.Fatalf("a region change: %v, want it refused naming relay.region", err)
	}
	ch, err = r.Reload(doc("", "", false))
	if err != nil || fmt.Sprint(ch.Removed) != "["+webhookARN+"]" {
		t.Fatalf("reload without the target: %+v %v, want it removed", ch, err)
	}
	if st, _ := r.loadStoredTargets(); len(st) != 0 {
		t.Fatalf("targets.json still holds %v after the file dropped the target", st)
	}
	if got := r.ARNs(); len(got) != 0 {
		t.Fatalf("ARNs %v, want none", got)
	}
}

// TestReloadUnderLoad: publishers keep posting while reloads remove and
// add a target back and forth. Once a Reload that removes the target has
// returned, nothing more is logged for it; and every event published
// while it ran reaches it at most once per add (no duplicate from a
// double loop).
func TestReloadUnderLoad(t *testing.T) {
	rcv1, rcv2 := newTestReceiver(t), newTestReceiver(t)
	dir := t.TempDir()
	doc := func(with2 bool) *Config {
		targets := fmt.Sprintf(`"1":{"enable":true,"endpoint":%q}`, rcv1.URL())
		rs := `{"arn":"arn:minio:sqs::1:webhook","events":["put"]}`
		if with2 {
			targets += fmt.Sprintf(`,"2":{"enable":true,"endpoint":%q}`, rcv2.URL())
			rs += `,{"arn":"arn:minio:sqs::2:webhook","events":["put"]}`
		}
		c, err := ParseConfig([]byte(fmt.Sprintf(`{"relay":{"dataDir":%q,"noSync":true,"minBackoff":"10ms","maxBackoff":"100ms"},"notify":{"webhook":{%s}},"buckets":{"images":[%s]}}`, dir, targets, rs)))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	r := openRelay(t, doc(true))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var next atomic.Int64
	for p := 0; p < 3; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1))
				if err := r.Publish(context.Background(), records("images", i, 1)...); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for round := 0; round < 6; round++ {
		if _, err := r.Reload(doc(false)); err != nil {
			t.Fatal(err)
		}
		// The loop is gone: what is logged for the target now stays.
		n1, _ := r.pendingCount(hook2)
		for k := 0; k < 20; k++ {
			r.Publish(context.Background(), records("images", int(next.Add(1)), 1)...)
		}
		if n2, _ := r.pendingCount(hook2); n2 != n1 {
			t.Fatalf("round %d: %d events logged for the removed target after its removal", round, n2-n1)
		}
		if _, err := r.Reload(doc(true)); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	wg.Wait()
	waitUntil(t, "the target drained", func() bool { n, _ := r.pendingCount(hook2); return n == 0 })
	seen := map[int]int{}
	for _, b := range rcv2.Bodies() {
		seen[seqOf(t, b)]++
	}
	for i, n := range seen {
		if n > 1 {
			t.Fatalf("event %d delivered %d times to the reloaded target", i, n)
		}
	}
}

// TestRuntimeTargetsNeedToken: with an access token, changing targets and
// reading exports need it.
func TestRuntimeTargetsNeedToken(t *testing.T) {
	r, srv := tokenRelay(t)
	for _, p := range []string{"POST /v1/targets", "PUT /v1/targets/" + hook2, "DELETE /v1/targets/" + hook2 + "?force=true", "GET /v1/exports/x.jsonl"} {
		m, path, _ := strings.Cut(p, " ")
		if code, _ := apiBody(t, srv, m, path, hookBody("2", "http://127.0.0.1:1/")); code != 401 {
			t.Errorf("%s without a token: %d, want 401", p, code)
		}
	}
	if len(r.ARNs()) != 0 {
		t.Fatalf("a request without the token added %v", r.ARNs())
	}
	req, _ := http.NewRequest("POST", srv.URL+"/v1/targets", strings.NewReader(hookBody("2", "http://127.0.0.1:1/")))
	req.Header.Set("Authorization", "Bearer tok123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("with the token: %s, want 201", resp.Status)
	}
}
