package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/rules"
	"github.com/bucketrelay/bucketrelay/testkit/webhookrecv"
	"github.com/bucketrelay/bucketrelay/wal"
)

const webhookARN = "arn:minio:sqs::1:webhook"

// testConfig returns a config with one webhook target posting to endpoint
// and the rule images: put,delete.
// testConfig is a relay with webhook target 1 posting to endpoint, one
// POST at a time ("concurrency": 1): the tests check the log order across
// objects, which the webhook's default concurrency does not keep.
func testConfig(t testing.TB, dir, endpoint, extra string) *Config {
	t.Helper()
	doc := fmt.Sprintf(`{"relay":{"dataDir":%q,"minBackoff":"10ms","maxBackoff":"200ms"%s},
"notify":{"webhook":{"1":{"enable":true,"endpoint":%q,"timeout":"2s","concurrency":1}}},
"buckets":{"images":[{"arn":%q,"events":["put","delete"]}]}}`, dir, extra, endpoint, webhookARN)
	return parseConfig(t, doc)
}

func openRelay(t testing.TB, c *Config) *Relay {
	t.Helper()
	r, err := Open(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	return r
}

func records(bucket string, from, n int) []event.Record {
	out := make([]event.Record, n)
	for i := range out {
		out[i] = targettest.Record(bucket, fmt.Sprintf("obj-%05d.jpg", from+i), event.ObjectCreatedPut, from+i)
	}
	return out
}

// seqOf returns the number a record was built with (targettest.Record
// stores it in the object size).
func seqOf(t testing.TB, body []byte) int {
	var m struct{ Records []event.Record }
	if err := json.Unmarshal(body, &m); err != nil || len(m.Records) != 1 {
		t.Fatalf("bad body %.100s: %v", body, err)
	}
	return int(m.Records[0].S3.Object.Size - 1000)
}

func waitBodies(t testing.TB, rcv *webhookrecv.Receiver, n int, within time.Duration) [][]byte {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		b := rcv.Bodies()
		if len(b) >= n {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("receiver got %d events, want %d", len(b), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPublishRoutesByRules(t *testing.T) {
	rcv := webhookrecv.New(t, "")
	r := openRelay(t, testConfig(t, t.TempDir(), rcv.URL(), ""))
	ctx := context.Background()
	recs := []event.Record{
		targettest.Record("images", "a.jpg", event.ObjectCreatedPut, 0),
		targettest.Record("images", "a.jpg", event.ObjectAccessedGet, 1), // no rule for get
		targettest.Record("docs", "b.txt", event.ObjectCreatedPut, 2),    // no rule for docs
		targettest.Record("images", "a.jpg", event.ObjectRemovedDelete, 3),
	}
	if err := r.Publish(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	got := waitBodies(t, rcv, 2, 5*time.Second)
	time.Sleep(50 * time.Millisecond)
	if got = rcv.Bodies(); len(got) != 2 || seqOf(t, got[0]) != 0 || seqOf(t, got[1]) != 3 {
		t.Fatalf("receiver got %d events, want events 0 and 3", len(got))
	}
	bad := targettest.Record("images", "", event.ObjectCreatedPut, 9)
	if err := r.Publish(ctx, bad); err == nil || !strings.Contains(err.Error(), "s3.object.key") {
		t.Fatalf("Publish of a record without key: err %v, want one naming s3.object.key", err)
	}
}

// TestOutage: the receiver is down when the relay starts and for a while
// under load; once it is up every event arrives, in order.
func TestOutage(t *testing.T) {
	rcv := webhookrecv.New(t, "")
	rcv.Stop()
	r := openRelay(t, testConfig(t, t.TempDir(), rcv.URL(), ""))
	ctx := context.Background()
	const n = 2000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < n; i += 50 {
			if err := r.Publish(ctx, records("images", i, 50)...); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	time.Sleep(300 * time.Millisecond)
	rcv.Start(t)
	wg.Wait()
	got := waitBodies(t, rcv, n, 30*time.Second)
	for i, b := range got {
		if s := seqOf(t, b); s != i {
			t.Fatalf("event %d arrived at position %d: order broken or event lost", s, i)
		}
	}
	if len(got) != n {
		t.Fatalf("receiver got %d events, want %d (duplicates?)", len(got), n)
	}
}

// TestPoisonEvent: the receiver rejects one event with 400; every later
// event still arrives and the rejected one is in the quarantine.
func TestPoisonEvent(t *testing.T) {
	rcv := webhookrecv.New(t, "")
	rcv.Reject = func(b []byte) bool { return bytes.Contains(b, []byte("obj-00005.jpg")) }
	dir := t.TempDir()
	r := openRelay(t, testConfig(t, dir, rcv.URL(), ""))
	if err := r.Publish(context.Background(), records("images", 0, 20)...); err != nil {
		t.Fatal(err)
	}
	got := waitBodies(t, rcv, 19, 10*time.Second)
	for _, b := range got {
		if seqOf(t, b) == 5 {
			t.Fatal("the rejected event was delivered")
		}
	}
	waitFor(t, func() bool { return r.Stats()[0].Quarantined == 1 })
	r.Close(context.Background())
	l, err := wal.OpenReadOnly(c(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	q, err := l.Quarantined(webhookARN)
	if err != nil || len(q) != 1 || !strings.Contains(q[0].Key, "obj-00005.jpg") || !strings.Contains(q[0].Error, "400") || q[0].Attempts != 1 {
		t.Fatalf("quarantine = %+v, %v; want the rejected event with its 400 error", q, err)
	}
}

func c(dir string) string { return dir + "/wal.db" }

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func do(t testing.TB, h http.Handler, method, path, body string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestHTTPAPI(t *testing.T) {
	rcv := webhookrecv.New(t, "")
	dir := t.TempDir()
	r := openRelay(t, testConfig(t, dir, rcv.URL(), `,"maxRequestBytes":20000`))
	h := r.Handler()
	rec, _ := json.Marshal(targettest.Record("images", "x.jpg", event.ObjectCreatedPut, 0))

	if w := do(t, h, "POST", "/v1/events", `{"Records":[`+string(rec)+`,`+string(rec)+`]}`); w.Code != 200 || !strings.Contains(w.Body.String(), `"accepted":2`) {
		t.Fatalf("POST records: %d %s", w.Code, w.Body)
	}
	// A webhook body, as an object store's own webhook target posts it.
	if w := do(t, h, "POST", "/v1/events", `{"EventName":"s3:ObjectCreated:Put","Key":"images/x.jpg","Records":[`+string(rec)+`]}`); w.Code != 200 {
		t.Fatalf("POST webhook body: %d %s", w.Code, w.Body)
	}
	for _, c := range []struct {
		body string
		code int
		want string
	}{
		{`{"Records":[`, 400, "malformed JSON"},
		{`{"records2":[]}`, 400, "array"},
		{`{"Records":[{"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"images"},"object":{}}}]}`, 400, "record 0"},
		{`{"Records":[` + string(rec) + `,{"eventName":"s3:Nope","s3":{"bucket":{"name":"images"},"object":{"key":"k"}}}]}`, 400, "record 1"},
		{`{"Records":["` + strings.Repeat("x", 30000) + `"]}`, 413, "larger than"},
		{`{"Records":[1]}`, 400, "not a JSON object"},
		{`{"Records":[{"eventName":5,"s3":{"bucket":{"name":"images"},"object":{"key":"k"}}}]}`, 400, "eventName must be a string"},
		{`{"Records":[{"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"images"},"object":{"key":"k"}},"eventTime":"yesterday"}]}`, 400, "eventTime"},
	} {
		if w := do(t, h, "POST", "/v1/events", c.body); w.Code != c.code || !strings.Contains(w.Body.String(), c.want) {
			t.Errorf("POST %.50s: %d %s, want %d with %q", c.body, w.Code, w.Body, c.code, c.want)
		}
	}
	waitBodies(t, rcv, 3, 5*time.Second)

	// Bucket notification configuration.
	xml := string(rules.MarshalXML([]rules.Rule{{ARN: webhookARN, Events: []event.Name{"s3:ObjectCreated:*"}, Suffix: ".png"}}))
	if w := do(t, h, "PUT", "/v1/buckets/pics/notification", xml); w.Code != 200 {
		t.Fatalf("PUT notification: %d %s", w.Code, w.Body)
	}
	bad := strings.Replace(xml, webhookARN, "arn:minio:sqs::9:webhook", 1)
	if w := do(t, h, "PUT", "/v1/buckets/pics/notification", bad); w.Code != 400 || !strings.Contains(w.Body.String(), "arn:minio:sqs::9:webhook") {
		t.Fatalf("PUT with unknown ARN: %d %s, want 400 naming it", w.Code, w.Body)
	}
	if w := do(t, h, "GET", "/v1/buckets/pics/notification", ""); !strings.Contains(w.Body.String(), "<Value>.png</Value>") {
		t.Fatalf("GET notification: %s", w.Body)
	}
	if w := do(t, h, "GET", "/healthz", ""); w.Code != 200 {
		t.Fatalf("healthz: %d", w.Code)
	}
	m := do(t, h, "GET", "/metrics", "").Body.String()
	for _, name := range []string{"relay_target_delivered_total{target=\"arn:minio:sqs::1:webhook\"} 3", "relay_target_retried_total", "relay_target_quarantined_total", "relay_target_lag_events", "relay_target_oldest_pending_seconds", "relay_ingest_events_total 3", "relay_ingest_latency_seconds_bucket", "relay_wal_file_bytes"} {
		if !strings.Contains(m, name) {
			t.Errorf("metrics lack %s", name)
		}
	}

	// Rules set through the API survive a restart.
	r.Close(context.Background())
	r2 := openRelay(t, testConfig(t, dir, rcv.URL(), ""))
	if rs := r2.BucketRules("pics"); len(rs) != 1 || rs[0].Suffix != ".png" {
		t.Fatalf("rules after restart = %+v", rs)
	}
	if w := do(t, r2.Handler(), "DELETE", "/v1/buckets/pics/notification", ""); w.Code != 204 {
		t.Fatalf("DELETE: %d", w.Code)
	}
	if rs := r2.BucketRules("pics"); len(rs) != 0 {
		t.Fatalf("rules after DELETE = %+v", rs)
	}
}

func TestAccessToken(t *testing.T) {
	c := parseConfig(t, `{"relay":{"dataDir":"`+t.TempDir()+`","listen":"0.0.0.0:0","accessToken":"tok123"}}`)
	h := openRelay(t, c).Handler()
	if w := do(t, h, "GET", "/v1/targets", ""); w.Code != 401 {
		t.Fatalf("without token: %d, want 401", w.Code)
	}
	if w := do(t, h, "GET", "/v1/targets", "", "Authorization", "Bearer tok123"); w.Code != 200 {
		t.Fatalf("with token: %d, want 200", w.Code)
	}
}

// TestFullLogPushesBack: a full log answers 503 with Retry-After and
// accepts again once the target drains.
func TestFullLogPushesBack(t *testing.T) {
	rcv := webhookrecv.New(t, "")
	rcv.Stop()
	r := openRelay(t, testConfig(t, t.TempDir(), rcv.URL(), `,"queueLimit":10,"fullWait":"100ms"`))
	h := r.Handler()
	body := func(from int) string {
		var parts []string
		for _, rec := range records("images", from, 5) {
			b, _ := json.Marshal(rec)
			parts = append(parts, string(b))
		}
		return `{"Records":[` + strings.Join(parts, ",") + `]}`
	}
	for i := 0; i < 2; i++ {
		if w := do(t, h, "POST", "/v1/events", body(i*5)); w.Code != 200 {
			t.Fatalf("POST %d: %d %s", i, w.Code, w.Body)
		}
	}
	w := do(t, h, "POST", "/v1/events", body(10))
	if w.Code != 503 || w.Header().Get("Retry-After") == "" {
		t.Fatalf("POST to a full log: %d (Retry-After %q), want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
	rcv.Start(t)
	waitBodies(t, rcv, 10, 10*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if w := do(t, h, "POST", "/v1/events", body(10)); w.Code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("log stayed full after the target drained")
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitBodies(t, rcv, 15, 10*time.Second)
}

func TestSecretsNotLogged(t *testing.T) {
	var logs bytes.Buffer
	rcv := webhookrecv.New(t, "")
	rcv.Stop()
	doc := fmt.Sprintf(`{"relay":{"dataDir":%q,"minBackoff":"10ms","maxBackoff":"20ms"},"notify":{"webhook":{"1":{"enable":true,"endpoint":"http://admin:pa55word@%s/","authToken":"tok-s3cret"}}},"buckets":{"images":[{"arn":%q,"events":["put"]}]}}`, t.TempDir(), rcv.Addr, webhookARN)
	c := parseConfig(t, doc)
	r, err := Open(c, Options{Logger: newTestLogger(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	r.Publish(context.Background(), records("images", 0, 1)...)
	waitFor(t, func() bool { return r.Stats()[0].Retried > 2 })
	r.Close(context.Background())
	out := logs.String() + r.Stats()[0].LastError
	if !strings.Contains(out, "retrying") {
		t.Fatalf("expected retry logs, got %s", out)
	}
	for _, s := range []string{"pa55word", "tok-s3cret"} {
		if strings.Contains(out, s) {
			t.Fatalf("secret %q in logs: %s", s, out)
		}
	}
}

var _ = io.Discard

func TestPostEventsBodyShapes(t *testing.T) {
	rcv := webhookrecv.New(t, "")
	h := openRelay(t, testConfig(t, t.TempDir(), rcv.URL(), "")).Handler()
	rec, _ := json.Marshal(targettest.Record("images", "x.jpg", event.ObjectCreatedPut, 0))
	for _, c := range []struct {
		body string
		code int
	}{
		{"  \n{\"Records\":[" + string(rec) + "]}\n", 200},
		{`{"Records":[]}`, 200},
		{`[{"Records":[]}]`, 400},
		{`{"Records":{}}`, 400},
		{`{"Records":[` + string(rec) + `]`, 400},
	} {
		if w := do(t, h, "POST", "/v1/events", c.body); w.Code != c.code {
			t.Errorf("POST %.40q: %d %s, want %d", c.body, w.Code, w.Body, c.code)
		}
	}
}

// parseConfig parses a configuration document or fails the test.
func parseConfig(t testing.TB, doc string) *Config {
	t.Helper()
	c, err := ParseConfig([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return c
}
