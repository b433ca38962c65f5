package nats

import "github.com/bucketrelay/bucketrelay/adapters/kit"

// Kind describes the nats kind of target to the relay and to the
// documentation: README's targets table and the parameter tables of
// docs/targets/nats.md are generated from it (go run ./internal/gendocs).
var Kind = kit.Define[Config](kit.Kind{
	Name:     "nats",
	Title:    "NATS",
	MaxBatch: 1000,
	InFlight: 4, // see README "Delivery policy per target": the client pipelines
	Delivery: "JetStream and Streaming: at least once (PubAck); core NATS: at most once (flushed, not stored)",
	Params: []kit.Param{
		{Name: "enable", Type: "bool", Default: "false", Doc: "Start the target.", Guide: true},
		{Name: "address", Type: "string", Default: "required", Doc: "Server `host:port` (`0.0.0.0:4222`), or a `nats://` / `tls://` URL; several separated by commas.", Guide: true},
		{Name: "subject", Type: "string", Default: "required", Doc: "Subject events are published on. No wildcards, no empty tokens.", Guide: true},
		{Name: "username", Type: "string", Default: "", Doc: "User name.", Guide: true},
		{Name: "password", Type: "string", Default: "`$RELAY_NATS_PASSWORD`", Doc: "Password of `username`.", Guide: true},
		{Name: "token", Type: "string", Default: "`$RELAY_NATS_TOKEN`", Doc: "Authentication token (exclusive with `username`).", Guide: true},
		{Name: "nkeySeed", Type: "string", Default: "", Doc: "File holding an nkey user seed (`SU…`) for servers that authorize users by nkey; exclusive with `username`, `token` and `credentials`."},
		{Name: "credentials", Type: "string", Default: "", Doc: "Credentials file (user JWT and seed, as `nsc` writes it) for servers in operator (JWT) mode; read at every connection. Exclusive with `username`, `token` and `nkeySeed`."},
		{Name: "secure", Type: "bool", Default: "false", Doc: "Connect with TLS.", Guide: true},
		{Name: "pingInterval", Type: "int", Default: "0", Doc: "Client ping interval in **seconds**; 0 keeps the client's default (2 minutes).", Guide: true},
		{Name: "streaming.enable", Type: "bool", Default: "false", Doc: "Publish through NATS Streaming.", Guide: true},
		{Name: "streaming.clusterID", Type: "string", Default: "required with streaming", Doc: "The streaming server's cluster ID.", Guide: true},
		{Name: "streaming.clientID", Type: "string", Default: "required with streaming", Doc: "This publisher's client ID (letters, digits, `-`, `_`); unique among the cluster's clients.", Guide: true},
		{Name: "streaming.async", Type: "bool", Default: "false", Doc: "Pipeline each batch (`PublishAsync`); false publishes one event at a time, each waiting for its ack.", Guide: true},
		{Name: "streaming.maxPubAcksInflight", Type: "int", Default: "0", Doc: "Bound on unacknowledged async publishes; 0 keeps the client's default (16384).", Guide: true},
		{Name: "jetStream.enable", Type: "bool", Default: "false", Doc: "Publish through JetStream (exclusive with streaming)."},
		{Name: "caFile", Type: "string", Default: "", Doc: "PEM CAs to trust instead of the system's (implies TLS)."},
		{Name: "clientCert,clientKey", Type: "string", Default: "", Doc: "PEM certificate and key for TLS client authentication (imply TLS)."},
		{Name: "format", Type: "string", Default: "", Doc: "Empty for the guide's body; `cloudevents` publishes each event as a [CloudEvent](https://cloudevents.io) 1.0 (NATS binding), id the event's id, the record as data."},
		{Name: "cloudeventsMode", Type: "string", Default: "`binary` (Streaming: `structured`)", Doc: "With `format: cloudevents`: `binary` (`ce-*` headers, NATS 2.2 or later) or `structured` (the JSON event format as the body). NATS Streaming has no headers: structured only."},
	},
}, New)
