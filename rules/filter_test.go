package rules

import (
	"reflect"
	"strconv"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/bucketrelay/bucketrelay/event"
)

const minioRecord = `{"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"images"},"object":{"key":"a.jpg","size":2048,"contentType":"image/jpeg; charset=binary","userMetadata":{"X-Amz-Meta-Camera":"x100","content-type":"image/jpeg"}}}}`
const cephRecord = `{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"images"},"object":{"key":"a.jpg","size":10,"metadata":[{"key":"x-amz-meta-camera","val":"x100"}],"tags":[{"key":"project","val":"apollo"}]}}}`

func TestObjectOf(t *testing.T) {
	o := ObjectOf([]byte(minioRecord))
	if !o.HasSize || o.Size != 2048 || o.ContentType != "image/jpeg" || o.Metadata["camera"] != "x100" || o.Tags != nil {
		t.Errorf("MinIO record: got %+v", o)
	}
	o = ObjectOf([]byte(cephRecord))
	if !o.HasSize || o.Size != 10 || o.ContentType != "" || o.Metadata["camera"] != "x100" || o.Tags["project"] != "apollo" {
		t.Errorf("Ceph record: got %+v", o)
	}
	o = ObjectOf([]byte(`{"eventName":"s3:ObjectRemoved:Delete","s3":{"object":{"key":"a.jpg"}}}`))
	if o.HasSize {
		t.Errorf("delete record: got a size")
	}
}

func i64(n int64) *int64 { return &n }

func TestObjectFilters(t *testing.T) {
	base := Rule{ARN: "arn:minio:sqs::1:webhook", Events: []event.Name{"put"}}
	for _, c := range []struct {
		name   string
		filter ObjectFilter
		record string
		want   bool
	}{
		{"size in range", ObjectFilter{MinSize: i64(1024), MaxSize: i64(4096)}, minioRecord, true},
		{"size below", ObjectFilter{MinSize: i64(4096)}, minioRecord, false},
		{"size on a record without one", ObjectFilter{MinSize: i64(0)}, `{"s3":{"object":{"key":"a.jpg"}}}`, false},
		{"content type family", ObjectFilter{ContentTypes: []string{"text/plain", "IMAGE/*"}}, minioRecord, true},
		{"content type other", ObjectFilter{ContentTypes: []string{"text/*"}}, minioRecord, false},
		{"metadata with prefix", ObjectFilter{Metadata: map[string]string{"X-Amz-Meta-Camera": "x100"}}, cephRecord, true},
		{"metadata value differs", ObjectFilter{Metadata: map[string]string{"camera": "x200"}}, minioRecord, false},
		{"tag", ObjectFilter{Tags: map[string]string{"project": "apollo"}}, cephRecord, true},
		{"tag on a record without tags", ObjectFilter{Tags: map[string]string{"project": "apollo"}}, minioRecord, false},
		{"regex", ObjectFilter{KeyRegex: `^a\.(jpg|png)$`}, minioRecord, true},
		{"regex no", ObjectFilter{KeyRegex: `^b`}, minioRecord, false},
	} {
		r := base
		r.ObjectFilter = c.filter
		n, err := r.Normalize()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		s := NewSet(map[string][]Rule{"images": {n}})
		got := len(s.MatchRecord(nil, "images", "a.jpg", event.ObjectCreatedPut, []byte(c.record))) == 1
		if got != c.want {
			t.Errorf("%s: matched %v, want %v", c.name, got, c.want)
		}
		// Without the record an object filter never matches.
		if n.needsObject() && len(s.Match(nil, "images", "a.jpg", event.ObjectCreatedPut)) != 0 {
			t.Errorf("%s: matched without the record", c.name)
		}
	}
}

