package relay

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bucketrelay/bucketrelay/jslog"
	"github.com/bucketrelay/bucketrelay/rules"
	"github.com/bucketrelay/bucketrelay/wal"
)

// Handler returns the relay's HTTP API:
//
//	POST   /v1/events                      {"Records":[…]} or a webhook body; 200 after fsync
//	PUT    /v1/buckets/{bucket}/notification  S3 NotificationConfiguration XML
//	GET    /v1/buckets/{bucket}/notification  (+ X-Relay-Rules-Source: file|api)
//	DELETE /v1/buckets/{bucket}/notification
//	GET    /v1/targets                     every target's live status and the retained range
//	POST   /v1/targets/{arn}/pause|resume
//	POST   /v1/targets                     add a target; PUT|DELETE /v1/targets/{arn} (runtime_targets_api.go)
//	GET    /v1/exports/{name}              events a forced removal exported
//	GET    /v1/targets/{arn}/quarantine[/{seq}]
//	POST   /v1/targets/{arn}/quarantine/retry|drop?seq=A-B|all=1
//	POST   /v1/targets/{arn}/rewind        {"toTime":…} or {"toSeq":…}: deliver again (retention.go)
//	GET    /v1/buckets/{bucket}/events     live events, NDJSON or SSE (watch.go)
//	GET    /                               the status page (statuspage.go)
//	GET    /healthz                        liveness: "ok" while the process serves
//	GET    /readyz                         readiness: 200 "ready", or 503 and why
//	GET    /metrics                        Prometheus text format
//
// When the settings have an AccessToken every request must carry it as a
// bearer token, except /healthz and /readyz, which orchestrators probe
// without credentials and which say nothing secret, and the status page,
// which also takes its own session cookie (see pageAllowed). Error bodies are
// {"error":"…"}; they never carry a file path or a secret.
func (r *Relay) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/events", r.postEvents)
	mux.HandleFunc("PUT /v1/buckets/{bucket}/notification", r.putNotification)
	mux.HandleFunc("GET /v1/buckets/{bucket}/notification", r.getNotification)
	mux.HandleFunc("DELETE /v1/buckets/{bucket}/notification", r.deleteNotification)
	r.registerTargets(mux)    // targets_api.go
	r.registerQuarantine(mux) // quarantine_api.go
	r.registerRewind(mux)     // retention.go
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /readyz", r.readyz)
	mux.HandleFunc("GET /v1/cluster", r.getCluster)
	mux.Handle("GET /metrics", promhttp.HandlerFor(r.metrics.reg, promhttp.HandlerOpts{}))
	r.mountLive(mux) // GET /v1/buckets/{bucket}/events, the status page (watch.go, statuspage.go)
	token := r.cfg.Relay.AccessToken
	if token == "" {
		return mux
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodGet && (req.URL.Path == "/healthz" || req.URL.Path == "/readyz") {
			mux.ServeHTTP(w, req)
			return
		}
		if subtle.ConstantTimeCompare([]byte(req.Header.Get("Authorization")), want) != 1 && !r.pageAllowed(req) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="relay"`)
			httpError(w, http.StatusUnauthorized, "missing or wrong access token")
			return
		}
		mux.ServeHTTP(w, req)
	})
}

func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, "ok\n")
}

// readyz answers 200 "ready" while the relay accepts events, 503 with the
// reason once its log failed.
func (r *Relay) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	notReady, notes := r.readiness()
	if notReady != "" {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "not ready: "+notReady+"\n")
	} else {
		io.WriteString(w, "ready\n")
	}
	for _, n := range notes {
		io.WriteString(w, n+"\n")
	}
}

// readiness returns why the relay does not accept events ("" when it
// does) and notes an operator should see even while it is ready. Neither
// names a file or a secret: the log lines do.
func (r *Relay) readiness() (notReady string, notes []string) {
	if r.Err() != nil {
		notReady = "the write-ahead log stopped after a storage error (fail-stop); the relay is exiting, see its log"
	}
	notes = append(notes, r.damageNotes()...)
	return notReady, notes
}

// damageNotes reports damaged frames of the log on /readyz. The relay
// still serves with a damaged log (what damage cost is in the targets'
// quarantines), so damage is a note, not a reason to be unready.
func (r *Relay) damageNotes() []string {
	var notes []string
	dl, ok := r.log.(damageLog)
	if !ok {
		return nil
	}
	for _, d := range dl.DamageMet() {
		where := fmt.Sprintf("sequence %d", d.First)
		if d.Last != d.First {
			where = fmt.Sprintf("sequences %d-%d", d.First, d.Last)
		}
		notes = append(notes, fmt.Sprintf("damaged log frame, %s: %s (quarantined for the targets that still needed it)", where, d.Reason))
	}
	return notes
}

// errorBody is the JSON of an error answer. Record and Field locate a
// refused record (records numbered from 0).
type errorBody struct {
	Error  string `json:"error"`
	Record *int   `json:"record,omitempty"`
	Field  string `json:"field,omitempty"`
}

func httpError(w http.ResponseWriter, code int, msg string) {
	writeError(w, code, errorBody{Error: msg})
}

func writeError(w http.ResponseWriter, code int, body errorBody) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(body)
}

func (r *Relay) postEvents(w http.ResponseWriter, req *http.Request) {
	if r.Err() != nil {
		// Fail-stop: nothing is read, nothing is acknowledged.
		w.Header().Set("Retry-After", "30")
		httpError(w, http.StatusServiceUnavailable, "the relay's log stopped after a storage error; the relay is exiting")
		return
	}
	limit := r.cfg.Relay.MaxRequestBytes
	if limit <= 0 {
		limit = DefaultMaxRequestBytes
	}
	// The body is read into a pooled batch's buffer: the records are
	// slices of it until the log has them.
	b := r.newBatch(0)
	defer b.release()
	body, err := readBody(b.buf, http.MaxBytesReader(w, req.Body, limit), req.ContentLength)
	if body != nil {
		b.buf = body
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body is larger than %d bytes (relay.maxRequestBytes)", limit))
		return
	}
	if err != nil {
		httpError(w, http.StatusBadRequest, "reading the body failed")
		return
	}
	wait := DefaultFullWait
	if r.cfg.Relay.FullWait != "" { // parsing "" fails, and its error allocates
		wait = duration(r.cfg.Relay.FullWait, DefaultFullWait)
	}
	ctx, cancel := context.WithTimeout(req.Context(), wait)
	defer cancel()
	n, err := b.publishBody(ctx, body)
	var re *RecordError
	var se *scanError
	switch {
	case errors.As(err, &re):
		i := re.Index
		writeError(w, http.StatusBadRequest, errorBody{Error: re.Text(), Record: &i, Field: re.Field})
		return
	case errors.As(err, &se):
		httpError(w, http.StatusBadRequest, se.msg)
		return
	case errors.Is(err, errIngestBusy):
		w.Header().Set("Retry-After", "1")
		httpError(w, http.StatusServiceUnavailable, "the relay is busy: every ingest slot stayed taken for fullWait (relay.ingestConcurrency); nothing was logged; retry later")
		return
	case errors.Is(err, jslog.ErrUnavailable), r.cluster != nil && errors.Is(err, context.DeadlineExceeded):
		// No quorum, an election, or no connection: not acknowledged by
		// the stream, so never 200.
		w.Header().Set("Retry-After", "5")
		httpError(w, http.StatusServiceUnavailable, "the cluster's stream did not acknowledge the events in time (no quorum, a leader election or no connection); retry later")
		return
	case r.cluster != nil && errors.Is(err, wal.ErrFull):
		w.Header().Set("Retry-After", "5")
		httpError(w, http.StatusServiceUnavailable, "the cluster's stream is full (relay.log.maxBytes, relay.log.maxMessages); retry later")
		return
	case errors.Is(err, wal.ErrFull):
		w.Header().Set("Retry-After", "5")
		httpError(w, http.StatusServiceUnavailable, "the relay's log is full (relay.queueLimit, relay.queueLimitBytes); retry later")
		return
	case errors.Is(err, wal.ErrNoSpace):
		r.lg.Warn("refusing events: the log's disk is full", "err", err)
		w.Header().Set("Retry-After", "10")
		httpError(w, http.StatusServiceUnavailable, "no space left on the relay's disk; nothing was logged; retry later")
		return
	case errors.Is(err, wal.ErrFailed), errors.Is(err, wal.ErrClosed), errors.Is(err, jslog.ErrClosed):
		w.Header().Set("Retry-After", "30")
		httpError(w, http.StatusServiceUnavailable, "the relay's log stopped; nothing was logged; the relay is exiting")
		return
	case errors.Is(err, wal.ErrTooLarge):
		httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the batch can never fit in the log: it exceeds relay.queueLimit (%d events) or relay.queueLimitBytes (%d bytes); send fewer records per request",
			orDefault(r.cfg.Relay.QueueLimit, wal.DefaultMaxEvents), orDefault(r.cfg.Relay.QueueLimitBytes, wal.DefaultMaxBytes)))
		return
	case err != nil:
		// The error may name files; the log gets it, the client does not.
		r.lg.Error("publishing", "err", err)
		httpError(w, http.StatusInternalServerError, "internal error; nothing was logged; see the relay's log")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	var out [32]byte
	w.Write(append(strconv.AppendInt(append(out[:0], `{"accepted":`...), int64(n), 10), "}\n"...))
}

// readBody reads a body (rd enforces the size limit) into dst's storage
// when it is large enough. The buffer starts at the Content-Length, or
// 1 MiB for a larger one, and grows toward the Content-Length as bytes
// arrive: a client that announces 16 MiB and sends nothing does not cost
// 16 MiB, and a body that arrives is copied a few times at most. A body
// without a length (chunked) grows by doubling.
func readBody(dst []byte, rd io.Reader, length int64) ([]byte, error) {
	const eagerBody = 1 << 20
	want := min(length, eagerBody) + 1 // +1: room to see EOF
	if length < 0 {
		want = 4 << 10
	}
	buf := dst[:0]
	if int64(cap(buf)) < want {
		buf = make([]byte, 0, want)
	}
	for {
		if len(buf) == cap(buf) {
			next := 2 * int64(cap(buf))
			if length >= 0 {
				next = min(next, length+1)
				if next <= int64(cap(buf)) {
					next = 2 * int64(cap(buf)) // more than announced; rd's limit stops it
				}
			}
			nb := make([]byte, len(buf), next)
			copy(nb, buf)
			buf = nb
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func (r *Relay) putNotification(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, 1<<20))
	if err != nil {
		httpError(w, http.StatusRequestEntityTooLarge, "notification configuration is larger than 1 MiB")
		return
	}
	rs, err := rules.ParseXML(body)
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := r.SetBucketRules(req.PathValue("bucket"), rs); err != nil {
		if errors.Is(err, ErrUnknownARN) || strings.HasPrefix(err.Error(), "rules:") {
			httpError(w, http.StatusBadRequest, strings.TrimPrefix(err.Error(), "relay: "))
			return
		}
		r.lg.Error("saving bucket rules", "err", err)
		httpError(w, http.StatusInternalServerError, "saving the rules failed; see the relay's log")
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (r *Relay) getNotification(w http.ResponseWriter, req *http.Request) {
	// Where the rules come from, for `relay events list` (rules_source.go).
	src, overridden := r.RulesSource(req.PathValue("bucket"))
	w.Header().Set(RulesSourceHeader, src)
	if overridden > 0 {
		w.Header().Set(RulesOverriddenHeader, strconv.Itoa(overridden))
	}
	w.Header().Set("Content-Type", "application/xml")
	w.Write(rules.MarshalXML(r.BucketRules(req.PathValue("bucket"))))
}

func (r *Relay) deleteNotification(w http.ResponseWriter, req *http.Request) {
	if err := r.SetBucketRules(req.PathValue("bucket"), nil); err != nil {
		r.lg.Error("saving bucket rules", "err", err)
		httpError(w, http.StatusInternalServerError, "saving the rules failed; see the relay's log")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
