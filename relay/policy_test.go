package relay

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/testkit/webhookrecv"
	"github.com/bucketrelay/bucketrelay/wal"
)

// TestTargetPolicyParsed: the policy keys beside a target's own become its
// delivery policy; absent ones keep the defaults.
func TestTargetPolicyParsed(t *testing.T) {
	c := parseConfig(t, `{"relay":{"dataDir":"x","maxAttempts":5},"notify":{"webhook":{
		"1":{"enable":true,"endpoint":"http://127.0.0.1:1/","maxAttempts":10,"maxAge":"24h","rateLimit":250.5,"maxBatch":100,"inflight":2,"lanes":8},
		"2":{"enable":true,"endpoint":"http://127.0.0.1:2/","maxAttempts":0},
		"3":{"enable":true,"endpoint":"http://127.0.0.1:3/"}}}}`)
	want := map[string]struct {
		p     delivery.Policy
		batch int
	}{
		"1": {delivery.Policy{MaxAttempts: 10, MaxAge: 24 * time.Hour, RateLimit: 250.5, InFlight: 2, Lanes: 8}, 100},
		"2": {delivery.Policy{MaxAttempts: -1, InFlight: 1}, 0},
		"3": {delivery.Policy{InFlight: 1}, 0},
	}
	for _, tc := range c.Targets {
		w := want[tc.ID]
		if tc.Policy != w.p || tc.MaxBatch != w.batch {
			t.Errorf("target %s: got %+v batch %d, want %+v batch %d", tc.ID, tc.Policy, tc.MaxBatch, w.p, w.batch)
		}
	}
}

// TestTargetPolicyErrorsNameTheField: a bad policy value is refused with
// the field's path.
func TestTargetPolicyErrorsNameTheField(t *testing.T) {
	const wh = `{"notify":{"webhook":{"1":{"enable":true,"endpoint":"http://x/",`
	const pg = `{"notify":{"postgresql":{"p":{"enable":true,"format":"access","connectionString":"host=127.0.0.1 dbname=x","table":"t",`
	for _, c := range []struct{ doc, path, msg string }{
		{wh + `"maxAttempts":-1}}}}`, "notify.webhook.1.maxAttempts", "negative"},
		{wh + `"maxAge":"old"}}}}`, "notify.webhook.1.maxAge", "duration"},
		{wh + `"maxAge":"-1h"}}}}`, "notify.webhook.1.maxAge", "duration"},
		{wh + `"rateLimit":0}}}}`, "notify.webhook.1.rateLimit", "positive"},
		{wh + `"maxBatch":0}}}}`, "notify.webhook.1.maxBatch", "between"},
		{wh + `"inflight":0}}}}`, "notify.webhook.1.inflight", "between"},
		{wh + `"lanes":1000}}}}`, "notify.webhook.1.lanes", "between"},
		{wh + `"lanes":"8"}}}}`, "notify.webhook.1.lanes", "number"},
		{pg + `"inflight":65}}}}`, "notify.postgresql.p.inflight", "between"},
	} {
		_, err := ParseConfig([]byte(c.doc))
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Path != c.path || !strings.Contains(ce.Msg, c.msg) {
			t.Errorf("ParseConfig(%s) = %v, want an error at %s saying %q", c.doc, err, c.path, c.msg)
		}
	}
	// PostgreSQL sends side by side (a connection each): its window is 4
	// by default, and any window and lanes are accepted.
	if c, err := ParseConfig([]byte(pg + `"maxBatch":10}}}}`)); err != nil {
		t.Errorf("postgresql without inflight: %v", err)
	} else if got := c.Targets[0].Policy.InFlight; got != 4 {
		t.Errorf("postgresql without inflight: got window %d, want the kind's, 4", got)
	}
	if _, err := ParseConfig([]byte(pg + `"inflight":2,"lanes":4}}}}`)); err != nil {
		t.Errorf("inflight 2 and lanes 4 on postgresql: %v", err)
	}
}

// TestPolicyREADMEExample: the README's policy example loads as written.
func TestPolicyREADMEExample(t *testing.T) {
	doc := `{"relay":{"dataDir":"x"},"notify":{
"webhook": {"1": {"enable": true, "endpoint": "https://hooks.example.com/s3",
  "lanes": 8, "maxAttempts": 20, "maxAge": "24h", "rateLimit": 500}},
"kafka": {"1": {"enable": true, "brokers": ["127.0.0.1:9092"], "topic": "bucketevents",
  "inflight": 4, "maxBatch": 1000}}
}}`
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	example := doc[strings.Index(doc, `"webhook"`):strings.LastIndex(doc, "}}")]
	if !strings.Contains(string(readme), strings.TrimSpace(example)) {
		t.Fatalf("README no longer holds the example:\n%s", example)
	}
	c := parseConfig(t, doc)
	if len(c.Targets) != 2 || c.Targets[1].Policy.Lanes != 8 || c.Targets[0].Policy.InFlight != 4 {
		t.Fatalf("targets %+v, want kafka with inflight 4 and webhook with 8 lanes", c.Targets)
	}
}

// TestTargetPolicyReachesEngine: a target's maxAge and lanes from the file
// drive its delivery: with the endpoint down, events older than maxAge are
// quarantined as expired; with it up, events go out through the lanes.
func TestTargetPolicyReachesEngine(t *testing.T) {
	rcv := webhookrecv.New(t, "")
	rcv.Stop()
	dir := t.TempDir()
	doc := fmt.Sprintf(`{"relay":{"dataDir":%q,"minBackoff":"10ms","maxBackoff":"50ms"},
"notify":{"webhook":{"1":{"enable":true,"endpoint":%q,"timeout":"1s","maxAge":"300ms","lanes":4}}},
"buckets":{"images":[{"arn":%q,"events":["put","delete"]}]}}`, dir, rcv.URL(), webhookARN)
	c := parseConfig(t, doc)
	r := openRelay(t, c)
	if err := r.Publish(context.Background(), records("images", 0, 5)...); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	var q []wal.QuarantineItem
	for len(q) < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("quarantined %d of 5 events in 20 s", len(q))
		}
		time.Sleep(20 * time.Millisecond)
		q, _ = r.Quarantine(webhookARN)
	}
	for _, it := range q {
		if !strings.Contains(it.Error, "expired") {
			t.Fatalf("event %d quarantined with %q, want expired", it.Seq, it.Error)
		}
	}
	rcv.Start(t)
	if err := r.Publish(context.Background(), records("images", 5, 40)...); err != nil {
		t.Fatal(err)
	}
	waitBodies(t, rcv, 40, 20*time.Second)
	if err := rcv.CheckKeyOrder(); err != nil {
		t.Fatal(err)
	}
	if w := do(t, r.Handler(), "GET", "/metrics", ""); !strings.Contains(w.Body.String(), fmt.Sprintf("relay_target_resent_total{target=%q} 0", webhookARN)) {
		t.Fatalf("metrics lack relay_target_resent_total for %s", webhookARN)
	}
}
