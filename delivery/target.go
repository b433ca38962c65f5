package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/wal"
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
	// AppendTime is when the record was appended to the log (zero if the
	// item did not come from a log). Access formats store it when the
	// record has no eventTime.
	AppendTime time.Time
	// Record is the record's JSON, as ingested.
	Record json.RawMessage
	// LogID is the id of the log the item was read from ("" if none): with
	// Seq it names the event (EventID).
	LogID string
}

// EventID returns the event's id, the same on every retry, after a
// restart and in every target: the log's id and the sequence
// ("3f9a0c1d2e4b5a69-42"). Consumers drop duplicates by it. It is "" for
// an item that did not come from a log with an id.
func (it *Item) EventID() string {
	if it.LogID == "" {
		return ""
	}
	return wal.EventID(it.LogID, it.Seq)
}

// Op returns what the item does to its object's state.
func (it *Item) Op() event.Op { return it.EventName.Op() }

// Message returns the body webhook and queue targets send:
// {"EventName":…,"Key":…,"Records":[record]}.
func (it *Item) Message() []byte {
	return it.AppendMessage(make([]byte, 0, len(it.Record)+len(it.Key)+64))
}

// AppendMessage appends the body Message returns to dst, for a client
// that copies what it publishes: one buffer serves every item of a send.
func (it *Item) AppendMessage(dst []byte) []byte {
	return event.AppendMessage(dst, string(it.EventName), it.Key, it.Record)
}

// Target is a destination for events: a broker, a store or an endpoint.
//
// Send delivers items, each key's items in order (items of different keys
// may go out side by side, as the webhook's concurrent POSTs do), and
// returns nil only when the target has acknowledged every one of them. It returns a *BatchError when some items
// were delivered and others not, an error wrapped with Permanent when the
// items can never be delivered, and any other error when the whole send may
// be retried. An error wrapped with Gone (for the whole send or one item)
// pauses the target until an operator resumes it, and one wrapped with
// RetryAfter sets the wait before the retry (errors.go). Send must not
// block forever: it honours ctx. Send is called concurrently on one Target
// only when its Spec asks for it (Policy.InFlight or Policy.Lanes above 1),
// which is for targets whose Send is safe for concurrent use; even then,
// two sends in flight at once never share a key. A Target must connect
// lazily: New never waits for the network, so a target that is down at
// startup never delays the relay.
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
