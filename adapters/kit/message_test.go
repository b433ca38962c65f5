package kit_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/event/cloudevent"
)

func TestMessageFormatValidation(t *testing.T) {
	for _, c := range []struct {
		f     kit.Format
		m     kit.CloudEventsMode
		bin   bool
		field string
	}{
		{"", "", true, ""},
		{kit.FormatCloudEvents, "", false, ""},
		{kit.FormatCloudEvents, kit.CloudEventsBinary, true, ""},
		{kit.FormatCloudEvents, kit.CloudEventsStructured, false, ""},
		{kit.FormatCloudEvents, kit.CloudEventsBinary, false, "cloudeventsMode"},
		{kit.FormatCloudEvents, "batched", true, "cloudeventsMode"},
		{kit.FormatAccess, "", true, "format"},
		{"xml", "", true, "format"},
	} {
		err := c.f.ValidateMessage()
		if err == nil {
			err = c.m.Validate(c.bin)
		}
		var fe *kit.FieldError
		switch {
		case c.field == "" && err != nil:
			t.Errorf("format %q mode %q (binary ok %v): got %v, want nil", c.f, c.m, c.bin, err)
		case c.field != "" && (!errors.As(err, &fe) || fe.Field != c.field):
			t.Errorf("format %q mode %q (binary ok %v): got %v, want an error on %s", c.f, c.m, c.bin, err, c.field)
		}
	}
	// The stores' format stays namespace or access.
	if err := kit.FormatCloudEvents.Validate(); err == nil {
		t.Error("a store accepted format cloudevents")
	}
}

func TestEncode(t *testing.T) {
	it := delivery.Item{Seq: 42, Key: "b/k", EventName: "s3:ObjectCreated:Put", LogID: "00000000deadbeef",
		Record: []byte(`{"eventSource":"minio:s3","awsRegion":"","eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}`)}
	body, ct := kit.Format("").Encode(&it, &cloudevent.HTTP, func(k, v string) { t.Errorf("plain format set header %s", k) })
	if ct != "application/json" || string(body) != string(it.Message()) {
		t.Errorf("plain: got %s %s, want the guide's message", ct, body)
	}
	body, ct = kit.FormatCloudEvents.Encode(&it, nil, nil)
	var ev map[string]any
	if err := json.Unmarshal(body, &ev); err != nil || ct != cloudevent.StructuredContentType || ev["id"] != "00000000deadbeef-42" {
		t.Errorf("structured: got %s %s (%v), want a CloudEvent with id 00000000deadbeef-42", ct, body, err)
	}
	h := map[string]string{}
	body, ct = kit.FormatCloudEvents.Encode(&it, &cloudevent.Kafka, func(k, v string) { h[k] = v })
	if string(body) != string(it.Record) || ct != "application/json" || h["ce_id"] != "00000000deadbeef-42" || h["ce_type"] != "com.amazonaws.s3.ObjectCreated:Put" {
		t.Errorf("binary: got body %s, headers %v", body, h)
	}
	it.LogID = ""
	if id := kit.EventID(&it); id != "42" {
		t.Errorf("EventID without a log id: got %q, want the sequence 42", id)
	}
}
