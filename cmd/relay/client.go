package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// opClient calls a running relay's operating API (targets, quarantine).
type opClient struct {
	base, token string
	tls         tlsFlags
	http        *http.Client // set by resolve
	resolved    bool
}

// printClientUsage ends a client command's usage: how the relay is found
// and reached, then fs's flags.
func printClientUsage(fs *flag.FlagSet) {
	fmt.Fprint(fs.Output(), `The relay is found at --server (or RELAY_ADDR, default http://127.0.0.1:9900)
with the token --token (or RELAY_TOKEN). A token written in the server URL
(http://user:TOKEN@host:port, or http://TOKEN@host:port) is sent as the
bearer token and never printed. For a relay served over HTTPS
(relay.tls), --cacert (or RELAY_CACERT) names the CA to trust, and
--cert and --key (or RELAY_CERT, RELAY_KEY) a client certificate.

Flags:
`)
	fs.PrintDefaults()
}

// clientFlags registers --server, --token and the TLS flags (--cacert,
// --cert, --key) on fs. Their defaults come from RELAY_ADDR, RELAY_TOKEN,
// RELAY_CACERT, RELAY_CERT and RELAY_KEY when the flags are not given;
// usage never prints them.
func clientFlags(fs *flag.FlagSet) *opClient {
	c := &opClient{}
	fs.StringVar(&c.base, "server", "", "relay API address (default $RELAY_ADDR or http://127.0.0.1:9900)")
	fs.StringVar(&c.token, "token", "", "access token (default $RELAY_TOKEN)")
	c.tls.register(fs)
	return c
}

// resolve applies the defaults and takes credentials out of the address
// (http://user:TOKEN@host), as relay events does, so no message shows them.
func (c *opClient) resolve() error {
	if c.resolved {
		return nil
	}
	a, err := newAPIClient(envOr(c.base, "RELAY_ADDR", "http://127.0.0.1:9900"), envOr(c.token, "RELAY_TOKEN", ""))
	if err != nil {
		return err
	}
	if c.http, err = c.tls.httpClient(); err != nil {
		return err
	}
	c.base, c.token, c.resolved = a.base, a.token, true
	return nil
}

func (c *opClient) url(path string) string {
	return strings.TrimRight(c.base, "/") + path
}

// do sends a request (body, when not nil, as JSON) and returns the body
// of a 2xx answer; any other answer is an error carrying the relay's
// message.
func (c *opClient) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	b, _, err := c.request(ctx, 30*time.Second, method, path, body)
	return b, err
}

// send is do for the commands that change targets, which may wait for a
// probe: a longer deadline, and an answer 400 (the input was refused) is
// a usage error (exit 2); other failures exit 1.
func (c *opClient) send(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	b, status, err := c.request(ctx, 60*time.Second, method, path, body)
	if err != nil && status == http.StatusBadRequest {
		return nil, usagef("%s", err.Error())
	}
	return b, err
}

// request is do and send: it returns the answer's body (2xx) or an error
// with the relay's message, and the HTTP status (0 when none came).
func (c *opClient) request(ctx context.Context, timeout time.Duration, method, path string, body []byte) ([]byte, int, error) {
	if err := c.resolve(); err != nil {
		return nil, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(path), rd)
	if err != nil {
		return nil, 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
		return nil, 0, fmt.Errorf("cannot reach the relay at %s: %v", c.base, unwrapURLError(err))
	}
	defer resp.Body.Close()
	// Exports of a target's pending events can be large.
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<30))
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("reading the answer of %s: %v", c.base, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return nil, resp.StatusCode, fmt.Errorf("%s (HTTP %d)", e.Error, resp.StatusCode)
		}
		return nil, resp.StatusCode, fmt.Errorf("the relay answered %s", resp.Status)
	}
	return b, resp.StatusCode, nil
}

func (c *opClient) getJSON(ctx context.Context, path string, v any) error {
	b, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(v); err != nil {
		return fmt.Errorf("the relay's answer to %s: %v", path, err)
	}
	return nil
}

// unwrapURLError drops net/http's `Get "URL": ` prefix: the relay is
// already named, and the URL could carry what should not be printed.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
