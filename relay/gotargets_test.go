package relay

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/adapters/redis"
	"github.com/bucketrelay/bucketrelay/adapters/webhook"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/rules"
	"github.com/bucketrelay/bucketrelay/testkit/webhookrecv"
)

// TestAddTargetTyped: a target configured in Go with its adapter's Config
// is validated like the file's (the same field path) and delivers.
func TestAddTargetTyped(t *testing.T) {
	rcv := webhookrecv.New(t, "")
	c := parseConfig(t, fmt.Sprintf(`{"relay":{"dataDir":%q}}`, t.TempDir()))
	// The same mistake in Go and in the file: one error, one path.
	_, goErr := c.AddTarget("1", &webhook.Config{Enable: true})
	_, fileErr := ParseConfig([]byte(`{"notify":{"webhook":{"1":{"enable":true}}}}`))
	var ce *ConfigError
	if !errors.As(goErr, &ce) || ce.Path != "notify.webhook.1.endpoint" || fileErr == nil || goErr.Error() != fileErr.Error() {
		t.Fatalf("AddTarget without an endpoint: %v; the file says %v; want the same error at notify.webhook.1.endpoint", goErr, fileErr)
	}
	if _, err := c.AddTarget("1", &struct{ kindless }{}); err == nil || !strings.Contains(err.Error(), "not the Config of a target kind") {
		t.Fatalf("AddTarget of a foreign type: %v", err)
	}
	arn, err := c.AddTarget("1", &webhook.Config{Enable: true, Endpoint: rcv.URL()})
	if err != nil || arn != webhookARN {
		t.Fatalf("AddTarget: %s, %v; want %s", arn, err, webhookARN)
	}
	if _, err := c.AddTarget("1", &webhook.Config{Enable: true, Endpoint: rcv.URL()}); err == nil {
		t.Fatal("AddTarget of the same kind and id twice: no error")
	}
	if _, err := c.AddTarget("ns", &redis.Config{Enable: false, Address: "127.0.0.1:6379", Key: "k", Format: "namespace"}); err != nil {
		t.Fatalf("AddTarget of a disabled redis target: %v", err)
	}
	r := openRelay(t, c)
	if got := r.ARNs(); len(got) != 1 || got[0] != webhookARN {
		t.Fatalf("ARNs = %v, want only the enabled %s", got, webhookARN)
	}
	if err := r.SetBucketRules("images", []rules.Rule{{ARN: arn}}); err != nil {
		t.Fatal(err)
	}
	if err := r.Publish(context.Background(), records("images", 0, 3)...); err != nil {
		t.Fatal(err)
	}
	waitBodies(t, rcv, 3, 10*time.Second)
}

type kindless struct{}

func (*kindless) Validate() error { return nil }

// TestFileRuleObjectFilters: a rule in the file filters on size and
// content type; only matching events reach the target.
func TestFileRuleObjectFilters(t *testing.T) {
	rcv := webhookrecv.New(t, "")
	doc := fmt.Sprintf(`{"relay":{"dataDir":%q},
"notify":{"webhook":{"1":{"enable":true,"endpoint":%q}}},
"buckets":{"images":[{"arn":%q,"events":["put"],"minSize":1024,"contentTypes":["image/*"],"keyRegex":"^raw/"}]}}`, t.TempDir(), rcv.URL(), webhookARN)
	c := parseConfig(t, doc)
	if _, err := ParseConfig([]byte(strings.Replace(doc, `"minSize":1024`, `"minSize":-1`, 1))); err == nil || !strings.Contains(err.Error(), "buckets.images.0") || !strings.Contains(err.Error(), "minSize") {
		t.Fatalf("a negative minSize: %v, want an error naming buckets.images.0 and minSize", err)
	}
	r := openRelay(t, c)
	put := func(key string, size int64, ct string) event.Record {
		return event.NewRecord(event.ObjectCreatedPut, event.ObjectInfo{Bucket: "images", Key: key, Size: size, ContentType: ct}, event.Request{})
	}
	recs := []event.Record{
		put("raw/big.jpg", 4096, "image/jpeg"), // selected
		put("raw/small.jpg", 10, "image/jpeg"), // too small
		put("raw/doc.txt", 4096, "text/plain"), // not an image
		put("out/big.jpg", 4096, "image/jpeg"), // key does not match
		put("raw/big.png", 2048, "image/png"),  // selected
	}
	if err := r.Publish(context.Background(), recs...); err != nil {
		t.Fatal(err)
	}
	bodies := waitBodies(t, rcv, 2, 10*time.Second)
	time.Sleep(300 * time.Millisecond)
	bodies = rcv.Bodies()
	var keys []string
	for _, b := range bodies {
		for _, k := range []string{"raw%2Fbig.jpg", "raw%2Fsmall.jpg", "raw%2Fdoc.txt", "out%2Fbig.jpg", "raw%2Fbig.png"} {
			if strings.Contains(string(b), k) {
				keys = append(keys, k)
			}
		}
	}
	// Two objects: the webhook may post them side by side, in any order.
	slices.Sort(keys)
	if strings.Join(keys, " ") != "raw%2Fbig.jpg raw%2Fbig.png" {
		t.Fatalf("delivered %v, want raw/big.jpg and raw/big.png only", keys)
	}
}

// TestWebhookEventID: events delivered through the relay carry webhook-id,
// the log's id and the record's sequence.
func TestWebhookEventID(t *testing.T) {
	ids := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ids <- r.Header.Get("webhook-id")
	}))
	defer srv.Close()
	r := openRelay(t, testConfig(t, t.TempDir(), srv.URL, ""))
	if err := r.Publish(context.Background(), records("images", 0, 2)...); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{r.Log().ID() + "-1", r.Log().ID() + "-2"} {
		select {
		case got := <-ids:
			if got != want || len(r.Log().ID()) != 16 {
				t.Errorf("webhook-id %q, want %q", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no delivery")
		}
	}
}
