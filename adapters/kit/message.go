package kit

import (
	"strconv"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/event/cloudevent"
)

// FormatCloudEvents is the "format" of the message targets (webhook,
// Kafka, AMQP, NATS, MQTT) that sends each event as a CloudEvent 1.0
// (package event/cloudevent) instead of the guide's
// {"EventName","Key","Records"} body, which the empty format keeps.
const FormatCloudEvents Format = "cloudevents"

// CloudEvents reports whether the format is FormatCloudEvents.
func (f Format) CloudEvents() bool { return f == FormatCloudEvents }

// ValidateMessage checks the format of a message target: "" or
// "cloudevents". The error is a *FieldError on "format".
func (f Format) ValidateMessage() error {
	switch f {
	case "", FormatCloudEvents:
		return nil
	}
	return Fieldf("format", "must be empty (the guide's message) or %q, not %q", FormatCloudEvents, string(f))
}

// CloudEventsMode is the "cloudeventsMode" option: how a CloudEvent travels
// in a protocol's message. The zero value "" means CloudEventsBinary where
// the protocol has headers, CloudEventsStructured where it has none.
type CloudEventsMode string

// CloudEvents modes.
const (
	// CloudEventsBinary puts the attributes in the message's headers
	// (ce-id, ce_type, cloudEvents_source…) and the record in the body.
	CloudEventsBinary CloudEventsMode = "binary"
	// CloudEventsStructured sends the whole event as the body, in the JSON
	// event format (application/cloudevents+json).
	CloudEventsStructured CloudEventsMode = "structured"
)

// Validate checks the mode; binaryOK is false for protocols without
// headers (MQTT 3.1.1, NATS Streaming), which take only structured. The
// error is a *FieldError on "cloudeventsMode".
func (m CloudEventsMode) Validate(binaryOK bool) error {
	switch {
	case m == "" || m == CloudEventsStructured:
		return nil
	case m == CloudEventsBinary && binaryOK:
		return nil
	case m == CloudEventsBinary:
		return Fieldf("cloudeventsMode", "must be %q: the protocol has no headers to carry binary mode", CloudEventsStructured)
	}
	return Fieldf("cloudeventsMode", "must be %q or %q, not %q", CloudEventsBinary, CloudEventsStructured, string(m))
}

// Structured reports whether events travel in structured mode, given
// whether the protocol has headers.
func (m CloudEventsMode) Structured(binaryOK bool) bool {
	return m == CloudEventsStructured || !binaryOK
}

// JSONContentType is the content type of the guide's message body.
const JSONContentType = "application/json"

// Encode returns the body and content type of it's message under format f.
// In CloudEvents binary mode (b not nil) it calls header with each header
// of the binding, the binding's content-type header included; otherwise
// it calls nothing.
func (f Format) Encode(it *delivery.Item, b *cloudevent.Binding, header func(name, value string)) (body []byte, contentType string) {
	if !f.CloudEvents() {
		return it.Message(), JSONContentType
	}
	ev := cloudevent.FromRecord(EventID(it), it.Record)
	if b == nil {
		return ev.AppendStructured(make([]byte, 0, len(it.Record)+256)), cloudevent.StructuredContentType
	}
	b.Headers(&ev, header)
	return ev.Data, cloudevent.DataContentType
}

// EventID returns it's event id (delivery.Item.EventID) or, for an
// item read from a log without an id (tests that call Send directly),
// its sequence: never empty, as CloudEvents and dedupe columns need.
func EventID(it *delivery.Item) string {
	if id := it.EventID(); id != "" {
		return id
	}
	return strconv.FormatUint(it.Seq, 10)
}
