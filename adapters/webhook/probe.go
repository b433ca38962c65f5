package webhook

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"

	"github.com/bucketrelay/bucketrelay/delivery"
)

var _ delivery.Prober = (*Target)(nil)

// Probe checks that the endpoint can be reached: it connects and, for an
// https endpoint, completes the TLS handshake (the server's certificate
// checked, the client certificate given), then hangs up. It sends no HTTP
// request, so an endpoint never sees a probe; a refused token shows only
// at the first event.
func (t *Target) Probe(ctx context.Context) error {
	u, err := url.Parse(t.cfg.Endpoint)
	if err != nil {
		return fmt.Errorf("webhook: %s", t.redact(err.Error()))
	}
	host := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return fmt.Errorf("webhook: %s", t.redact(err.Error()))
	}
	defer conn.Close()
	if u.Scheme != "https" {
		return nil
	}
	var conf *tls.Config
	if tr, ok := t.client.Transport.(*http.Transport); ok && tr.TLSClientConfig != nil {
		conf = tr.TLSClientConfig.Clone()
	} else {
		conf = &tls.Config{}
	}
	if conf.ServerName == "" {
		conf.ServerName = u.Hostname()
	}
	tc := tls.Client(conn, conf)
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("webhook: TLS handshake with %s: %s", host, t.redact(err.Error()))
	}
	return nil
}
