package webhook

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/bucketrelay/bucketrelay/delivery"
)

var _ delivery.Prober = (*Target)(nil)

// Probe checks that the endpoint can be reached: it sends a HEAD request
// with the target's credentials. Any answer is success except 401 and 403
// (the token is refused), since endpoints often answer HEAD with 404 or
// 405; a connection or TLS failure is an error. No event is sent.
func (t *Target) Probe(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, t.cfg.Endpoint, nil)
	if err != nil {
		return fmt.Errorf("webhook: %s", t.redact(err.Error()))
	}
	req.Header.Set("User-Agent", "bucketrelay")
	if t.auth != "" {
		req.Header.Set("Authorization", t.auth)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %s", t.redact(err.Error()))
	}
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return fmt.Errorf("webhook: endpoint refused the credentials: %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return nil
}
