package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// tlsDialer connects to a broker and completes the TLS handshake within the
// dial timeout. Left to sarama, the handshake happens at the first request
// and a plain-text listener, which waits for the rest of a request that
// never comes, fails only at the read timeout with "i/o timeout".
// It implements sarama's proxy dialer (golang.org/x/net/proxy.Dialer).
type tlsDialer struct {
	timeout time.Duration
	config  *tls.Config // ServerName empty: the broker's host
}

// Dial connects to addr over TLS.
func (d *tlsDialer) Dial(network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d.timeout)
	defer cancel()
	td := &tls.Dialer{NetDialer: &net.Dialer{KeepAlive: 30 * time.Second}, Config: d.config}
	c, err := td.DialContext(ctx, network, addr)
	if err != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded)) {
		return nil, fmt.Errorf("no TLS handshake with %s within %v (not a TLS listener?): %w", addr, d.timeout, err)
	}
	return c, err
}
