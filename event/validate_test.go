package event

import (
	"errors"
	"testing"
)

// ValidateTime returns the time Time parses, the zero time for an empty
// eventTime, and Validate's errors.
func TestValidateTime(t *testing.T) {
	r := Record{EventName: ObjectCreatedPut, EventTime: "2026-12-01T14:00:00.123Z"}
	r.S3.Bucket.Name, r.S3.Object.Key = "b", "k"
	got, err := r.ValidateTime()
	if err != nil || !got.Equal(r.Time()) || got.IsZero() {
		t.Fatalf("got %v, %v; want %v, nil", got, err, r.Time())
	}
	r.EventTime = ""
	if got, err := r.ValidateTime(); err != nil || !got.IsZero() {
		t.Fatalf("empty eventTime: got %v, %v; want the zero time, nil", got, err)
	}
	r.EventTime = "yesterday"
	var fe *FieldError
	if _, err := r.ValidateTime(); !errors.As(err, &fe) || fe.Field != "eventTime" {
		t.Fatalf("bad eventTime: got %v, want a *FieldError on eventTime", err)
	}
	if err := r.Validate(); !errors.As(err, &fe) || fe.Field != "eventTime" {
		t.Fatalf("Validate: got %v, want a *FieldError on eventTime", err)
	}
}
