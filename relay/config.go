package relay

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/rules"
)

// Defaults for Settings.
const (
	DefaultListen          = "127.0.0.1:9900"
	DefaultDataDir         = "data"
	DefaultMaxRequestBytes = 16 << 20
	DefaultFullWait        = 5 * time.Second
)

// Config is the relay's configuration file: relay-level settings, the
// "notify" section in the format object stores use, and bucket rules.
type Config struct {
	Relay Settings
	// Targets are the parsed "notify" entries, enabled or not, sorted by ARN.
	Targets []TargetConfig
	// Buckets are the rules from the file's "buckets" section.
	Buckets map[string][]rules.Rule
}

// Settings is the file's "relay" object.
type Settings struct {
	// DataDir holds the write-ahead log and the rules set through the API;
	// empty means DefaultDataDir.
	DataDir string `json:"dataDir"`
	// Listen is the API's host:port; empty means DefaultListen. A listen
	// address other than loopback requires AccessToken.
	Listen string `json:"listen"`
	// MetricsListen, if set, is a host:port serving GET /metrics alone
	// and without the access token, for scrapers; empty means /metrics is
	// served only on Listen (with the token, if set).
	MetricsListen string `json:"metricsListen,omitempty"`
	// AccessToken, if set, must be sent by every API request as
	// "Authorization: Bearer <token>". RELAY_ACCESS_TOKEN overrides it.
	AccessToken string `json:"accessToken,omitempty"`
	// TLS, if set, serves the API over HTTPS (tls.go); nil means plain
	// HTTP. relay.metricsListen stays plain HTTP either way.
	TLS *TLSSettings `json:"tls,omitempty"`
	// Region is the ARN region: arn:minio:sqs:REGION:ID:KIND; empty by default.
	Region string `json:"region,omitempty"`
	// QueueLimit is the default bound of each target: the events routed to
	// it that it has not delivered yet (a target's maxPending overrides
	// it); 0 means the log's default (10,000,000). What the log holds in
	// all is bounded by the disk.
	QueueLimit int64 `json:"queueLimit,omitempty"`
	// QueueLimitBytes is the default bound of each target in event bytes
	// (a target's maxPendingBytes overrides it); 0 means the log's default
	// (4 GiB).
	QueueLimitBytes int64 `json:"queueLimitBytes,omitempty"`
	// MinBackoff and MaxBackoff bound retry delays (Go durations); empty
	// means 100ms and 5s.
	MinBackoff string `json:"minBackoff,omitempty"`
	MaxBackoff string `json:"maxBackoff,omitempty"`
	// MaxAttempts quarantines an event after that many failed attempts; 0
	// retries forever.
	MaxAttempts int `json:"maxAttempts,omitempty"`
	// MaxRequestBytes bounds a POST /v1/events body; 0 means 16 MiB.
	MaxRequestBytes int64 `json:"maxRequestBytes,omitempty"`
	// FullWait is how long a POST waits for room in a full log before it is
	// answered 503; empty means 5s.
	FullWait string `json:"fullWait,omitempty"`
	// IngestConcurrency bounds the ingest requests parsing and encoding
	// records at once, so that delivery keeps its share of the CPU under
	// overload (ingestgate.go); 0 means GOMAXPROCS, -1 no bound (and no
	// holding back while a target falls behind).
	IngestConcurrency int `json:"ingestConcurrency,omitempty"`
	// LogLevel is debug, info, warn or error; empty means info.
	LogLevel string `json:"logLevel,omitempty"`
	// NoSync skips fsync. It voids the durability guarantee; for tests.
	NoSync bool `json:"noSync,omitempty"`
	// Retention keeps delivered events for rewinds and for targets that
	// start from the oldest retained event (retention.go); absent means
	// delivered events are reclaimed at once.
	Retention *RetentionConfig `json:"retention,omitempty"`
	// Compression is the codec the log compresses new records with
	// (compression.go): "s2", "zstd" or "none"; empty means "s2".
	Compression string `json:"compression,omitempty"`
	// Log chooses the log (logconfig.go): nil means the embedded one in
	// DataDir; kind "jetstream" runs the relay as one process of a
	// cluster on a replicated NATS JetStream stream.
	Log *LogConfig `json:"log,omitempty"`
}

