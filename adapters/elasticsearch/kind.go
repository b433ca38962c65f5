package elasticsearch

import "github.com/bucketrelay/bucketrelay/adapters/kit"

// Kind describes the elasticsearch kind of target to the relay and to the
// documentation: README's targets table and the parameter tables of
// docs/targets/elasticsearch.md are generated from it (go run ./internal/gendocs).
var Kind = kit.Define[Config](kit.Kind{
	Name:      "elasticsearch",
	Title:     "Elasticsearch",
	MaxBatch:  1000,
	InFlight:  4,
	Namespace: true,
	Delivery:  "namespace: document `_id` = `bucket/object`, index/delete through `_bulk`; access: generated ids; per-item results: a rejected item alone is quarantined; at least once",
	Params: []kit.Param{
		{Name: "enable", Type: "bool", Default: "false", Doc: "Start the target.", Guide: true},
		{Name: "format", Type: "string", Default: "`namespace`", Doc: "`namespace` or `access` (see below).", Guide: true},
		{Name: "url", Brief: "(credentials in the URL, never logged)", Type: "string", Default: "required", Doc: "The node's address, `http://` or `https://`, optionally with credentials: `http://elastic:MagicWord@127.0.0.1:9200`. Credentials are taken out of the URL and sent as basic authentication; they never appear in logs or errors.", Guide: true},
		{Name: "index", Type: "string", Default: "required", Doc: "Index documents are written to: lower case, none of `\\ / * ? \" < > \\| , # :` or space, not starting with `-`, `_` or `+`. Created at the first send when missing.", Guide: true},
		{Name: "username", Type: "string", Default: "from `url`", Doc: "Basic-authentication user; overrides the one in `url`."},
		{Name: "password", Type: "string", Default: "from `url`, else `$RELAY_ELASTICSEARCH_PASSWORD`", Doc: "Basic-authentication password; overrides the one in `url`. With a password and no user, the user is `elastic`."},
		{Name: "caFile", Type: "string", Default: "", Doc: "PEM file of CAs to trust for `https://` instead of the system's (an error with `http://`)."},
	},
}, New)
