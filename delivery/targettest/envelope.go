package targettest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding/spec"
	ce "github.com/cloudevents/sdk-go/v2/event"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/event/cloudevent"
	"github.com/bucketrelay/bucketrelay/wal"
)

// Message is one message as a consumer received it: its body and the
// headers (or application properties, or user properties) it carried,
// values as strings. Header names are matched without regard to case.
type Message struct {
	Body    []byte
	Headers map[string]string
}

// Envelope says what a target's messages must carry besides the event.
type Envelope struct {
	// IDHeader, if set, is the header that carries the event's id
	// (webhook-id, event-id, Nats-Msg-Id, message-id for AMQP's property).
	IDHeader string
	// CloudEvents: the target was made with format "cloudevents"; every
	// message must be a valid CloudEvent whose id is the event's id.
	CloudEvents bool
	// Binding is the CloudEvents protocol binding of binary mode; nil
	// means structured mode. CloudEvents only.
	Binding *cloudevent.Binding
}

// EnvelopeHarness connects RunEnvelope to one target and its consumer.
type EnvelopeHarness struct {
	Envelope Envelope
	// New returns a target configured as Envelope says.
	New func(t testing.TB) delivery.Target
	// Received returns every message the consumer received so far, in
	// arrival order, with its headers.
	Received func(t testing.TB) []Message
	// Timeout bounds the wait for delivery; 0 means 60 s.
	Timeout time.Duration
}

// RunEnvelope checks that every message a target delivers through a real
// log and engine carries the event's id (the log's id and the sequence,
// unique per record) and, in CloudEvents mode, is a CloudEvent that
// cloudevents/sdk-go accepts and validates, with the attributes the S3
// adapter mapping gives and the record as its data.
func RunEnvelope(t *testing.T, h EnvelopeHarness) {
	t.Helper()
	p := start(t, Harness{New: h.New})
	bucket := uniqueBucket("envelope")
	const n = 12
	want := map[string]event.Record{} // event id → record
	for i := range n {
		r := Record(bucket, fmt.Sprintf("dir/key %d é.jpg", i%5), event.ObjectCreatedPut, i)
		if i%4 == 3 {
			r.EventName = event.ObjectRemovedDelete
		}
		seq, err := p.log.Append(t.Context(), Entry(r, p.id))
		if err != nil {
			t.Fatal(err)
		}
		want[wal.EventID(p.log.ID(), seq)] = r
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	deadline := time.Now().Add(timeout)
	var got []Message
	for {
		got = mine(h.Received(t), bucket)
		if len(got) >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(got) < n {
		t.Fatalf("received %d messages of bucket %s, want %d", len(got), bucket, n)
	}
	seen := map[string]bool{}
	for i, m := range got {
		hdr := lower(m.Headers)
		var id string
		if h.Envelope.CloudEvents {
			e, err := ParseCloudEvent(m, h.Envelope.Binding)
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			id = e.ID()
			r, ok := want[id]
			if !ok {
				t.Fatalf("message %d: CloudEvent id %q is not the id of an event logged", i, id)
			}
			checkCloudEvent(t, i, e, r)
		} else {
			var body struct{ Records []json.RawMessage }
			if err := json.Unmarshal(m.Body, &body); err != nil || len(body.Records) != 1 {
				t.Fatalf("message %d: not the guide's body: %v", i, err)
			}
		}
		if h.Envelope.IDHeader != "" {
			hid := hdr[strings.ToLower(h.Envelope.IDHeader)]
			if _, ok := want[hid]; !ok {
				t.Fatalf("message %d: header %s = %q, want the event's id", i, h.Envelope.IDHeader, hid)
			}
			if id != "" && hid != id {
				t.Fatalf("message %d: header %s = %q, CloudEvent id %q: want the same", i, h.Envelope.IDHeader, hid, id)
			}
			id = hid
		}
		if id != "" {
			seen[id] = true
		}
	}
	if (h.Envelope.IDHeader != "" || h.Envelope.CloudEvents) && len(seen) != n {
		t.Fatalf("got %d distinct event ids in %d messages, want %d", len(seen), len(got), n)
	}
}

// mine returns the messages whose body names bucket (the guide's body, a
// structured CloudEvent or a record all do).
func mine(ms []Message, bucket string) []Message {
	var out []Message
	needle := []byte(`"name":"` + bucket + `"`)
	for _, m := range ms {
		if bytes.Contains(m.Body, needle) {
			out = append(out, m)
		}
	}
	return out
}

func lower(h map[string]string) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		out[strings.ToLower(k)] = v
	}
	return out
}

