package elasticsearch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/adapters/elasticsearch/esfake"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/internal/testenv"
	"github.com/bucketrelay/bucketrelay/wal"
)

// backend is the node the tests run against: the in-process stand-in
// (esfake), or the real cluster named by RELAY_TEST_ELASTICSEARCH_URL, which
// cannot be stopped, so the outage tests run on the stand-in only.
type backend struct {
	url  string
	fake *esfake.Server // nil for a real cluster
}

func newBackend(t testing.TB) *backend {
	t.Helper()
	if u := os.Getenv("RELAY_TEST_ELASTICSEARCH_URL"); u != "" {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		testenv.Require(t, "elasticsearch", pu.Host)
		return &backend{url: u}
	}
	s, err := esfake.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return &backend{url: s.URL(), fake: s}
}

func (b *backend) stop(t testing.TB) { b.fake.Stop() }
func (b *backend) start(t testing.TB) {
	if err := b.fake.Restart(); err != nil {
		t.Fatal(err)
	}
}

// do sends a request to the node and returns the status and body.
func (b *backend) do(t testing.TB, method, path, body string) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, b.url+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if u, err := url.Parse(b.url); err == nil && u.User != nil {
		p, _ := u.User.Password()
		req.SetBasicAuth(u.User.Username(), p)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res.StatusCode, out
}

type hit struct {
	ID     string          `json:"_id"`
	Index  string          `json:"_index"`
	Source json.RawMessage `json:"_source"`
}