func TestFilterXMLRoundTrip(t *testing.T) {
	r, err := Rule{ARN: "arn:minio:sqs::1:webhook", Events: []event.Name{"put"}, Prefix: "photos/", Suffix: ".jpg",
		ObjectFilter: ObjectFilter{KeyRegex: `^photos/\d+`, MinSize: i64(1), MaxSize: i64(1 << 20), ContentTypes: []string{"image/*"},
			Metadata: map[string]string{"camera": "x100"}, Tags: map[string]string{"project": "apollo"}}}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	doc := MarshalXML([]Rule{r})
	for _, want := range []string{"<S3Metadata>", "<Name>x-amz-meta-camera</Name>", "<S3Tags>", "<Name>regex</Name>", "<Name>min-size</Name>"} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("XML lacks %s:\n%s", want, doc)
		}
	}
	back, err := ParseXML(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != 1 || !reflect.DeepEqual(back[0].ObjectFilter.describe(nil), r.ObjectFilter.describe(nil)) || back[0].Prefix != r.Prefix || back[0].Suffix != r.Suffix {
		t.Errorf("round trip: got %+v, want %+v", back, r)
	}
	if f := back[0].Filter(); !strings.Contains(f, `regex="^photos/\\d+"`) || !strings.Contains(f, `tag.project="apollo"`) {
		t.Errorf("Filter() = %s", f)
	}
}

// TestObjectFilterProperty checks MatchRecord against a model for random
// object filters and objects.
func TestObjectFilterProperty(t *testing.T) {
	arns := []string{"arn:minio:sqs::1:webhook", "arn:minio:sqs::2:webhook", "arn:minio:sqs::1:redis"}
	sizes := []int64{0, 10, 100, 1000}
	types := []string{"image/jpeg", "image/png", "text/plain"}
	rapid.Check(t, func(t *rapid.T) {
		var table []Rule
		for i := rapid.IntRange(0, 5).Draw(t, "rules"); i > 0; i-- {
			r := Rule{ARN: rapid.SampledFrom(arns).Draw(t, "arn"), Events: []event.Name{event.ObjectCreatedAll}}
			if rapid.Bool().Draw(t, "min") {
				r.MinSize = i64(rapid.SampledFrom(sizes).Draw(t, "minSize"))
			}
			if rapid.Bool().Draw(t, "max") {
				r.MaxSize = i64(rapid.SampledFrom(sizes).Draw(t, "maxSize"))
			}
			if r.MinSize != nil && r.MaxSize != nil && *r.MinSize > *r.MaxSize {
				r.MinSize, r.MaxSize = r.MaxSize, r.MinSize
			}
			if rapid.Bool().Draw(t, "ct") {
				r.ContentTypes = []string{rapid.SampledFrom(append(types, "image/*")).Draw(t, "contentType")}
			}
			if rapid.Bool().Draw(t, "meta") {
				r.Metadata = map[string]string{"camera": rapid.SampledFrom([]string{"x100", "z9"}).Draw(t, "camera")}
			}
			if rapid.Bool().Draw(t, "tag") {
				r.Tags = map[string]string{"project": rapid.SampledFrom([]string{"apollo", "gemini"}).Draw(t, "project")}
			}
			n, err := r.Normalize()
			if err != nil {
				t.Fatal(err)
			}
			table = append(table, n)
		}
		size := rapid.SampledFrom(sizes).Draw(t, "size")
		ct := rapid.SampledFrom(types).Draw(t, "objType")
		camera := rapid.SampledFrom([]string{"x100", "z9"}).Draw(t, "objCamera")
		project := rapid.SampledFrom([]string{"apollo", "gemini", ""}).Draw(t, "objProject")
		rec := `{"s3":{"object":{"key":"k","size":` + itoa(size) + `,"contentType":"` + ct + `","userMetadata":{"X-Amz-Meta-Camera":"` + camera + `"}`
		if project != "" {
			rec += `,"tags":{"project":"` + project + `"}`
		}
		rec += `}}}`
		got := NewSet(map[string][]Rule{"b": table}).MatchRecord(nil, "b", "k", event.ObjectCreatedPut, []byte(rec))
		want := map[string]bool{}
		for _, r := range table {
			ok := (r.MinSize == nil || size >= *r.MinSize) && (r.MaxSize == nil || size <= *r.MaxSize)
			if len(r.ContentTypes) > 0 {
				w := r.ContentTypes[0]
				ok = ok && (w == ct || (w == "image/*" && strings.HasPrefix(ct, "image/")))
			}
			if len(r.Metadata) > 0 {
				ok = ok && r.Metadata["camera"] == camera
			}
			if len(r.Tags) > 0 {
				ok = ok && project != "" && r.Tags["project"] == project
			}
			if ok {
				want[r.ARN] = true
			}
		}
		if len(got) != len(want) {
			t.Fatalf("got %v, want %v (record %s)", got, want, rec)
		}
		for _, a := range got {
			if !want[a] {
				t.Fatalf("got %v, want %v (record %s)", got, want, rec)
			}
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