// TargetConfig is one parsed entry of the "notify" section.
type TargetConfig struct {
	Kind    string
	ID      string
	Enabled bool
	// ARN is arn:minio:sqs:REGION:ID:KIND.
	ARN string
	// Params is the kind's parsed and validated Config, a pointer
	// (*webhook.Config, …).
	Params any
	// Namespace is set for namespace-format store targets.
	Namespace bool
	// MaxPending bounds the events pending for the target (the entry's
	// "maxPending"); 0 means relay.queueLimit.
	MaxPending int64
	// MaxPendingBytes bounds the event bytes pending for the target
	// ("maxPendingBytes"); 0 means relay.queueLimitBytes.
	MaxPendingBytes int64
	// WhenFull is what happens to events routed to the target once its
	// bound is reached ("whenFull"): WhenFullBlock (the default: publishes
	// wait, then fail with 503) or WhenFullDrop (the target misses them;
	// counted and logged).
	WhenFull string
	// StartFrom is where the target starts when it has no cursor in the
	// log yet ("startFrom"): StartFromNew (the default) or StartFromOldest
	// (the retained history first).
	StartFrom string
	// Policy is the target's delivery policy (policy.go): maxAttempts,
	// maxAge, rateLimit, inflight (default: the kind's) and lanes.
	Policy delivery.Policy
	// MaxBatch is the entry's "maxBatch": the most events of one send; 0
	// means the kind's.
	MaxBatch int
	// Lanes is, on a cluster log, the number of lanes ("lanes") the
	// relay processes share out, each drained by one process at a time
	// (Policy.Lanes is then 0: a lane's loop sends in order); 0 means 1.
	Lanes int
}

// Policies of TargetConfig.WhenFull.
const (
	WhenFullBlock = "block"
	WhenFullDrop  = "drop"
)

// boundKeys are the keys every notify entry may carry beside its kind's
// own: the target's bound in the log.
type boundKeys struct {
	MaxPending      *int64  `json:"maxPending"`
	MaxPendingBytes *int64  `json:"maxPendingBytes"`
	WhenFull        *string `json:"whenFull"`
	StartFrom       *string `json:"startFrom"`
}

// splitBounds reads the bound keys of a notify entry and returns the entry
// without them, for the kind's strict parser.
func splitBounds(doc, raw json.RawMessage, path string) (boundKeys, json.RawMessage, error) {
	var b boundKeys
	if err := json.Unmarshal(raw, &b); err != nil {
		return b, nil, jsonError(doc, path, err)
	}
	if b.MaxPending == nil && b.MaxPendingBytes == nil && b.WhenFull == nil && b.StartFrom == nil {
		return b, raw, nil
	}
	if b.MaxPending != nil && *b.MaxPending < 0 {
		return b, nil, &ConfigError{Path: path + ".maxPending", Msg: "must not be negative"}
	}
	if b.MaxPendingBytes != nil && *b.MaxPendingBytes < 0 {
		return b, nil, &ConfigError{Path: path + ".maxPendingBytes", Msg: "must not be negative"}
	}
	if b.WhenFull != nil && *b.WhenFull != WhenFullBlock && *b.WhenFull != WhenFullDrop {
		return b, nil, &ConfigError{Path: path + ".whenFull", Msg: fmt.Sprintf("%q is not \"block\" or \"drop\"", *b.WhenFull)}
	}
	if b.StartFrom != nil && *b.StartFrom != StartFromNew && *b.StartFrom != StartFromOldest {
		return b, nil, &ConfigError{Path: path + ".startFrom", Msg: fmt.Sprintf("%q is not \"new\" or \"oldest\"", *b.StartFrom)}
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return b, nil, jsonError(doc, path, err)
	}
	delete(m, "maxPending")
	delete(m, "maxPendingBytes")
	delete(m, "whenFull")
	delete(m, "startFrom")
	rest, err := json.Marshal(m)
	return b, rest, err
}

