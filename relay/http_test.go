package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/rules"
	"github.com/bucketrelay/bucketrelay/wal"
)

const ackARN = "arn:minio:sqs::1:ack"

// ackRelay opens a relay whose one target acknowledges everything, with
// the rule images: every event. extra is added to the "relay" object.
func ackRelay(t testing.TB, extra string) *Relay {
	t.Helper()
	c, err := ParseConfig([]byte(`{"relay":{"dataDir":"` + t.TempDir() + `"` + extra + `}}`))
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(c, Options{Targets: map[string]delivery.Target{ackARN: ackAll{}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	if err := r.SetBucketRules("images", []rules.Rule{{ARN: ackARN, Events: []event.Name{"s3:ObjectCreated:*", "s3:ObjectRemoved:*"}}}); err != nil {
		t.Fatal(err)
	}
	return r
}

func recordJSON(t testing.TB, i int) string {
	b, err := json.Marshal(targettest.Record("images", fmt.Sprintf("obj-%d.jpg", i), event.ObjectCreatedPut, i))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func bodyOf(t testing.TB, from, n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = recordJSON(t, from+i)
	}
	return `{"Records":[` + strings.Join(parts, ",") + `]}`
}

// TestDeepNestingRefused: a body of millions of '[' once overflowed the
// stack (a fatal error no recover catches) and 3 MB of it made the process
// grow by 830 MB. It is now refused with a 400 naming the limit, and
// reading it costs little more than the body.
func TestDeepNestingRefused(t *testing.T) {
	r := ackRelay(t, "")
	h := r.Handler()
	for _, body := range []string{
		strings.Repeat("[", 6_000_000),
		`{"Records":[` + strings.Repeat("[", 6_000_000),
		`{"Records":[{"a":` + strings.Repeat(`{"a":`, 3_000_000),
	} {
		w := do(t, h, "POST", "/v1/events", body)
		if w.Code != 400 || !strings.Contains(w.Body.String(), "64 levels") && !strings.Contains(w.Body.String(), "not a JSON object") {
			t.Fatalf("POST %.20s…: %d %s, want 400 naming the nesting limit", body, w.Code, w.Body)
		}
	}
	w := do(t, h, "POST", "/v1/events", `{"Records":[{"a":`+strings.Repeat("[", 100))
	if w.Code != 400 || !strings.Contains(w.Body.String(), "deeper than 64 levels") {
		t.Fatalf("POST of deep arrays in Records: %d %s, want 400 naming the 64-level limit", w.Code, w.Body)
	}
	// The body's object, Records and the record are 3 levels: a record
	// may nest 61 more, not 62.
	nested := func(k int) string {
		deep := strings.Repeat(`{"x":`, k) + "1" + strings.Repeat("}", k)
		return `{"Records":[` + strings.Replace(recordJSON(t, 0), `"eventVersion"`, `"deep":`+deep+`,"eventVersion"`, 1) + `]}`
	}
	if w := do(t, h, "POST", "/v1/events", nested(61)); w.Code != 200 {
		t.Fatalf("POST of a body nested 64 levels deep: %d %s, want 200", w.Code, w.Body)
	}
	if w := do(t, h, "POST", "/v1/events", nested(62)); w.Code != 400 || !strings.Contains(w.Body.String(), "deeper than 64 levels") {
		t.Fatalf("POST of a body nested 65 levels deep: %d %s, want 400", w.Code, w.Body)
	}

	// Memory: 3 MB of '[' (the old code grew the stack by hundreds of MB).
	body := strings.Repeat("[", 3<<20)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	w = do(t, h, "POST", "/v1/events", body)
	runtime.ReadMemStats(&after)
	if w.Code != 400 {
		t.Fatalf("POST of 3 MB of '[': %d", w.Code)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 16<<20 {
		t.Errorf("POST of 3 MB of '[' allocated %d MB, want < 16", got>>20)
	}
	if got := int64(after.Sys) - int64(before.Sys); got > 32<<20 {
		t.Errorf("POST of 3 MB of '[' grew the process by %d MB, want < 32", got>>20)
	}
	if got := int64(after.StackSys) - int64(before.StackSys); got > 4<<20 {
		t.Errorf("POST of 3 MB of '[' grew stacks by %d MB, want < 4", got>>20)
	}
}

// TestHugeArraysFailFast: a body of millions of tiny elements is refused
// at the first bad one, without building anything per element.
func TestHugeArraysFailFast(t *testing.T) {
	h := ackRelay(t, "").Handler()
	for _, c := range []struct{ body, want string }{
		{`{"Records":[` + strings.Repeat(`1,`, 4_000_000) + `1]}`, "record 0 (numbered from 0): is not a JSON object"},
		{`{"Records":[` + strings.Repeat(`{},`, 3_000_000) + `{}]}`, "record 0 (numbered from 0): eventName is empty"},
		{`{"x":[` + strings.Repeat(`[],`, 3_000_000) + `[]]}`, `no \"Records\" array`},
	} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		w := do(t, h, "POST", "/v1/events", c.body)
		runtime.ReadMemStats(&after)
		if w.Code != 400 || !strings.Contains(w.Body.String(), c.want) {
			t.Errorf("POST %.30s…: %d %s, want 400 with %q", c.body, w.Code, w.Body, c.want)
		}
		if got := after.TotalAlloc - before.TotalAlloc; got > uint64(3*len(c.body))+(4<<20) { // the body, read as it arrives
			t.Errorf("POST %.30s… (%d MB) allocated %d MB", c.body, len(c.body)>>20, got>>20)
		}
	}
}

// TestLenientInputRefused: what was answered 200 and stored is now a 400
// naming the record (from 0) and the field.
func TestLenientInputRefused(t *testing.T) {
	r := ackRelay(t, "")
	h := r.Handler()
	good := recordJSON(t, 0)
	for _, c := range []struct {
		name, rec string
		field     string
		want      string
	}{
		{"invalid UTF-8 in the key", strings.Replace(good, `"obj-0.jpg"`, "\"obj-\xff.jpg\"", 1), "s3.object.key", "not valid UTF-8"},
		{"invalid UTF-8 in the bucket", strings.Replace(good, `"name":"images"`, "\"name\":\"im\xc3ages\"", 1), "s3.bucket.name", "not valid UTF-8"},
		{"invalid UTF-8 elsewhere", strings.Replace(good, `"principalId":"minio"`, "\"principalId\":\"mi\xe2\x82nio\"", 1), "userIdentity.principalId", "not valid UTF-8"},
		{"eventName twice", strings.Replace(good, `"eventName":"s3:ObjectCreated:Put"`, `"eventName":"s3:ObjectCreated:Put","eventName":"s3:ObjectRemoved:Delete"`, 1), "eventName", "appears twice"},
		{"eventName twice, escaped", strings.Replace(good, `"eventName":"s3:ObjectCreated:Put"`, `"eventName":"s3:ObjectCreated:Put","event\u004eame":"s3:ObjectRemoved:Delete"`, 1), "eventName", "appears twice"},
		{"key twice", strings.Replace(good, `"key":"obj-0.jpg"`, `"key":"obj-0.jpg","key":"other"`, 1), "s3.object.key", "appears twice"},
		{"s3 twice", strings.Replace(good, `"s3":{`, `"s3":{},"s3":{`, 1), "s3", "appears twice"},
		{"a wildcard as the event name", strings.Replace(good, `"s3:ObjectCreated:Put"`, `"s3:ObjectCreated:*"`, 1), "eventName", "wildcard"},
		{"size a string", strings.Replace(good, `"size":1000`, `"size":"big"`, 1), "s3.object.size", "must be a non-negative integer"},
		{"size negative", strings.Replace(good, `"size":1000`, `"size":-1`, 1), "s3.object.size", "must be a non-negative integer"},
		{"size a fraction", strings.Replace(good, `"size":1000`, `"size":1.5`, 1), "s3.object.size", "must be a non-negative integer"},
		{"eventName a number", strings.Replace(good, `"eventName":"s3:ObjectCreated:Put"`, `"eventName":5`, 1), "eventName", "must be a string"},
		{"bucket an object", strings.Replace(good, `"name":"images"`, `"name":{"v":"images"}`, 1), "s3.bucket.name", "must be a string"},
		{"eventTime null", strings.Replace(good, `"eventTime":"`, `"eventTime":null,"t":"`, 1), "eventTime", "must be a string"},
	} {
		if !strings.Contains(c.rec, "\"") || c.rec == good {
			t.Fatalf("%s: the case did not change the record", c.name)
		}
		w := do(t, h, "POST", "/v1/events", `{"Records":[`+good+`,`+c.rec+`]}`)
		var body struct {
			Error  string
			Record *int
			Field  string
		}
		json.Unmarshal(w.Body.Bytes(), &body)
		if w.Code != 400 || body.Record == nil || *body.Record != 1 || body.Field != c.field || !strings.Contains(body.Error, c.want) || !strings.HasPrefix(body.Error, "record 1 (numbered from 0): "+c.field) {
			t.Errorf("%s: %d %s, want 400 naming record 1 and field %s with %q", c.name, w.Code, w.Body, c.field, c.want)
		}
		if _, err := r.PublishJSON(context.Background(), json.RawMessage(good), json.RawMessage(c.rec)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: PublishJSON: %v, want ErrInvalid", c.name, err)
		} else if re := (*RecordError)(nil); !errors.As(err, &re) || re.Index != 1 || re.Field != c.field {
			t.Errorf("%s: PublishJSON: %v, want a RecordError for record 1, field %s", c.name, err, c.field)
		}
	}
	if w := do(t, h, "POST", "/v1/events", `{"Records":[],"Records":[`+good+`]}`); w.Code != 400 || !strings.Contains(w.Body.String(), `\"Records\" appears twice`) {
		t.Errorf("Records twice: %d %s, want 400", w.Code, w.Body)
	}
	// Typed records: the same checks.
	rec := targettest.Record("images", "bad\xffkey", event.ObjectCreatedPut, 0)
	if err := r.Publish(context.Background(), rec); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "record 0 (numbered from 0): s3.object.key is not valid UTF-8") {
		t.Errorf("Publish with a key that is not UTF-8: %v", err)
	}
	rec = targettest.Record("images", "k", event.ObjectCreatedAll, 0)
	if err := r.Publish(context.Background(), rec); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "wildcard") {
		t.Errorf("Publish with a wildcard event name: %v", err)
	}
	// Nothing refused was logged.
	if n := r.Log().Events(); n != 0 {
		t.Errorf("the log holds %d events after refused posts, want 0", n)
	}
	if w := do(t, h, "POST", "/v1/events", `{"Records":[`+good+`]}`); w.Code != 200 {
		t.Fatalf("a good record after the bad ones: %d %s", w.Code, w.Body)
	}
}

// TestErrorBodiesNameNoPath: disk full answers 503 with Retry-After and no
// path; a full log 503 naming the setting; a batch over the limit 413
// naming queueLimit; an unexpected error 500 without its text.
func TestErrorBodiesNameNoPath(t *testing.T) {
	r := ackRelay(t, `,"queueLimit":4,"fullWait":"50ms"`)
	h := r.Handler()
	dir := r.cfg.Relay.DataDir
	real := r.appendFn
	noPath := func(what string, w *httptest.ResponseRecorder) {
		t.Helper()
		if b := w.Body.String(); strings.Contains(b, dir) || strings.Contains(b, "wal.db") || strings.Contains(b, "/tmp") {
			t.Errorf("%s: body names a path: %s", what, b)
		}
	}
	// Disk full: the log answers wal.ErrNoSpace (a real ENOSPC is tested on
	// a FUSE file system in cmd/relay); the relay recovers when it clears.
	r.appendFn = func(context.Context, ...*wal.Entry) (uint64, error) {
		return 0, fmt.Errorf("%w: write %s: no space left on device", wal.ErrNoSpace, r.Log().Path())
	}
	w := do(t, h, "POST", "/v1/events", bodyOf(t, 0, 1))
	if w.Code != 503 || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "no space left") {
		t.Errorf("disk full: %d (Retry-After %q) %s, want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	noPath("disk full", w)
	r.appendFn = func(context.Context, ...*wal.Entry) (uint64, error) {
		return 0, fmt.Errorf("wal: commit: open %s: input/output error", r.Log().Path())
	}
	w = do(t, h, "POST", "/v1/events", bodyOf(t, 0, 1))
	if w.Code != 500 {
		t.Errorf("unexpected error: %d %s, want 500", w.Code, w.Body)
	}
	noPath("500", w)
	r.appendFn = real
	if w := do(t, h, "POST", "/v1/events", bodyOf(t, 0, 1)); w.Code != 200 {
		t.Fatalf("after the disk cleared: %d %s", w.Code, w.Body)
	}

	w = do(t, h, "POST", "/v1/events", bodyOf(t, 1, 5))
	if w.Code != 413 || !strings.Contains(w.Body.String(), "relay.queueLimit (4 events)") {
		t.Errorf("batch over queueLimit: %d %s, want 413 naming relay.queueLimit", w.Code, w.Body)
	}
	noPath("413", w)

	// A full log: the target never acknowledges, 4 events fill it.
	r2 := openRelay(t, testConfig(t, t.TempDir(), "http://127.0.0.1:1/", `,"queueLimit":4,"fullWait":"50ms"`))
	h2 := r2.Handler()
	do(t, h2, "POST", "/v1/events", bodyOf(t, 0, 4))
	w = do(t, h2, "POST", "/v1/events", bodyOf(t, 4, 1))
	if w.Code != 503 || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "relay.queueLimit") {
		t.Errorf("full log: %d %s, want 503 with Retry-After naming relay.queueLimit", w.Code, w.Body)
	}
	noPath("full", w)
}

// TestFailStop: once a write to the log fails (here EFBIG: the file may
// not grow past RLIMIT_FSIZE, a write error like EIO), the relay stops
// accepting at once: the POST that met the error and every later one get
// 503, never 200; Done closes; /readyz says why without naming the file.
func TestFailStop(t *testing.T) {
	r := ackRelay(t, "")
	h := r.Handler()
	if w := do(t, h, "GET", "/readyz", ""); w.Code != 200 || w.Body.String() != "ready\n" {
		t.Fatalf("readyz: %d %q, want 200 ready", w.Code, w.Body)
	}
	if w := do(t, h, "POST", "/v1/events", bodyOf(t, 0, 10)); w.Code != 200 {
		t.Fatalf("POST: %d %s", w.Code, w.Body)
	}
	// bbolt allocates the file in 16 MB steps: the limit is an offset no
	// write of a large batch can stay below.
	limitFileSize(t, 64<<10)
	w := do(t, h, "POST", "/v1/events", bodyOf(t, 10, 5000))
	if w.Code != 503 {
		t.Fatalf("POST when the log could not grow: %d %s, want 503", w.Code, w.Body)
	}
	select {
	case <-r.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after a write error")
	}
	if err := r.Err(); !errors.Is(err, wal.ErrFailed) || !strings.Contains(err.Error(), "wal.db") {
		t.Fatalf("Err() = %v, want wal.ErrFailed naming the file", err)
	}
	for i := 0; i < 3; i++ {
		if w := do(t, h, "POST", "/v1/events", bodyOf(t, 0, 1)); w.Code != 503 {
			t.Fatalf("POST after the failure: %d %s, want 503", w.Code, w.Body)
		}
	}
	w = do(t, h, "GET", "/readyz", "")
	if w.Code != 503 || !strings.Contains(w.Body.String(), "storage error") || strings.Contains(w.Body.String(), "wal.db") {
		t.Fatalf("readyz after the failure: %d %q, want 503 with the reason and no path", w.Code, w.Body)
	}
	if w := do(t, h, "GET", "/healthz", ""); w.Code != 200 {
		t.Fatalf("healthz after the failure: %d, want 200 (liveness only)", w.Code)
	}
	if err := r.Publish(context.Background(), records("images", 0, 1)...); !errors.Is(err, wal.ErrFailed) {
		t.Fatalf("Publish after the failure: %v, want wal.ErrFailed", err)
	}
}

// limitFileSize sets this process's RLIMIT_FSIZE until the test ends: a
// write that would grow a file past n bytes fails with EFBIG (Go ignores
// SIGXFSZ). Tests of this package do not run in parallel.
func limitFileSize(t testing.TB, n int64) {
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: uint64(n), Max: old.Max}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
			t.Error(err)
		}
	})
}

