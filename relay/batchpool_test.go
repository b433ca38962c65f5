package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/rules"
)

// keepTarget acknowledges every item and keeps a copy of it.
type keepTarget struct {
	mu    sync.Mutex
	items map[string]delivery.Item // by key
}

func (k *keepTarget) Send(_ context.Context, items []delivery.Item) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, it := range items {
		it.Record = append(json.RawMessage(nil), it.Record...)
		k.items[it.Key] = it
	}
	return nil
}
func (k *keepTarget) Close() error { return nil }

func (k *keepTarget) wait(t *testing.T, n int) map[string]delivery.Item {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		k.mu.Lock()
		got := len(k.items)
		k.mu.Unlock()
		if got >= n {
			return k.items
		}
		if time.Now().After(deadline) {
			t.Fatalf("target got %d events, want %d", got, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func keepRelay(t *testing.T) (*Relay, *keepTarget) {
	const arn = "arn:minio:sqs::1:keep"
	c, err := ParseConfig([]byte(`{"relay":{"dataDir":"` + t.TempDir() + `","noSync":true}}`))
	if err != nil {
		t.Fatal(err)
	}
	k := &keepTarget{items: map[string]delivery.Item{}}
	r, err := Open(c, Options{Targets: map[string]delivery.Target{arn: k}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	if err := r.SetBucketRules("images", []rules.Rule{{ARN: arn, Events: []event.Name{event.ObjectCreatedAll}}}); err != nil {
		t.Fatal(err)
	}
	return r, k
}

// Batches are pooled: concurrent calls of Publish, PublishJSON and POST
// /v1/events, of different sizes, each deliver their own records, with
// their own keys, names and bytes (a buffer reused too early would mix
// them).
func TestPooledBatchesKeepRecordsApart(t *testing.T) {
	r, k := keepRelay(t)
	h := r.Handler()
	want := map[string][]byte{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for call := range 18 {
				n := 1 + (g*7+call*13)%40
				recs := make([]event.Record, n)
				raws := make([]json.RawMessage, n)
				for i := range recs {
					id := fmt.Sprintf("g%d/c%02d/r%02d", g, call, i)
					recs[i] = targettest.Record("images", "obj/"+id+".jpg", event.ObjectCreatedPut, g*10000+call*100+i)
					recs[i].S3.Object.UserMetadata = map[string]string{"x-amz-meta-id": strings.Repeat(id, 1+i%5)}
					raws[i], _ = json.Marshal(recs[i])
				}
				var err error
				switch call % 3 {
				case 0:
					err = r.Publish(context.Background(), recs...)
				case 1:
					_, err = r.PublishJSON(context.Background(), raws...)
				default:
					body, _ := json.Marshal(map[string]any{"Records": raws})
					w := httptest.NewRecorder()
					h.ServeHTTP(w, httptest.NewRequest("POST", "/v1/events", strings.NewReader(string(body))))
					if w.Code != 200 {
						err = fmt.Errorf("POST: %d %s", w.Code, w.Body)
					}
				}
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				for i := range recs {
					want[recs[i].Key()] = raws[i]
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := k.wait(t, len(want))
	for key, raw := range want {
		it, ok := got[key]
		if !ok {
			t.Fatalf("%s: not delivered", key)
		}
		if string(it.Record) != string(raw) {
			t.Fatalf("%s: got record %s, want %s", key, it.Record, raw)
		}
		if it.EventName != event.ObjectCreatedPut {
			t.Fatalf("%s: got event name %q", key, it.EventName)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("got %d keys delivered, want %d", len(got), len(want))
	}
}

// A pretty-printed record is stored compact, whether it comes in a POST
// body or through PublishJSON; a compact one is stored as it came.
func TestPrettyRecordsStoredCompact(t *testing.T) {
	r, k := keepRelay(t)
	rec := targettest.Record("images", "pretty.jpg", event.ObjectCreatedPut, 1)
	rec2 := targettest.Record("images", "pretty2.jpg", event.ObjectCreatedPut, 2)
	compact, _ := json.Marshal(rec)
	compact2, _ := json.Marshal(rec2)
	pretty, _ := json.MarshalIndent(map[string]any{"Records": []event.Record{rec}}, "", "  ")
	w := httptest.NewRecorder()
	r.Handler().ServeHTTP(w, httptest.NewRequest("POST", "/v1/events", strings.NewReader(string(pretty))))
	if w.Code != 200 {
		t.Fatalf("POST: %d %s", w.Code, w.Body)
	}
	pretty2, _ := json.MarshalIndent(rec2, "", "\t")
	spaced := `{ "eventName": "s3:ObjectCreated:Put", "s3": {"bucket": {"name": "images"}, "object": {"key": "spaced.jpg"}} }`
	if _, err := r.PublishJSON(context.Background(), pretty2, json.RawMessage(spaced)); err != nil {
		t.Fatal(err)
	}
	got := k.wait(t, 3)
	if s := string(got["images/pretty.jpg"].Record); s != string(compact) {
		t.Errorf("POSTed pretty record stored as %s, want %s", s, compact)
	}
	if s := string(got["images/pretty2.jpg"].Record); s != string(compact2) {
		t.Errorf("PublishJSON pretty record stored as %s, want %s", s, compact2)
	}
	if s := string(got["images/spaced.jpg"].Record); s != spaced {
		t.Errorf("record on one line stored as %s, want it as it came: %s", s, spaced)
	}
}
