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
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/rules"
)

// eventsCommand manages bucket rules on a running relay, like `mc events`.
type eventsCommand struct {
	out    io.Writer // results; nil means os.Stdout
	errOut io.Writer // usage; nil means os.Stderr
}

// Usage prints the command's help.
func (c *eventsCommand) Usage(fs *flag.FlagSet) {
	fmt.Fprint(fs.Output(), `Usage:
  relay events add BUCKET ARN [--events put,delete,get] [--prefix P] [--suffix S]
  relay events list BUCKET [--json]
  relay events remove BUCKET [ARN] [--events ...] [--prefix P] [--suffix S] [--force]

BUCKET may be written ALIAS/BUCKET as with mc. --events takes the short
names put (s3:ObjectCreated:*), delete (s3:ObjectRemoved:*), get
(s3:ObjectAccessed:*) or full event names; add defaults to put,delete.
remove without an ARN needs --force and removes every rule of the bucket.

The relay is found at --server (or RELAY_ADDR, default http://127.0.0.1:9900)
with the token --token (or RELAY_TOKEN). A token written in the server URL
(http://user:TOKEN@host:port, or http://TOKEN@host:port) is sent as the
bearer token and never printed.

Flags:
`)
	fs.PrintDefaults()
}

type eventsFlags struct {
	server, token, events, prefix, suffix string
	force, json                           bool
	tls                                   tlsFlags
}

// Run runs an events subcommand.
func (c *eventsCommand) Run(ctx context.Context, args []string) error {
	if c.out == nil {
		c.out = os.Stdout
	}
	fs := flag.NewFlagSet("events", flag.ContinueOnError)
	var f eventsFlags
	// Defaults from the environment are applied after parsing, so that
	// usage output never prints a token.
	fs.StringVar(&f.server, "server", "", "relay API address (default $RELAY_ADDR or http://127.0.0.1:9900)")
	fs.StringVar(&f.token, "token", "", "access token (default $RELAY_TOKEN)")
	fs.StringVar(&f.events, "events", "", "comma-separated events: put, delete, get or full names")
	fs.StringVar(&f.prefix, "prefix", "", "object key prefix filter")
	fs.StringVar(&f.suffix, "suffix", "", "object key suffix filter")
	fs.BoolVar(&f.force, "force", false, "remove: allow removing every rule of the bucket")
	fs.BoolVar(&f.json, "json", false, "list: print JSON")
	f.tls.register(fs)
	fs.Usage = func() { c.Usage(fs) }
	if c.errOut != nil {
		fs.SetOutput(c.errOut)
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		fs.Usage()
		return usagef("events needs a subcommand and a bucket")
	}
	sub, bucket := pos[0], bucketName(pos[1])
	cl, err := newAPIClient(envOr(f.server, "RELAY_ADDR", "http://127.0.0.1:9900"), envOr(f.token, "RELAY_TOKEN", ""))
	if err != nil {
		return err
	}
	if cl.http, err = f.tls.httpClient(); err != nil {
		return err
	}
	switch sub {
	case "add":
		if len(pos) != 3 {
			return usagef("events add BUCKET ARN")
		}
		return c.add(ctx, cl, bucket, pos[2], f)
	case "list", "ls":
		if len(pos) != 2 {
			return usagef("events list BUCKET")
		}
		return c.list(ctx, cl, bucket, f.json)
	case "remove", "rm":
		if len(pos) > 3 {
			return usagef("events remove BUCKET [ARN]")
		}
		arn := ""
		if len(pos) == 3 {
			arn = pos[2]
		}
		return c.remove(ctx, cl, bucket, arn, f)
	}
	return usagef("unknown events subcommand %q (add, list, remove)", sub)
}

