package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bucketrelay/bucketrelay/event"
)

// Item is one event record on its way to a target.
type Item struct {
	// Seq is the record's sequence in the log.
	Seq uint64
	// Key is "bucket/object".
	Key string
	// EventName is the record's eventName.
	EventName event.Name
	// EventTime is the record's eventTime (zero if it had none).
	EventTime time.Time
	// Record is the record's JSON, as ingested.
	Record json.RawMessage
}

// Op returns what the item does to its object's state.
func (it *Item) Op() event.Op { return it.EventName.Op() }

// Message returns the body webhook and queue targets send:
// {"EventName":…,"Key":…,"Records":[record]}.
func (it *Item) Message() []byte {
	return event.AppendMessage(make([]byte, 0, len(it.Record)+len(it.Key)+64), string(it.EventName), it.Key, it.Record)
}

// Target is a destination for events: a broker, a store or an endpoint.
//
// Send delivers items in order and returns nil only when the target has
// acknowledged every one of them. It returns a *BatchError when some items
// were delivered and others not, an error wrapped with Permanent when the
// items can never be delivered, and any other error when the whole send may
// be retried. Send must not block forever: it honours ctx. Send is never
// called concurrently on one Target, and a Target must connect lazily:
// New never waits for the network, so a target that is down at startup
// never delays the relay.
//
// Close releases the target's connections. It is called once, after the
// last Send has returned.
type Target interface {
	Send(ctx context.Context, items []Item) error
	Close() error
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as permanent: the items it covers will never be
// delivered, and retrying them is pointless. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether err, or an error it wraps, was marked with
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// ItemError is the failure of one item of a batch.
type ItemError struct {
	// Index is the item's position in the slice given to Send.
	Index int
	// Err is why it failed; wrap it with Permanent if retrying is pointless.
	Err error
}

// BatchError reports a send in which some items failed. Items it does not
// list were delivered.
type BatchError struct {
	Failed []ItemError
}

func (e *BatchError) Error() string {
	if len(e.Failed) == 0 {
		return "delivery: batch failed"
	}
	return fmt.Sprintf("delivery: %d items failed, first: %v", len(e.Failed), e.Failed[0].Err)
}

// FieldError reports a configuration field that is missing or invalid.
// Field is the parameter's name as it appears in the configuration file
// ("endpoint", "streaming.clusterID"); the relay prefixes it with the
// target's path (notify.webhook.1).
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Fieldf returns a *FieldError for field.
func Fieldf(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Redact removes the password from URLs found in s ("amqp://user:secret@host"
// becomes "amqp://user:xxxxx@host") and replaces every non-empty secret
// given. Adapters pass their error texts through it before returning them.
func Redact(s string, secrets ...string) string {
	for _, sec := range secrets {
		if len(sec) >= 3 {
			s = strings.ReplaceAll(s, sec, "xxxxx")
		}
	}
	// scheme://user:pass@ → scheme://user:xxxxx@
	var b strings.Builder
	for {
		i := strings.Index(s, "://")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i+3])
		s = s[i+3:]
		end := strings.IndexAny(s, "/ \"'\n?#")
		if end < 0 {
			end = len(s)
		}
		auth := s[:end]
		if at := strings.LastIndexByte(auth, '@'); at >= 0 {
			if c := strings.IndexByte(auth[:at], ':'); c >= 0 {
				b.WriteString(auth[:c+1])
				b.WriteString("xxxxx")
				b.WriteString(auth[at:])
				s = s[end:]
				continue
			}
		}
		b.WriteString(auth)
		s = s[end:]
	}
}

// Newest returns the indexes of the items that are the last of their key,
// in order. A namespace batch from the engine already holds one item per
// key; a store target calls Newest so that a batch built without
// coalescing still applies only each key's newest state, since one batch
// statement cannot order two writes of the same key.
func Newest(items []Item) []int {
	idx := make(map[string]int, len(items))
	for i := range items {
		idx[items[i].Key] = i
	}
	out := make([]int, 0, len(idx))
	for i := range items {
		if idx[items[i].Key] == i {
			out = append(out, i)
		}
	}
	return out
}
