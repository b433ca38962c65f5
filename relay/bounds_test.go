package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bucketrelay/bucketrelay/testkit/webhookrecv"
	"github.com/bucketrelay/bucketrelay/wal"
)

const (
	deadARN = "arn:minio:sqs::1:webhook"
	liveARN = "arn:minio:sqs::2:webhook"
)

func TestTargetBoundsConfig(t *testing.T) {
	c := parseConfig(t, `{"notify":{"webhook":{
"1":{"enable":true,"endpoint":"http://x/","maxPending":5,"maxPendingBytes":4096,"whenFull":"drop"},
"2":{"enable":true,"endpoint":"http://y/"}}}}`)
	got := map[string]TargetConfig{}
	for _, tc := range c.Targets {
		got[tc.ID] = tc
	}
	if tc := got["1"]; tc.MaxPending != 5 || tc.MaxPendingBytes != 4096 || tc.WhenFull != WhenFullDrop {
		t.Errorf("target 1 got %d, %d, %q; want 5, 4096, drop", tc.MaxPending, tc.MaxPendingBytes, tc.WhenFull)
	}
	if tc := got["2"]; tc.MaxPending != 0 || tc.MaxPendingBytes != 0 || tc.WhenFull != WhenFullBlock {
		t.Errorf("target 2 got %d, %d, %q; want the defaults 0, 0, block", tc.MaxPending, tc.MaxPendingBytes, tc.WhenFull)
	}
	for _, tc := range []struct{ doc, path string }{
		{`{"notify":{"webhook":{"1":{"enable":true,"endpoint":"http://x/","whenFull":"wait"}}}}`, "notify.webhook.1.whenFull"},
		{`{"notify":{"webhook":{"1":{"enable":true,"endpoint":"http://x/","maxPending":-1}}}}`, "notify.webhook.1.maxPending"},
		{`{"notify":{"webhook":{"1":{"enable":true,"endpoint":"http://x/","maxPendingBytes":-1}}}}`, "notify.webhook.1.maxPendingBytes"},
		{`{"notify":{"webhook":{"1":{"enable":true,"endpoint":"http://x/","maxPending":"many"}}}}`, "notify.webhook.1.maxPending"},
		{`{"notify":{"webhook":{"1":{"enable":true,"maxPending":3}}}}`, "notify.webhook.1.endpoint"},
	} {
		_, err := ParseConfig([]byte(tc.doc))
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Path != tc.path {
			t.Errorf("ParseConfig(%s) = %v, want an error at %s", tc.doc, err, tc.path)
		}
	}
}

// boundsRelay runs a relay with a dead webhook target (bound 3, policy
// whenFull) and a live one: bucket "both" routes to both, bucket "live"
// only to the live one; queueLimit, every target's default bound, is 10.
func boundsRelay(t *testing.T, whenFull string) (*Relay, *webhookrecv.Receiver) {
	dead := webhookrecv.New(t, "")
	dead.Stop()
	live := webhookrecv.New(t, "")
	doc := fmt.Sprintf(`{"relay":{"dataDir":%q,"minBackoff":"10ms","maxBackoff":"50ms","queueLimit":10},
"notify":{"webhook":{
 "1":{"enable":true,"endpoint":%q,"maxPending":3,"whenFull":%q},
 "2":{"enable":true,"endpoint":%q}}},
"buckets":{"both":[{"arn":%q,"events":["put"]},{"arn":%q,"events":["put"]}],
 "live":[{"arn":%q,"events":["put"]}]}}`, t.TempDir(), dead.URL(), whenFull, live.URL(), deadARN, liveARN, liveARN)
	c := parseConfig(t, doc)
	return openRelay(t, c), live
}

