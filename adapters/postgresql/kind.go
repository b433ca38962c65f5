package postgresql

import "github.com/bucketrelay/bucketrelay/adapters/kit"

// Kind describes the postgresql kind of target to the relay and to the
// documentation: README's targets table and the parameter tables of
// docs/targets/postgresql.md are generated from it (go run ./internal/gendocs).
var Kind = kit.Define[Config](kit.Kind{
	Name:      "postgresql",
	Title:     "PostgreSQL",
	InFlight:  4,
	MaxBatch:  1000,
	Namespace: true,
	Delivery:  "namespace: `(key VARCHAR PRIMARY KEY, value JSONB)` by `INSERT … ON CONFLICT` and `DELETE`; access: `(event_time TIMESTAMPTZ, event_data JSONB)`; one transaction per batch; at least once",
	Params: []kit.Param{
		{Name: "enable", Type: "bool", Default: "false", Doc: "Start the target.", Guide: true},
		{Name: "format", Type: "string", Default: "`namespace`", Doc: "`namespace` (one row per object) or `access` (one row per event).", Guide: true},
		{Name: "connectionString", Type: "string", Default: "", Doc: "libpq parameters, `key=value` pairs (`sslmode=disable`) or a `postgres://` URL.", Guide: true},
		{Name: "table", Type: "string", Default: "required", Doc: "Table name, optionally `schema.table`: letters, digits, `_`, `$`, not starting with a digit, ≤ 63 characters. Used unquoted, so PostgreSQL folds it to lower case, as `psql` does.", Guide: true},
		{Name: "host", Type: "string", Default: "`localhost`", Doc: "Server host.", Guide: true},
		{Name: "port", Type: "string", Default: "`5432`", Doc: "Server port.", Guide: true},
		{Name: "user", Type: "string", Default: "the relay's OS user", Doc: "Database user.", Guide: true},
		{Name: "password", Type: "string", Default: "`$RELAY_POSTGRES_PASSWORD`", Doc: "Password (else the connection string's, else `~/.pgpass`).", Guide: true},
		{Name: "database", Type: "string", Default: "the user name", Doc: "Database.", Guide: true},
		{Name: "timeout", Type: "string", Default: "`30s`", Doc: "Bounds connecting and each batch (Go duration)."},
		{Name: "dedupe", Type: "bool", Default: "false", Doc: "Access format only: the table gains `event_id VARCHAR UNIQUE` and rows are inserted `ON CONFLICT (event_id) DO NOTHING`, so a re-sent event is stored once. An existing table without the column is refused with the `ALTER TABLE` to run. False keeps the guide's table exactly."},
	},
}, New)
