// Package targettest is the conformance suite every target runs against a
// real server: the same test body for the webhook, the brokers and the
// stores, parameterised by what each can promise.
//
// A target's test builds a Harness around its server and calls Run. The
// suite drives the target through a real write-ahead log and delivery
// engine, so it tests the path events take in the relay.
package targettest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/wal"
)

// Features says what a target promises.
type Features struct {
	// Namespace targets keep the newest state per key; the suite checks
	// State instead of Received.
	Namespace bool
	// Message targets carry the {"EventName","Key","Records"} body; others
	// store {"Records":[…]} (access format) and Received returns those.
	Message bool
	// AtMostOnce targets (core NATS, MQTT QoS 0) may lose what is sent while
	// the server is away; the suite then skips the outage subtests.
	AtMostOnce bool
}

// Harness connects the suite to one target kind and its real server.
type Harness struct {
	Features Features
	// New returns a target for the server. Called once per subtest.
	New func(t testing.TB) delivery.Target
	// Received returns every body the server's consumer has received so far,
	// in arrival order (message and access-format targets).
	Received func(t testing.TB) [][]byte
	// State returns the namespace state: key → stored JSON
	// ({"Records":[record]}). Namespace targets only.
	State func(t testing.TB) map[string][]byte
	// Stop and Start stop and start the server. Nil skips the outage
	// subtests (which CI never does: every harness there sets them).
	Stop, Start func(t testing.TB)
	// Timeout bounds each wait for delivery; 0 means 60 s.
	Timeout time.Duration
}

// Record returns a realistic S3 event record for bucket/key.
func Record(bucket, key string, name event.Name, i int) event.Record {
	return event.Record{
		EventVersion: "2.0", EventSource: "minio:s3", AwsRegion: "",
		EventTime: time.Date(2026, 11, 25, 12, 0, 0, i*1000, time.UTC).Format(time.RFC3339Nano),
		EventName: name, UserIdentity: event.Identity{PrincipalID: "minio"},
		RequestParameters: map[string]string{"sourceIPAddress": "127.0.0.1:38062"},
		ResponseElements:  map[string]string{"x-amz-request-id": fmt.Sprintf("%016X", i), "x-minio-origin-endpoint": "http://127.0.0.1:9000"},
		S3: event.S3{
			SchemaVersion: "1.0", ConfigurationID: "Config",
			Bucket: event.Bucket{Name: bucket, OwnerIdentity: event.Identity{PrincipalID: "minio"}, ARN: "arn:aws:s3:::" + bucket},
			Object: event.Object{Key: key, Size: int64(1000 + i), ETag: fmt.Sprintf("%032x", i), ContentType: "image/jpeg", Sequencer: fmt.Sprintf("%016X", i)},
		},
		Source: &event.Source{Host: "127.0.0.1", Port: "38062", UserAgent: "MinIO (linux; amd64) minio-go/v7.0.0 mc/RELEASE"},
	}
}

// Entry turns a record into a log entry routed to target.
func Entry(r event.Record, target string) *wal.Entry {
	data, _ := json.Marshal(r)
	return &wal.Entry{Targets: []string{target}, Key: r.Key(), Name: string(r.EventName), EventTime: r.Time(), Data: data}
}

// pipeline is a log and an engine draining it into one target.
type pipeline struct {
	log    *wal.Log
	cancel context.CancelFunc
	done   chan struct{}
	id     string
	eng    *delivery.Engine
}

