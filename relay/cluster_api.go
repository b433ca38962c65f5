package relay

import (
	"encoding/json"
	"net/http"
)

// ClusterInfo is the answer of GET /v1/cluster.
type ClusterInfo struct {
	// Owner names this relay process in the lease bucket.
	Owner string `json:"owner"`
	// Stream is the cluster log's stream.
	Stream string `json:"stream"`
	// Warnings are what the stream cannot promise (jslog.Log.Warnings).
	Warnings []string `json:"warnings"`
	// Lanes lists every lane of every target with its owner.
	Lanes []LaneStatus `json:"lanes"`
}

// getCluster answers GET /v1/cluster: 404 on the embedded log.
func (r *Relay) getCluster(w http.ResponseWriter, req *http.Request) {
	c := r.cluster
	if c == nil {
		httpError(w, http.StatusNotFound, `the relay runs on its embedded log; cluster status needs relay.log "kind": "jetstream"`)
		return
	}
	lanes, err := r.ClusterStatus(req.Context())
	if err != nil {
		r.lg.Warn("reading the cluster's lanes", "err", err)
		w.Header().Set("Retry-After", "5")
		httpError(w, http.StatusServiceUnavailable, "the cluster's lease or quarantine bucket cannot be read now; retry later")
		return
	}
	info := ClusterInfo{Owner: c.owner, Stream: c.log.Stream(), Warnings: c.log.Warnings(), Lanes: lanes}
	if info.Warnings == nil {
		info.Warnings = []string{}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(info)
}
