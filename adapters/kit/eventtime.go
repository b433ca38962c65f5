package kit

import (
	"time"

	"github.com/tidwall/gjson"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/event"
)

// EventTime returns the time an access-format row, list item or document
// stores with it, in UTC: the item's EventTime (the record's eventTime,
// parsed at ingest), else the record's eventTime parsed from its JSON (an
// item built without it), else the time the record was appended to the log
// (AppendTime). It never returns the current time: a retried or replayed
// event keeps the same time, and a backlog drained after an outage is not
// stamped with the time of the drain. It returns the zero time only when
// the item carries none of the three.
func EventTime(it *delivery.Item) time.Time {
	if !it.EventTime.IsZero() {
		return it.EventTime.UTC()
	}
	if v := gjson.GetBytes(it.Record, "eventTime"); v.Type == gjson.String {
		if ts, err := event.ParseTime(v.Str); err == nil {
			return ts.UTC()
		}
	}
	return it.AppendTime.UTC()
}