// docs returns every document of index through _search.
func (b *backend) docs(t testing.TB, index string) []hit {
	t.Helper()
	b.do(t, "POST", "/"+index+"/_refresh", "")
	code, body := b.do(t, "POST", "/"+index+"/_search", `{"query":{"match_all":{}},"size":10000}`)
	if code == 404 {
		return nil
	}
	if code != 200 {
		t.Fatalf("_search: got %d %s, want 200", code, body)
	}
	var r struct {
		Hits struct {
			Hits []hit `json:"hits"`
		} `json:"hits"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	return r.Hits.Hits
}

func (b *backend) dropIndex(t testing.TB, index string) {
	b.do(t, "DELETE", "/"+index, "")
	t.Cleanup(func() { b.do(t, "DELETE", "/"+index, "") })
}

func indexName(kind string) string { return fmt.Sprintf("relay-test-%s-%d", kind, os.Getpid()) }

func newTarget(t testing.TB, cfg Config) *Target {
	t.Helper()
	tg, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func (b *backend) harness(t *testing.T, index string, f targettest.Features) targettest.Harness {
	h := targettest.Harness{
		Features: f,
		New: func(t testing.TB) delivery.Target {
			format := FormatNamespace
			if !f.Namespace {
				format = FormatAccess
			}
			return newTarget(t, Config{Enable: true, Format: format, URL: b.url, Index: index})
		},
		State: func(t testing.TB) map[string][]byte {
			m := map[string][]byte{}
			for _, h := range b.docs(t, index) {
				m[h.ID] = h.Source
			}
			return m
		},
		Received: func(t testing.TB) [][]byte {
			hits := b.docs(t, index)
			// A real cluster returns hits in no set order: sort by the
			// record's time, which the suite's records increase.
			type doc struct {
				t   string
				src []byte
			}
			var ds []doc
			for _, h := range hits {
				var m struct {
					EventTime string `json:"eventTime"`
				}
				_ = json.Unmarshal(h.Source, &m)
				ds = append(ds, doc{m.EventTime, h.Source})
			}
			if b.fake == nil {
				sort.SliceStable(ds, func(i, j int) bool { return ds[i].t < ds[j].t })
			}
			out := make([][]byte, len(ds))
			for i, d := range ds {
				out[i] = d.src
			}
			return out
		},
	}
	if b.fake != nil {
		h.Stop, h.Start = b.stop, b.start
	}
	return h
}

func TestConformanceNamespace(t *testing.T) {
	b := newBackend(t)
	index := indexName("ns")
	b.dropIndex(t, index)
	targettest.Run(t, b.harness(t, index, targettest.Features{Namespace: true}))
}

func TestConformanceAccess(t *testing.T) {
	b := newBackend(t)
	index := indexName("access")
	b.dropIndex(t, index)
	targettest.Run(t, b.harness(t, index, targettest.Features{}))
}

func item(bucket, key string, name event.Name, i int) delivery.Item {
	r := targettest.Record(bucket, key, name, i)
	e := targettest.Entry(r, "x")
	return delivery.Item{Seq: uint64(i + 1), Key: e.Key, EventName: name, EventTime: e.EventTime, Record: e.Data}
}

// TestSeedExample is the seed's check: _search shows a document whose _id is
// "images/myphoto.jpg" and whose _source is {"Records":[…]}.
func TestSeedExample(t *testing.T) {
	b := newBackend(t)
	b.dropIndex(t, "minio_events")
	tg := newTarget(t, Config{Enable: true, Format: "namespace", URL: b.url, Index: "minio_events"})
	defer tg.Close()
	if err := tg.Send(context.Background(), []delivery.Item{item("images", "myphoto.jpg", event.ObjectCreatedPut, 1)}); err != nil {
		t.Fatal(err)
	}
	hits := b.docs(t, "minio_events")
	if len(hits) != 1 || hits[0].ID != "images/myphoto.jpg" || hits[0].Index != "minio_events" {
		t.Fatalf("got hits %+v, want one with _id images/myphoto.jpg", hits)
	}
	var m struct{ Records []event.Record }
	if err := json.Unmarshal(hits[0].Source, &m); err != nil || len(m.Records) != 1 || m.Records[0].S3.Object.Key != "myphoto.jpg" {
		t.Fatalf("_source %s: got %v, want {\"Records\":[record of myphoto.jpg]}", hits[0].Source, err)
	}
	code, body := b.do(t, "GET", "/minio_events/_doc/images%2Fmyphoto.jpg", "")
	if code != 200 || !strings.Contains(string(body), `"found":true`) {
		t.Fatalf("GET _doc/images%%2Fmyphoto.jpg: got %d %s, want 200 found", code, body)
	}
	if err := tg.Send(context.Background(), []delivery.Item{item("images", "myphoto.jpg", event.ObjectRemovedDelete, 2)}); err != nil {
		t.Fatal(err)
	}
	if hits := b.docs(t, "minio_events"); len(hits) != 0 {
		t.Fatalf("got %d documents after the delete, want 0", len(hits))
	}
}

func TestPartialFailure(t *testing.T) {
	b := newBackend(t)
	for _, format := range []string{FormatNamespace, FormatAccess} {
		t.Run(format, func(t *testing.T) {
			index := indexName("partial-" + format)
			b.dropIndex(t, index)
			tg := newTarget(t, Config{Format: format, URL: b.url, Index: index})
			defer tg.Close()
			items := []delivery.Item{
				item("b", "1.jpg", event.ObjectCreatedPut, 1),
				item("b", "2.jpg", event.ObjectCreatedPut, 2),
				item("b", "3.jpg", event.ObjectCreatedPut, 3),
				item("b", "gone.jpg", event.ObjectRemovedDelete, 4), // not there: success
				item("b", "busy.jpg", event.ObjectCreatedPut, 5),
			}
			items[1].Record = json.RawMessage(`{"eventName": "s3:ObjectCreated:Put", "broken`)
			want := map[int]bool{1: true} // index → permanent
			if b.fake != nil {
				b.fake.Reject = func(op esfake.Op) (int, string) {
					if strings.Contains(string(op.Source), "busy.jpg") {
						return 429, "es_rejected_execution_exception"
					}
					return 0, ""
				}
				defer func() { b.fake.Reject = nil }()
				want[4] = false
			}
			err := tg.Send(context.Background(), items)
			var be *delivery.BatchError
			if !errors.As(err, &be) || len(be.Failed) != len(want) {
				t.Fatalf("Send: got %v, want a BatchError with %d items", err, len(want))
			}
			for _, f := range be.Failed {
				perm, ok := want[f.Index]
				if !ok || delivery.IsPermanent(f.Err) != perm {
					t.Errorf("item %d failed (permanent %v): %v; want failures %v (index → permanent)", f.Index, delivery.IsPermanent(f.Err), f.Err, want)
				}
			}
			n := len(b.docs(t, index))
			wantDocs := 5 - len(want)
			if format == FormatNamespace {
				wantDocs-- // the delete
			}
			if n != wantDocs {
				t.Fatalf("got %d documents, want %d", n, wantDocs)
			}
		})
	}
}

