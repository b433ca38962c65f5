package relay

import (
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// registerRuntimeTargets adds the routes that change targets at runtime:
//
//	POST   /v1/targets                 add one target (the notify section's form)
//	PUT    /v1/targets/{arn}           replace a target's configuration
//	DELETE /v1/targets/{arn}[?force=true]  remove a target; force exports and releases its pending events
//	GET    /v1/exports/{name}          an export written by a forced removal (JSON lines)
func (r *Relay) registerRuntimeTargets(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/targets", r.postTarget)
	mux.HandleFunc("PUT /v1/targets/{arn}", r.putTarget)
	mux.HandleFunc("DELETE /v1/targets/{arn}", r.deleteTarget)
	mux.HandleFunc("GET /v1/exports/{name}", r.getExport)
}

// maxTargetBody bounds an add or update body.
const maxTargetBody = 1 << 20

func (r *Relay) readTargetBody(w http.ResponseWriter, req *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxTargetBody))
	if err != nil {
		httpError(w, http.StatusRequestEntityTooLarge, "the target's description is larger than 1 MiB")
		return nil, false
	}
	return b, true
}

func (r *Relay) postTarget(w http.ResponseWriter, req *http.Request) {
	body, ok := r.readTargetBody(w, req)
	if !ok {
		return
	}
	arn, err := r.AddTarget(req.Context(), body)
	if err != nil {
		r.targetChangeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"target": arn, "source": r.source(arn)})
}

func (r *Relay) putTarget(w http.ResponseWriter, req *http.Request) {
	body, ok := r.readTargetBody(w, req)
	if !ok {
		return
	}
	arn := req.PathValue("arn")
	if err := r.UpdateTarget(req.Context(), arn, body); err != nil {
		r.targetChangeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"target": arn, "source": r.source(arn)})
}

func (r *Relay) deleteTarget(w http.ResponseWriter, req *http.Request) {
	var force bool
	switch v := req.URL.Query().Get("force"); v {
	case "", "false", "0":
	case "true", "1":
		force = true
	default:
		writeError(w, http.StatusBadRequest, errorBody{Error: "force must be true or false, got " + v, Field: "force"})
		return
	}
	rm, err := r.RemoveTarget(req.Context(), req.PathValue("arn"), force)
	if err != nil {
		r.targetChangeError(w, err)
		return
	}
	out := map[string]any{"target": rm.Target, "released": rm.Released}
	if rm.Export != "" {
		out["export"] = rm.Export
		out["exportName"] = filepath.Base(rm.Export)
	}
	writeJSON(w, http.StatusOK, out)
}

// getExport serves a file of the data directory's exports/, by name alone.
func (r *Relay) getExport(w http.ResponseWriter, req *http.Request) {
	name := req.PathValue("name")
	if name == "" || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".jsonl") {
		httpError(w, http.StatusBadRequest, "an export is named by a file name ending in .jsonl, as DELETE /v1/targets/{arn}?force=true answers it")
		return
	}
	f, err := os.Open(filepath.Join(r.cfg.DataPath(exportsDir), name))
	if err != nil {
		httpError(w, http.StatusNotFound, "no export "+name)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/x-ndjson")
	io.Copy(w, f)
}

// targetChangeError answers an add, update or remove error: 400 for a bad
// description (naming the field), 404 for an unknown target, 409 for a
// conflict (with "pending" for a removal refused over pending events), 501
// for what this build cannot do, 500 otherwise (logged, not shown).
func (r *Relay) targetChangeError(w http.ResponseWriter, err error) {
	var ce *ConfigError
	var be *buildError
	var pe *PendingError
	switch {
	case errors.As(err, &ce):
		msg := ce.Msg
		if ce.Path != "" {
			msg = ce.Path + ": " + msg
		} else if ce.Line > 0 {
			msg = "line " + strconv.Itoa(ce.Line) + ", column " + strconv.Itoa(ce.Column) + ": " + msg
		}
		writeError(w, http.StatusBadRequest, errorBody{Error: msg, Field: ce.Path})
	case errors.As(err, &be):
		httpError(w, http.StatusBadRequest, strings.TrimPrefix(err.Error(), "relay: "))
	case errors.As(err, &pe):
		writeJSON(w, http.StatusConflict, map[string]any{"error": strings.TrimPrefix(pe.Error(), "relay: "), "pending": pe.Pending})
	case errors.Is(err, ErrNoTarget):
		httpError(w, http.StatusNotFound, strings.TrimPrefix(err.Error(), "relay: "))
	case errors.Is(err, ErrTargetExists), errors.Is(err, ErrTargetInUse):
		httpError(w, http.StatusConflict, strings.TrimPrefix(err.Error(), "relay: "))
	case errors.Is(err, ErrNotSupported), errors.Is(err, ErrNotOnCluster):
		httpError(w, http.StatusNotImplemented, strings.TrimPrefix(err.Error(), "relay: "))
	default:
		// The error may name files; the log gets it, the client does not.
		r.lg.Error("changing a target", "err", err)
		httpError(w, http.StatusInternalServerError, "internal error; see the relay's log")
	}
}
