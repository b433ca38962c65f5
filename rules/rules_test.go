package rules

import (
	"fmt"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/bucketrelay/bucketrelay/event"
)

func TestParseXML(t *testing.T) {
	doc := `<?xml version="1.0" encoding="UTF-8"?>
<NotificationConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <QueueConfiguration>
    <Id>1</Id>
    <Queue>arn:minio:sqs::1:webhook</Queue>
    <Event>s3:ObjectCreated:*</Event>
    <Event>s3:ObjectRemoved:Delete</Event>
    <Filter><S3Key>
      <FilterRule><Name>prefix</Name><Value>photos/</Value></FilterRule>
      <FilterRule><Name>suffix</Name><Value>.jpg</Value></FilterRule>
    </S3Key></Filter>
  </QueueConfiguration>
  <QueueConfiguration>
    <Queue>arn:minio:sqs:us-east-1:2:amqp</Queue>
    <Event>s3:ObjectAccessed:Get</Event>
  </QueueConfiguration>
</NotificationConfiguration>`
	rs, err := ParseXML([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 {
		t.Fatalf("got %d rules, want 2", len(rs))
	}
	r := rs[0]
	if r.ID != "1" || r.ARN != "arn:minio:sqs::1:webhook" || r.Prefix != "photos/" || r.Suffix != ".jpg" || len(r.Events) != 2 {
		t.Fatalf("rule 0 = %+v", r)
	}
	if got := r.Filter(); got != `Filter: prefix="photos/", suffix=".jpg"` {
		t.Fatalf("Filter() = %s", got)
	}
	// Round trip.
	again, err := ParseXML(MarshalXML(rs))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(again) != fmt.Sprint(rs) {
		t.Fatalf("round trip: got %+v, want %+v", again, rs)
	}
}

func TestParseXMLErrors(t *testing.T) {
	for _, c := range []struct{ doc, want string }{
		{`<NotificationConfiguration><QueueConfiguration><Queue>arn:aws:sqs:x</Queue><Event>s3:ObjectCreated:*</Event></QueueConfiguration></NotificationConfiguration>`, "not a target ARN"},
		{`<NotificationConfiguration><QueueConfiguration><Queue>arn:minio:sqs::1:webhook</Queue><Event>s3:ObjectMelted:*</Event></QueueConfiguration></NotificationConfiguration>`, "unknown event name"},
		{`<NotificationConfiguration><QueueConfiguration><Queue>arn:minio:sqs::1:webhook</Queue></QueueConfiguration></NotificationConfiguration>`, "no events"},
		{`<NotificationConfiguration><QueueConfiguration><Queue>arn:minio:sqs::1:webhook</Queue><Event>s3:ObjectCreated:*</Event><Filter><S3Key><FilterRule><Name>middle</Name><Value>x</Value></FilterRule></S3Key></Filter></QueueConfiguration></NotificationConfiguration>`, "not prefix, suffix or regex"},
		{`<NotificationConfiguration><TopicConfiguration><Topic>arn:aws:sns:x</Topic></TopicConfiguration></NotificationConfiguration>`, "only QueueConfiguration"},
		{`<NotificationConfiguration><QueueConfiguration>`, "malformed"},
		{`<NotificationConfiguration><QueueConfiguration><Queue>arn:minio:sqs::1:webhook</Queue><Event>s3:ObjectCreated:*</Event></QueueConfiguration><QueueConfiguration><Queue>arn:minio:sqs::1:webhook</Queue><Event>s3:ObjectCreated:*</Event><Filter><S3Key><FilterRule><Name>regex</Name><Value>a(</Value></FilterRule></S3Key></Filter></QueueConfiguration></NotificationConfiguration>`, "QueueConfiguration 2: rules: rule for arn:minio:sqs::1:webhook: keyRegex"},
		{`<NotificationConfiguration><QueueConfiguration><Queue>arn:minio:sqs::1:webhook</Queue><Event>s3:ObjectCreated:*</Event><Filter><S3Object><FilterRule><Name>min-size</Name><Value>big</Value></FilterRule></S3Object></Filter></QueueConfiguration></NotificationConfiguration>`, `"big" is not a number of bytes`},
		{`<NotificationConfiguration><QueueConfiguration><Queue>arn:minio:sqs::1:webhook</Queue><Event>s3:ObjectCreated:*</Event><Filter><S3Object><FilterRule><Name>min-size</Name><Value>10</Value></FilterRule><FilterRule><Name>max-size</Name><Value>5</Value></FilterRule></S3Object></Filter></QueueConfiguration></NotificationConfiguration>`, "minSize 10 is above maxSize 5"},
		{`<NotificationConfiguration><QueueConfiguration><Queue>arn:minio:sqs::1:webhook</Queue><Event>s3:ObjectCreated:*</Event><Filter><S3Object><FilterRule><Name>content-type</Name><Value>jpeg</Value></FilterRule></S3Object></Filter></QueueConfiguration></NotificationConfiguration>`, "not a media type"},
	} {
		_, err := ParseXML([]byte(c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseXML(%.60s…) = %v, want an error containing %q", c.doc, err, c.want)
		}
	}
}

func TestShorthands(t *testing.T) {
	r, err := Rule{ARN: "arn:minio:sqs::1:webhook", Events: []event.Name{"put", "delete", "get", "put"}}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	want := []event.Name{event.ObjectCreatedAll, event.ObjectRemovedAll, event.ObjectAccessedAll}
	if fmt.Sprint(r.Events) != fmt.Sprint(want) {
		t.Fatalf("events = %v, want %v", r.Events, want)
	}
}

// TestMatchProperty checks, for random rule sets and events, that every
// event reaches exactly the targets with a matching rule, each once.
func TestMatchProperty(t *testing.T) {
	arns := []string{"arn:minio:sqs::1:webhook", "arn:minio:sqs::2:webhook", "arn:minio:sqs::1:amqp", "arn:minio:sqs::1:redis"}
	patterns := append(event.Names(), event.ObjectCreatedAll, event.ObjectRemovedAll, event.ObjectAccessedAll)
	buckets := []string{"images", "docs"}
	affixes := []string{"", "a", "photos/", ".jpg", "a/b"}
	rapid.Check(t, func(t *rapid.T) {
		table := map[string][]Rule{}
		for _, b := range buckets {
			n := rapid.IntRange(0, 6).Draw(t, "rules-"+b)
			for i := 0; i < n; i++ {
				table[b] = append(table[b], Rule{
					ARN:    rapid.SampledFrom(arns).Draw(t, "arn"),
					Events: rapid.SliceOfN(rapid.SampledFrom(patterns), 1, 3).Draw(t, "events"),
					Prefix: rapid.SampledFrom(affixes).Draw(t, "prefix"),
					Suffix: rapid.SampledFrom(affixes).Draw(t, "suffix"),
				})
			}
		}
		s := NewSet(table)
		bucket := rapid.SampledFrom(append(buckets, "other")).Draw(t, "bucket")
		key := rapid.SampledFrom([]string{"a", "photos/a.jpg", "a/b.jpg", "x.jpg", "photos/", "a/b"}).Draw(t, "key")
		name := rapid.SampledFrom(event.Names()).Draw(t, "name")
		got := s.Match(nil, bucket, key, name)

		// The model: a target is selected iff one of its rules has a
		// pattern naming the event (exactly or by its family wildcard) and
		// both affixes fit the key.
		want := map[string]bool{}
		for _, r := range table[bucket] {
			if !strings.HasPrefix(key, r.Prefix) || !strings.HasSuffix(key, r.Suffix) {
				continue
			}
			for _, p := range r.Events {
				if p == name || (strings.HasSuffix(string(p), ":*") && strings.HasPrefix(string(name), strings.TrimSuffix(string(p), "*"))) {
					want[r.ARN] = true
				}
			}
		}
		seen := map[string]bool{}
		for _, a := range got {
			if seen[a] {
				t.Fatalf("target %s matched twice for %s %s/%s", a, name, bucket, key)
			}
			seen[a] = true
			if !want[a] {
				t.Fatalf("target %s matched %s %s/%s but no rule selects it", a, name, bucket, key)
			}
		}
		for a := range want {
			if !seen[a] {
				t.Fatalf("target %s not matched for %s %s/%s though a rule selects it", a, name, bucket, key)
			}
		}
	})
}

func FuzzParseXML(f *testing.F) {
	f.Add([]byte(`<NotificationConfiguration><QueueConfiguration><Id>1</Id><Queue>arn:minio:sqs::1:webhook</Queue><Event>s3:ObjectCreated:*</Event><Filter><S3Key><FilterRule><Name>suffix</Name><Value>.jpg</Value></FilterRule></S3Key></Filter></QueueConfiguration></NotificationConfiguration>`))
	f.Add([]byte(`<NotificationConfiguration></NotificationConfiguration>`))
	f.Add([]byte(`<NotificationConfiguration><QueueConfiguration><Queue>arn:minio:sqs::1:webhook</Queue><Event>put</Event></QueueConfiguration>`))
	f.Add([]byte(`not xml`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := ParseXML(data)
		if err != nil {
			return
		}
		// Whatever parses must round-trip and hold only valid rules.
		again, err := ParseXML(MarshalXML(rs))
		if err != nil {
			t.Fatalf("re-parsing our own XML: %v", err)
		}
		if len(again) != len(rs) {
			t.Fatalf("round trip: %d rules, want %d", len(again), len(rs))
		}
		for _, r := range rs {
			if _, err := ParseARN(r.ARN); err != nil {
				t.Fatalf("accepted rule with bad ARN %q", r.ARN)
			}
			for _, e := range r.Events {
				if !e.Known() {
					t.Fatalf("accepted unknown event %q", e)
				}
			}
		}
	})
}

// TestNormalizeDefaultEvents: a rule built in Go without events gets put
// and delete, as a rule of the configuration file does.
func TestNormalizeDefaultEvents(t *testing.T) {
	r, err := Rule{ARN: "arn:minio:sqs::1:webhook", Suffix: ".jpg"}.Normalize()
	if err != nil {
		t.Fatalf("Normalize of a rule without events: %v", err)
	}
	if got, want := fmt.Sprint(r.Events), fmt.Sprint(DefaultEvents); got != want {
		t.Fatalf("events = %v, want %v", got, want)
	}
	if !r.Matches("a.jpg", event.ObjectCreatedCompleteMultipartUpload) || !r.Matches("a.jpg", event.ObjectRemovedDelete) || r.Matches("a.jpg", event.ObjectAccessedGet) {
		t.Fatalf("rule %+v: want put and delete matched, get not", r)
	}
}
