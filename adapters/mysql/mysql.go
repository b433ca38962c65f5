package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/event"
)

// Formats of Config.Format.
const (
	FormatNamespace = string(kit.FormatNamespace)
	FormatAccess    = string(kit.FormatAccess)
)

// Defaults.
const (
	// DefaultPort is used when Config.Port is empty.
	DefaultPort = "3306"
	// DefaultHost is used when Config.Host is empty.
	DefaultHost = "127.0.0.1"
	// RowsPerStatement bounds the rows of one INSERT or the keys of one
	// DELETE.
	RowsPerStatement = 500
	// MaxOpenConns bounds the connection pool.
	MaxOpenConns = 4
	// PasswordEnv is the environment variable read for the password when
	// Config.Password (or the DSN's password) is empty.
	PasswordEnv = "RELAY_MYSQL_PASSWORD"
)

// Config is a MySQL target's entry under notify.mysql.<id>. Field names
// are the seed's.
type Config struct {
	// Enable starts the target; a disabled target is parsed, not started.
	Enable bool `json:"enable"`
	// Format is "namespace" (the default when empty) or "access".
	Format string `json:"format"`
	// DSNString is a go-sql-driver/mysql DSN
	// ("user:pass@tcp(host:3306)/db?tls=true"). When set, Host, Port, User,
	// Password and Database are ignored.
	DSNString string `json:"dsnString"`
	// Table is the table events are written to. Required: letters, digits,
	// '_' and '$', at most 64 characters.
	Table string `json:"table"`
	// Host is the server's host name; empty means DefaultHost.
	Host string `json:"host"`
	// Port is the server's port; empty means DefaultPort.
	Port string `json:"port"`
	// User is the database user.
	User string `json:"user"`
	// Password is the user's password; empty means the environment
	// variable RELAY_MYSQL_PASSWORD.
	Password string `json:"password"`
	// Database is the database (schema) holding the table. Required unless
	// DSNString names one.
	Database string `json:"database"`
	// CAFile, if set, turns TLS on and trusts the CAs in this PEM file
	// instead of the system's, with no fallback to plain text (not even
	// with tls=preferred in DSNString). TLS can also be set in DSNString
	// (tls=true).
	CAFile string `json:"caFile,omitempty"`
	// ClientCert and ClientKey are PEM files for TLS client authentication
	// (users created with REQUIRE X509); both or neither, and they turn TLS
	// on like CAFile. Empty by default.
	ClientCert string `json:"clientCert,omitempty"`
	ClientKey  string `json:"clientKey,omitempty"`
	// Dedupe (access format only) stores each event once however often
	// it is sent: the table gains an event_id column with a unique index,
	// holding the event's id, and a re-sent row changes nothing (INSERT …
	// ON DUPLICATE KEY UPDATE event_id = event_id; not INSERT IGNORE,
	// which would also hide bad data). False keeps the guide's two-column
	// table exactly. A table created before without event_id is refused
	// with the ALTER TABLE to run.
	Dedupe bool `json:"dedupe,omitempty"`
}

// tlsFiles returns the TLS block of c.
func (c *Config) tlsFiles() *kit.TLSFiles {
	return &kit.TLSFiles{CAFile: c.CAFile, ClientCert: c.ClientCert, ClientKey: c.ClientKey}
}

var tableRE = regexp.MustCompile(`^[A-Za-z0-9_$]{1,64}$`)

// Namespace reports whether the target keeps one row per object (format
// "namespace" or empty) rather than appending (format "access").
func (c *Config) Namespace() bool { return kit.Format(c.Format).Namespace() }