// A dead target never makes the relay refuse events routed only to others
// (issue 7, item 4): 200 events for the live target go through a relay
// whose queueLimit is 10 while the dead one holds its 3.
func TestDeadTargetDoesNotBlockRelay(t *testing.T) {
	r, live := boundsRelay(t, WhenFullBlock)
	ctx := context.Background()
	if err := r.Publish(ctx, records("both", 0, 3)...); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	err := r.Publish(short, records("both", 3, 1)...)
	if !errors.Is(err, wal.ErrFull) || !strings.Contains(err.Error(), deadARN) {
		t.Fatalf("publish beyond the dead target's bound: err %v, want ErrFull naming %s", err, deadARN)
	}
	for i := 0; i < 200; i += 5 {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := r.Publish(pctx, records("live", 100+i, 5)...)
		cancel()
		if err != nil {
			t.Fatalf("publish %d for the live target: %v", i, err)
		}
	}
	waitBodies(t, live, 203, 10*time.Second)
}

func TestDropPolicyCounted(t *testing.T) {
	r, live := boundsRelay(t, WhenFullDrop)
	if err := r.Publish(context.Background(), records("both", 0, 8)...); err != nil {
		t.Fatalf("publish with the drop policy: %v", err)
	}
	if got := r.Log().Dropped(deadARN); got != 5 {
		t.Fatalf("dropped for %s got %d, want 5", deadARN, got)
	}
	waitBodies(t, live, 8, 10*time.Second)
	w := do(t, r.Handler(), "GET", "/metrics", "")
	want := fmt.Sprintf(`relay_target_dropped_total{target=%q} 5`, deadARN)
	if !strings.Contains(w.Body.String(), want) {
		t.Fatalf("metrics lack %s:\n%s", want, w.Body.String())
	}
	if !strings.Contains(w.Body.String(), "relay_target_pending_bytes{") {
		t.Fatal("metrics lack relay_target_pending_bytes")
	}
}

// A damaged frame never stops the relay from starting: the intact events
// are delivered, the lost ones are in the target's quarantine (issue 7,
// item 5).
func TestRelayStartsWithDamagedFrame(t *testing.T) {
	rcv := webhookrecv.New(t, "")
	rcv.Stop()
	dir := t.TempDir()
	c := testConfig(t, dir, rcv.URL(), "")
	r, err := Open(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := r.Publish(context.Background(), records("images", i*10, 10)...); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	path := c.DataPath("wal.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var frame []byte
	db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte("records")).Cursor()
		c.First()
		_, v := c.Next()
		frame = append(frame, v...)
		return nil
	})
	db.Close()
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for at := bytes.Index(file, frame); at >= 0; {
		for i := len(frame) - 20; i < len(frame)-12; i++ {
			file[at+i] ^= 0x5a
		}
		next := bytes.Index(file[at+len(frame):], frame)
		if next < 0 {
			break
		}
		at += len(frame) + next
	}
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}

	rcv.Start(t)
	r = openRelay(t, testConfig(t, dir, rcv.URL(), ""))
	bodies := waitBodies(t, rcv, 20, 10*time.Second)
	got := map[int]bool{}
	for _, b := range bodies {
		got[seqOf(t, b)] = true
	}
	for i := 0; i < 30; i++ {
		if want := i < 10 || i >= 20; got[i] != want {
			t.Errorf("event %d delivered %v, want %v", i, got[i], want)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		q, _ := r.Log().Quarantined(webhookARN)
		if len(q) == 1 && q[0].Seq == 11 && q[0].Last == 20 && strings.HasPrefix(q[0].Error, "damaged frame") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("quarantine got %+v, want the damaged range 11-20", q)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The damage is reported: a note on /readyz (still ready) and a metric.
	h := r.Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if body := rec.Body.String(); rec.Code != 200 || !strings.Contains(body, "damaged log frame, sequences 11-20") {
		t.Errorf("/readyz got %d %q, want 200 with a note naming sequences 11-20", rec.Code, body)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), "relay_wal_damaged_frames 1") {
		t.Errorf("/metrics lacks relay_wal_damaged_frames 1")
	}
}
