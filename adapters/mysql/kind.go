package mysql

import "github.com/bucketrelay/bucketrelay/adapters/kit"

// Kind describes the mysql kind of target to the relay and to the
// documentation: README's targets table and the parameter tables of
// docs/targets/mysql.md are generated from it (go run ./internal/gendocs).
var Kind = kit.Define[Config](kit.Kind{
	Name:      "mysql",
	Title:     "MySQL",
	MaxBatch:  500,
	InFlight:  4,
	Namespace: true,
	Delivery:  "namespace: `(key_name VARBINARY(2048) PRIMARY KEY, value JSON)` by `INSERT … ON DUPLICATE KEY UPDATE` and `DELETE`; access: `(event_time DATETIME(6), event_data JSON)`; one transaction per batch; at least once",
	Params: []kit.Param{
		{Name: "enable", Type: "bool", Default: "false", Doc: "Start the target.", Guide: true},
		{Name: "format", Type: "string", Default: "`namespace`", Doc: "`namespace` or `access` (see below). The seed's example omits it: an empty format is `namespace`.", Guide: true},
		{Name: "dsnString", Type: "string", Default: "", Doc: "A [go-sql-driver DSN](https://github.com/go-sql-driver/mysql#dsn-data-source-name), `user:pass@tcp(host:3306)/database?tls=true`. When set, `host`, `port`, `user`, `password` and `database` are ignored. It must name a database.", Guide: true},
		{Name: "table", Type: "string", Default: "required", Doc: "Table events are written to: letters, digits, `_` and `$`, at most 64 characters. Created at the first send when missing.", Guide: true},
		{Name: "host", Type: "string", Default: "`127.0.0.1`", Doc: "Server host (without `dsnString`).", Guide: true},
		{Name: "port", Type: "string", Default: "`3306`", Doc: "Server port (without `dsnString`).", Guide: true},
		{Name: "user", Type: "string", Default: "", Doc: "Database user (without `dsnString`).", Guide: true},
		{Name: "password", Type: "string", Default: "`$RELAY_MYSQL_PASSWORD`", Doc: "The user's password. When empty here (or in `dsnString`), the environment variable `RELAY_MYSQL_PASSWORD` is used.", Guide: true},
		{Name: "database", Type: "string", Default: "required without `dsnString`", Doc: "Database (schema) holding the table.", Guide: true},
		{Name: "caFile", Type: "string", Default: "", Doc: "PEM file of CAs to trust; turns TLS on, never falling back to plain text. TLS can also be asked for in `dsnString` (`tls=true`, `tls=skip-verify`, `tls=preferred`)."},
		{Name: "clientCert,clientKey", Type: "string", Default: "", Doc: "PEM files for TLS client authentication (users `REQUIRE X509`); set both or neither; turn TLS on."},
		{Name: "dedupe", Type: "bool", Default: "false", Doc: "Access format only: the table gains `event_id VARCHAR(64)` with a unique key and rows are inserted `ON DUPLICATE KEY UPDATE event_id = event_id`, so a re-sent event is stored once. An existing table without the column is refused with the `ALTER TABLE` to run. False keeps the guide's table exactly."},
	},
}, New)
