package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/event"
)

// Defaults for Config.
const (
	// DefaultTimeout bounds connecting and each round trip when
	// Config.Timeout is empty.
	DefaultTimeout = 10 * time.Second
	// PasswordEnv is read for the password when Config.Password is empty.
	PasswordEnv = "RELAY_REDIS_PASSWORD"
)

// Formats.
const (
	FormatNamespace = string(kit.FormatNamespace)
	FormatAccess    = string(kit.FormatAccess)
)

// Config is a Redis target's entry under notify.redis.<id>.
type Config struct {
	// Enable starts the target; a disabled target is parsed, not started.
	Enable bool `json:"enable"`
	// Format is "namespace" (a hash, the default when empty) or "access"
	// (a list).
	Format string `json:"format"`
	// Address is the server's host:port. Required.
	Address string `json:"address"`
	// Password authenticates the connection (AUTH); empty means the
	// RELAY_REDIS_PASSWORD environment variable, and no AUTH if that is
	// empty too.
	Password string `json:"password,omitempty"`
	// Key is the Redis key events are stored under. Required.
	Key string `json:"key"`
	// User is the ACL user name (Redis 6+); empty means the default user.
	User string `json:"user,omitempty"`
	// DB is the database number selected after connecting; 0 by default.
	DB int `json:"db,omitempty"`
	// TLS connects with TLS; implied by CAFile or ClientCert.
	TLS bool `json:"tls,omitempty"`
	// TLSSkipVerify accepts any server certificate. For tests only.
	TLSSkipVerify bool `json:"tlsSkipVerify,omitempty"`
	// TLSFiles are the CA file and the client certificate: caFile,
	// clientCert and clientKey. Naming one implies TLS.
	kit.TLSFiles
	// Timeout bounds connecting and each round trip, as a Go duration;
	// empty means DefaultTimeout.
	Timeout string `json:"timeout,omitempty"`
}

// Namespace reports whether the format is namespace (or empty).
func (c *Config) Namespace() bool { return kit.Format(c.Format).Namespace() }

// Validate checks the configuration. Errors are *kit.FieldError.
func (c *Config) Validate() error {
	if err := kit.Format(c.Format).Validate(); err != nil {
		return err
	}
	if c.Address == "" {
		return kit.Fieldf("address", "required")
	}
	if _, port, err := net.SplitHostPort(c.Address); err != nil || port == "" {
		return kit.Fieldf("address", "must be host:port, such as 127.0.0.1:6379")
	}
	if c.Key == "" {
		return kit.Fieldf("key", "required")
	}
	if c.DB < 0 {
		return kit.Fieldf("db", "must not be negative")
	}
	if err := c.TLSFiles.Validate(""); err != nil {
		return err
	}
	if c.Timeout != "" {
		if d, err := time.ParseDuration(c.Timeout); err != nil || d <= 0 {
			return kit.Fieldf("timeout", "must be a positive duration such as \"10s\"")
		}
	}
	return nil
}

// Target writes events to one Redis key over one connection.
type Target struct {
	cfg      Config
	password string
	opts     []redis.DialOption
	tls      *tls.Config // nil: plain TCP
	timeout  time.Duration
	lg       *slog.Logger

	// idle holds the connections no Send is using: one in the usual case,
	// one per concurrent Send with "inflight" or "lanes" above 1.
	mu   sync.Mutex
	idle []*conn
}

// conn is one connection to Redis and what goes with it.
type conn struct {
	redis.Conn
	raw     net.Conn // under Conn (TLS included): batches are written to it
	checked bool     // the key's type was checked on it
	buf     []byte   // the batch's commands (resp.go)
	scratch []byte   // a formatted time
}

var _ delivery.Target = (*Target)(nil)

// New returns a target for cfg. It reads the TLS files but does not
// connect: the connection is made by the first Send.
func New(cfg Config, lg *slog.Logger) (*Target, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if lg == nil {
		lg = slog.Default()
	}
	timeout := DefaultTimeout
	if cfg.Timeout != "" {
		timeout, _ = time.ParseDuration(cfg.Timeout)
	}
	password := cfg.Password
	if password == "" {
		password = os.Getenv(PasswordEnv)
	}
	// The connect timeout and keep-alive are dialer's (connect).
	opts := []redis.DialOption{
		redis.DialReadTimeout(timeout),
		redis.DialWriteTimeout(timeout),
		redis.DialDatabase(cfg.DB),
		redis.DialClientName("bucketrelay"),
	}
	if password != "" {
		opts = append(opts, redis.DialPassword(password))
	}
	if cfg.User != "" {
		opts = append(opts, redis.DialUsername(cfg.User))
	}
	var tc *tls.Config
	if cfg.TLS || cfg.TLSFiles.IsSet() {
		host, _, _ := net.SplitHostPort(cfg.Address)
		var err error
		if tc, err = cfg.TLSFiles.Config("", host); err != nil {
			return nil, err
		}
		tc.InsecureSkipVerify = cfg.TLSSkipVerify
	}
	return &Target{cfg: cfg, password: password, opts: opts, tls: tc, timeout: timeout, lg: lg.With("key", cfg.Key)}, nil
}

