package redis

import "github.com/bucketrelay/bucketrelay/adapters/kit"

// Kind describes the redis kind of target to the relay and to the
// documentation: README's targets table and the parameter tables of
// docs/targets/redis.md are generated from it (go run ./internal/gendocs).
var Kind = kit.Define[Config](kit.Kind{
	Name:     "redis",
	Title:    "Redis",
	MaxBatch: 1000,
	// Four batches in flight, each on a connection of its own: Redis
	// parses and applies one while the next is encoded and on the wire
	// (README, "Delivery policy per target": why, and what it changes for
	// the access list's order).
	InFlight:  4,
	Namespace: true,
	Delivery:  "namespace: hash `HSET`/`HDEL` in one `MULTI`/`EXEC`; access: `RPUSH` of `[eventTime, {\"Records\":[…]}]`; at least once",
	Params: []kit.Param{
		{Name: "enable", Type: "bool", Default: "false", Doc: "Start the target.", Guide: true},
		{Name: "format", Type: "string", Default: "`namespace`", Doc: "`namespace` (a hash) or `access` (a list). Anything else is a configuration error.", Guide: true},
		{Name: "address", Type: "string", Default: "required", Doc: "`host:port` of the server.", Guide: true},
		{Name: "password", Type: "string", Default: "`$RELAY_REDIS_PASSWORD`", Doc: "`AUTH` password. Empty and the variable unset: no `AUTH`.", Guide: true},
		{Name: "key", Type: "string", Default: "required", Doc: "The Redis key events are stored under.", Guide: true},
		{Name: "user", Type: "string", Default: "default user", Doc: "ACL user name (Redis 6+), sent with the password (`AUTH user password`)."},
		{Name: "db", Type: "int", Default: "0", Doc: "Database selected after connecting (`SELECT`)."},
		{Name: "tls", Type: "bool", Default: "false", Doc: "Connect with TLS (implied by `caFile` or `clientCert`)."},
		{Name: "caFile", Type: "string", Default: "system CAs", Doc: "PEM file of CAs to trust."},
		{Name: "clientCert,clientKey", Type: "string", Default: "", Doc: "PEM files for TLS client authentication; set both or neither."},
		{Name: "tlsSkipVerify", Type: "bool", Default: "false", Doc: "Accept any server certificate (tests only)."},
		{Name: "timeout", Type: "string", Default: "`10s`", Doc: "Bounds connecting and each round trip (Go duration)."},
	},
}, New)