func TestLongKey(t *testing.T) {
	b := newBackend(t)
	index := indexName("long")
	b.dropIndex(t, index)
	tg := newTarget(t, Config{URL: b.url, Index: index})
	defer tg.Close()
	long := item("b", strings.Repeat("k", 600), event.ObjectCreatedPut, 1)
	err := tg.Send(context.Background(), []delivery.Item{item("b", "1.jpg", event.ObjectCreatedPut, 0), long})
	var be *delivery.BatchError
	if !errors.As(err, &be) || len(be.Failed) != 1 || be.Failed[0].Index != 1 || !delivery.IsPermanent(be.Failed[0].Err) {
		t.Fatalf("Send: got %v, want item 1 permanent", err)
	}
	if n := len(b.docs(t, index)); n != 1 {
		t.Fatalf("got %d documents, want 1", n)
	}
}

func TestCredentials(t *testing.T) {
	s, err := esfake.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	s.Username, s.Password = "elastic", "MagicWord"
	host := strings.TrimPrefix(s.URL(), "http://")
	it := []delivery.Item{item("b", "1.jpg", event.ObjectCreatedPut, 1)}

	tg := newTarget(t, Config{URL: "http://elastic:MagicWord@" + host, Index: "creds"})
	if err := tg.Send(context.Background(), it); err != nil {
		t.Fatalf("Send with credentials in the URL: %v", err)
	}
	t.Setenv(PasswordEnv, "MagicWord")
	tg = newTarget(t, Config{URL: "http://" + host, Username: "elastic", Index: "creds"})
	if err := tg.Send(context.Background(), it); err != nil {
		t.Fatalf("Send with the password from %s: %v", PasswordEnv, err)
	}
	t.Setenv(PasswordEnv, "")

	tg = newTarget(t, Config{URL: "http://elastic:hunter22@" + host, Index: "creds"})
	err = tg.Send(context.Background(), it)
	if err == nil || delivery.IsPermanent(err) || strings.Contains(err.Error(), "hunter22") {
		t.Fatalf("Send with a wrong password: got %v, want a retryable error without the password", err)
	}
	s.Stop()
	err = tg.Send(context.Background(), it)
	if err == nil || delivery.IsPermanent(err) || strings.Contains(err.Error(), "hunter22") {
		t.Fatalf("Send to a stopped node: got %v, want a retryable error without the password", err)
	}
}

func TestNewDoesNotDial(t *testing.T) {
	start := time.Now()
	tg, err := New(Config{URL: "http://192.0.2.1:9200", Index: "x"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tg.Close()
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("New took %v, want no network I/O", d)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		cfg   Config
		field string
	}{
		{Config{Index: "x"}, "url"},
		{Config{URL: "ftp://x", Index: "x"}, "url"},
		{Config{URL: "http://x"}, "index"},
		{Config{URL: "http://x", Index: "Minio"}, "index"},
		{Config{URL: "http://x", Index: "a/b"}, "index"},
		{Config{URL: "http://x", Index: "_x"}, "index"},
		{Config{URL: "http://x", Index: "x", Format: "json"}, "format"},
	} {
		var fe *delivery.FieldError
		if err := c.cfg.Validate(); !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("Validate(%+v) = %v, want an error on %s", c.cfg, err, c.field)
		}
	}
	seed := Config{Enable: true, Format: "namespace", URL: "http://127.0.0.1:9200", Index: "minio_events"}
	if err := seed.Validate(); err != nil || !seed.Namespace() {
		t.Errorf("seed example: Validate = %v, Namespace = %v; want nil, true", err, seed.Namespace())
	}
	if c := (Config{Format: "access"}); c.Namespace() {
		t.Error("access: Namespace() = true, want false")
	}
}

