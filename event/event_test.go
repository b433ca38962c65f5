package event

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

const seedRecord = `{"eventVersion":"2.0","eventSource":"minio:s3","awsRegion":"","eventTime":"2017-07-07T18:46:37Z","eventName":"s3:ObjectCreated:Put","userIdentity":{"principalId":"minio"},"requestParameters":{"sourceIPAddress":"192.168.1.80:55328"},"responseElements":{"x-amz-request-id":"14CF20BD1EFD5B93","x-minio-origin-endpoint":"http://127.0.0.1:9000"},"s3":{"s3SchemaVersion":"1.0","configurationId":"Config","bucket":{"name":"images","ownerIdentity":{"principalId":"minio"},"arn":"arn:aws:s3:::images"},"object":{"key":"my+photo.jpg","size":248682,"eTag":"f1671feacb8bbf7b0397c6e9364e8c92","contentType":"image/jpeg","userMetadata":{"content-type":"image/jpeg"},"versionId":"1","sequencer":"14CF20BD1EFD5B93"}},"source":{"host":"192.168.1.80","port":"55328","userAgent":"Minio (linux; amd64) minio-go/2.0.4 mc/DEVELOPMENT.GOGET"}}`

func TestRecord(t *testing.T) {
	var r Record
	if err := json.Unmarshal([]byte(seedRecord), &r); err != nil {
		t.Fatal(err)
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if got, want := r.Key(), "images/my photo.jpg"; got != want {
		t.Fatalf("Key() = %q, want %q", got, want)
	}
	if r.Time().IsZero() || r.S3.Object.UserMetadata["content-type"] != "image/jpeg" || r.Source.UserAgent == "" {
		t.Fatalf("fields lost: %+v", r)
	}
	msg := AppendMessage(nil, string(r.EventName), r.Key(), []byte(seedRecord))
	var m struct {
		EventName, Key string
		Records        []Record
	}
	if err := json.Unmarshal(msg, &m); err != nil {
		t.Fatalf("message is not JSON: %v", err)
	}
	if m.EventName != "s3:ObjectCreated:Put" || m.Key != "images/my photo.jpg" || len(m.Records) != 1 {
		t.Fatalf("message = %s", msg)
	}
}

func TestNames(t *testing.T) {
	for _, c := range []struct {
		name, pattern Name
		want          bool
	}{
		{ObjectCreatedPut, ObjectCreatedAll, true},
		{ObjectCreatedPut, ObjectCreatedPut, true},
		{ObjectCreatedPut, ObjectRemovedAll, false},
		{ObjectRemovedDeleteMarkerCreated, ObjectRemovedAll, true},
		{ObjectAccessedHead, ObjectAccessedAll, true},
		{ObjectAccessedHead, ObjectAccessedGet, false},
	} {
		if got := c.name.Matches(c.pattern); got != c.want {
			t.Errorf("%s.Matches(%s) = %v, want %v", c.name, c.pattern, got, c.want)
		}
	}
	for _, n := range []Name{"s3:ObjectCreated:Put", "s3:ObjectCreated:Post", "s3:ObjectCreated:Copy", "s3:ObjectCreated:CompleteMultipartUpload", "s3:ObjectRemoved:Delete", "s3:ObjectAccessed:Get", "s3:ObjectCreated:*", "s3:ObjectRemoved:DeleteMarkerCreated", "s3:ObjectAccessed:Head", "s3:ObjectCreated:PutTagging"} {
		if !n.Known() {
			t.Errorf("%s is not known", n)
		}
	}
	if ObjectRemovedDeleteMarkerCreated.Op() != OpDelete || ObjectCreatedCopy.Op() != OpPut || ObjectAccessedGet.Op() != OpNone {
		t.Error("Op mapping is wrong")
	}
	if got := len(ObjectCreatedAll.Expand()); got < 4 {
		t.Errorf("s3:ObjectCreated:* expands to %d names", got)
	}
}

func FuzzRecordJSON(f *testing.F) {
	f.Add([]byte(seedRecord))
	f.Add([]byte(`{"eventName":"s3:ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},"object":{"key":"%zz"}}}`))
	f.Add([]byte(`{"eventName":"s3:ObjectCreated:Put","eventTime":"not a time","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Record
		if err := json.Unmarshal(data, &r); err != nil {
			return
		}
		if r.Validate() != nil {
			return
		}
		// A valid record survives a round trip and yields a valid message.
		b, err := json.Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		var again Record
		if err := json.Unmarshal(b, &again); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(normalize(r), normalize(again)) {
			t.Fatalf("round trip changed the record:\n%+v\n%+v", r, again)
		}
		msg := AppendMessage(nil, string(r.EventName), r.Key(), Normalize(data))
		if !json.Valid(msg) {
			t.Fatalf("message is not valid JSON: %s", msg)
		}
	})
}

// normalize maps empty maps to nil, as omitempty does.
func normalize(r Record) Record {
	if len(r.S3.Object.UserMetadata) == 0 {
		r.S3.Object.UserMetadata = nil
	}
	return r
}

// FuzzAppendJSON checks that AppendJSON writes json.Marshal's bytes.
func FuzzAppendJSON(f *testing.F) {
	f.Add([]byte(seedRecord))
	f.Add([]byte(`{"eventName":"s3:ObjectCreated:Put","requestParameters":{"b":"\u2028<&>","a":"\"\\\n\t\u0001"},"s3":{"bucket":{"name":"b"},"object":{"key":"k\u00e9","userMetadata":{}}}}`))
	f.Add([]byte(`{"source":{"host":"h"},"responseElements":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Record
		if json.Unmarshal(data, &r) != nil {
			return
		}
		ours := r.AppendJSON(nil)
		std, _ := json.Marshal(&r)
		if string(ours) != string(std) {
			t.Fatalf("AppendJSON and json.Marshal differ:\n%s\n%s", ours, std)
		}
	})
}

func TestAppendJSONMatchesMarshal(t *testing.T) {
	var r Record
	if err := json.Unmarshal([]byte(seedRecord), &r); err != nil {
		t.Fatal(err)
	}
	std, _ := json.Marshal(&r)
	if got := string(r.AppendJSON(nil)); got != string(std) {
		t.Fatalf("AppendJSON:\n%s\njson.Marshal:\n%s", got, std)
	}
}

// TestValidateRefusesLenientInput: a wildcard is not an event name, and a
// bucket or key that is not UTF-8 cannot be routed or stored faithfully.
// Errors name the field.
func TestValidateRefusesLenientInput(t *testing.T) {
	var good Record
	if err := json.Unmarshal([]byte(seedRecord), &good); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		edit  func(r *Record)
		field string
		is    error
	}{
		{"wildcard", func(r *Record) { r.EventName = ObjectCreatedAll }, "eventName", nil},
		{"unknown name", func(r *Record) { r.EventName = "s3:Nope" }, "eventName", nil},
		{"empty name", func(r *Record) { r.EventName = "" }, "eventName", ErrNoEventName},
		{"bucket not UTF-8", func(r *Record) { r.S3.Bucket.Name = "im\xffages" }, "s3.bucket.name", nil},
		{"key not UTF-8", func(r *Record) { r.S3.Object.Key = "a\xc3.jpg" }, "s3.object.key", nil},
		{"empty key", func(r *Record) { r.S3.Object.Key = "" }, "s3.object.key", ErrNoKey},
		{"negative size", func(r *Record) { r.S3.Object.Size = -1 }, "s3.object.size", nil},
		{"bad time", func(r *Record) { r.EventTime = strings.Repeat("x", 10000) }, "eventTime", nil},
	} {
		r := good
		c.edit(&r)
		err := r.Validate()
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || (c.is != nil && !errors.Is(err, c.is)) {
			t.Errorf("%s: Validate() = %v, want a FieldError for %s", c.name, err, c.field)
		}
		if err != nil && len(err.Error()) > 200 {
			t.Errorf("%s: error of %d bytes echoes the value: %.80s…", c.name, len(err.Error()), err)
		}
	}
}
