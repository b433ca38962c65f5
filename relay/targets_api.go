package relay

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bucketrelay/bucketrelay/delivery"
)

// registerTargets adds the target status and pause routes:
//
//	GET  /v1/targets               every target's live status (TargetStatus)
//	POST /v1/targets/{arn}/pause   hold the target's delivery (kept across restarts)
//	POST /v1/targets/{arn}/resume  deliver what was held
func (r *Relay) registerTargets(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/targets", r.getTargetStatus)
	mux.HandleFunc("POST /v1/targets/{arn}/pause", r.postPause(true))
	mux.HandleFunc("POST /v1/targets/{arn}/resume", r.postPause(false))
	r.registerRuntimeTargets(mux) // add, update, remove: runtime_targets_api.go
}

func (r *Relay) getTargetStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"targets": r.TargetStatus(), "retained": r.Retained()})
}

func (r *Relay) postPause(paused bool) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		arn := req.PathValue("arn")
		err := r.setPaused(arn, paused)
		if err != nil {
			operateError(w, err)
			return
		}
		state := "resumed"
		if paused {
			state = delivery.StatePaused
		}
		writeJSON(w, http.StatusOK, map[string]string{"target": arn, "state": state})
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// operateError answers an operating call's error: 404 for an unknown
// target or an empty selection, 400 for a bad range, 500 otherwise. The
// message names the problem without the package prefix.
func operateError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrNoTarget), errors.Is(err, ErrNothingSelected):
		code = http.StatusNotFound
	case errors.Is(err, ErrBadRange):
		code = http.StatusBadRequest
	case errors.Is(err, ErrNotOnCluster):
		code = http.StatusNotImplemented
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // "A <= B" reads better than "A \u003c= B"
	enc.Encode(map[string]string{"error": strings.TrimPrefix(err.Error(), "relay: ")})
}

// MetricsHandler serves GET /metrics (the Prometheus text format) alone
// and without the access token, for a scrape address of its own: the
// figures it gives (counts, lags, states) carry no event data.
func (r *Relay) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(r.metrics.reg, promhttp.HandlerOpts{}))
	return mux
}
