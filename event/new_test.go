package event

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// TestNewRecordSeed builds the seed guide's sample record with NewRecord
// and compares every field with the guide's.
func TestNewRecordSeed(t *testing.T) {
	var want Record
	if err := json.Unmarshal([]byte(seedRecord), &want); err != nil {
		t.Fatal(err)
	}
	got := NewRecord(ObjectCreatedPut, ObjectInfo{
		Bucket: "images", Key: "my photo.jpg", Size: 248682,
		ETag: `"f1671feacb8bbf7b0397c6e9364e8c92"`, ContentType: "image/jpeg", VersionID: "1",
	}, Request{
		Time:        time.Date(2017, 7, 7, 18, 46, 37, 0, time.UTC),
		PrincipalID: "minio", SourceIP: "192.168.1.80:55328",
		RequestID: "14CF20BD1EFD5B93", Endpoint: "http://127.0.0.1:9000",
		UserAgent: "Minio (linux; amd64) minio-go/2.0.4 mc/DEVELOPMENT.GOGET",
		Sequencer: "14CF20BD1EFD5B93",
	})
	// The guide's eventTime has no milliseconds; S3 and current MinIO
	// send them. Both parse to the same instant.
	if got.EventTime != "2017-07-07T18:46:37.000Z" || !got.Time().Equal(want.Time()) {
		t.Fatalf("eventTime = %q, want 2017-07-07T18:46:37.000Z", got.EventTime)
	}
	got.EventTime = want.EventTime
	// The guide's principal is also in requestParameters in current MinIO.
	if got.RequestParameters["principalId"] != "minio" {
		t.Fatalf("requestParameters = %v, want principalId minio", got.RequestParameters)
	}
	delete(got.RequestParameters, "principalId")
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(&got)
		t.Fatalf("NewRecord:\n%s\nwant the seed record:\n%s", g, seedRecord)
	}
	if err := got.Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestNewRecordMinimal: a record built from a bucket, key and name alone
// has no null maps and every field S3 clients read.
func TestNewRecordMinimal(t *testing.T) {
	r := NewRecord(ObjectRemovedDelete, ObjectInfo{Bucket: "b", Key: "dir/a b+c.txt"}, Request{})
	b := r.AppendJSON(nil)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["requestParameters"] == nil || m["responseElements"] == nil {
		t.Fatalf("null maps in %s", b)
	}
	s3 := m["s3"].(map[string]any)
	if s3["s3SchemaVersion"] != "1.0" || s3["configurationId"] != "Config" {
		t.Fatalf("s3 = %v", s3)
	}
	if arn := s3["bucket"].(map[string]any)["arn"]; arn != "arn:aws:s3:::b" {
		t.Fatalf("bucket arn = %v, want arn:aws:s3:::b", arn)
	}
	if r.S3.Object.Key != "dir%2Fa+b%2Bc.txt" || r.ObjectKey() != "dir/a b+c.txt" {
		t.Fatalf("key = %q (decoded %q), want dir%%2Fa+b%%2Bc.txt", r.S3.Object.Key, r.ObjectKey())
	}
	if r.ResponseElements["x-amz-request-id"] == "" || r.S3.Object.Sequencer == "" || r.Source != nil {
		t.Fatalf("record = %s", b)
	}
	if _, err := ParseTime(r.EventTime); err != nil || time.Since(r.Time()) > time.Minute {
		t.Fatalf("eventTime = %q: %v", r.EventTime, err)
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestNewRecordMetadataAndTags(t *testing.T) {
	r := NewRecord(ObjectCreatedCopy, ObjectInfo{
		Bucket: "b", Key: "k", ContentType: "text/plain",
		UserMetadata: map[string]string{"X-Amz-Meta-Owner": "ann"},
		Tags:         map[string]string{"team": "a&b", "env": "prod"},
	}, Request{})
	want := map[string]string{"X-Amz-Meta-Owner": "ann", "content-type": "text/plain", TaggingKey: "env=prod&team=a%26b"}
	if !reflect.DeepEqual(r.S3.Object.UserMetadata, want) {
		t.Fatalf("userMetadata = %v, want %v", r.S3.Object.UserMetadata, want)
	}
}

// TestNextSequencer: sequencers are fixed-width and strictly increasing as
// strings, even called from many goroutines.
func TestNextSequencer(t *testing.T) {
	const n = 4
	out := make([][]string, n)
	done := make(chan int)
	for g := range n {
		go func() {
			for range 1000 {
				out[g] = append(out[g], NextSequencer())
			}
			done <- g
		}()
	}
	seen := map[string]bool{}
	for range n {
		g := <-done
		for i, s := range out[g] {
			if len(s) != 16 {
				t.Fatalf("sequencer %q: want 16 hex digits", s)
			}
			if i > 0 && s <= out[g][i-1] {
				t.Fatalf("sequencer %q after %q: want increasing", s, out[g][i-1])
			}
			if seen[s] {
				t.Fatalf("sequencer %q returned twice", s)
			}
			seen[s] = true
		}
	}
}