// ParseCloudEvent parses a received message as a CloudEvent with
// cloudevents/sdk-go: the JSON event format in structured mode (b nil),
// else the attributes from b's headers (percent-decoded where b says)
// with sdk-go's attribute table for b's prefix, and the body as data. The
// event is validated.
func ParseCloudEvent(m Message, b *cloudevent.Binding) (*ce.Event, error) {
	if b == nil {
		var e ce.Event
		if err := json.Unmarshal(m.Body, &e); err != nil {
			return nil, fmt.Errorf("structured CloudEvent: sdk-go cannot parse %.200s: %w", m.Body, err)
		}
		return &e, e.Validate()
	}
	hdr := lower(m.Headers)
	prefix := strings.ToLower(b.Prefix)
	versions := spec.WithPrefix(prefix)
	sv := hdr[prefix+"specversion"]
	v := versions.Version(sv)
	if v == nil {
		return nil, fmt.Errorf("binary CloudEvent: specversion header %q: not understood (headers %v)", sv, m.Headers)
	}
	e := ce.New(sv)
	for k, val := range hdr {
		if b.PercentEncode {
			dec, err := url.PathUnescape(val)
			if err != nil {
				return nil, fmt.Errorf("binary CloudEvent: header %s: %w", k, err)
			}
			val = dec
		}
		if b.ContentType != "" && k == strings.ToLower(b.ContentType) {
			e.SetDataContentType(val)
			continue
		}
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		a := v.Attribute(k)
		if a == nil && prefix == "" {
			continue // MQTT 5: other user properties (event-id) beside the attributes
		}
		if a == nil {
			return nil, fmt.Errorf("binary CloudEvent: header %s is not an attribute", k)
		}
		if err := a.Set(e.Context, val); err != nil {
			return nil, fmt.Errorf("binary CloudEvent: header %s=%q: %w", k, val, err)
		}
	}
	e.DataEncoded = m.Body
	return &e, e.Validate()
}

// checkCloudEvent checks e's attributes and data against r.
func checkCloudEvent(t testing.TB, i int, e *ce.Event, r event.Record) {
	t.Helper()
	want := map[string][2]string{
		"type":            {e.Type(), "com.amazonaws.s3." + strings.TrimPrefix(string(r.EventName), "s3:")},
		"source":          {e.Source(), r.EventSource + "." + r.AwsRegion + "." + r.S3.Bucket.Name},
		"subject":         {e.Subject(), r.S3.Object.Key},
		"datacontenttype": {e.DataContentType(), cloudevent.DataContentType},
		"time":            {e.Time().UTC().Format(time.RFC3339Nano), r.Time().UTC().Format(time.RFC3339Nano)},
	}
	for name, gw := range want {
		if gw[0] != gw[1] {
			t.Errorf("message %d: %s: got %q, want %q", i, name, gw[0], gw[1])
		}
	}
	var got event.Record
	if err := json.Unmarshal(e.Data(), &got); err != nil {
		t.Fatalf("message %d: data is not the record: %v", i, err)
	}
	if got.Key() != r.Key() || got.EventName != r.EventName || got.S3.Object.Size != r.S3.Object.Size {
		t.Errorf("message %d: data: got %s %s size %d, want %s %s size %d", i, got.Key(), got.EventName, got.S3.Object.Size, r.Key(), r.EventName, r.S3.Object.Size)
	}
}