// Validate checks the configuration. Errors are *kit.FieldError.
func (c *Config) Validate() error {
	if err := kit.Format(c.Format).Validate(); err != nil {
		return err
	}
	if c.Table == "" {
		return kit.Fieldf("table", "required")
	}
	if !tableRE.MatchString(c.Table) {
		return kit.Fieldf("table", "%q is not a plain table name (letters, digits, _ and $, at most 64)", c.Table)
	}
	if err := c.tlsFiles().Validate(""); err != nil {
		return err
	}
	if c.Dedupe && c.Namespace() {
		return kit.Fieldf("dedupe", "only for the access format: namespace rows are upserted by key, which a re-sent event cannot duplicate")
	}
	if c.DSNString != "" {
		mc, err := mysql.ParseDSN(c.DSNString)
		if err != nil {
			return kit.Fieldf("dsnString", "%s", kit.Redact(err.Error(), c.DSNString))
		}
		if mc.DBName == "" {
			return kit.Fieldf("dsnString", "names no database (user:pass@tcp(host:3306)/database)")
		}
		return nil
	}
	if c.Database == "" {
		return kit.Fieldf("database", "required when dsnString is empty")
	}
	if c.Port != "" {
		var p int
		if _, err := fmt.Sscan(c.Port, &p); err != nil || p <= 0 || p > 65535 {
			return kit.Fieldf("port", "%q is not a port number", c.Port)
		}
	}
	return nil
}

// driverConfig returns the driver's configuration for c.
func (c *Config) driverConfig() (*mysql.Config, error) {
	var mc *mysql.Config
	if c.DSNString != "" {
		var err error
		if mc, err = mysql.ParseDSN(c.DSNString); err != nil {
			return nil, kit.Fieldf("dsnString", "%s", kit.Redact(err.Error(), c.DSNString))
		}
	} else {
		mc = mysql.NewConfig()
		host, port := c.Host, c.Port
		if host == "" {
			host = DefaultHost
		}
		if port == "" {
			port = DefaultPort
		}
		mc.Net = "tcp"
		mc.Addr = net.JoinHostPort(host, port)
		mc.User = c.User
		mc.Passwd = c.Password
		mc.DBName = c.Database
	}
	if mc.Passwd == "" {
		mc.Passwd = os.Getenv(PasswordEnv)
	}
	if c.tlsFiles().IsSet() {
		host, _, _ := net.SplitHostPort(mc.Addr)
		tc, err := c.tlsFiles().Config("", host)
		if err != nil {
			return nil, err
		}
		mc.TLS = tc
		// tls=preferred in the DSN would still fall back to plain text
		// against a server without TLS.
		mc.AllowFallbackToPlaintext = false
	}
	// Multi-row statements are sent as text: one round trip each instead of
	// prepare, execute and close.
	mc.InterpolateParams = true
	mc.Loc = time.UTC
	if mc.Timeout == 0 {
		mc.Timeout = 5 * time.Second
	}
	if mc.ReadTimeout == 0 {
		mc.ReadTimeout = 60 * time.Second
	}
	if mc.WriteTimeout == 0 {
		mc.WriteTimeout = 60 * time.Second
	}
	return mc, nil
}

// Target writes events to one table.
type Target struct {
	cfg       Config
	db        *sql.DB
	namespace bool
	table     string // quoted
	secret    string
	lg        *slog.Logger
	ready     atomic.Bool // the table exists and has the right shape
}

var _ delivery.Target = (*Target)(nil)

// New returns a target for cfg. It opens a connection pool but does not
// dial: the first Send connects.
func New(cfg Config, lg *slog.Logger) (*Target, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if lg == nil {
		lg = slog.Default()
	}
	mc, err := cfg.driverConfig()
	if err != nil {
		return nil, err
	}
	mc.Logger = driverLogger{lg, mc.Passwd}
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, kit.Fieldf("dsnString", "%s", kit.Redact(err.Error(), mc.Passwd))
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(MaxOpenConns)
	// As many idle as open: the sends in flight (kind.go InFlight, up to
	// MaxOpenConns at once) each keep their connection between batches
	// rather than dialling and authenticating again.
	db.SetMaxIdleConns(MaxOpenConns)
	db.SetConnMaxLifetime(10 * time.Minute)
	db.SetConnMaxIdleTime(2 * time.Minute)
	return &Target{
		cfg: cfg, db: db, namespace: cfg.Namespace(), table: "`" + cfg.Table + "`",
		secret: mc.Passwd, lg: lg,
	}, nil
}

