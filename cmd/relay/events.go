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
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/relay"
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
  relay events list BUCKET [ARN] [--events ...] [--prefix P] [--suffix S] [--json]
  relay events remove BUCKET [ARN] [--events ...] [--prefix P] [--suffix S] [--force]

BUCKET may be written ALIAS/BUCKET as with mc. --events takes the short
names put (s3:ObjectCreated:*), delete (s3:ObjectRemoved:*), get
(s3:ObjectAccessed:*) or full event names; add defaults to put,delete.
remove without an ARN needs --force and removes every rule of the bucket.
add refuses a rule that repeats one the bucket has (the same ARN and
filter, an event in common), as mc does.

list prints each rule's ARN, events, filter and source: "file" for the
configuration file's rules, "api" for rules set through the API (kept in
rules.json in the data directory; they replace the file's rules for that
bucket, and list then says how many it hides). With an ARN, --events,
--prefix or --suffix it lists only the rules with that ARN, an event in
common and that exact prefix or suffix.

`)
	printClientUsage(fs)
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
		if len(pos) > 3 {
			return usagef("events list BUCKET [ARN]")
		}
		arn := ""
		if len(pos) == 3 {
			arn = pos[2]
		}
		return c.list(ctx, cl, bucket, arn, f)
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
	add := rules.Rule{ARN: arn, Events: names, Prefix: f.prefix, Suffix: f.suffix}
	if n, err := add.Normalize(); err == nil {
		for _, r := range rs {
			if o, err := r.Normalize(); err == nil && rules.Overlap(o, n) {
				return fmt.Errorf("%s already has a rule for %s selecting these events with this filter (%s); see relay events list %s",
					bucket, arn, strings.Join(eventNames(o.Events), ","), bucket)
			}
		}
	}
	rs = append(rs, add)
	if err := cl.put(ctx, bucket, rs); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "Successfully added %s\n", arn)
	return nil
}

func (c *eventsCommand) list(ctx context.Context, cl *apiClient, bucket, arn string, f eventsFlags) error {
	var names []event.Name
	if f.events != "" {
		var err error
		if names, err = parseEvents(f.events); err != nil {
			return err
		}
	}
	rs, src, err := cl.getSource(ctx, bucket)
	if err != nil {
		return err
	}
	// Like mc event list ALIAS/BUCKET [ARN] --event --prefix --suffix: the
	// rules with that ARN and filter values, and any of the events.
	kept := rs[:0]
	for _, r := range rs {
		if (arn == "" || r.ARN == arn) && (f.prefix == "" || r.Prefix == f.prefix) && (f.suffix == "" || r.Suffix == f.suffix) && (names == nil || anyEvent(r.Events, names)) {
			kept = append(kept, r)
		}
	}
	source := src.source
	if source == "" {
		source = "-"
	}
	if src.overridden > 0 {
		note := c.errOut
		if note == nil {
			note = os.Stderr
		}
		fmt.Fprintf(note, "Note: the rules of %s were set through the API (rules.json in the data directory); they override the %d rule(s) the configuration file has for it.\n", bucket, src.overridden)
	}
	if f.json {
		enc := json.NewEncoder(c.out)
		for _, r := range kept {
			enc.Encode(struct {
				rules.Rule
				Source string `json:"source"`
			}{r, source})
		}
		return nil
	}
	w := tabwriter.NewWriter(c.out, 0, 0, 3, ' ', 0)
	for _, r := range kept {
		names := make([]string, len(r.Events))
		for i, e := range r.Events {
			names[i] = string(e)
		}
		filter := r.Filter()
		if filter == "" {
			filter = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", r.ARN, strings.Join(names, ","), filter, "source: "+source)
	}
	return w.Flush()
}

// anyEvent reports whether a rule's events select any of names (a name
// matches a wildcard that covers it, and the other way round).
func anyEvent(ruleEvents, names []event.Name) bool {
	for _, x := range ruleEvents {
		for _, n := range names {
			if x.Matches(n) || n.Matches(x) {
				return true
			}
		}
	}
	return false
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

func eventNames(ns []event.Name) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = string(n)
	}
	return out
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
	b, _, err := c.doHeader(ctx, method, bucket, body)
	return b, err
}

// doHeader is do, returning the answer's header as well.
func (c *apiClient) doHeader(ctx context.Context, method, bucket string, body []byte) ([]byte, http.Header, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+"/v1/buckets/"+url.PathEscape(bucket)+"/notification", bytes.NewReader(body))
	if err != nil {
		return nil, nil, errors.New(kit.Redact(fmt.Sprintf("bad request to %s: %v", c.base, err), c.token))
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
		return nil, nil, errors.New(kit.Redact(fmt.Sprintf("cannot reach the relay at %s: %v", c.base, err), c.token))
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 300 {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return nil, nil, fmt.Errorf("the server answered %d: %s", resp.StatusCode, strings.TrimPrefix(e.Error, "relay: "))
		}
		return nil, nil, fmt.Errorf("the server answered %s", resp.Status)
	}
	return b, resp.Header, nil
}

func (c *apiClient) get(ctx context.Context, bucket string) ([]rules.Rule, error) {
	rs, _, err := c.getSource(ctx, bucket)
	return rs, err
}

// rulesSource is where a bucket's rules come from, as the relay says.
type rulesSource struct {
	source     string // relay.RulesFromFile or relay.RulesFromAPI; "" from an older relay
	overridden int    // the file's rules the API rules hide
}

// getSource returns the bucket's rules and where they come from.
func (c *apiClient) getSource(ctx context.Context, bucket string) ([]rules.Rule, rulesSource, error) {
	b, h, err := c.doHeader(ctx, http.MethodGet, bucket, nil)
	if err != nil {
		return nil, rulesSource{}, err
	}
	src := rulesSource{source: h.Get(relay.RulesSourceHeader)}
	src.overridden, _ = strconv.Atoi(h.Get(relay.RulesOverriddenHeader))
	rs, err := rules.ParseXML(b)
	return rs, src, err
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
