package relay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/bucketrelay/bucketrelay/jslog"
)

// Kinds of LogConfig.
const (
	// LogWAL is the embedded bbolt log in relay.dataDir (the default).
	LogWAL = "wal"
	// LogJetStream is a replicated NATS JetStream stream shared by every
	// relay process of a cluster.
	LogJetStream = "jetstream"
)

// Defaults for LogConfig.
const (
	DefaultLogOpenTimeout = 30 * time.Second
)

// LogConfig is the "relay.log" object: which log the relay runs on.
//
//	"log": {"kind": "jetstream", "servers": ["nats://10.0.0.1:4222", ...],
//	        "stream": "RELAY", "replicas": 3, "leaseTTL": "3s", "owner": "relay-1"}
//
// Its absence, or kind "wal", is the embedded log. With "jetstream" the
// other fields are jslog.Config's (servers, stream, replicas, maxBytes,
// maxMessages, credentials, nkey, tls) plus those below.
type LogConfig struct {
	// Kind is LogWAL or LogJetStream; "" means LogWAL.
	Kind string
	// JetStream is the stream's configuration (kind "jetstream").
	JetStream jslog.Config
	// LeaseTTL is how long a lane's lease outlives its holder's last
	// renewal, a Go duration; "" means jslog.DefaultLeaseTTL (3s). Every
	// relay of a cluster should use the same.
	LeaseTTL string
	// Owner names this relay process in the lease bucket and in status;
	// "" means the host name and relay.listen.
	Owner string
	// OpenTimeout bounds connecting and opening the stream at start, a Go
	// duration; "" means DefaultLogOpenTimeout.
	OpenTimeout string
	// MaxInFlight bounds the group commits this process has published and
	// not yet had acknowledged; 0 means jslog.DefaultMaxInFlight (1). More
	// overlap the replicas' round trips under concurrent load.
	MaxInFlight int
}

// logExtra are the keys of "relay.log" that are not jslog.Config's.
type logExtra struct {
	Kind        string `json:"kind"`
	LeaseTTL    string `json:"leaseTTL,omitempty"`
	Owner       string `json:"owner,omitempty"`
	OpenTimeout string `json:"openTimeout,omitempty"`
	MaxInFlight int    `json:"maxInFlight,omitempty"`
}

// UnmarshalJSON reads the object strictly: an unknown key is an error
// naming it.
func (c *LogConfig) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	var ex logExtra
	rest := map[string]json.RawMessage{}
	for k, v := range m {
		switch k {
		case "maxInFlight":
			if err := json.Unmarshal(v, &ex.MaxInFlight); err != nil || ex.MaxInFlight < 0 || ex.MaxInFlight > 64 {
				return &ConfigError{Path: "relay.log.maxInFlight", Msg: "must be a number from 0 to 64"}
			}
		case "kind", "leaseTTL", "owner", "openTimeout":
			if err := json.Unmarshal(v, map[string]any{
				"kind": &ex.Kind, "leaseTTL": &ex.LeaseTTL, "owner": &ex.Owner, "openTimeout": &ex.OpenTimeout,
			}[k]); err != nil {
				return &ConfigError{Path: "relay.log." + k, Msg: "must be a string"}
			}
		default:
			rest[k] = v
		}
	}
	c.Kind, c.LeaseTTL, c.Owner, c.OpenTimeout, c.MaxInFlight = ex.Kind, ex.LeaseTTL, ex.Owner, ex.OpenTimeout, ex.MaxInFlight
	if c.Kind == "" {
		c.Kind = LogWAL
	}
	if c.Kind == LogWAL {
		if len(rest) > 0 {
			for k := range rest {
				return &ConfigError{Path: "relay.log." + k, Msg: `only for "kind": "jetstream"`}
			}
		}
		return nil
	}
	raw, _ := json.Marshal(rest)
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c.JetStream); err != nil {
		msg := err.Error()
		if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
			return &ConfigError{Path: "relay.log." + strings.Trim(f, `"`), Msg: "unknown field"}
		}
		return &ConfigError{Path: "relay.log", Msg: strings.TrimPrefix(msg, "json: ")}
	}
	return nil
}

// MarshalJSON writes the object back in the file's shape.
func (c LogConfig) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(c.JetStream)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if c.Kind != LogJetStream {
		m = map[string]any{}
	}
	m["kind"] = c.Kind
	for k, v := range map[string]string{"leaseTTL": c.LeaseTTL, "owner": c.Owner, "openTimeout": c.OpenTimeout} {
		if v != "" {
			m[k] = v
		}
	}
	if c.MaxInFlight != 0 {
		m["maxInFlight"] = c.MaxInFlight
	}
	return json.Marshal(m)
}

// validate checks the object; errors name the field by its path.
func (c *LogConfig) validate() error {
	switch c.Kind {
	case LogWAL:
		return nil
	case LogJetStream:
	default:
		return &ConfigError{Path: "relay.log.kind", Msg: fmt.Sprintf("%q is not %q or %q", c.Kind, LogWAL, LogJetStream)}
	}
	if err := c.JetStream.Validate(); err != nil {
		// jslog names the field (relay.log.servers[1]); keep its words.
		return &ConfigError{Msg: strings.TrimPrefix(err.Error(), "jslog: ")}
	}
	for _, d := range []struct{ path, v string }{{"relay.log.leaseTTL", c.LeaseTTL}, {"relay.log.openTimeout", c.OpenTimeout}} {
		if d.v == "" {
			continue
		}
		if v, err := time.ParseDuration(d.v); err != nil || v <= 0 {
			return &ConfigError{Path: d.path, Msg: fmt.Sprintf("%q is not a positive duration such as \"3s\"", d.v)}
		}
	}
	if c.LeaseTTL != "" && duration(c.LeaseTTL, 0) < time.Second {
		return &ConfigError{Path: "relay.log.leaseTTL", Msg: "must be at least 1s"}
	}
	return nil
}

// Cluster reports whether the relay runs on the JetStream log.
func (c *LogConfig) Cluster() bool { return c != nil && c.Kind == LogJetStream }

func (c *LogConfig) leaseTTL() time.Duration { return duration(c.LeaseTTL, jslog.DefaultLeaseTTL) }

func (c *LogConfig) openTimeout() time.Duration {
	return duration(c.OpenTimeout, DefaultLogOpenTimeout)
}

// MaxLanes bounds a target's "lanes".
const MaxLanes = 256

// clusterBounds checks a notify entry's keys that depend on the log:
// "lanes" needs the cluster log, which has no per-target bound.
func (c *Config) clusterBounds(tc *TargetConfig, b boundKeys, path string) error {
	cluster := c.Relay.Log.Cluster()
	if cluster && tc.Policy.Lanes > 0 {
		// The relay processes share the lanes out (lanes.go); each lane's
		// loop sends in order.
		tc.Lanes, tc.Policy.Lanes = tc.Policy.Lanes, 0
	}
	if cluster {
		for _, k := range []struct {
			name string
			set  bool
		}{{"maxPending", b.MaxPending != nil}, {"maxPendingBytes", b.MaxPendingBytes != nil}, {"whenFull", b.WhenFull != nil}} {
			if k.set {
				return &ConfigError{Path: path + "." + k.name, Msg: "not supported on a cluster log: the stream's maxBytes and maxMessages bound every target"}
			}
		}
	}
	return nil
}