// driverLogger sends the driver's own messages ("unexpected EOF") to slog at
// debug level, redacted: the errors it logs are returned to Send as well.
type driverLogger struct {
	lg     *slog.Logger
	secret string
}

func (d driverLogger) Print(v ...any) {
	d.lg.Debug("mysql driver: " + kit.Redact(fmt.Sprint(v...), d.secret))
}

// Close closes the connection pool.
func (t *Target) Close() error { return t.db.Close() }

// Send writes items in one transaction. See the package comment for what
// is retried and what is permanent.
func (t *Target) Send(ctx context.Context, items []delivery.Item) error {
	if len(items) == 0 {
		return nil
	}
	if err := t.prepare(ctx); err != nil {
		return err
	}
	err := t.writeBatch(ctx, items)
	if err == nil {
		return nil
	}
	if !isDataError(err) {
		return t.classify(err)
	}
	t.lg.Debug("batch refused for its data, writing items one by one", "err", t.redact(err))
	return t.writeEach(ctx, items)
}

// prepare pings the server and creates or checks the table, once.
func (t *Target) prepare(ctx context.Context) error {
	if t.ready.Load() {
		return nil
	}
	if err := t.db.PingContext(ctx); err != nil {
		return t.classify(err)
	}
	if err := t.ensureTable(ctx); err != nil {
		return err
	}
	t.ready.Store(true)
	return nil
}

