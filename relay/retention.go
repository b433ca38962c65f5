package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/wal"
)

// RetentionConfig is the file's "relay.retention": how much delivered
// history the log keeps, for rewinds and for targets that start from the
// oldest retained event. The zero value keeps nothing: delivered events
// are reclaimed at once.
type RetentionConfig struct {
	// Age keeps delivered events while they are younger than it (a Go
	// duration such as "24h"); empty means no age bound.
	Age string `json:"age,omitempty"`
	// Bytes keeps the newest delivered events up to that many event bytes
	// in all; 0 means no byte bound.
	Bytes int64 `json:"bytes,omitempty"`
}

// Log returns the wal's retention for c.
func (c *RetentionConfig) Log() wal.Retention {
	if c == nil {
		return wal.Retention{}
	}
	return wal.Retention{Age: duration(c.Age, 0), Bytes: c.Bytes}
}

func (c *RetentionConfig) validate() error {
	if c == nil {
		return nil
	}
	if c.Age != "" {
		if v, err := time.ParseDuration(c.Age); err != nil || v <= 0 {
			return &ConfigError{Path: "relay.retention.age", Msg: fmt.Sprintf("%q is not a positive duration such as \"24h\"", c.Age)}
		}
	}
	if c.Bytes < 0 {
		return &ConfigError{Path: "relay.retention.bytes", Msg: "must not be negative"}
	}
	return nil
}

// Values of a notify entry's "startFrom": where a target that has no
// cursor in the log yet starts.
const (
	// StartFromNew (the default) delivers only events logged from now on.
	StartFromNew = "new"
	// StartFromOldest delivers the retained history first, from the
	// oldest retained event on.
	StartFromOldest = "oldest"
)

// Errors of Rewind.
var (
	// ErrBadRewind is returned for a rewind request that does not give
	// exactly one of a time and a sequence.
	ErrBadRewind = errors.New("relay: bad rewind")
	// ErrNotRetained is wrapped for a rewind point older than the
	// retained history, or past the target's cursor.
	ErrNotRetained = errors.New("relay: cannot rewind there")
)

// RewindResult is what a rewind did.
type RewindResult struct {
	Target string `json:"target"`
	// FromSeq is the target's cursor before the rewind, ToSeq after it.
	FromSeq uint64 `json:"fromSeq"`
	ToSeq   uint64 `json:"toSeq"`
	// ToTime is the time asked for, when the rewind was by time.
	ToTime *time.Time `json:"toTime,omitempty"`
	// FromStart is set for a rewind to the oldest retained event: the
	// retained records the target's bucket rules route to are routed to it.
	FromStart bool `json:"fromStart,omitempty"`
	// Redeliver counts the events routed to the target between ToSeq and
	// FromSeq (or, FromStart, from the oldest retained on): those it
	// receives again.
	Redeliver int64 `json:"redeliver"`
}

// Retained is the log's retained range as the API shows it.
type Retained struct {
	// FirstSeq is the oldest sequence a target can be rewound to, Oldest
	// when it was logged (absent when nothing is held).
	FirstSeq uint64     `json:"firstSeq"`
	LastSeq  uint64     `json:"lastSeq"`
	Oldest   *time.Time `json:"oldest,omitempty"`
	// Events and Bytes are what retention keeps beyond pending events.
	Events int64 `json:"events"`
	Bytes  int64 `json:"bytes"`
	// Age and MaxBytes are relay.retention ("" and 0 when unset).
	Age      string `json:"age,omitempty"`
	MaxBytes int64  `json:"maxBytes,omitempty"`
}

// Retained returns the log's retained range.
func (r *Relay) Retained() Retained {
	var s wal.RetainedStats
	if l, ok := r.log.(*wal.Log); ok { // a cluster log keeps none
		s = l.Retained()
	}
	out := Retained{FirstSeq: s.First, LastSeq: s.Last, Events: s.Events, Bytes: s.Bytes}
	if !s.Oldest.IsZero() {
		out.Oldest = &s.Oldest
	}
	if c := r.cfg.Relay.Retention; c != nil {
		out.Age, out.MaxBytes = c.Age, c.Bytes
	}
	return out
}

