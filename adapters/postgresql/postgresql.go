package postgresql

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/event"
)

// Defaults for Config.
const (
	// DefaultHost is used when neither host nor connectionString names one.
	DefaultHost = "localhost"
	// DefaultPort is used when neither port nor connectionString names one.
	DefaultPort = "5432"
	// DefaultTimeout bounds connecting and each Send when Config.Timeout is
	// empty.
	DefaultTimeout = 30 * time.Second
	// PasswordEnv is read for the password when Config.Password is empty.
	PasswordEnv = "RELAY_POSTGRES_PASSWORD"
)

// Formats.
const (
	FormatNamespace = string(kit.FormatNamespace)
	FormatAccess    = string(kit.FormatAccess)
)

// Config is a PostgreSQL target's entry under notify.postgresql.<id>.
// Host, Port, User, Password and Database, when set, override what
// ConnectionString says.
type Config struct {
	// Enable starts the target; a disabled target is parsed, not started.
	Enable bool `json:"enable"`
	// Format is "namespace" (one row per object, the default when empty)
	// or "access" (one row per event).
	Format string `json:"format"`
	// ConnectionString holds libpq connection parameters, as key=value
	// pairs ("sslmode=disable") or a postgres:// URL. Optional.
	ConnectionString string `json:"connectionString,omitempty"`
	// Table is the table events are stored in, optionally schema-qualified
	// (schema.table); unquoted, so PostgreSQL folds it to lower case.
	// Required.
	Table string `json:"table"`
	// Host is the server's host name; empty means the connection string's,
	// else DefaultHost.
	Host string `json:"host,omitempty"`
	// Port is the server's port; empty means the connection string's, else
	// DefaultPort.
	Port string `json:"port,omitempty"`
	// User is the database user; empty means the connection string's, else
	// the user running the relay.
	User string `json:"user,omitempty"`
	// Password is the user's password; empty means RELAY_POSTGRES_PASSWORD,
	// else the connection string's (or ~/.pgpass).
	Password string `json:"password,omitempty"`
	// Database is the database name; empty means the connection string's,
	// else the user name.
	Database string `json:"database,omitempty"`
	// Timeout bounds connecting and each batch, as a Go duration; empty
	// means DefaultTimeout.
	Timeout string `json:"timeout,omitempty"`
	// Dedupe (access format only) stores each event once however often
	// it is sent: the table gains an event_id column, unique, holding
	// the event's id, and rows are inserted with ON CONFLICT DO NOTHING.
	// False keeps the guide's two-column table exactly. A table created
	// before without event_id is refused with the ALTER TABLE to run.
	Dedupe bool `json:"dedupe,omitempty"`
}

