package relay

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/tidwall/gjson"

	"github.com/bucketrelay/bucketrelay/rules"
	"github.com/bucketrelay/bucketrelay/wal"
)

// Handler returns the relay's HTTP API:
//
//	POST   /v1/events                      {"Records":[…]} or a webhook body; 200 after fsync
//	PUT    /v1/buckets/{bucket}/notification  S3 NotificationConfiguration XML
//	GET    /v1/buckets/{bucket}/notification
//	DELETE /v1/buckets/{bucket}/notification
//	GET    /v1/targets                     the enabled targets' ARNs
//	GET    /v1/buckets/{bucket}/events     live events, NDJSON or SSE (watch.go)
//	GET    /                               the status page (statuspage.go)
//	GET    /healthz
//	GET    /metrics                        Prometheus text format
//
// When the settings have an AccessToken every request must carry it as a
// bearer token, or the status page's session cookie (see pageAllowed).
func (r *Relay) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/events", r.postEvents)
	mux.HandleFunc("PUT /v1/buckets/{bucket}/notification", r.putNotification)
	mux.HandleFunc("GET /v1/buckets/{bucket}/notification", r.getNotification)
	mux.HandleFunc("DELETE /v1/buckets/{bucket}/notification", r.deleteNotification)
	mux.HandleFunc("GET /v1/targets", r.getTargets)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok\n")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(r.metrics.reg, promhttp.HandlerOpts{}))
	r.mountLive(mux) // GET /v1/buckets/{bucket}/events, the status page (watch.go, statuspage.go)
	token := r.cfg.Relay.AccessToken
	if token == "" {
		return mux
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if subtle.ConstantTimeCompare([]byte(req.Header.Get("Authorization")), want) != 1 && !r.pageAllowed(req) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="relay"`)
			httpError(w, http.StatusUnauthorized, "missing or wrong access token")
			return
		}
		mux.ServeHTTP(w, req)
	})
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// eventsBody is what POST /v1/events takes: {"Records":[…]}, optionally
// with the EventName and Key of a webhook body.
type eventsBody struct {
	EventName string            `json:"EventName"`
	EventType string            `json:"EventType"`
	Key       string            `json:"Key"`
	Records   []json.RawMessage `json:"Records"`
}

func (r *Relay) postEvents(w http.ResponseWriter, req *http.Request) {
	limit := r.cfg.Relay.MaxRequestBytes
	if limit <= 0 {
		limit = DefaultMaxRequestBytes
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, limit))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body is larger than %d bytes (relay.maxRequestBytes)", limit))
		return
	}
	if err != nil {
		httpError(w, http.StatusBadRequest, "reading body: "+err.Error())
		return
	}
	// One validating pass over the body, then the records are sliced out of
	// it without copies; encoding/json only explains a malformed body.
	if !gjson.ValidBytes(body) {
		var b eventsBody
		msg := "not a JSON object"
		if err := json.Unmarshal(body, &b); err != nil {
			msg = err.Error()
		}
		httpError(w, http.StatusBadRequest, "malformed JSON: "+msg)
		return
	}
	records := gjson.GetBytes(body, "Records")
	if !records.IsArray() || !gjson.ParseBytes(body).IsObject() {
		httpError(w, http.StatusBadRequest, `body has no "Records" array`)
		return
	}
	var raws []json.RawMessage
	records.ForEach(func(_, v gjson.Result) bool {
		raws = append(raws, body[v.Index:v.Index+len(v.Raw):v.Index+len(v.Raw)])
		return true
	})
	ctx, cancel := context.WithTimeout(req.Context(), duration(r.cfg.Relay.FullWait, DefaultFullWait))
	defer cancel()
	n, err := r.publishJSON(ctx, raws, true)
	switch {
	case errors.Is(err, ErrInvalid):
		httpError(w, http.StatusBadRequest, strings.Replace(err.Error(), "relay: invalid record", "invalid record", 1))
		return
	case errors.Is(err, wal.ErrFull):
		w.Header().Set("Retry-After", "5")
		httpError(w, http.StatusServiceUnavailable, "the relay's log is full; retry later")
		return
	case errors.Is(err, wal.ErrTooLarge):
		httpError(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	case err != nil:
		r.lg.Error("publishing", "err", err)
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, "{\"accepted\":%d}\n", n)
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
		code := http.StatusInternalServerError
		if errors.Is(err, ErrUnknownARN) || strings.HasPrefix(err.Error(), "rules:") {
			code = http.StatusBadRequest
		}
		httpError(w, code, err.Error())
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (r *Relay) getNotification(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Content-Type", "application/xml")
	w.Write(rules.MarshalXML(r.BucketRules(req.PathValue("bucket"))))
}

func (r *Relay) deleteNotification(w http.ResponseWriter, req *http.Request) {
	if err := r.SetBucketRules(req.PathValue("bucket"), nil); err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (r *Relay) getTargets(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string][]string{"targets": r.ARNs()})
}
