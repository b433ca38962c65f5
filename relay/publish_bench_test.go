package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/wal"
)

// benchRecords returns n records like the ingest scenario's: about 1 KiB
// of JSON each, three maps, the metadata padding.
func benchRecords(n int) []event.Record {
	recs := make([]event.Record, n)
	for i := range recs {
		recs[i] = targettest.Record("images", fmt.Sprintf("photos/2026/11/25/IMG_%08d.jpg", i), event.ObjectCreatedPut, i)
		recs[i].S3.Object.UserMetadata = map[string]string{
			"X-Amz-Meta-Camera":   "NIKON D850 / AF-S NIKKOR 24-70mm f/2.8E ED VR",
			"X-Amz-Meta-Uploader": "ingest-pipeline-07.eu-west.example.internal",
			"X-Amz-Meta-Checksum": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		}
	}
	return recs
}

// noAppend makes r's appends return at once without logging: what is left
// of Publish is the relay's own work (encoding, validation, routing).
func noAppend(r *Relay) {
	r.appendFn = func(_ context.Context, es ...*wal.Entry) (uint64, error) { return 1, nil }
}

// BenchmarkPublishOverhead measures Publish of 100 records per call
// without the log: the relay's cost per record beyond wal.Append.
func BenchmarkPublishOverhead(b *testing.B) {
	r := benchRelay(b)
	noAppend(r)
	recs := benchRecords(100)
	b.ReportAllocs()
	cpu := startCPU(b)
	for i := 0; i < b.N; i++ {
		if err := r.Publish(context.Background(), recs...); err != nil {
			b.Fatal(err)
		}
	}
	cpu.report(b, 100)
}

// BenchmarkPostOverhead measures the server side of POST /v1/events with
// 100 records per body without the log.
func BenchmarkPostOverhead(b *testing.B) {
	r := benchRelay(b)
	noAppend(r)
	var parts []string
	for _, rec := range benchRecords(100) {
		raw, _ := json.Marshal(rec)
		parts = append(parts, string(raw))
	}
	body := `{"Records":[` + strings.Join(parts, ",") + `]}`
	h := r.Handler()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	cpu := startCPU(b)
	for i := 0; i < b.N; i++ {
		w := discardWriter{}
		req := newBenchRequest(body)
		h.ServeHTTP(&w, req)
		if w.code != 0 && w.code != 200 {
			b.Fatalf("POST: %d", w.code)
		}
	}
	cpu.report(b, 100)
}

// discardWriter is a ResponseWriter that keeps only the status code.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header {
	if w.h == nil {
		w.h = http.Header{}
	}
	return w.h
}
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

func newBenchRequest(body string) *http.Request {
	req, _ := http.NewRequest("POST", "/v1/events", strings.NewReader(body))
	return req
}

// cpuClock measures the process's CPU time (user and system) over a
// benchmark: steadier than wall time on a shared machine.
type cpuClock time.Duration

func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startCPU resets b's timer and starts a CPU clock.
func startCPU(b *testing.B) cpuClock {
	b.ResetTimer()
	return cpuClock(processCPU(b))
}

// report adds the CPU nanoseconds per record, per records-record op.
func (c cpuClock) report(b *testing.B, records int) {
	used := processCPU(b) - time.Duration(c)
	b.ReportMetric(float64(used.Nanoseconds())/float64(b.N*records), "cpu-ns/record")
}