type counting struct {
	delivery.Target
	items atomic.Int64
}

func (c *counting) Send(ctx context.Context, items []delivery.Item) error {
	err := c.Target.Send(ctx, items)
	if err == nil {
		c.items.Add(int64(len(items)))
	}
	return err
}

// TestModel drives random puts, overwrites and deletes over a few keys
// through the log and the engine while the node is stopped and started at
// random; the index must end equal to the model. A backlog built during an
// outage must cost at most one write per key.
func TestModel(t *testing.T) {
	b := newBackend(t)
	if b.fake == nil {
		t.Skip("needs the stand-in: a real cluster cannot be stopped from here")
	}
	index := indexName("model")
	l, err := wal.Open(filepath.Join(t.TempDir(), "wal.db"), wal.Options{CursorSyncInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	eng := delivery.New(l, delivery.Options{MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, ShutdownGrace: time.Second})
	const id = "arn:minio:sqs::1:elasticsearch"
	tg := &counting{Target: newTarget(t, Config{URL: b.url, Index: index})}
	if err := eng.Add(delivery.Spec{ID: id, Target: tg, Namespace: true, MaxBatch: 100}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { eng.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	rng := rand.New(rand.NewPCG(2, uint64(time.Now().UnixNano())))
	model := map[string]string{}
	seq := 0
	appendOps := func(n int) map[string]bool {
		touched := map[string]bool{}
		var entries []*wal.Entry
		for range n {
			k := fmt.Sprintf("k%02d.jpg", rng.IntN(12))
			name := event.ObjectCreatedPut
			if rng.IntN(4) == 0 {
				name = event.ObjectRemovedDelete
			}
			r := targettest.Record("model", k, name, seq)
			seq++
			if name == event.ObjectRemovedDelete {
				delete(model, r.Key())
			} else {
				model[r.Key()] = r.ResponseElements["x-amz-request-id"]
			}
			touched[r.Key()] = true
			entries = append(entries, targettest.Entry(r, id))
		}
		if _, err := l.Append(ctx, entries...); err != nil {
			t.Fatal(err)
		}
		return touched
	}
	waitModel := func() {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			got := map[string]string{}
			for _, d := range b.fake.Docs(index) {
				var m struct{ Records []event.Record }
				if err := json.Unmarshal(d.Source, &m); err != nil || len(m.Records) != 1 {
					t.Fatalf("document %s is not {\"Records\":[record]}: %s", d.ID, d.Source)
				}
				got[d.ID] = m.Records[0].ResponseElements["x-amz-request-id"]
			}
			if fmt.Sprint(got) == fmt.Sprint(model) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("index differs from the model:\n got %v\nwant %v", got, model)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	down := false
	for step := 0; step < 60; step++ {
		appendOps(1 + rng.IntN(20))
		if rng.IntN(8) == 0 {
			if down {
				b.start(t)
			} else {
				b.stop(t)
			}
			down = !down
		}
		time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
	}
	if down {
		b.start(t)
	}
	waitModel()

	b.stop(t)
	before := tg.items.Load()
	touched := appendOps(2000)
	time.Sleep(200 * time.Millisecond)
	b.start(t)
	waitModel()
	if w := tg.items.Load() - before; w > int64(len(touched)) {
		t.Fatalf("wrote %d documents after the outage, want at most %d (distinct keys)", w, len(touched))
	}
}
