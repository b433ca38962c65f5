package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/rules"
	"github.com/bucketrelay/bucketrelay/testkit/webhookrecv"
)

// post sends body to the API and returns the status and body.
func post(t testing.TB, srv *httptest.Server, path, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// seqsOf returns the numbers the bodies' records were built with.
func seqsOf(t testing.TB, bodies [][]byte) []int {
	out := make([]int, len(bodies))
	for i, b := range bodies {
		out[i] = seqOf(t, b)
	}
	return out
}

func publish(t testing.TB, r *Relay, from, n int) {
	t.Helper()
	if err := r.Publish(context.Background(), records("images", from, n)...); err != nil {
		t.Fatal(err)
	}
}

// TestRewindAPI: with relay.retention, POST /v1/targets/{arn}/rewind
// re-delivers the retained events from a sequence or a time, answers how
// many, and refuses bad input with a 4xx naming the problem.
func TestRewindAPI(t *testing.T) {
	rcv := newTestReceiver(t)
	r := openRelay(t, testConfig(t, t.TempDir(), rcv.URL(), `,"retention":{"age":"1h"}`))
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	publish(t, r, 1, 5)
	waitBodies(t, rcv, 5, 10*time.Second)
	time.Sleep(20 * time.Millisecond)
	mid := time.Now()
	time.Sleep(20 * time.Millisecond)
	publish(t, r, 6, 5)
	waitBodies(t, rcv, 10, 10*time.Second)
	waitUntil(t, "the cursor past every event", func() bool { c, _ := r.Log().Cursor(webhookARN); return c == 11 })

	var st struct {
		Retained Retained
	}
	apiJSON(t, srv, "GET", "/v1/targets", 200, &st)
	if st.Retained.FirstSeq != 1 || st.Retained.LastSeq != 10 || st.Retained.Oldest == nil || st.Retained.Age != "1h" {
		t.Fatalf("retained = %+v, want 1..10 with its oldest time and age 1h", st.Retained)
	}
	waitUntil(t, "10 retained events", func() bool { return r.Retained().Events == 10 })

	base := "/v1/targets/" + webhookARN + "/rewind"
	code, body := post(t, srv, base, `{"toTime":"`+mid.UTC().Format(time.RFC3339Nano)+`"}`)
	var res RewindResult
	if err := json.Unmarshal([]byte(body), &res); code != 200 || err != nil || res.ToSeq != 6 || res.FromSeq != 11 || res.Redeliver != 5 || res.ToTime == nil {
		t.Fatalf("rewind by time = %d %s, want 200 from 11 to 6, 5 to re-deliver", code, body)
	}
	got := waitBodies(t, rcv, 15, 10*time.Second)
	if s := seqsOf(t, got[10:]); !slices.Equal(s, []int{6, 7, 8, 9, 10}) {
		t.Fatalf("re-delivered %v, want 6..10", s)
	}
	waitUntil(t, "the cursor past every event", func() bool { c, _ := r.Log().Cursor(webhookARN); return c == 11 })
	code, body = post(t, srv, base, `{"toSeq":9}`)
	if err := json.Unmarshal([]byte(body), &res); code != 200 || err != nil || res.ToSeq != 9 || res.Redeliver != 2 {
		t.Fatalf("rewind by seq = %d %s, want 200 to 9, 2 to re-deliver", code, body)
	}
	got = waitBodies(t, rcv, 17, 10*time.Second)
	if s := seqsOf(t, got[15:]); !slices.Equal(s, []int{9, 10}) {
		t.Fatalf("re-delivered %v, want 9, 10", s)
	}
	waitUntil(t, "the cursor past every event", func() bool { c, _ := r.Log().Cursor(webhookARN); return c == 11 })
	if s := status(t, srv, webhookARN); s.Lag != 0 {
		t.Fatalf("lag after the re-delivery = %d, want 0", s.Lag)
	}

	// A paused target rewound holds the events to deliver again: its lag
	// says how many, before and after the resume.
	apiJSON(t, srv, "POST", "/v1/targets/"+webhookARN+"/pause", 200, nil)
	code, body = post(t, srv, base, `{"toSeq":3}`)
	if err := json.Unmarshal([]byte(body), &res); code != 200 || err != nil || res.Redeliver != 8 {
		t.Fatalf("rewind of a paused target = %d %s, want 8 to re-deliver", code, body)
	}
	if s := status(t, srv, webhookARN); s.Lag != 8 || s.State != "paused" || s.Cursor != 3 {
		t.Fatalf("status after the rewind = %+v, want paused at 3 with a lag of 8", s)
	}
	if p, _ := r.Log().Pending(webhookARN); p != 10 {
		// The log's bound counts by whole frames: 1-5 and 6-10.
		t.Fatalf("log's pending after the rewind = %d, want 10", p)
	}
	apiJSON(t, srv, "POST", "/v1/targets/"+webhookARN+"/resume", 200, nil)
	got = waitBodies(t, rcv, 25, 10*time.Second)
	if s := seqsOf(t, got[17:]); !slices.Equal(s, []int{3, 4, 5, 6, 7, 8, 9, 10}) {
		t.Fatalf("re-delivered %v, want 3..10", s)
	}
	waitUntil(t, "no lag", func() bool { return status(t, srv, webhookARN).Lag == 0 })

	for _, c := range []struct {
		path, body string
		code       int
		want       string
	}{
		{base, `{}`, 400, "give toTime (RFC 3339) or toSeq"},
		{base, `{"toSeq":1,"toTime":"2026-12-01T10:00:00Z"}`, 400, "not both"},
		{base, `{"toTime":"yesterday"}`, 400, `toTime: "yesterday" is not an RFC 3339 time`},
		{base, `{"toSeq":0}`, 400, "sequences start at 1"},
		{base, `{"toSeq":"x"}`, 400, "the body must be"},
		{base, `{"toSeq":12}`, 409, "past arn:minio:sqs::1:webhook's cursor 11"},
		{"/v1/targets/arn:minio:sqs::9:webhook/rewind", `{"toSeq":1}`, 404, "no such target arn:minio:sqs::9:webhook"},
	} {
		code, body := post(t, srv, c.path, c.body)
		var e struct{ Error string }
		json.Unmarshal([]byte(body), &e)
		if code != c.code || !strings.Contains(e.Error, c.want) || strings.HasPrefix(e.Error, "relay: ") {
			t.Errorf("POST %s %s = %d %s, want %d naming %q", c.path, c.body, code, body, c.code, c.want)
		}
	}
	if len(rcv.Bodies()) != 25 {
		t.Fatalf("receiver got %d bodies after refused rewinds, want 25", len(rcv.Bodies()))
	}

	waitUntil(t, "10 retained events again", func() bool { return r.Retained().Events == 10 })
	mb := &bytes.Buffer{}
	r.MetricsHandler().ServeHTTP(httptestRecorder(mb), httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(mb.String(), "relay_wal_retained_events 10") || !strings.Contains(mb.String(), "relay_wal_retained_first_seq 1") {
		t.Fatalf("metrics lack the retained range:\n%s", mb)
	}
}

// httptestRecorder is a ResponseWriter writing its body to b.
func httptestRecorder(b *bytes.Buffer) http.ResponseWriter {
	rec := httptest.NewRecorder()
	rec.Body = b
	return rec
}

// TestRewindOlderThanRetained: without retention nothing delivered is
// kept: a rewind is refused with 409 naming the oldest available event.
func TestRewindOlderThanRetained(t *testing.T) {
	rcv := newTestReceiver(t)
	r := openRelay(t, testConfig(t, t.TempDir(), rcv.URL(), ""))
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	publish(t, r, 1, 3)
	waitBodies(t, rcv, 3, 10*time.Second)
	waitUntil(t, "nothing held", func() bool { return r.Log().Events() == 0 })
	code, body := post(t, srv, "/v1/targets/"+webhookARN+"/rewind", `{"toSeq":1}`)
	if code != 409 || !strings.Contains(body, "no history is retained; the next event will be sequence 4") {
		t.Fatalf("rewind without history = %d %s, want 409 naming sequence 4", code, body)
	}
	_, err := r.Rewind(context.Background(), webhookARN, 0, time.Now().Add(-time.Hour))
	if !errors.Is(err, ErrNotRetained) {
		t.Fatalf("rewind by time without history: %v, want ErrNotRetained", err)
	}
}

// startFromConfig is a config with webhook targets 1 (to rcv1) and, when
// rcv2 and rcv3 are set, 2 (startFrom oldest) and 3 (default), every one
// routed images: put. Each posts one event at a time, in log order
// across objects too ("concurrency": 1), as the tests check.
func startFromConfig(t *testing.T, dir string, rcv1, rcv2, rcv3 *webhookrecv.Receiver) *Config {
	t.Helper()
	targets := fmt.Sprintf(`"1":{"enable":true,"endpoint":%q,"concurrency":1}`, rcv1.URL())
	rules := `{"arn":"arn:minio:sqs::1:webhook","events":["put"]}`
	if rcv2 != nil {
		targets += fmt.Sprintf(`,"2":{"enable":true,"endpoint":%q,"startFrom":"oldest","concurrency":1},"3":{"enable":true,"endpoint":%q,"concurrency":1}`, rcv2.URL(), rcv3.URL())
		rules += `,{"arn":"arn:minio:sqs::2:webhook","events":["put"]},{"arn":"arn:minio:sqs::3:webhook","events":["put"]}`
	}
	c := parseConfig(t, fmt.Sprintf(`{"relay":{"dataDir":%q,"minBackoff":"10ms","maxBackoff":"200ms","retention":{"age":"1h","bytes":1048576}},
"notify":{"webhook":{%s}},"buckets":{"images":[%s]}}`, dir, targets, rules))
	return c
}

// TestStartFromOldest: a target added to the file between restarts with
// "startFrom": "oldest" receives the retained history, then new events;
// one without it receives only new events.
func TestStartFromOldest(t *testing.T) {
	dir := t.TempDir()
	rcv1, rcv2, rcv3 := newTestReceiver(t), newTestReceiver(t), newTestReceiver(t)
	r, err := Open(startFromConfig(t, dir, rcv1, nil, nil), Options{})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, r, 1, 3)
	waitBodies(t, rcv1, 3, 10*time.Second)
	waitUntil(t, "the cursor past every event", func() bool { c, _ := r.Log().Cursor(webhookARN); return c == 4 })
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	r = openRelay(t, startFromConfig(t, dir, rcv1, rcv2, rcv3))
	publish(t, r, 4, 2)
	if s := seqsOf(t, waitBodies(t, rcv2, 5, 10*time.Second)); !slices.Equal(s, []int{1, 2, 3, 4, 5}) {
		t.Fatalf("target 2 (startFrom oldest) got %v, want 1..5", s)
	}
	if s := seqsOf(t, waitBodies(t, rcv3, 2, 10*time.Second)); !slices.Equal(s, []int{4, 5}) {
		t.Fatalf("target 3 (startFrom new) got %v, want 4, 5", s)
	}
	waitBodies(t, rcv1, 5, 10*time.Second)
	time.Sleep(100 * time.Millisecond)
	if n1, n2, n3 := len(rcv1.Bodies()), len(rcv2.Bodies()), len(rcv3.Bodies()); n1 != 5 || n2 != 5 || n3 != 2 {
		t.Fatalf("bodies: %d, %d, %d; want 5, 5, 2", n1, n2, n3)
	}
	// A target that has a cursor keeps it: startFrom is for new targets.
	if _, err := r.startFromOldest(context.Background(), "arn:minio:sqs::9:webhook"); !errors.Is(err, ErrNoTarget) {
		t.Fatalf("startFromOldest of an unknown target: %v, want ErrNoTarget", err)
	}
}

func TestRetentionConfigErrors(t *testing.T) {
	for _, c := range []struct{ doc, want string }{
		{`{"relay":{"retention":{"age":"soon"}}}`, `relay.retention.age: "soon" is not a positive duration`},
		{`{"relay":{"retention":{"bytes":-1}}}`, "relay.retention.bytes: must not be negative"},
		{`{"relay":{"retention":{"days":1}}}`, "days"},
		{`{"notify":{"webhook":{"1":{"enable":true,"endpoint":"http://127.0.0.1:1/","startFrom":"first"}}}}`, `notify.webhook.1.startFrom: "first" is not "new" or "oldest"`},
	} {
		_, err := ParseConfig([]byte(c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseConfig(%s): %v, want an error naming %q", c.doc, err, c.want)
		}
	}
	c := parseConfig(t, `{"relay":{"retention":{"age":"24h","bytes":1073741824}}}`)
	if got := c.Relay.Retention.Log(); got.Age != 24*time.Hour || got.Bytes != 1<<30 {
		t.Fatalf("retention = %+v, want 24h and 1 GiB", got)
	}
}

// TestRetainedGivesWayToPublish: with relay.queueLimit full of retained
// history, a publish is not pushed back: the oldest retained events go.
func TestRetainedGivesWayToPublish(t *testing.T) {
	rcv := newTestReceiver(t)
	c := testConfig(t, t.TempDir(), rcv.URL(), `,"queueLimit":5,"fullWait":"100ms","retention":{"age":"1h"}`)
	r := openRelay(t, c)
	publish(t, r, 1, 5)
	waitBodies(t, rcv, 5, 10*time.Second)
	waitUntil(t, "5 retained events", func() bool { return r.Retained().Events == 5 })
	for i := 6; i <= 10; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := r.Publish(ctx, records("images", i, 1)...)
		cancel()
		if err != nil {
			t.Fatalf("publish %d with the bound full of retained events: %v", i, err)
		}
	}
	waitBodies(t, rcv, 10, 10*time.Second)
	waitUntil(t, "the newest 5 retained", func() bool { s := r.Retained(); return s.Events == 5 && s.FirstSeq == 6 })
}

// TestRuntimeTargetFromStart: a target added at runtime, then given its
// rules, catches up on the retained history with a rewind from the start
// (POST /v1/targets/{arn}/rewind {"fromStart":true}), then gets new events.
func TestRuntimeTargetFromStart(t *testing.T) {
	rcv1, rcv2 := newTestReceiver(t), newTestReceiver(t)
	r := openRelay(t, startFromConfig(t, t.TempDir(), rcv1, nil, nil))
	publish(t, r, 1, 3)
	waitBodies(t, rcv1, 3, 10*time.Second)
	h := r.Handler()
	const arn2 = "arn:minio:sqs::2:webhook"
	if w := do(t, h, "POST", "/v1/targets", hookBody("2", rcv2.URL())); w.Code != http.StatusCreated {
		t.Fatalf("add: %d %s", w.Code, w.Body)
	}
	if w := do(t, h, "POST", "/v1/targets/"+arn2+"/rewind", `{"fromStart":true,"toSeq":1}`); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "one of fromStart") {
		t.Fatalf("fromStart with toSeq: %d %s, want 400", w.Code, w.Body)
	}
	if err := r.SetBucketRules("images", []rules.Rule{
		{ARN: webhookARN, Events: []event.Name{"s3:ObjectCreated:*"}},
		{ARN: arn2, Events: []event.Name{"s3:ObjectCreated:*"}},
	}); err != nil {
		t.Fatal(err)
	}
	w := do(t, h, "POST", "/v1/targets/"+arn2+"/rewind", `{"fromStart":true}`)
	if w.Code != http.StatusOK {
		t.Fatalf("rewind fromStart: %d %s", w.Code, w.Body)
	}
	var res RewindResult
	if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil || !res.FromStart || res.Redeliver != 3 {
		t.Fatalf("rewind answer %s (%v): want fromStart and 3 events", w.Body, err)
	}
	publish(t, r, 4, 1)
	if s := seqsOf(t, waitBodies(t, rcv2, 4, 10*time.Second)); !slices.Equal(s, []int{1, 2, 3, 4}) {
		t.Fatalf("runtime target from the start got %v, want 1..4", s)
	}
}