// ConfigError is a configuration problem, located by the path of the field
// (notify.webhook.1.endpoint) or, for malformed JSON, by line and column.
type ConfigError struct {
	File   string
	Path   string
	Line   int
	Column int
	Msg    string
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("config")
	if e.File != "" {
		b.WriteString(" " + e.File)
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// LoadConfig reads and parses the configuration file at path.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := ParseConfig(data)
	var ce *ConfigError
	if errors.As(err, &ce) {
		ce.File = path
	}
	return c, err
}

// ParseConfig parses a configuration document.
func ParseConfig(data []byte) (*Config, error) {
	var top map[string]json.RawMessage
	if err := decodeStrict(data, &top); err != nil {
		return nil, jsonError(data, "", err)
	}
	if top == nil {
		// null decodes into a nil map without an error.
		line, col := lineCol(data, int64(len(data)-len(bytes.TrimLeft(data, " \t\r\n"))))
		return nil, &ConfigError{Line: line, Column: col, Msg: `the configuration must be a JSON object such as {"relay":{…},"notify":{…}}, not null`}
	}
	c := &Config{Buckets: map[string][]rules.Rule{}}
	for k := range top {
		switch k {
		case "relay", "notify", "buckets":
		default:
			return nil, &ConfigError{Path: k, Msg: `unknown field (want "relay", "notify" or "buckets")`}
		}
	}
	if raw, ok := top["relay"]; ok {
		if err := decodeStrict(raw, &c.Relay); err != nil {
			// An unknown field of relay.tls is reported without its
			// object; decoding the block alone puts it under relay.tls.
			var sub struct{ TLS json.RawMessage }
			if json.Unmarshal(raw, &sub) == nil && len(sub.TLS) > 0 {
				if terr := decodeStrict(sub.TLS, &TLSSettings{}); terr != nil {
					return nil, jsonError(data, "relay.tls", terr)
				}
			}
			return nil, jsonError(data, "relay", err)
		}
	}
	if err := c.Relay.validate(); err != nil {
		return nil, err
	}
	if raw, ok := top["notify"]; ok {
		if err := c.parseNotify(data, raw); err != nil {
			return nil, err
		}
	}
	if raw, ok := top["buckets"]; ok {
		if err := c.parseBuckets(data, raw); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (s *Settings) validate() error {
	if s.DataDir == "" {
		s.DataDir = DefaultDataDir
	}
	if s.Listen == "" {
		s.Listen = DefaultListen
	}
	if tok := os.Getenv("RELAY_ACCESS_TOKEN"); tok != "" {
		s.AccessToken = tok
	}
	host, _, err := net.SplitHostPort(s.Listen)
	if err != nil {
		return &ConfigError{Path: "relay.listen", Msg: "must be host:port"}
	}
	if !isLoopback(host) && s.AccessToken == "" {
		return &ConfigError{Path: "relay.accessToken", Msg: "required when relay.listen is not a loopback address (or set RELAY_ACCESS_TOKEN)"}
	}
	if s.TLS != nil {
		if err := s.TLS.validate(); err != nil {
			return err
		}
	}
	if s.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(s.MetricsListen); err != nil {
			return &ConfigError{Path: "relay.metricsListen", Msg: "must be host:port"}
		}
	}
	for _, d := range []struct{ path, v string }{{"relay.minBackoff", s.MinBackoff}, {"relay.maxBackoff", s.MaxBackoff}, {"relay.fullWait", s.FullWait}} {
		if d.v == "" {
			continue
		}
		if v, err := time.ParseDuration(d.v); err != nil || v <= 0 {
			return &ConfigError{Path: d.path, Msg: fmt.Sprintf("%q is not a positive duration such as \"30s\"", d.v)}
		}
	}
	if lo, hi := duration(s.MinBackoff, delivery.DefaultMinBackoff), duration(s.MaxBackoff, delivery.DefaultMaxBackoff); lo > hi {
		name := func(v string, d time.Duration) string {
			if v == "" {
				return d.String() + " (the default)"
			}
			return v
		}
		return &ConfigError{Path: "relay.minBackoff", Msg: fmt.Sprintf("%s is greater than relay.maxBackoff %s", name(s.MinBackoff, lo), name(s.MaxBackoff, hi))}
	}
	if s.QueueLimit < 0 || s.QueueLimitBytes < 0 || s.MaxRequestBytes < 0 || s.MaxAttempts < 0 {
		return &ConfigError{Path: "relay", Msg: "limits must not be negative"}
	}
	if s.IngestConcurrency < -1 {
		return &ConfigError{Path: "relay.ingestConcurrency", Msg: "must be -1 (no bound), 0 (GOMAXPROCS) or a number of requests"}
	}
	switch s.LogLevel {
	case "", "debug", "info", "warn", "error":
	default:
		return &ConfigError{Path: "relay.logLevel", Msg: "must be debug, info, warn or error"}
	}
	if err := s.validateCompression(); err != nil {
		return err
	}
	if err := s.Retention.validate(); err != nil {
		return err
	}
	if s.Log != nil {
		return s.Log.validate()
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func duration(s string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d
	}
	return def
}

func (c *Config) parseNotify(doc, raw json.RawMessage) error {
	var kinds map[string]json.RawMessage
	if err := decodeStrict(raw, &kinds); err != nil {
		return jsonError(doc, "notify", err)
	}
	for kind, kraw := range kinds {
		k, ok := kindByName[kind]
		if !ok {
			return &ConfigError{Path: "notify." + kind, Msg: "unknown target kind (want one of " + strings.Join(kindNames(), ", ") + ")"}
		}
		var ids map[string]json.RawMessage
		if err := decodeStrict(kraw, &ids); err != nil {
			return jsonError(doc, "notify."+kind, err)
		}
		for id, traw := range ids {
			path := "notify." + kind + "." + id
			if id == "" || strings.ContainsAny(id, ": \t") {
				return &ConfigError{Path: path, Msg: "target id must be non-empty without ':' or spaces"}
			}
			var en struct {
				Enable *bool `json:"enable"`
			}
			if err := json.Unmarshal(traw, &en); err != nil {
				return jsonError(doc, path, err)
			}
			if en.Enable == nil {
				return &ConfigError{Path: path + ".enable", Msg: "required"}
			}
			bounds, traw, err := splitBounds(doc, traw, path)
			if err != nil {
				return err
			}
			policy, batch, traw, err := splitPolicy(doc, traw, path, k, c.Relay.Log.Cluster())
			if err != nil {
				return err
			}
			params := k.NewConfig()
			if err := decodeStrict(traw, params); err != nil {
				return fieldError(doc, path, err)
			}
			if err := params.Validate(); err != nil {
				return fieldError(doc, path, err)
			}
			ns := k.IsNamespace(params)
			arn := rules.ARN{Region: c.Relay.Region, ID: id, Kind: kind}.String()
			tc := TargetConfig{Kind: kind, ID: id, Enabled: *en.Enable, ARN: arn, Params: params, Namespace: ns, WhenFull: WhenFullBlock, StartFrom: StartFromNew,
				Policy: policy, MaxBatch: batch}
			if bounds.MaxPending != nil {
				tc.MaxPending = *bounds.MaxPending
			}
			if bounds.MaxPendingBytes != nil {
				tc.MaxPendingBytes = *bounds.MaxPendingBytes
			}
			if bounds.WhenFull != nil {
				tc.WhenFull = *bounds.WhenFull
			}
			if bounds.StartFrom != nil {
				tc.StartFrom = *bounds.StartFrom
			}
			if err := c.clusterBounds(&tc, bounds, path); err != nil {
				return err
			}
			c.Targets = append(c.Targets, tc)
		}
	}
	sort.Slice(c.Targets, func(i, j int) bool { return c.Targets[i].ARN < c.Targets[j].ARN })
	return nil
}

// fileRule is a rule in the file's "buckets" section.
type fileRule struct {
	ID     string   `json:"id"`
	ARN    string   `json:"arn"`
	Events []string `json:"events"`
	Prefix string   `json:"prefix"`
	Suffix string   `json:"suffix"`
	// The object filters: keyRegex, minSize, maxSize, contentTypes,
	// metadata, tags.
	rules.ObjectFilter
}

func (c *Config) parseBuckets(doc, raw json.RawMessage) error {
	var bs map[string][]fileRule
	if err := decodeStrict(raw, &bs); err != nil {
		return jsonError(doc, "buckets", err)
	}
	for b, frs := range bs {
		if err := rules.CheckBucketName(b); err != nil {
			return &ConfigError{Path: "buckets." + b, Msg: strings.TrimPrefix(err.Error(), "rules: ")}
		}
		for i, fr := range frs {
			path := fmt.Sprintf("buckets.%s.%d", b, i)
			if fr.ARN == "" {
				return &ConfigError{Path: path + ".arn", Msg: "required"}
			}
			if len(fr.Events) == 0 {
				fr.Events = []string{"put", "delete"}
			}
			r := rules.Rule{ID: fr.ID, ARN: fr.ARN, Prefix: fr.Prefix, Suffix: fr.Suffix, ObjectFilter: fr.ObjectFilter}
			for _, e := range fr.Events {
				r.Events = append(r.Events, event.Name(e))
			}
			n, err := r.Normalize()
			if err != nil {
				return &ConfigError{Path: path, Msg: strings.TrimPrefix(err.Error(), "rules: ")}
			}
			switch t := c.target(n.ARN); {
			case t == nil:
				return &ConfigError{Path: path + ".arn", Msg: fmt.Sprintf("no target %s in notify", n.ARN)}
			case !t.Enabled:
				// Its events would go nowhere, without a word.
				return &ConfigError{Path: path + ".arn", Msg: fmt.Sprintf("target %s is disabled (notify.%s.%s.enable is false): enable it or remove the rule", n.ARN, t.Kind, t.ID)}
			}
			c.Buckets[b] = append(c.Buckets[b], n)
		}
		var de *rules.DuplicateError
		if err := rules.CheckDuplicates(c.Buckets[b]); errors.As(err, &de) {
			return &ConfigError{Path: fmt.Sprintf("buckets.%s.%d", b, de.Second), Msg: fmt.Sprintf("repeats buckets.%s.%d (the same target, events and filter): remove one", b, de.First)}
		}
	}
	return nil
}

func (c *Config) target(arn string) *TargetConfig {
	for i := range c.Targets {
		if c.Targets[i].ARN == arn {
			return &c.Targets[i]
		}
	}
	return nil
}

// EnabledARNs returns the ARNs of the enabled targets, sorted.
func (c *Config) EnabledARNs() []string {
	var out []string
	for _, t := range c.Targets {
		if t.Enabled {
			out = append(out, t.ARN)
		}
	}
	return out
}

// DataPath returns the path of name inside the data directory.
func (c *Config) DataPath(name string) string { return filepath.Join(c.Relay.DataDir, name) }

func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return &json.SyntaxError{Offset: dec.InputOffset()}
	}
	return nil
}

// jsonError turns an encoding/json error into a ConfigError with the path
// of the field or the line and column of a syntax error in doc.
func jsonError(doc []byte, path string, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		// Offset counts the bytes read including the offending one.
		line, col := lineCol(doc, se.Offset-1)
		msg := strings.TrimPrefix(se.Error(), "json: ")
		if msg == "" {
			msg = "unexpected data after the top-level value"
		}
		return &ConfigError{Line: line, Column: col, Msg: "invalid JSON: " + msg}
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		line, col := lineCol(doc, int64(len(doc)))
		return &ConfigError{Line: line, Column: col, Msg: "invalid JSON: unexpected end of input (a missing '}' or ']'?)"}
	case errors.As(err, &te):
		p := join(path, te.Field)
		e := &ConfigError{Path: p, Msg: fmt.Sprintf("expected %s, got %s", typeName(te.Type.String()), te.Value)}
		if p == "" {
			e.Line, e.Column = lineCol(doc, te.Offset-1)
		}
		return e
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &ConfigError{Path: join(path, name), Msg: "unknown field"}
	}
	return &ConfigError{Path: path, Msg: strings.TrimPrefix(err.Error(), "json: ")}
}

// fieldError places an adapter's error under path.
func fieldError(doc []byte, path string, err error) error {
	var fe *kit.FieldError
	if errors.As(err, &fe) {
		return &ConfigError{Path: join(path, fe.Field), Msg: fe.Msg}
	}
	return jsonError(doc, path, err)
}

func join(a, b string) string {
	if b == "" {
		return a
	}
	if a == "" {
		return b
	}
	return a + "." + b
}

func typeName(t string) string {
	switch {
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"), strings.HasPrefix(t, "float"):
		return "a number"
	case t == "string":
		return "a string"
	case t == "bool":
		return "true or false"
	case strings.HasPrefix(t, "[]"):
		return "an array"
	case strings.HasPrefix(t, "map"), strings.Contains(t, "."):
		return "an object"
	}
	return t
}

func lineCol(doc []byte, off int64) (int, int) {
	if off > int64(len(doc)) {
		off = int64(len(doc))
	}
	line, col := 1, 1
	for _, c := range doc[:off] {
		if c == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}
