package elasticsearch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/adapters/elasticsearch/esfake"
	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/internal/testenv"
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

// TestSeedExample is the seed's check: _search shows a document whose _id is
// "images/myphoto.jpg" and whose _source is {"Records":[…]}.
func TestSeedExample(t *testing.T) {
	b := newBackend(t)
	b.dropIndex(t, "minio_events")
	tg := newTarget(t, Config{Enable: true, Format: "namespace", URL: b.url, Index: "minio_events"})
	defer tg.Close()
	if err := tg.Send(context.Background(), []delivery.Item{targettest.Item("images", "myphoto.jpg", event.ObjectCreatedPut, 1)}); err != nil {
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
	if err := tg.Send(context.Background(), []delivery.Item{targettest.Item("images", "myphoto.jpg", event.ObjectRemovedDelete, 2)}); err != nil {
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
				targettest.Item("b", "1.jpg", event.ObjectCreatedPut, 1),
				targettest.Item("b", "2.jpg", event.ObjectCreatedPut, 2),
				targettest.Item("b", "3.jpg", event.ObjectCreatedPut, 3),
				targettest.Item("b", "gone.jpg", event.ObjectRemovedDelete, 4), // not there: success
				targettest.Item("b", "busy.jpg", event.ObjectCreatedPut, 5),
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
	long := targettest.Item("b", strings.Repeat("k", 600), event.ObjectCreatedPut, 1)
	err := tg.Send(context.Background(), []delivery.Item{targettest.Item("b", "1.jpg", event.ObjectCreatedPut, 0), long})
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
	it := []delivery.Item{targettest.Item("b", "1.jpg", event.ObjectCreatedPut, 1)}

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
		var fe *kit.FieldError
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

// TestModel runs the model test (targettest.RunModel) against an index on
// the stand-in: a real cluster cannot be stopped from here, so the harness
// has no Stop and RunModel skips.
func TestModel(t *testing.T) {
	b := newBackend(t)
	index := indexName("model")
	b.dropIndex(t, index)
	targettest.RunModel(t, b.harness(t, index, targettest.Features{Namespace: true}), targettest.ModelOptions{})
}

// TestAccessTimeWithoutEventTime: a record without eventTime is indexed
// with the time it entered the log, never the time of the send.
func TestAccessTimeWithoutEventTime(t *testing.T) {
	b := newBackend(t)
	index := indexName("notime")
	b.dropIndex(t, index)
	tg := newTarget(t, Config{Enable: true, Format: "access", URL: b.url, Index: index})
	defer tg.Close()
	appended := time.Date(2021, 3, 4, 5, 6, 7, 8000, time.UTC)
	it := delivery.Item{Seq: 1, Key: "b/k", EventName: event.ObjectCreatedPut, AppendTime: appended,
		Record: []byte(`{"eventVersion":"2.0","eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}`)}
	if err := tg.Send(context.Background(), []delivery.Item{it}); err != nil {
		t.Fatal(err)
	}
	hits := b.docs(t, index)
	if len(hits) != 1 {
		t.Fatalf("got %d documents, want 1", len(hits))
	}
	var doc struct {
		EventTime string `json:"eventTime"`
	}
	if err := json.Unmarshal(hits[0].Source, &doc); err != nil || doc.EventTime != "2021-03-04T05:06:07.000008Z" {
		t.Fatalf("eventTime: got %q (%v), want 2021-03-04T05:06:07.000008Z (the append time)", doc.EventTime, err)
	}
}

// TestAccessDocumentIDIsTheEventID: in the access format the event's id is
// the document's _id, so a batch sent again (at-least-once) overwrites its
// documents instead of adding copies.
func TestAccessDocumentIDIsTheEventID(t *testing.T) {
	b := newBackend(t)
	index := indexName("evid")
	b.dropIndex(t, index)
	tg := newTarget(t, Config{Enable: true, Format: "access", URL: b.url, Index: index})
	defer tg.Close()
	var its []delivery.Item
	for i := 1; i <= 3; i++ {
		its = append(its, delivery.Item{Seq: uint64(i), Key: "b/k", EventName: event.ObjectCreatedPut, LogID: "00000000deadbeef",
			Record: []byte(`{"eventVersion":"2.0","eventTime":"2026-12-01T00:00:00Z","eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}`)})
	}
	for range 2 {
		if err := tg.Send(context.Background(), its); err != nil {
			t.Fatal(err)
		}
	}
	hits := b.docs(t, index)
	if len(hits) != 3 {
		t.Fatalf("got %d documents after sending 3 events twice, want 3", len(hits))
	}
	ids := map[string]bool{}
	for _, h := range hits {
		ids[h.ID] = true
	}
	for _, it := range its {
		if !ids[it.EventID()] {
			t.Errorf("no document with _id %s (got %v)", it.EventID(), ids)
		}
	}
}
