package elasticsearch

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/bucketrelay/bucketrelay/delivery"
)

var _ delivery.Prober = (*Target)(nil)

// Probe checks that the node accepts the target's credentials: GET / (the
// node's name and version) with the target's authentication and TLS. A
// node that cannot be reached, or that answers 401 or 403, fails the
// probe. The index is not touched: it is created or checked by the first
// Send.
func (t *Target) Probe(ctx context.Context) error {
	res, err := t.client.Info(t.client.Info.WithContext(ctx))
	if err != nil {
		return t.errorf("GET /: %v", err)
	}
	defer res.Body.Close()
	if res.StatusCode/100 == 2 {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	reason := strings.TrimSpace(string(b))
	var e struct {
		Error struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error.Type != "" {
		reason = e.Error.Type + ": " + e.Error.Reason
	}
	return t.errorf("GET /: %d %s: %.300s", res.StatusCode, http.StatusText(res.StatusCode), reason)
}
