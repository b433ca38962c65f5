package relay

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/rules"
	"github.com/bucketrelay/bucketrelay/testkit/benchrec"
)

type ackAll struct{}

func (ackAll) Send(context.Context, []delivery.Item) error { return nil }
func (ackAll) Close() error                                { return nil }

// noteRecords returns n records of about 800 bytes of JSON (a 150-byte
// note as user metadata): the body of the scan and POST benchmarks.
func noteRecords(n int) []event.Record {
	recs := make([]event.Record, n)
	for i := range recs {
		recs[i] = targettest.Record("images", fmt.Sprintf("photos/%d.jpg", i), event.ObjectCreatedPut, i)
		recs[i].S3.Object.UserMetadata = map[string]string{"x-amz-meta-note": strings.Repeat("x", 150)}
	}
	return recs
}

// benchRelay opens a relay whose one target acknowledges at once, with
// the rule images: put.
func benchRelay(b *testing.B) *Relay {
	c, err := ParseConfig([]byte(`{"relay":{"dataDir":"` + b.TempDir() + `"}}`))
	if err != nil {
		b.Fatal(err)
	}
	r, err := Open(c, Options{Targets: map[string]delivery.Target{"arn:minio:sqs::1:bench": ackAll{}}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close(context.Background()) })
	if err := r.SetBucketRules("images", []rules.Rule{{ARN: "arn:minio:sqs::1:bench", Events: []event.Name{event.ObjectCreatedAll}}}); err != nil {
		b.Fatal(err)
	}
	return r
}

// BenchmarkPostEvents measures the server side of POST /v1/events with 100
// records per body, 16 requests at a time.
func BenchmarkPostEvents(b *testing.B) {
	r := benchRelay(b)
	h := r.Handler()
	body := string(benchrec.Body(noteRecords(100)))
	b.SetBytes(int64(len(body)))
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("POST", "/v1/events", strings.NewReader(body)))
			if w.Code != 200 {
				b.Fatalf("POST: %d %s", w.Code, w.Body)
			}
		}
	})
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkPublish100 measures Publish of 100 records per call, 16 calls at
// a time.
func BenchmarkPublish100(b *testing.B) {
	r := benchRelay(b)
	recs := noteRecords(100)
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := r.Publish(context.Background(), recs...); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
}