// Rewind moves arn's cursor back to toSeq, or (toSeq 0) to the first event
// logged at or after toTime, so that the events routed to it from there on
// are delivered again (at-least-once, on purpose). Exactly one of toSeq
// and toTime must be set. The target's delivery is stopped for the
// rewind and restarted from the new cursor.
//
// It fails with ErrNoTarget for an ARN that is not an enabled target,
// ErrBadRewind for a bad request, and ErrNotRetained for a point older
// than the retained history (the error names the oldest available event)
// or past the target's cursor.
func (r *Relay) Rewind(ctx context.Context, arn string, toSeq uint64, toTime time.Time) (RewindResult, error) {
	res := RewindResult{Target: arn}
	if !r.isEnabled(arn) {
		return res, r.noTarget(arn)
	}
	if (toSeq == 0) == toTime.IsZero() {
		return res, fmt.Errorf("%w: give exactly one of toTime and toSeq", ErrBadRewind)
	}
	l, err := r.walLog("rewinding a target")
	if err != nil {
		return res, err
	}
	err = r.eng.Restart(ctx, arn, func() error {
		to := toSeq
		if to == 0 {
			s, err := l.SeqAt(toTime)
			if err != nil {
				return err
			}
			to = s
			t := toTime.UTC()
			res.ToTime = &t
		}
		res.FromSeq, _ = r.log.Cursor(arn)
		res.ToSeq = to
		n, err := l.Rewind(arn, to)
		res.Redeliver = n
		return err
	})
	if errors.Is(err, wal.ErrNotRetained) || errors.Is(err, wal.ErrAhead) {
		return res, fmt.Errorf("%w: %s", ErrNotRetained, strings.TrimPrefix(err.Error(), "wal: "))
	}
	if err != nil {
		return res, fmt.Errorf("relay: rewind %s: %w", arn, err)
	}
	r.lg.Info("target rewound", "target", arn, "fromSeq", res.FromSeq, "toSeq", res.ToSeq, "redeliver", res.Redeliver)
	return res, nil
}