func (t *Target) ensureTable(ctx context.Context) error {
	var ddl string
	if t.namespace {
		ddl = "CREATE TABLE IF NOT EXISTS " + t.table + " (key_name VARBINARY(2048) NOT NULL, value JSON, PRIMARY KEY (key_name))"
	} else {
		ddl = "CREATE TABLE IF NOT EXISTS " + t.table + " (event_time DATETIME(6) NOT NULL, event_data JSON)"
		if t.cfg.Dedupe {
			ddl = "CREATE TABLE IF NOT EXISTS " + t.table + " (event_time DATETIME(6) NOT NULL, event_data JSON, event_id VARCHAR(64), UNIQUE KEY (event_id))"
		}
	}
	if _, err := t.db.ExecContext(ctx, ddl); err != nil {
		return t.classify(err)
	}
	rows, err := t.db.QueryContext(ctx,
		"SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?", t.cfg.Table)
	if err != nil {
		return t.classify(err)
	}
	cols := map[string]bool{}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			rows.Close()
			return t.classify(err)
		}
		cols[strings.ToLower(c)] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return t.classify(err)
	}
	want := []string{"event_time", "event_data"}
	if t.namespace {
		want = []string{"key_name", "value"}
	}
	for _, c := range want {
		if !cols[c] {
			return delivery.Permanent(fmt.Errorf("mysql: table %s has no column %s, which the %s format needs", t.cfg.Table, c, t.formatName()))
		}
	}
	if t.cfg.Dedupe && !cols["event_id"] {
		return delivery.Permanent(fmt.Errorf("mysql: table %s has no column event_id, which dedupe needs: run ALTER TABLE %s ADD COLUMN event_id VARCHAR(64), ADD UNIQUE KEY (event_id) (existing rows keep a NULL id), or unset dedupe", t.cfg.Table, t.cfg.Table))
	}
	column := "key_name"
	if !t.namespace {
		if !t.cfg.Dedupe {
			return nil
		}
		column = "event_id"
	}
	// ON DUPLICATE KEY needs a unique index on the column alone.
	var n int
	err = t.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.STATISTICS s
		WHERE s.TABLE_SCHEMA = DATABASE() AND s.TABLE_NAME = ? AND s.NON_UNIQUE = 0 AND s.COLUMN_NAME = ?
		AND (SELECT COUNT(*) FROM information_schema.STATISTICS o
		     WHERE o.TABLE_SCHEMA = s.TABLE_SCHEMA AND o.TABLE_NAME = s.TABLE_NAME AND o.INDEX_NAME = s.INDEX_NAME) = 1`,
		t.cfg.Table, column).Scan(&n)
	if err != nil {
		return t.classify(err)
	}
	switch {
	case n == 0 && t.namespace:
		return delivery.Permanent(fmt.Errorf("mysql: table %s has no unique index on column key_name, which the namespace format needs", t.cfg.Table))
	case n == 0:
		return delivery.Permanent(fmt.Errorf("mysql: table %s has no unique index on column event_id, which dedupe needs: run ALTER TABLE %s ADD UNIQUE KEY (event_id)", t.cfg.Table, t.cfg.Table))
	}
	return nil
}

func (t *Target) formatName() string { return kit.Format(t.cfg.Format).Name() }

// writeBatch writes every item in one transaction.
func (t *Target) writeBatch(ctx context.Context, items []delivery.Item) (err error) {
	tx, err := t.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if t.namespace {
		var puts, dels []*delivery.Item
		for i := range items {
			switch items[i].Op() {
			case event.OpDelete:
				dels = append(dels, &items[i])
			case event.OpPut:
				puts = append(puts, &items[i])
			} // OpNone (access events) changes nothing
		}
		if len(dels) > 0 {
			// The puts go before the deletes: with both, only each key's
			// newest item may be applied, or a key deleted and then put
			// again in the batch would end deleted. (Puts alone need no
			// care: the rows of an upsert are applied in order.)
			puts, dels = puts[:0], dels[:0]
			for _, i := range kit.Newest(items) {
				switch items[i].Op() {
				case event.OpDelete:
					dels = append(dels, &items[i])
				case event.OpPut:
					puts = append(puts, &items[i])
				}
			}
		}
		for len(puts) > 0 {
			n := min(len(puts), RowsPerStatement)
			if err := t.upsert(ctx, tx, puts[:n]); err != nil {
				return err
			}
			puts = puts[n:]
		}
		for len(dels) > 0 {
			n := min(len(dels), RowsPerStatement)
			if err := t.delete(ctx, tx, dels[:n]); err != nil {
				return err
			}
			dels = dels[n:]
		}
	} else {
		for len(items) > 0 {
			n := min(len(items), RowsPerStatement)
			if err := t.append(ctx, tx, items[:n]); err != nil {
				return err
			}
			items = items[n:]
		}
	}
	return tx.Commit()
}

// execer is a *sql.Tx or a *sql.DB.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (t *Target) upsert(ctx context.Context, ex execer, items []*delivery.Item) error {
	var b strings.Builder
	b.WriteString("INSERT INTO ")
	b.WriteString(t.table)
	b.WriteString(" (key_name, value) VALUES ")
	args := make([]any, 0, 2*len(items))
	for i, it := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?)")
		// Strings, not []byte: the driver would send bytes as _binary'…',
		// which MySQL's JSON type refuses.
		args = append(args, it.Key, recordsJSON(it.Record))
	}
	b.WriteString(" ON DUPLICATE KEY UPDATE value = VALUES(value)")
	_, err := ex.ExecContext(ctx, b.String(), args...)
	return err
}

// recordsJSON returns event.AppendRecords(nil, rec), {"Records":[rec]}, as a
// string made in one allocation.
func recordsJSON(rec []byte) string {
	var b strings.Builder
	b.Grow(len(rec) + len(`{"Records":[]}`))
	b.WriteString(`{"Records":[`)
	b.Write(rec)
	b.WriteString(`]}`)
	return b.String()
}

func (t *Target) delete(ctx context.Context, ex execer, items []*delivery.Item) error {
	var b strings.Builder
	b.WriteString("DELETE FROM ")
	b.WriteString(t.table)
	b.WriteString(" WHERE key_name IN (")
	args := make([]any, 0, len(items))
	for i, it := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('?')
		args = append(args, it.Key)
	}
	b.WriteByte(')')
	_, err := ex.ExecContext(ctx, b.String(), args...)
	return err
}

func (t *Target) append(ctx context.Context, ex execer, items []delivery.Item) error {
	var b strings.Builder
	b.WriteString("INSERT INTO ")
	b.WriteString(t.table)
	if t.cfg.Dedupe {
		b.WriteString(" (event_time, event_data, event_id) VALUES ")
	} else {
		b.WriteString(" (event_time, event_data) VALUES ")
	}
	args := make([]any, 0, 3*len(items))
	for i := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		if t.cfg.Dedupe {
			b.WriteString("(?,?,?)")
			args = append(args, kit.EventTime(&items[i]), recordsJSON(items[i].Record), kit.EventID(&items[i]))
			continue
		}
		b.WriteString("(?,?)")
		args = append(args, kit.EventTime(&items[i]), recordsJSON(items[i].Record))
	}
	if t.cfg.Dedupe {
		// A re-sent event meets its row's event_id and changes nothing.
		b.WriteString(" ON DUPLICATE KEY UPDATE event_id = event_id")
	}
	_, err := ex.ExecContext(ctx, b.String(), args...)
	return err
}

// writeEach writes items one statement each, outside a transaction, to
// find those the server refuses. It stops at the first error that is not
// about an item's data and reports the rest as not sent.
func (t *Target) writeEach(ctx context.Context, items []delivery.Item) error {
	var failed []delivery.ItemError
	for i := range items {
		it := &items[i]
		var err error
		switch {
		case !t.namespace:
			err = t.append(ctx, t.db, items[i:i+1])
		case it.Op() == event.OpDelete:
			err = t.delete(ctx, t.db, []*delivery.Item{it})
		case it.Op() == event.OpPut:
			err = t.upsert(ctx, t.db, []*delivery.Item{it})
		}
		if err == nil {
			continue
		}
		if isDataError(err) {
			failed = append(failed, delivery.ItemError{Index: i, Err: delivery.Permanent(fmt.Errorf("mysql: %s refused %s: %s", t.cfg.Table, it.Key, t.redact(err)))})
			continue
		}
		cerr := t.classify(err)
		for j := i; j < len(items); j++ {
			failed = append(failed, delivery.ItemError{Index: j, Err: cerr})
		}
		break
	}
	if failed == nil {
		return nil
	}
	return &delivery.BatchError{Failed: failed}
}

// dataErrors are server errors about one row's data.
var dataErrors = map[uint16]bool{
	1048: true, // column cannot be null
	1264: true, // out of range value
	1292: true, // incorrect datetime value
	1366: true, // incorrect string value
	1406: true, // data too long for column
	3140: true, // MySQL: invalid JSON text
	3144: true, // MySQL: cannot create a JSON value from a binary string
	4025: true, // MariaDB: CONSTRAINT (JSON_VALID) failed
	4038: true, // MariaDB: syntax error in JSON text
}

func isDataError(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && dataErrors[me.Number]
}

// classify turns a driver error into the error Send returns: permanent for
// errors no retry can fix that are about the statement itself, retryable
// for everything else (connection failures, deadlocks, lock timeouts,
// access denied, a server shutting down).
func (t *Target) classify(err error) error {
	if err == nil {
		return nil
	}
	msg := fmt.Errorf("mysql: %s", t.redact(err))
	if delivery.IsPermanent(err) {
		return err
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1146, 1054: // table or column gone: check it again next time
			t.ready.Store(false)
			return msg
		case 1064, 1149: // syntax error: a bug, not the data
			return delivery.Permanent(msg)
		}
	}
	// Connection failures (driver.ErrBadConn, mysql.ErrInvalidConn, network
	// errors), deadlocks (1213), lock wait timeouts (1205), access denied
	// and everything unknown: retry.
	return msg
}

func (t *Target) redact(err error) string { return kit.Redact(err.Error(), t.secret) }