// Send applies items as one atomic batch: namespace items as HSET/HDEL in
// one MULTI/EXEC, access items as one RPUSH. It returns nil when Redis has
// acknowledged the whole batch, a permanent error when the key holds a
// value of the wrong type, and a retryable error otherwise (nothing of the
// batch was applied, or, if the connection broke while waiting for the
// answer, possibly all of it).
func (t *Target) Send(ctx context.Context, items []delivery.Item) error {
	if len(items) == 0 {
		return nil
	}
	c, err := t.connect(ctx)
	if err != nil {
		return err
	}
	if t.cfg.Namespace() {
		err = t.sendNamespace(ctx, c, items)
	} else {
		err = t.sendAccess(ctx, c, items)
	}
	t.release(c)
	return err
}

// connect takes an idle connection, or dials one, and checks the key's
// type on it if that was not done yet. Send may run concurrently: each
// has a connection of its own.
func (t *Target) connect(ctx context.Context) (*conn, error) {
	var c *conn
	t.mu.Lock()
	if n := len(t.idle); n > 0 {
		c, t.idle = t.idle[n-1], t.idle[:n-1]
	}
	t.mu.Unlock()
	if c != nil && c.Err() != nil {
		c.Close()
		c = nil
	}
	if c == nil {
		var err error
		if c, err = t.dial(ctx); err != nil {
			return nil, err
		}
	}
	if !c.checked {
		if err := t.checkType(ctx, c); err != nil {
			t.release(c)
			return nil, err
		}
		c.checked = true
	}
	return c, nil
}

// dial makes a connection: TCP, TLS if configured, AUTH, SELECT. The
// timeout bounds the TLS handshake too: a plain-text port never answers a
// ClientHello.
func (t *Target) dial(ctx context.Context) (*conn, error) {
	dctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	c := &conn{}
	opts := append([]redis.DialOption{redis.DialContextFunc(dialer(t.tls, &c.raw))}, t.opts...)
	rc, err := redis.DialContext(dctx, "tcp", t.cfg.Address, opts...)
	if err != nil {
		return nil, t.errorf("connecting to %s: %v", t.cfg.Address, err)
	}
	c.Conn = rc
	return c, nil
}

