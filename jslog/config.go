package jslog

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Defaults for Config.
const (
	DefaultStream      = "RELAY"
	DefaultReplicas    = 3
	DefaultMaxBytes    = 1 << 30
	DefaultMaxMessages = 1_000_000
)

// Defaults for Options.
const (
	DefaultCursorSyncInterval = 20 * time.Millisecond
	DefaultAttemptTimeout     = 2 * time.Second
	DefaultCacheBytes         = 64 << 20
	DefaultMaxInFlight        = 1
)

// Config is the `relay.log` section for a JetStream log:
//
//	{"kind": "jetstream", "servers": ["nats://10.0.0.1:4222", ...],
//	 "stream": "RELAY", "replicas": 3, "credentials": "/etc/relay/relay.creds",
//	 "tls": {"ca": "ca.pem", "cert": "client.pem", "key": "client-key.pem"}}
//
// The zero value, once Servers is set, is a replicated, bounded stream.
// The relay reads "kind" to choose this log; the fields here are the rest.
type Config struct {
	// Servers lists NATS URLs (nats://, tls://, ws://, wss://) of the
	// cluster. Required. Credentials in a URL are allowed but never logged.
	Servers []string `json:"servers"`
	// Stream is the JetStream stream holding the records; "" means
	// DefaultStream. The cursor and quarantine buckets are named after it
	// (Stream_cursors, Stream_quarantine). Every relay process of one
	// cluster names the same stream.
	Stream string `json:"stream,omitempty"`
	// Replicas is the stream's replication factor when the log creates
	// it; 0 means DefaultReplicas (3). A stream with fewer than 3 loses
	// acknowledged events with one server's disk; Open warns.
	Replicas int `json:"replicas,omitempty"`
	// MaxBytes bounds the stream's stored bytes (compressed frames) when
	// the log creates it; 0 means DefaultMaxBytes (1 GiB).
	MaxBytes int64 `json:"maxBytes,omitempty"`
	// MaxMessages bounds the stream's messages (group commits, each
	// holding one or more records) when the log creates it; 0 means
	// DefaultMaxMessages.
	MaxMessages int64 `json:"maxMessages,omitempty"`
	// Credentials is a NATS credentials (.creds) file; "" means none.
	Credentials string `json:"credentials,omitempty"`
	// NKey is a file holding an nkey seed (SU...); "" means none.
	NKey string `json:"nkey,omitempty"`
	// TLS configures TLS to the servers; the zero value uses the system
	// roots when a URL asks for tls://.
	TLS TLSConfig `json:"tls,omitempty"`
}

// TLSConfig names PEM files for TLS to the servers.
type TLSConfig struct {
	// CA is a file of root certificates to trust; "" means the system's.
	CA string `json:"ca,omitempty"`
	// Cert and Key are a client certificate and its key, for servers that
	// verify clients; both or neither.
	Cert string `json:"cert,omitempty"`
	Key  string `json:"key,omitempty"`
}

// path is the prefix of every field path Validate reports.
const path = "relay.log"

var streamName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Validate checks c and names the first offending field by its path in the
// configuration file, for example relay.log.servers[1].
func (c Config) Validate() error {
	if len(c.Servers) == 0 {
		return fmt.Errorf("jslog: %s.servers: at least one NATS URL is required", path)
	}
	for i, s := range c.Servers {
		u, err := url.Parse(s)
		if err != nil {
			// url's error repeats the URL, which may hold a password.
			return fmt.Errorf("jslog: %s.servers[%d]: not a URL", path, i)
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return fmt.Errorf("jslog: %s.servers[%d]: scheme %q, want nats, tls, ws or wss", path, i, u.Scheme)
		}
		if u.Host == "" {
			return fmt.Errorf("jslog: %s.servers[%d]: no host", path, i)
		}
	}
	if c.Stream != "" && !streamName.MatchString(c.Stream) {
		return fmt.Errorf("jslog: %s.stream: %q: letters, digits, - and _ only, at most 64", path, c.Stream)
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		return fmt.Errorf("jslog: %s.replicas: %d, want 1 to 5 (0 means %d)", path, c.Replicas, DefaultReplicas)
	}
	if c.MaxBytes < 0 {
		return fmt.Errorf("jslog: %s.maxBytes: %d is negative", path, c.MaxBytes)
	}
	if c.MaxMessages < 0 {
		return fmt.Errorf("jslog: %s.maxMessages: %d is negative", path, c.MaxMessages)
	}
	if c.Credentials != "" && c.NKey != "" {
		return fmt.Errorf("jslog: %s.nkey: set credentials or nkey, not both", path)
	}
	for _, f := range []struct{ name, file string }{
		{"credentials", c.Credentials}, {"nkey", c.NKey},
		{"tls.ca", c.TLS.CA}, {"tls.cert", c.TLS.Cert}, {"tls.key", c.TLS.Key},
	} {
		if f.file == "" {
			continue
		}
		if _, err := os.Stat(f.file); err != nil {
			return fmt.Errorf("jslog: %s.%s: %w", path, f.name, err)
		}
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		return fmt.Errorf("jslog: %s.tls: cert and key go together", path)
	}
	return nil
}

// withDefaults returns c with its zero fields set to the defaults.
func (c Config) withDefaults() Config {
	if c.Stream == "" {
		c.Stream = DefaultStream
	}
	if c.Replicas == 0 {
		c.Replicas = DefaultReplicas
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxMessages == 0 {
		c.MaxMessages = DefaultMaxMessages
	}
	return c
}

// natsOptions turns c into connection options.
func (c Config) natsOptions(name string) ([]nats.Option, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(false),
	}
	if c.Credentials != "" {
		opts = append(opts, nats.UserCredentials(c.Credentials))
	}
	if c.NKey != "" {
		o, err := nats.NkeyOptionFromSeed(c.NKey)
		if err != nil {
			return nil, fmt.Errorf("jslog: %s.nkey: %w", path, err)
		}
		opts = append(opts, o)
	}
	if c.TLS.CA != "" {
		opts = append(opts, nats.RootCAs(c.TLS.CA))
	}
	if c.TLS.Cert != "" {
		opts = append(opts, nats.ClientCert(c.TLS.Cert, c.TLS.Key))
	}
	return opts, nil
}

// redact returns the servers with any user information removed, for logs
// and errors.
func redact(servers []string) string {
	out := make([]string, len(servers))
	for i, s := range servers {
		u, err := url.Parse(s)
		if err != nil {
			out[i] = "(bad URL)"
			continue
		}
		if u.User != nil {
			u.User = url.User("REDACTED")
		}
		u.RawQuery = ""
		out[i] = u.String()
	}
	return strings.Join(out, ",")
}
