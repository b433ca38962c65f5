package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/relay"
	"github.com/bucketrelay/bucketrelay/testkit/webhookrecv"
)

// TestPoisonEventVisible: a relay whose webhook rejects one event with 400
// delivers the rest, and walinspect shows the rejected event in the
// target's quarantine with its error.
func TestPoisonEventVisible(t *testing.T) {
	rcv := webhookrecv.New(t, "")
	rcv.Reject = func(b []byte) bool { return bytes.Contains(b, []byte("poison.jpg")) }
	dir := t.TempDir()
	cfg, err := relay.ParseConfig([]byte(fmt.Sprintf(`{"relay":{"dataDir":%q},
"notify":{"webhook":{"1":{"enable":true,"endpoint":%q}}},
"buckets":{"images":[{"arn":"arn:minio:sqs::1:webhook","events":["put"]}]}}`, dir, rcv.URL())))
	if err != nil {
		t.Fatal(err)
	}
	r, err := relay.Open(cfg, relay.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var recs []event.Record
	for i, k := range []string{"a.jpg", "poison.jpg", "b.jpg", "c.jpg"} {
		recs = append(recs, targettest.Record("images", k, event.ObjectCreatedPut, i))
	}
	if err := r.Publish(context.Background(), recs...); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(rcv.Bodies()) < 3 || r.Stats()[0].Quarantined < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("got %d events and %d quarantined, want 3 and 1", len(rcv.Bodies()), r.Stats()[0].Quarantined)
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.Close(context.Background())

	code, out, errOut := run(t, "--json", "targets", dir)
	if code != 0 {
		t.Fatalf("targets exited %d: %s", code, errOut)
	}
	if !strings.Contains(out, "arn:minio:sqs::1:webhook") || !strings.Contains(out, "400 Bad Request") {
		t.Fatalf("targets --json does not show the quarantined event's error:\n%s", out)
	}
	code, out, errOut = run(t, "dump", "--quarantine", "--target", "arn:minio:sqs::1:webhook", dir)
	if code != 0 {
		t.Fatalf("dump --quarantine exited %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 {
		t.Fatalf("quarantine dump has %d lines, want 1:\n%s", len(lines), out)
	}
	var q map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &q); err != nil {
		t.Fatal(err)
	}
	if q["key"] != "images/poison.jpg" || !strings.Contains(fmt.Sprint(q["error"]), "400") {
		t.Fatalf("quarantine entry = %v, want images/poison.jpg with its 400 error", q)
	}
}