func bucketName(s string) string {
	s = strings.Trim(s, "/")
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// envOr returns v, or the environment variable k, or def.
func envOr(v, k, def string) string {
	if v != "" {
		return v
	}
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// newAPIClient returns a client for the relay at server. Credentials in
// the URL become the bearer token (when token is empty) and are removed
// from the address every message prints.
func newAPIClient(server, token string) (*apiClient, error) {
	if !strings.Contains(server, "://") {
		server = "http://" + server
	}
	u, err := url.Parse(server)
	if err != nil || u.Host == "" {
		// url's errors repeat the input, which may hold a token.
		return nil, usagef("--server must be a URL such as http://127.0.0.1:9900")
	}
	if u.User != nil {
		if token == "" {
			token = u.User.Username()
			if p, ok := u.User.Password(); ok {
				token = p
			}
		}
		u.User = nil
	}
	u.RawQuery, u.Fragment = "", ""
	return &apiClient{base: strings.TrimRight(u.String(), "/"), token: token, http: http.DefaultClient}, nil
}

func parseEvents(s string) ([]event.Name, error) {
	var out []event.Name
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		n := event.Name(p)
		if w, ok := event.Shorthand[strings.ToLower(p)]; ok {
			n = w
		}
		if !n.Known() {
			return nil, usagef("unknown event %q (put, delete, get or a full name such as s3:ObjectCreated:Put)", p)
		}
		out = append(out, n)
	}
	return out, nil
}

func (c *eventsCommand) add(ctx context.Context, cl *apiClient, bucket, arn string, f eventsFlags) error {
	if _, err := rules.ParseARN(arn); err != nil {
		return usagef("%v", err)
	}
	evs := f.events
	if evs == "" {
		evs = "put,delete"
	}
	names, err := parseEvents(evs)
	if err != nil {
		return err
	}
	rs, err := cl.get(ctx, bucket)
	if err != nil {
		return err
	}
	rs = append(rs, rules.Rule{ARN: arn, Events: names, Prefix: f.prefix, Suffix: f.suffix})
	if err := cl.put(ctx, bucket, rs); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "Successfully added %s\n", arn)
	return nil
}

func (c *eventsCommand) list(ctx context.Context, cl *apiClient, bucket string, asJSON bool) error {
	rs, err := cl.get(ctx, bucket)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(c.out)
		for _, r := range rs {
			enc.Encode(r)
		}
		return nil
	}
	w := tabwriter.NewWriter(c.out, 0, 0, 3, ' ', 0)
	for _, r := range rs {
		names := make([]string, len(r.Events))
		for i, e := range r.Events {
			names[i] = string(e)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", r.ARN, strings.Join(names, ","), r.Filter())
	}
	return w.Flush()
}

func (c *eventsCommand) remove(ctx context.Context, cl *apiClient, bucket, arn string, f eventsFlags) error {
	if arn == "" {
		if !f.force {
			return usagef("removing every rule of %s needs --force", bucket)
		}
		if err := cl.delete(ctx, bucket); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "Successfully removed all rules of %s\n", bucket)
		return nil
	}
	var names []event.Name
	if f.events != "" {
		var err error
		if names, err = parseEvents(f.events); err != nil {
			return err
		}
	}
	rs, err := cl.get(ctx, bucket)
	if err != nil {
		return err
	}
	kept := rs[:0]
	removed := 0
	for _, r := range rs {
		match := r.ARN == arn && (f.prefix == "" || r.Prefix == f.prefix) && (f.suffix == "" || r.Suffix == f.suffix) && (names == nil || sameEvents(r.Events, names))
		if match {
			removed++
			continue
		}
		kept = append(kept, r)
	}
	if removed == 0 {
		return fmt.Errorf("no rule of %s matches %s", bucket, arn)
	}
	if err := cl.put(ctx, bucket, kept); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "Successfully removed %s\n", arn)
	return nil
}

func sameEvents(a, b []event.Name) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[event.Name]bool{}
	for _, x := range a {
		m[x] = true
	}
	for _, x := range b {
		if !m[x] {
			return false
		}
	}
	return true
}

// apiClient talks to a relay's bucket notification API.
type apiClient struct {
	base, token string
	http        *http.Client // http.DefaultClient, or one with the TLS flags'
}

func (c *apiClient) do(ctx context.Context, method, bucket string, body []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+"/v1/buckets/"+url.PathEscape(bucket)+"/notification", bytes.NewReader(body))
	if err != nil {
		return nil, errors.New(kit.Redact(fmt.Sprintf("bad request to %s: %v", c.base, err), c.token))
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Content-Type", "application/xml")
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is c.base's, printed once
		}
		// The server URL may carry credentials (http://user:TOKEN@host).
		return nil, errors.New(kit.Redact(fmt.Sprintf("cannot reach the relay at %s: %v", c.base, err), c.token))
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 300 {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("the server answered %d: %s", resp.StatusCode, strings.TrimPrefix(e.Error, "relay: "))
		}
		return nil, fmt.Errorf("the server answered %s", resp.Status)
	}
	return b, nil
}

func (c *apiClient) get(ctx context.Context, bucket string) ([]rules.Rule, error) {
	b, err := c.do(ctx, http.MethodGet, bucket, nil)
	if err != nil {
		return nil, err
	}
	return rules.ParseXML(b)
}

func (c *apiClient) put(ctx context.Context, bucket string, rs []rules.Rule) error {
	_, err := c.do(ctx, http.MethodPut, bucket, rules.MarshalXML(rs))
	return err
}

func (c *apiClient) delete(ctx context.Context, bucket string) error {
	_, err := c.do(ctx, http.MethodDelete, bucket, nil)
	return err
}

// parseInterleaved parses flags that may come before, between or after
// positional arguments, as mc accepts them.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
