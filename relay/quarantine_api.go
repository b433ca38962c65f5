package relay

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/bucketrelay/bucketrelay/wal"
)

// registerQuarantine adds the quarantine routes:
//
//	GET  /v1/targets/{arn}/quarantine              entries, without their records (?records=1: with)
//	GET  /v1/targets/{arn}/quarantine/{seq}        one entry with its record
//	POST /v1/targets/{arn}/quarantine/retry?seq=A-B|all=1  re-drive them
//	POST /v1/targets/{arn}/quarantine/drop?seq=A-B|all=1   remove them; answers them as JSON lines
func (r *Relay) registerQuarantine(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/targets/{arn}/quarantine", r.getQuarantine)
	mux.HandleFunc("GET /v1/targets/{arn}/quarantine/{seq}", r.getQuarantineEntry)
	mux.HandleFunc("POST /v1/targets/{arn}/quarantine/retry", r.postQuarantineRetry)
	mux.HandleFunc("POST /v1/targets/{arn}/quarantine/drop", r.postQuarantineDrop)
}

// QuarantinedEvent is a quarantine entry as the API shows it. Record is
// set only where a single entry is shown or entries are dropped.
type QuarantinedEvent struct {
	Seq          uint64          `json:"seq"`
	Key          string          `json:"key"`
	EventName    string          `json:"eventName"`
	Reason       string          `json:"reason"`
	Attempts     int             `json:"attempts"`
	FirstFailure time.Time       `json:"firstFailure"`
	LastFailure  time.Time       `json:"lastFailure"`
	Target       string          `json:"target,omitempty"`
	Record       json.RawMessage `json:"record,omitempty"`
}

func quarantinedEvent(q *wal.QuarantineItem, withRecord bool) QuarantinedEvent {
	e := QuarantinedEvent{
		Seq: q.Seq, Key: q.Key, EventName: q.Name, Reason: q.Error, Attempts: q.Attempts,
		FirstFailure: q.FirstFailure.UTC(), LastFailure: q.LastFailure().UTC(),
	}
	if withRecord {
		e.Target, e.Record = q.Target, q.Data
	}
	return e
}

func (r *Relay) getQuarantine(w http.ResponseWriter, req *http.Request) {
	arn := req.PathValue("arn")
	qs, err := r.Quarantine(arn)
	if err != nil {
		operateError(w, err)
		return
	}
	withRecords := req.URL.Query().Get("records") == "1"
	out := make([]QuarantinedEvent, len(qs))
	for i := range qs {
		out[i] = quarantinedEvent(&qs[i], withRecords)
	}
	writeJSON(w, http.StatusOK, map[string]any{"target": arn, "entries": out})
}

func (r *Relay) getQuarantineEntry(w http.ResponseWriter, req *http.Request) {
	seq, err := strconv.ParseUint(req.PathValue("seq"), 10, 64)
	if err != nil {
		operateError(w, fmt.Errorf("%w %q: want a sequence number", ErrBadRange, req.PathValue("seq")))
		return
	}
	q, err := r.QuarantineEntry(req.PathValue("arn"), seq)
	if err != nil {
		operateError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, quarantinedEvent(&q, true))
}

// selection reads ?seq=A-B or ?all=1; exactly one must be given.
func selection(req *http.Request) (SeqRange, error) {
	q := req.URL.Query()
	seq, all := q.Get("seq"), q.Get("all")
	switch {
	case seq != "" && all != "":
		return SeqRange{}, fmt.Errorf("%w: give seq=A-B or all=1, not both", ErrBadRange)
	case all != "":
		if v, err := strconv.ParseBool(all); err != nil || !v {
			return SeqRange{}, fmt.Errorf("%w: all=%q: want all=1", ErrBadRange, all)
		}
		return SeqRange{All: true}, nil
	case seq != "":
		return ParseSeqRange(seq)
	}
	return SeqRange{}, fmt.Errorf("%w: nothing selected: give seq=A-B or all=1", ErrBadRange)
}

func (r *Relay) postQuarantineRetry(w http.ResponseWriter, req *http.Request) {
	sel, err := selection(req)
	if err != nil {
		operateError(w, err)
		return
	}
	arn := req.PathValue("arn")
	qs, err := r.RetryQuarantine(arn, sel)
	if err != nil {
		operateError(w, err)
		return
	}
	seqs := make([]uint64, len(qs))
	for i, q := range qs {
		seqs[i] = q.Seq
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"target": arn, "redriving": len(qs), "seqs": seqs})
}

func (r *Relay) postQuarantineDrop(w http.ResponseWriter, req *http.Request) {
	sel, err := selection(req)
	if err != nil {
		operateError(w, err)
		return
	}
	qs, err := r.DropQuarantine(req.PathValue("arn"), sel)
	if err != nil {
		operateError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	for i := range qs {
		enc.Encode(quarantinedEvent(&qs[i], true))
	}
}
