package relay

import (
	"testing"

	"github.com/bucketrelay/bucketrelay/testkit/benchrec"
	"github.com/tidwall/gjson"
)

// BenchmarkScanBody measures the one-pass read of a 100-record body.
func BenchmarkScanBody(b *testing.B) {
	body := benchrec.Body(noteRecords(100))
	b.SetBytes(int64(len(body)))
	for i := 0; i < b.N; i++ {
		n := 0
		if _, err := scanJSON(body, bodyNode, func(int, []byte, *recordFields) error { n++; return nil }); err != nil || n != 100 {
			b.Fatal(err, n)
		}
	}
}

func BenchmarkGjsonValid(b *testing.B) {
	body := benchrec.Body(noteRecords(100))
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