// startFromOldest routes to arn, an enabled target, the retained events
// its rules match and moves its cursor back to the oldest retained event,
// so that a target added after them receives the retained history and then
// what comes. It returns how many events it will receive from the
// history. Open calls it for a target whose entry says "startFrom":
// "oldest" and that has no cursor yet; a target added at runtime with
// --from-start calls it right after it is added.
func (r *Relay) startFromOldest(ctx context.Context, arn string) (int, error) {
	if !r.isEnabled(arn) {
		return 0, r.noTarget(arn)
	}
	l, err := r.walLog("starting a target from the oldest retained event")
	if err != nil {
		return 0, err
	}
	var n int
	err = r.eng.Restart(ctx, arn, func() error {
		var err error
		n, err = l.Backfill(arn, 0, func(rec wal.Record) bool {
			bucket, key, _ := strings.Cut(rec.Key, "/")
			for _, a := range r.rules.MatchRecord(nil, bucket, key, event.Name(rec.Name), rec.Data) {
				if a == arn {
					return true
				}
			}
			return false
		})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("relay: %s: starting from the oldest retained event: %w", arn, err)
	}
	r.lg.Info("target starts from the oldest retained event", "target", arn, "events", n)
	return n, nil
}

// registerRewind adds the rewind route:
//
//	POST /v1/targets/{arn}/rewind  {"toTime": RFC 3339}, {"toSeq": N} or {"fromStart": true}: deliver again from there
func (r *Relay) registerRewind(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/targets/{arn}/rewind", r.postRewind)
}

// rewindRequest is the body of POST /v1/targets/{arn}/rewind.
type rewindRequest struct {
	ToTime    *string `json:"toTime"`
	ToSeq     *uint64 `json:"toSeq"`
	FromStart bool    `json:"fromStart"`
}

func (r *Relay) postRewind(w http.ResponseWriter, req *http.Request) {
	arn := req.PathValue("arn")
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, 64<<10))
	if err != nil {
		httpError(w, http.StatusBadRequest, "reading the body: "+err.Error())
		return
	}
	var rr rewindRequest
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rr); err != nil {
		httpError(w, http.StatusBadRequest, `the body must be {"toTime": "2026-12-01T10:00:00Z"} or {"toSeq": 42}: `+err.Error())
		return
	}
	var toSeq uint64
	var toTime time.Time
	switch {
	case rr.FromStart && (rr.ToTime != nil || rr.ToSeq != nil):
		httpError(w, http.StatusBadRequest, "give one of fromStart, toTime and toSeq")
		return
	case rr.FromStart:
		// The retained records the target's rules route to now, routed to
		// it again: a target added later, then given its rules, catches up.
		n, err := r.startFromOldest(req.Context(), arn)
		if err != nil {
			operateError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, RewindResult{Target: arn, FromStart: true, Redeliver: int64(n)})
		return
	case rr.ToTime != nil && rr.ToSeq != nil:
		httpError(w, http.StatusBadRequest, "give either toTime or toSeq, not both")
		return
	case rr.ToTime == nil && rr.ToSeq == nil:
		httpError(w, http.StatusBadRequest, "give toTime (RFC 3339) or toSeq (a sequence)")
		return
	case rr.ToSeq != nil:
		if *rr.ToSeq == 0 {
			httpError(w, http.StatusBadRequest, "toSeq: sequences start at 1")
			return
		}
		toSeq = *rr.ToSeq
	default:
		t, err := time.Parse(time.RFC3339Nano, *rr.ToTime)
		if err != nil {
			httpError(w, http.StatusBadRequest, fmt.Sprintf("toTime: %q is not an RFC 3339 time such as 2026-12-01T10:00:00Z", *rr.ToTime))
			return
		}
		toTime = t
	}
	res, err := r.Rewind(req.Context(), arn, toSeq, toTime)
	switch {
	case errors.Is(err, ErrNotRetained):
		httpError(w, http.StatusConflict, strings.TrimPrefix(err.Error(), "relay: "))
	case errors.Is(err, ErrBadRewind):
		httpError(w, http.StatusBadRequest, strings.TrimPrefix(err.Error(), "relay: "))
	case err != nil:
		operateError(w, err)
	default:
		writeJSON(w, http.StatusOK, res)
	}
}

// retainedCollector exports the retained range.
type retainedCollector struct {
	r                            *Relay
	events, bytes, first, oldest *prometheus.Desc
}

func newRetainedCollector(r *Relay) *retainedCollector {
	return &retainedCollector{
		r:      r,
		events: prometheus.NewDesc("relay_wal_retained_events", "Delivered events the log keeps for rewinds (relay.retention).", nil, nil),
		bytes:  prometheus.NewDesc("relay_wal_retained_bytes", "Event bytes of the delivered events the log keeps (relay.retention).", nil, nil),
		first:  prometheus.NewDesc("relay_wal_retained_first_seq", "The oldest sequence a target can be rewound to.", nil, nil),
		oldest: prometheus.NewDesc("relay_wal_retained_oldest_timestamp_seconds", "When the oldest event a target can be rewound to was logged (0 when none).", nil, nil),
	}
}

func (c *retainedCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.events
	ch <- c.bytes
	ch <- c.first
	ch <- c.oldest
}

func (c *retainedCollector) Collect(ch chan<- prometheus.Metric) {
	l, ok := c.r.log.(*wal.Log)
	if !ok {
		return // a cluster log keeps no history
	}
	s := l.Retained()
	ch <- prometheus.MustNewConstMetric(c.events, prometheus.GaugeValue, float64(s.Events))
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(s.Bytes))
	ch <- prometheus.MustNewConstMetric(c.first, prometheus.GaugeValue, float64(s.First))
	var oldest float64
	if !s.Oldest.IsZero() {
		oldest = float64(s.Oldest.UnixNano()) / 1e9
	}
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, oldest)
}
