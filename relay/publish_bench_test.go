package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/testkit/benchrec"
	"github.com/bucketrelay/bucketrelay/testkit/cpuclock"
	"github.com/bucketrelay/bucketrelay/wal"
)

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
	recs := benchrec.Pool(100)
	b.ReportAllocs()
	cpu := cpuclock.Start(b)
	for i := 0; i < b.N; i++ {
		if err := r.Publish(context.Background(), recs...); err != nil {
			b.Fatal(err)
		}
	}
	cpu.Report(b, 100, "record")
}

// BenchmarkPostOverhead measures the server side of POST /v1/events with
// 100 records per body without the log.
func BenchmarkPostOverhead(b *testing.B) {
	r := benchRelay(b)
	noAppend(r)
	body := string(benchrec.Body(benchrec.Pool(100)))
	h := r.Handler()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	cpu := cpuclock.Start(b)
	for i := 0; i < b.N; i++ {
		w := discardWriter{}
		req := newBenchRequest(body)
		h.ServeHTTP(&w, req)
		if w.code != 0 && w.code != 200 {
			b.Fatalf("POST: %d", w.code)
		}
	}
	cpu.Report(b, 100, "record")
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

// BenchmarkIngest compares, in one process and on fresh logs, the three
// rows of the ingest scenario's goal: Publish of 100 records from 16
// goroutines, the same records appended to a bare wal.Log pre-encoded, and
// POST /v1/events of the same 100 records over loopback HTTP; each with a
// delivery engine reading back into a target that acknowledges at once.
// cpu-ns/record is the figure to compare (the HTTP one includes the
// clients).
func BenchmarkIngest(b *testing.B) {
	recs := benchrec.Pool(1000)
	parallel := func(b *testing.B, fn func(i int) error) {
		cpu := cpuclock.Start(b)
		var n atomic.Int64
		b.SetParallelism(8) // 16 goroutines on 2 cores
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := fn(int(n.Add(1))); err != nil {
					b.Error(err)
					return
				}
			}
		})
		cpu.Report(b, 100, "record")
	}
	b.Run("library", func(b *testing.B) {
		r := benchRelay(b)
		parallel(b, func(i int) error {
			k := i * 100 % (len(recs) - 100)
			return r.Publish(context.Background(), recs[k:k+100]...)
		})
	})
	b.Run("wal", func(b *testing.B) {
		l, err := wal.Open(filepath.Join(b.TempDir(), "wal.db"), wal.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		eng := delivery.New(l, delivery.Options{})
		if err := eng.Add(delivery.Spec{ID: "t", Target: ackAll{}}); err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { eng.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()
		entries := make([]*wal.Entry, len(recs))
		for i := range recs {
			raw, _ := json.Marshal(recs[i])
			entries[i] = &wal.Entry{Targets: []string{"t"}, Key: recs[i].Key(), Name: string(recs[i].EventName), EventTime: recs[i].Time(), Data: raw}
		}
		parallel(b, func(i int) error {
			k := i * 100 % (len(entries) - 100)
			_, err := l.Append(context.Background(), entries[k:k+100]...)
			return err
		})
	})
	b.Run("http", func(b *testing.B) {
		r := benchRelay(b)
		srv := httptest.NewServer(r.Handler())
		defer srv.Close()
		bodies := make([][]byte, len(recs)/100)
		for i := range bodies {
			bodies[i] = benchrec.Body(recs[i*100 : (i+1)*100])
		}
		client := &http.Client{Transport: &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64}}
		defer client.CloseIdleConnections()
		parallel(b, func(i int) error {
			resp, err := client.Post(srv.URL+"/v1/events", "application/json", bytes.NewReader(bodies[i%len(bodies)]))
			if err != nil {
				return err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("POST: %s", resp.Status)
			}
			return nil
		})
	})
}
