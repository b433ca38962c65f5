package relay

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
)

// BenchmarkScanBody measures the one-pass read of a 100-record body.
func BenchmarkScanBody(b *testing.B) {
	var parts []string
	for i := 0; i < 100; i++ {
		rec := targettest.Record("images", fmt.Sprintf("photos/%d.jpg", i), event.ObjectCreatedPut, i)
		rec.S3.Object.UserMetadata = map[string]string{"x-amz-meta-note": strings.Repeat("x", 150)}
		raw, _ := json.Marshal(rec)
		parts = append(parts, string(raw))
	}
	body := []byte(`{"Records":[` + strings.Join(parts, ",") + `]}`)
	b.SetBytes(int64(len(body)))
	for i := 0; i < b.N; i++ {
		n := 0
		if _, err := scanJSON(body, bodyNode, func(int, []byte, *recordFields) error { n++; return nil }); err != nil || n != 100 {
			b.Fatal(err, n)
		}
	}
}

func BenchmarkGjsonValid(b *testing.B) {
	var parts []string
	for i := 0; i < 100; i++ {
		rec := targettest.Record("images", fmt.Sprintf("photos/%d.jpg", i), event.ObjectCreatedPut, i)
		rec.S3.Object.UserMetadata = map[string]string{"x-amz-meta-note": strings.Repeat("x", 150)}
		raw, _ := json.Marshal(rec)
		parts = append(parts, string(raw))
	}
	body := []byte(`{"Records":[` + strings.Join(parts, ",") + `]}`)
	b.SetBytes(int64(len(body)))
	for i := 0; i < b.N; i++ {
		if !gjson.ValidBytes(body) {
			b.Fatal()
		}
		gjson.GetBytes(body, "Records").ForEach(func(_, v gjson.Result) bool {
			gjson.GetManyBytes(body[v.Index:v.Index+len(v.Raw)], "eventName", "eventTime", "s3.bucket.name", "s3.object.key")
			return true
		})
	}
}