// Namespace reports whether the format is namespace (or empty).
func (c *Config) Namespace() bool { return kit.Format(c.Format).Namespace() }

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]{0,62}(\.[A-Za-z_][A-Za-z0-9_$]{0,62})?$`)

// Validate checks the configuration. Errors are *kit.FieldError.
func (c *Config) Validate() error {
	if err := kit.Format(c.Format).Validate(); err != nil {
		return err
	}
	if c.Table == "" {
		return kit.Fieldf("table", "required")
	}
	if c.Dedupe && c.Namespace() {
		return kit.Fieldf("dedupe", "only for the access format: namespace rows are upserted by key, which a re-sent event cannot duplicate")
	}
	if !identRE.MatchString(c.Table) {
		return kit.Fieldf("table", "%q is not a table name: letters, digits, _ and $, not starting with a digit, at most 63 characters, optionally schema.table", c.Table)
	}
	if c.Port != "" {
		if p, err := strconv.Atoi(c.Port); err != nil || p <= 0 || p > 65535 {
			return kit.Fieldf("port", "%q is not a port number", c.Port)
		}
	}
	if c.Timeout != "" {
		if d, err := time.ParseDuration(c.Timeout); err != nil || d <= 0 {
			return kit.Fieldf("timeout", "must be a positive duration such as \"30s\"")
		}
	}
	if _, err := c.connConfig(""); err != nil {
		return kit.Fieldf("connectionString", "%s", kit.Redact(err.Error(), c.Password))
	}
	return nil
}

// connConfig combines ConnectionString with the separate parameters.
func (c *Config) connConfig(envPassword string) (*pgx.ConnConfig, error) {
	password := c.Password
	if password == "" {
		password = envPassword
	}
	cs := strings.TrimSpace(c.ConnectionString)
	if strings.HasPrefix(cs, "postgres://") || strings.HasPrefix(cs, "postgresql://") {
		cc, err := pgx.ParseConfig(cs)
		if err != nil {
			return nil, err
		}
		if c.Host != "" || c.Port != "" {
			cc.Fallbacks = nil
		}
		if c.Host != "" {
			cc.Host = c.Host
			// sslmode=verify-full checks the certificate for the URL's
			// host (the parser set ServerName): check it for this one.
			if cc.TLSConfig != nil && cc.TLSConfig.ServerName != "" {
				cc.TLSConfig = cc.TLSConfig.Clone()
				cc.TLSConfig.ServerName = c.Host
			}
		}
		if c.Port != "" {
			p, _ := strconv.Atoi(c.Port)
			cc.Port = uint16(p)
		}
		if c.User != "" {
			cc.User = c.User
		}
		if password != "" {
			cc.Password = password
		}
		if c.Database != "" {
			cc.Database = c.Database
		}
		return cc, nil
	}
	// key=value: later settings override earlier ones.
	var b strings.Builder
	b.WriteString("host=" + quote(DefaultHost) + " port=" + DefaultPort + " ")
	b.WriteString(cs)
	for _, kv := range [][2]string{{"host", c.Host}, {"port", c.Port}, {"user", c.User}, {"password", password}, {"dbname", c.Database}} {
		if kv[1] != "" {
			b.WriteString(" " + kv[0] + "=" + quote(kv[1]))
		}
	}
	return pgx.ParseConfig(b.String())
}

// quote quotes a libpq key=value value.
func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// Target writes events to one table. Send is safe for concurrent use:
// each send in flight has a connection of its own, taken from a small
// pool of idle ones (a new one is dialled when none is idle), so the
// engine can keep several batches in flight (kit.Kind.InFlight).
type Target struct {
	cfg      Config
	cc       *pgx.ConnConfig
	password string
	timeout  time.Duration
	lg       *slog.Logger

	mu   sync.Mutex
	idle []*conn // connections no Send is using, the most recently used last

	upsertSQL, deleteSQL, insertSQL string
}

// maxIdle bounds the idle connections kept: more than the engine's
// default window, fewer than a server's default max_connections would
// notice.
const maxIdle = 16

// conn is one connection and whether the table was checked (or created)
// on it.
type conn struct {
	*pgx.Conn
	checked bool
}

var _ delivery.Target = (*Target)(nil)

// New returns a target for cfg. It does not connect: the connection is
// made, and the table checked or created, by the first Send.
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
	cc, err := cfg.connConfig(os.Getenv(PasswordEnv))
	if err != nil {
		return nil, kit.Fieldf("connectionString", "%s", kit.Redact(err.Error(), cfg.Password))
	}
	if cc.ConnectTimeout == 0 || cc.ConnectTimeout > timeout {
		cc.ConnectTimeout = timeout
	}
	if cc.RuntimeParams == nil {
		cc.RuntimeParams = map[string]string{}
	}
	if cc.RuntimeParams["application_name"] == "" {
		cc.RuntimeParams["application_name"] = "bucketrelay"
	}
	tb := cfg.Table
	insertSQL := "INSERT INTO " + tb + " (event_time, event_data) SELECT t, d FROM unnest($1::timestamptz[], $2::jsonb[]) WITH ORDINALITY AS u(t, d, n) ORDER BY n"
	if cfg.Dedupe {
		insertSQL = "INSERT INTO " + tb + " (event_time, event_data, event_id) SELECT t, d, i FROM unnest($1::timestamptz[], $2::jsonb[], $3::text[]) WITH ORDINALITY AS u(t, d, i, n) ORDER BY n ON CONFLICT (event_id) DO NOTHING"
	}
	return &Target{
		cfg: cfg, cc: cc, password: cc.Password, timeout: timeout, lg: lg.With("table", tb),
		upsertSQL: "INSERT INTO " + tb + " (key, value) SELECT * FROM unnest($1::text[], $2::jsonb[]) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
		deleteSQL: "DELETE FROM " + tb + " WHERE key = ANY($1::text[])",
		insertSQL: insertSQL,
	}, nil
}

// Send applies items as one transaction, on a connection of its own
// (Send is safe for concurrent use). It returns nil when the transaction
// committed, a *delivery.BatchError listing the items the table refused
// for good (the others were stored), a permanent error when the table has
// the wrong shape, and a retryable error otherwise.
func (t *Target) Send(ctx context.Context, items []delivery.Item) error {
	if len(items) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	c, err := t.get(ctx)
	if err != nil {
		return err
	}
	defer t.put(c)
	if t.cfg.Namespace() {
		err = t.sendNamespace(ctx, c, items)
	} else {
		err = t.sendAccess(ctx, c, items)
	}
	if err == nil {
		return nil
	}
	if isDataError(err) {
		return t.sendEach(ctx, c, items)
	}
	return t.classify(c, err)
}

// get returns an idle connection, or a new one, with the table checked.
func (t *Target) get(ctx context.Context) (*conn, error) {
	t.mu.Lock()
	var c *conn
	if n := len(t.idle); n > 0 {
		c, t.idle = t.idle[n-1], t.idle[:n-1]
	}
	t.mu.Unlock()
	if c != nil && c.IsClosed() {
		c = nil
	}
	if c == nil {
		pc, err := pgx.ConnectConfig(ctx, t.cc)
		if err != nil {
			return nil, t.errorf("connecting: %v", err)
		}
		c = &conn{Conn: pc}
	}
	if !c.checked {
		if err := t.prepareTable(ctx, c); err != nil {
			err = t.classify(c, err)
			t.put(c)
			return nil, err
		}
		c.checked = true
	}
	return c, nil
}

// put gives c back to the idle connections, or closes it when it broke or
// enough are idle.
func (t *Target) put(c *conn) {
	if c.IsClosed() {
		return
	}
	t.mu.Lock()
	if len(t.idle) < maxIdle {
		t.idle = append(t.idle, c)
		c = nil
	}
	t.mu.Unlock()
	if c != nil {
		closeConn(c)
	}
}

// schemaError is a table of the wrong shape.
type schemaError struct{ msg string }

func (e *schemaError) Error() string { return e.msg }

// prepareTable creates the table if it is missing and checks its columns.
func (t *Target) prepareTable(ctx context.Context, c *conn) error {
	cols := "key VARCHAR PRIMARY KEY, value JSONB"
	if !t.cfg.Namespace() {
		cols = "event_time TIMESTAMPTZ NOT NULL, event_data JSONB"
		if t.cfg.Dedupe {
			cols += ", event_id VARCHAR UNIQUE"
		}
	}
	var exists bool
	if err := c.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", t.cfg.Table).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		if _, err := c.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+t.cfg.Table+" ("+cols+")"); err != nil {
			return err
		}
		t.lg.Info("created table", "columns", cols)
		return nil
	}
	rows, err := c.Query(ctx, `SELECT attname, format_type(atttypid, atttypmod), attnotnull, atthasdef
		FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, t.cfg.Table)
	if err != nil {
		return err
	}
	type column struct {
		typ             string
		notNull, hasDef bool
	}
	have := map[string]column{}
	var order []string
	for rows.Next() {
		var name string
		var c column
		if err := rows.Scan(&name, &c.typ, &c.notNull, &c.hasDef); err != nil {
			rows.Close()
			return err
		}
		have[name] = c
		order = append(order, name)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	want := [][2]string{{"key", "text"}, {"value", "json"}}
	if !t.cfg.Namespace() {
		want = [][2]string{{"event_time", "timestamp"}, {"event_data", "json"}}
		if t.cfg.Dedupe {
			want = append(want, [2]string{"event_id", "text"})
		}
	}
	for _, w := range want {
		c, ok := have[w[0]]
		if !ok && w[0] == "event_id" {
			return &schemaError{fmt.Sprintf("postgresql: table %s has no column event_id, which dedupe needs: run ALTER TABLE %s ADD COLUMN event_id VARCHAR UNIQUE (existing rows keep a NULL id), or unset dedupe", t.cfg.Table, t.cfg.Table)}
		}
		if !ok {
			return &schemaError{fmt.Sprintf("postgresql: table %s has no column %s (the %s format needs %s)", t.cfg.Table, w[0], t.format(), cols)}
		}
		if !typeFits(c.typ, w[1]) {
			return &schemaError{fmt.Sprintf("postgresql: table %s: column %s is %s (the %s format needs %s)", t.cfg.Table, w[0], c.typ, t.format(), cols)}
		}
		delete(have, w[0])
	}
	if t.cfg.Dedupe {
		var unique bool
		if err := c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
			WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indnatts = 1 AND a.attname = 'event_id')`, t.cfg.Table).Scan(&unique); err != nil {
			return err
		}
		if !unique {
			return &schemaError{fmt.Sprintf("postgresql: table %s: column event_id is not unique, which dedupe needs: run ALTER TABLE %s ADD UNIQUE (event_id)", t.cfg.Table, t.cfg.Table)}
		}
	}
	for _, name := range order {
		if c, ok := have[name]; ok && c.notNull && !c.hasDef {
			return &schemaError{fmt.Sprintf("postgresql: table %s: column %s is NOT NULL without a default, and the %s format does not fill it", t.cfg.Table, name, t.format())}
		}
	}
	return nil
}

func (t *Target) format() string { return kit.Format(t.cfg.Format).Name() }

// typeFits reports whether a column of type typ (format_type) can hold
// what kind ("text", "json", "timestamp") says.
func typeFits(typ, kind string) bool {
	switch kind {
	case "text":
		return typ == "text" || strings.HasPrefix(typ, "character varying") || strings.HasPrefix(typ, "character(")
	case "json":
		return typ == "jsonb" || typ == "json"
	case "timestamp":
		return strings.HasPrefix(typ, "timestamp")
	}
	return false
}

func (t *Target) sendNamespace(ctx context.Context, c *conn, items []delivery.Item) error {
	var keys, dels []string
	var vals [][]byte
	size := 0
	for i := range items {
		size += len(items[i].Record) + len(`{"Records":[]}`)
	}
	buf := make([]byte, 0, size)
	for _, i := range kit.Newest(items) {
		it := &items[i]
		switch it.Op() {
		case event.OpPut:
			start := len(buf)
			buf = event.AppendRecords(buf, it.Record)
			keys = append(keys, it.Key)
			vals = append(vals, buf[start:len(buf):len(buf)])
		case event.OpDelete:
			dels = append(dels, it.Key)
		}
	}
	// Both statements go in one round trip; a batch without explicit
	// transaction control runs as one implicit transaction.
	var b pgx.Batch
	if len(keys) > 0 {
		b.Queue(t.upsertSQL, keys, vals)
	}
	if len(dels) > 0 {
		b.Queue(t.deleteSQL, dels)
	}
	if b.Len() == 0 {
		return nil
	}
	return c.SendBatch(ctx, &b).Close()
}

func (t *Target) sendAccess(ctx context.Context, c *conn, items []delivery.Item) error {
	times := make([]time.Time, len(items))
	vals := make([][]byte, len(items))
	size := 0
	for i := range items {
		size += len(items[i].Record) + len(`{"Records":[]}`)
	}
	buf := make([]byte, 0, size)
	for i := range items {
		times[i] = kit.EventTime(&items[i])
		start := len(buf)
		buf = event.AppendRecords(buf, items[i].Record)
		vals[i] = buf[start:len(buf):len(buf)]
	}
	if t.cfg.Dedupe {
		ids := make([]string, len(items))
		for i := range items {
			ids[i] = kit.EventID(&items[i])
		}
		_, err := c.Exec(ctx, t.insertSQL, times, vals, ids)
		return err
	}
	_, err := c.Exec(ctx, t.insertSQL, times, vals)
	return err
}

// sendEach stores items one statement at a time after their batch hit a
// data error, and reports the items that failed.
func (t *Target) sendEach(ctx context.Context, c *conn, items []delivery.Item) error {
	var failed []delivery.ItemError
	for i := range items {
		var err error
		if c.IsClosed() {
			err = t.errorf("connection lost")
		} else if t.cfg.Namespace() {
			err = t.sendNamespace(ctx, c, items[i:i+1])
		} else {
			err = t.sendAccess(ctx, c, items[i:i+1])
		}
		if err == nil {
			continue
		}
		if !isDataError(err) {
			err = t.classify(c, err)
			if delivery.IsPermanent(err) {
				return err // the table itself is wrong
			}
			failed = append(failed, delivery.ItemError{Index: i, Err: err})
			for j := i + 1; j < len(items); j++ {
				failed = append(failed, delivery.ItemError{Index: j, Err: err})
			}
			break
		}
		failed = append(failed, delivery.ItemError{Index: i, Err: delivery.Permanent(t.errorf("%s %s rejected: %v", t.cfg.Table, items[i].Key, err))})
	}
	if failed == nil {
		return nil
	}
	return &delivery.BatchError{Failed: failed}
}

// isDataError reports whether the server refused the data itself
// (SQLSTATE class 22, data exception, or 23, integrity constraint
// violation): sending the same item again can never succeed.
func isDataError(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (strings.HasPrefix(pe.Code, "22") || strings.HasPrefix(pe.Code, "23"))
}

// classify turns an error on c into what Send returns, closing c when it
// broke (and the idle connections with it: they are likely broken too)
// and forgetting c's table check when the table may have changed.
func (t *Target) classify(c *conn, err error) error {
	var se *schemaError
	if errors.As(err, &se) {
		return delivery.Permanent(se)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "42P01", "42703", "42804": // undefined table or column, type mismatch: check again
			c.checked = false
		case "42P10":
			return delivery.Permanent(t.errorf("table %s has no unique constraint on key, which the namespace format needs (key VARCHAR PRIMARY KEY): %v", t.cfg.Table, err))
		case "42601": // syntax error: a reserved word as table name
			return delivery.Permanent(t.errorf("table %s: %v", t.cfg.Table, err))
		}
		if c.IsClosed() {
			t.dropIdle()
		}
		if strings.HasPrefix(err.Error(), "postgresql: ") {
			return err
		}
		return t.errorf("%v", err)
	}
	// Anything but an answer from the server leaves the connection in an
	// unknown state.
	closeConn(c)
	t.dropIdle()
	if strings.HasPrefix(err.Error(), "postgresql: ") {
		return err
	}
	return t.errorf("%v", err)
}

func (t *Target) errorf(format string, args ...any) error {
	return errors.New("postgresql: " + kit.Redact(fmt.Sprintf(format, args...), t.password))
}

// closeConn closes c, waiting at most a second for the server.
func closeConn(c *conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	c.Close(ctx)
	cancel()
}

// dropIdle closes the idle connections.
func (t *Target) dropIdle() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, c := range idle {
		closeConn(c)
	}
}

// Close closes the connections.
func (t *Target) Close() error {
	t.dropIdle()
	return nil
}