func start(t testing.TB, h Harness) *pipeline {
	t.Helper()
	l, err := wal.Open(filepath.Join(t.TempDir(), "wal.db"), wal.Options{CursorSyncInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	p := &pipeline{log: l, id: "arn:minio:sqs::test:target", done: make(chan struct{})}
	p.eng = delivery.New(l, delivery.Options{MinBackoff: 20 * time.Millisecond, MaxBackoff: 500 * time.Millisecond, ShutdownGrace: 2 * time.Second})
	if err := p.eng.Add(delivery.Spec{ID: p.id, Target: h.New(t), Namespace: h.Features.Namespace, MaxBatch: 200}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() { p.eng.Run(ctx); close(p.done) }()
	t.Cleanup(p.stop)
	return p
}

func (p *pipeline) stop() {
	p.cancel()
	<-p.done
	p.log.Close()
}

func (p *pipeline) publish(t testing.TB, recs ...event.Record) {
	t.Helper()
	entries := make([]*wal.Entry, len(recs))
	for i, r := range recs {
		entries[i] = Entry(r, p.id)
	}
	if _, err := p.log.Append(context.Background(), entries...); err != nil {
		t.Fatal(err)
	}
}

// received is one delivered event as the consumer saw it.
type received struct {
	Key, Name, Bucket string
	Seq               int // from the object size
}

func parseBodies(t testing.TB, h Harness, bodies [][]byte, bucket string) []received {
	t.Helper()
	var out []received
	for _, b := range bodies {
		var m struct {
			EventName string
			Key       string
			Records   []event.Record
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("body is not JSON: %v: %.200s", err, b)
		}
		if len(m.Records) != 1 {
			t.Fatalf("body has %d records, want 1: %.200s", len(m.Records), b)
		}
		r := m.Records[0]
		if r.S3.Bucket.Name != bucket {
			continue
		}
		if h.Features.Message {
			if m.EventName != string(r.EventName) || m.Key != r.Key() {
				t.Fatalf("body EventName %q Key %q, want %q %q", m.EventName, m.Key, r.EventName, r.Key())
			}
		}
		out = append(out, received{Key: r.Key(), Name: string(r.EventName), Bucket: r.S3.Bucket.Name, Seq: int(r.S3.Object.Size - 1000)})
	}
	return out
}

func (h Harness) timeout() time.Duration {
	if h.Timeout > 0 {
		return h.Timeout
	}
	return 60 * time.Second
}

// waitReceived waits until n distinct events of bucket arrived (duplicates
// do not count) and returns every one received.
func waitReceived(t testing.TB, h Harness, bucket string, n int) []received {
	t.Helper()
	deadline := time.Now().Add(h.timeout())
	for {
		got := parseBodies(t, h, h.Received(t), bucket)
		distinct := map[int]bool{}
		for _, r := range got {
			distinct[r.Seq] = true
		}
		if len(distinct) >= n || time.Now().After(deadline) {
			if len(distinct) < n {
				t.Fatalf("received %d distinct events of bucket %s, want %d", len(distinct), bucket, n)
			}
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkStream checks that events 0..n-1 all arrived and that each key's
// events arrived in order. It reports duplicates.
func checkStream(t testing.TB, got []received, n int) {
	t.Helper()
	seen := map[int]int{}
	last := map[string]int{}
	for _, r := range got {
		seen[r.Seq]++
		if p, ok := last[r.Key]; ok && r.Seq < p && seen[r.Seq] == 1 {
			t.Errorf("key %s: event %d arrived after event %d", r.Key, r.Seq, p)
		}
		last[r.Key] = max(last[r.Key], r.Seq)
	}
	var missing []int
	dups := 0
	for i := 0; i < n; i++ {
		if seen[i] == 0 {
			missing = append(missing, i)
		}
		if seen[i] > 1 {
			dups += seen[i] - 1
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d events lost, first %v", len(missing), missing[:min(10, len(missing))])
	}
	if dups > 0 {
		t.Logf("%d duplicates (at-least-once delivery)", dups)
	}
}

var bucketCounter int

func uniqueBucket(name string) string {
	bucketCounter++
	return fmt.Sprintf("ct-%s-%d-%d", name, os.Getpid(), bucketCounter)
}

// stream returns n records over keys keys; every third one a delete for
// namespace targets.
func stream(bucket string, n, keys int, deletes bool) []event.Record {
	recs := make([]event.Record, n)
	for i := range recs {
		name := event.ObjectCreatedPut
		if deletes && i%3 == 2 {
			name = event.ObjectRemovedDelete
		}
		recs[i] = Record(bucket, fmt.Sprintf("photos/%03d.jpg", i%keys), name, i)
	}
	return recs
}

// model returns the namespace state replaying recs in order gives.
func model(recs []event.Record) map[string]string {
	m := map[string]string{}
	for _, r := range recs {
		switch r.EventName.Op() {
		case event.OpPut:
			m[r.Key()] = r.ResponseElements["x-amz-request-id"]
		case event.OpDelete:
			delete(m, r.Key())
		}
	}
	return m
}

func checkState(t testing.TB, h Harness, bucket string, want map[string]string) {
	t.Helper()
	deadline := time.Now().Add(h.timeout())
	var diff string
	for {
		got := map[string]string{}
		for k, v := range h.State(t) {
			var m struct{ Records []event.Record }
			if err := json.Unmarshal(v, &m); err != nil || len(m.Records) != 1 {
				t.Fatalf("state of %s is not {\"Records\":[record]}: %v: %.200s", k, err, v)
			}
			if m.Records[0].S3.Bucket.Name == bucket {
				got[k] = m.Records[0].ResponseElements["x-amz-request-id"]
			}
		}
		diff = stateDiff(got, want)
		if diff == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("namespace state differs from the model: %s", diff)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func stateDiff(got, want map[string]string) string {
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if got[k] != want[k] {
			return fmt.Sprintf("key %s: got %q, want %q (%d keys, want %d)", k, got[k], want[k], len(got), len(want))
		}
	}
	return ""
}

func (h Harness) check(t testing.TB, bucket string, recs []event.Record) {
	t.Helper()
	if h.Features.Namespace {
		checkState(t, h, bucket, model(recs))
		return
	}
	checkStream(t, waitReceived(t, h, bucket, len(recs)), len(recs))
}

// Run runs the conformance suite.
func Run(t *testing.T, h Harness) {
	t.Run("Stream", func(t *testing.T) {
		p := start(t, h)
		bucket := uniqueBucket("stream")
		recs := stream(bucket, 300, 17, h.Features.Namespace)
		for i := 0; i < len(recs); i += 30 {
			p.publish(t, recs[i:i+30]...)
		}
		h.check(t, bucket, recs)
	})
	t.Run("Body", func(t *testing.T) {
		if h.Features.Namespace {
			t.Skip("namespace targets are checked by Stream's state")
		}
		p := start(t, h)
		bucket := uniqueBucket("body")
		r := Record(bucket, "my photo.jpg", event.ObjectCreatedPut, 0)
		r.S3.Object.Key = "my+photo.jpg" // S3 sends keys URL-encoded
		p.publish(t, r)
		got := waitReceived(t, h, bucket, 1)
		if got[0].Key != bucket+"/my photo.jpg" || got[0].Name != "s3:ObjectCreated:Put" {
			t.Fatalf("got key %q name %q, want %q s3:ObjectCreated:Put", got[0].Key, got[0].Name, bucket+"/my photo.jpg")
		}
	})
	if h.Stop == nil || h.Start == nil || h.Features.AtMostOnce {
		return
	}
	t.Run("DownAtStart", func(t *testing.T) {
		h.Stop(t)
		started := false
		defer func() {
			if !started {
				h.Start(t)
			}
		}()
		p := start(t, h)
		bucket := uniqueBucket("down")
		recs := stream(bucket, 100, 10, h.Features.Namespace)
		p.publish(t, recs[:50]...)
		time.Sleep(300 * time.Millisecond)
		h.Start(t)
		started = true
		p.publish(t, recs[50:]...)
		h.check(t, bucket, recs)
	})
	t.Run("RestartMidStream", func(t *testing.T) {
		p := start(t, h)
		bucket := uniqueBucket("restart")
		recs := stream(bucket, 400, 23, h.Features.Namespace)
		stopped := false
		defer func() {
			if stopped {
				h.Start(t)
			}
		}()
		for i := 0; i < len(recs); i += 20 {
			p.publish(t, recs[i:i+20]...)
			if i == 100 {
				h.Stop(t)
				stopped = true
			}
			if i == 300 {
				h.Start(t)
				stopped = false
			}
			time.Sleep(5 * time.Millisecond)
		}
		h.check(t, bucket, recs)
	})
}
