package benchrec

import (
	"encoding/json"
	"testing"

	"github.com/bucketrelay/bucketrelay/event"
)

// TestBodyRoundTrips: Body is the {"Records":[…]} of the pool, each record
// about 1 KiB of JSON and distinct.
func TestBodyRoundTrips(t *testing.T) {
	recs := Pool(3)
	var got struct{ Records []event.Record }
	if err := json.Unmarshal(Body(recs), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Records) != 3 {
		t.Fatalf("got %d records, want 3", len(got.Records))
	}
	for i, r := range got.Records {
		if r.S3.Bucket.Name != Bucket || r.S3.Object.Key != recs[i].S3.Object.Key || len(r.S3.Object.UserMetadata) != len(padding) {
			t.Fatalf("record %d: got %s/%s with %d metadata, want %s/%s with %d", i, r.S3.Bucket.Name, r.S3.Object.Key, len(r.S3.Object.UserMetadata), Bucket, recs[i].S3.Object.Key, len(padding))
		}
	}
	if got.Records[0].S3.Object.Key == got.Records[1].S3.Object.Key {
		t.Fatal("records 0 and 1 have the same key")
	}
	if n := Size(); n < 900 || n > 1200 {
		t.Fatalf("a record is %d bytes of JSON, want about 1 KiB", n)
	}
	if b := Body(nil); string(b) != `{"Records":[]}` {
		t.Fatalf("empty body %s", b)
	}
}