// release puts c back among the idle connections, or closes it if it
// broke.
func (t *Target) release(c *conn) {
	t.mu.Lock()
	if c.Err() == nil {
		t.idle = append(t.idle, c)
		c = nil
	}
	t.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// checkType makes sure the key is absent or of the format's type; a key
// of another type is a permanent error.
func (t *Target) checkType(ctx context.Context, c *conn) error {
	wrong, err := t.keyType(ctx, c.Conn)
	if wrong {
		return delivery.Permanent(err)
	}
	return err
}

// keyType asks c whether the key is absent or of the format's type;
// wrong says it has another type (err then names both).
func (t *Target) keyType(ctx context.Context, c redis.Conn) (wrong bool, err error) {
	typ, err := redis.String(redis.DoContext(c, ctx, "TYPE", t.cfg.Key))
	if err != nil {
		return false, t.errorf("checking the type of key %s: %v", t.cfg.Key, err)
	}
	want := "hash"
	if !t.cfg.Namespace() {
		want = "list"
	}
	if typ != "none" && typ != want {
		return true, t.errorf("key %s is a %s, want a %s", t.cfg.Key, typ, want)
	}
	return false, nil
}

// sendNamespace writes the batch's newest operation per key as HSET and
// HDEL in one MULTI/EXEC.
func (t *Target) sendNamespace(ctx context.Context, c *conn, items []delivery.Item) error {
	// Without deletes, HSET of every item in log order leaves each field
	// with its newest value (Redis sets the pairs in order); with deletes,
	// only each key's newest item is applied, since HSET and HDEL are
	// separate commands.
	var newest []int
	puts, dels, size := 0, 0, 0
	for i := range items {
		switch items[i].Op() {
		case event.OpPut:
			puts++
			size += len(items[i].Key) + len(items[i].Record) + recordsWrapLen + 32
		case event.OpDelete:
			dels++
			size += len(items[i].Key) + 16
		}
	}
	if dels > 0 {
		newest = kit.Newest(items)
		puts, dels = 0, 0
		for _, i := range newest {
			switch items[i].Op() {
			case event.OpPut:
				puts++
			case event.OpDelete:
				dels++
			}
		}
	}
	if puts == 0 && dels == 0 {
		return nil // nothing to write
	}
	b := c.buffer(size + 128 + 2*len(t.cfg.Key))
	b = appendCommand(b, "MULTI")
	replies := 2 // MULTI's and EXEC's
	for _, op := range []event.Op{event.OpPut, event.OpDelete} {
		n, name := 2*puts, "HSET"
		if op == event.OpDelete {
			n, name = dels, "HDEL"
		}
		if n == 0 {
			continue
		}
		b = appendArray(b, 2+n)
		b = appendBulk(b, name)
		b = appendBulk(b, t.cfg.Key)
		for j := range len(items) {
			i := j
			if newest != nil {
				if j >= len(newest) {
					break
				}
				i = newest[j]
			}
			it := &items[i]
			if it.Op() != op {
				continue
			}
			b = appendBulk(b, it.Key)
			if op == event.OpPut {
				b = appendRecordsBulk(b, it.Record)
			}
		}
		replies++
	}
	b = appendCommand(b, "EXEC")
	c.keep(b)
	reply, err := t.roundTrip(ctx, c, b, replies)
	if err != nil {
		return t.classify(c, "EXEC", err)
	}
	results, ok := reply.([]any)
	if !ok {
		return t.errorf("EXEC was aborted (reply %T)", reply)
	}
	for _, r := range results {
		if e, ok := r.(redis.Error); ok {
			return t.classify(c, "EXEC", e)
		}
	}
	return nil
}

// sendAccess appends the batch to the list in one RPUSH.
func (t *Target) sendAccess(ctx context.Context, c *conn, items []delivery.Item) error {
	size := 64 + 2*len(t.cfg.Key)
	for i := range items {
		size += len(items[i].Record) + len(`["2006-01-02T15:04:05.999999999Z07:00",{"Records":[]}]`) + 16
	}
	b := c.buffer(size)
	b = appendArray(b, 2+len(items))
	b = appendBulk(b, "RPUSH")
	b = appendBulk(b, t.cfg.Key)
	for i := range items {
		b, c.scratch = appendAccessBulk(b, c.scratch, &items[i])
	}
	c.keep(b)
	if _, err := t.roundTrip(ctx, c, b, 1); err != nil {
		return t.classify(c, "RPUSH", err)
	}
	return nil
}

// roundTrip writes cmds (n commands) to c in one write and reads their n
// replies. It returns the last reply; or, once every reply was read, the
// first error reply; or the error that broke the connection (c is then
// closed, and the batch may or may not have been applied).
func (t *Target) roundTrip(ctx context.Context, c *conn, cmds []byte, n int) (any, error) {
	if err := writeAll(ctx, c.raw, cmds, t.timeout); err != nil {
		c.Close()
		return nil, err
	}
	var last any
	var replyErr error
	for range n {
		r, err := redis.ReceiveContext(c.Conn, ctx)
		var re redis.Error
		switch {
		case errors.As(err, &re):
			if replyErr == nil {
				replyErr = err
			}
		case err != nil:
			return nil, err // redigo closed c
		}
		last = r
	}
	return last, replyErr
}

// keep keeps b as the connection's buffer unless it is too large to keep.
func (c *conn) keep(b []byte) {
	if cap(b) <= 16<<20 {
		c.buf = b
	}
}

// buffer returns an empty buffer of at least n bytes: the connection's,
// reused across sends (keep), or a new one.
func (c *conn) buffer(n int) []byte {
	if cap(c.buf) < n {
		return make([]byte, 0, n)
	}
	return c.buf[:0]
}

// AppendAccessItem appends to dst the access-format list item of it:
// [eventTime, {"Records":[record]}], eventTime in RFC 3339 as
// kit.EventTime gives it (the record's eventTime, else the time it entered
// the log; never the time of the send).
func AppendAccessItem(dst []byte, it *delivery.Item) []byte {
	dst = append(dst, `["`...)
	dst = kit.EventTime(it).AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `",`...)
	dst = event.AppendRecords(dst, it.Record)
	return append(dst, ']')
}

// classify turns a command's error into the error Send returns: WRONGTYPE
// is permanent, and forces a new type check; anything else is retried.
func (t *Target) classify(c *conn, cmd string, err error) error {
	var re redis.Error
	if errors.As(err, &re) && strings.HasPrefix(string(re), "WRONGTYPE") {
		c.checked = false
		want := "hash"
		if !t.cfg.Namespace() {
			want = "list"
		}
		return delivery.Permanent(t.errorf("key %s is not a %s: %v", t.cfg.Key, want, err))
	}
	return t.errorf("%s: %v", cmd, err)
}

func (t *Target) errorf(format string, args ...any) error {
	return errors.New("redis: " + kit.Redact(fmt.Sprintf(format, args...), t.password))
}

// Close closes the connections.
func (t *Target) Close() error {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, c := range idle {
		c.Close()
	}
	return nil
}
