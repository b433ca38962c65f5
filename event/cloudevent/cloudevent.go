// Package cloudevent renders an S3 event record as a CloudEvent 1.0, the
// way the CloudEvents specification's AWS S3 adapter maps it, in the JSON
// event format (structured mode) or as protocol headers and a body (binary
// mode) for HTTP, Kafka, AMQP, NATS and MQTT.
//
// # Attributes
//
//	specversion      "1.0"
//	id               given by the caller: unique per record, stable across retries
//	source           eventSource + "." + awsRegion + "." + s3.bucket.name
//	type             "com.amazonaws.s3." + eventName, without a leading "s3:"
//	subject          s3.object.key
//	time             eventTime (omitted when the record has none)
//	datacontenttype  "application/json"
//	data             the record
//
// The S3 adapter builds the id from the request id and x-amz-id-2; one
// request can produce several records, so the relay passes its own event
// id instead. MinIO names events "s3:ObjectCreated:Put" where AWS and Ceph
// say "ObjectCreated:Put": the "s3:" is dropped so that the type is the
// same whichever store produced the record.
//
// In the HTTP and NATS bindings header values are percent-encoded as those
// bindings require (an object key with spaces or non-ASCII letters).
// Receivers decode them; cloudevents/sdk-go up to v2.16 does not yet, so a
// Go consumer built on it sees the encoded subject in binary mode and the
// plain one in structured mode.
package cloudevent

import (
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// SpecVersion is the CloudEvents version the package produces.
const SpecVersion = "1.0"

// Media types.
const (
	// DataContentType is the type of an event's data: the record's JSON.
	DataContentType = "application/json"
	// StructuredContentType is the type of a structured-mode message.
	StructuredContentType = "application/cloudevents+json"
)

// TypePrefix starts the type of every event.
const TypePrefix = "com.amazonaws.s3."

// Event is a CloudEvent made from one record.
type Event struct {
	ID      string
	Source  string
	Type    string
	Subject string
	Time    string // RFC 3339, as the record has it; empty if none
	Data    []byte // the record's JSON
}

// FromRecord maps a record's JSON to an Event with the given id.
func FromRecord(id string, record []byte) Event {
	f := gjson.GetManyBytes(record, "eventSource", "awsRegion", "s3.bucket.name", "eventName", "s3.object.key", "eventTime")
	return Event{
		ID:      id,
		Source:  f[0].String() + "." + f[1].String() + "." + f[2].String(),
		Type:    TypePrefix + strings.TrimPrefix(f[3].String(), "s3:"),
		Subject: f[4].String(),
		Time:    f[5].String(),
		Data:    record,
	}
}

// Attributes calls set for each context attribute but datacontenttype, in
// a fixed order, skipping empty optional ones.
func (e *Event) Attributes(set func(name, value string)) {
	set("specversion", SpecVersion)
	set("id", e.ID)
	set("source", e.Source)
	set("type", e.Type)
	if e.Subject != "" {
		set("subject", e.Subject)
	}
	if e.Time != "" {
		set("time", e.Time)
	}
}

// AppendStructured appends the event in the JSON event format, the body of
// a structured-mode message (content type StructuredContentType).
func (e *Event) AppendStructured(dst []byte) []byte {
	dst = append(dst, '{')
	e.Attributes(func(name, value string) {
		dst = appendString(dst, name)
		dst = append(dst, ':')
		dst = appendString(dst, value)
		dst = append(dst, ',')
	})
	dst = append(dst, `"datacontenttype":"`+DataContentType+`","data":`...)
	dst = append(dst, e.Data...)
	return append(dst, '}')
}

// A Binding says how a protocol carries the attributes in binary mode: each
// one as a header named Prefix + attribute name, its value percent-encoded
// where the protocol's headers take only printable ASCII.
type Binding struct {
	// Prefix starts every attribute's header name.
	Prefix string
	// PercentEncode asks for the percent-encoding of the HTTP and NATS
	// bindings (space, '"', '%' and everything outside printable ASCII).
	PercentEncode bool
	// ContentType is the header that carries datacontenttype; empty means
	// the attribute travels as Prefix + "datacontenttype".
	ContentType string
}

// The protocol bindings of the CloudEvents specification. AMQP uses the
// "cloudEvents_" separator the AMQP binding prefers for JMS clients; its
// datacontenttype travels as the message's content-type property, and
// MQTT 5's as its Content Type property (the adapters set those).
var (
	HTTP  = Binding{Prefix: "ce-", PercentEncode: true, ContentType: "Content-Type"}
	Kafka = Binding{Prefix: "ce_", ContentType: "content-type"}
	AMQP  = Binding{Prefix: "cloudEvents_", ContentType: "content-type"}
	NATS  = Binding{Prefix: "ce-", PercentEncode: true}
	MQTT  = Binding{ContentType: "content-type"}
)

// Headers calls set with each header of e's binary-mode message under b.
// The body of that message is e.Data.
func (b Binding) Headers(e *Event, set func(name, value string)) {
	e.Attributes(func(name, value string) {
		if b.PercentEncode {
			value = percentEncode(value)
		}
		set(b.Prefix+name, value)
	})
	if b.ContentType != "" {
		set(b.ContentType, DataContentType)
	} else {
		set(b.Prefix+"datacontenttype", DataContentType)
	}
}

// percentEncode encodes space, '"', '%' and every byte outside printable
// ASCII as %XY, as the HTTP and NATS bindings require.
func percentEncode(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '%' {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == '%' {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// appendString appends s as a JSON string.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}