// TestProbesWithoutToken: /healthz and /readyz answer without the token
// (orchestrators probe without credentials); everything else needs it.
func TestProbesWithoutToken(t *testing.T) {
	c, err := ParseConfig([]byte(`{"relay":{"dataDir":"` + t.TempDir() + `","listen":"0.0.0.0:0","accessToken":"tok123"}}`))
	if err != nil {
		t.Fatal(err)
	}
	h := openRelay(t, c).Handler()
	for _, p := range []string{"/healthz", "/readyz"} {
		if w := do(t, h, "GET", p, ""); w.Code != 200 || strings.Contains(w.Body.String(), "tok123") {
			t.Errorf("GET %s without token: %d %s, want 200", p, w.Code, w.Body)
		}
	}
	for _, p := range []string{"/metrics", "/v1/targets"} {
		if w := do(t, h, "GET", p, ""); w.Code != 401 {
			t.Errorf("GET %s without token: %d, want 401", p, w.Code)
		}
	}
	if w := do(t, h, "POST", "/readyz", ""); w.Code != 401 {
		t.Errorf("POST /readyz without token: %d, want 401", w.Code)
	}
}

// TestReadBodyGrowsAsBytesArrive: a Content-Length is not trusted with
// memory: announcing 16 MiB and sending 10 bytes costs about 1 MiB, and an
// exact body is read into one buffer.
func TestReadBodyGrowsAsBytesArrive(t *testing.T) {
	b, err := readBody(nil, strings.NewReader("0123456789"), 16<<20)
	if err != nil || string(b) != "0123456789" || cap(b) > 2<<20 {
		t.Fatalf("readBody with 16 MiB announced, 10 bytes sent: %q cap %d err %v, want the bytes in at most 2 MiB", b, cap(b), err)
	}
	body := strings.Repeat("x", 3<<20)
	b, err = readBody(nil, strings.NewReader(body), int64(len(body)))
	if err != nil || string(b) != body {
		t.Fatalf("readBody of 3 MiB: %d bytes, err %v", len(b), err)
	}
	if b, err := readBody(nil, strings.NewReader(body), -1); err != nil || len(b) != len(body) {
		t.Fatalf("readBody without a length: %d bytes, err %v", len(b), err)
	}
	if b, err := readBody(nil, strings.NewReader(body), 100); err != nil || len(b) != len(body) {
		t.Fatalf("readBody of more than announced: %d bytes, err %v", len(b), err)
	}
	// A pooled buffer large enough is reused, whatever was in it.
	dst := make([]byte, 5, 64)
	b, err = readBody(dst, strings.NewReader("abc"), 3)
	if err != nil || string(b) != "abc" || &b[:1][0] != &dst[:1][0] {
		t.Fatalf("readBody into a 64-byte buffer: %q err %v, want \"abc\" in that buffer", b, err)
	}
}
