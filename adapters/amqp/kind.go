package amqp

import "github.com/bucketrelay/bucketrelay/adapters/kit"

// Kind describes the amqp kind of target to the relay and to the
// documentation: README's targets table and the parameter tables of
// docs/targets/amqp.md are generated from it (go run ./internal/gendocs).
var Kind = kit.Define[Config](kit.Kind{
	Name:     "amqp",
	Title:    "AMQP (RabbitMQ)",
	InFlight: 4,
	MaxBatch: 1000,
	Delivery: "at least once with publisher confirms; a nack or a returned mandatory message is retried",
	Params: []kit.Param{
		{Name: "enable", Type: "bool", Default: "false", Doc: "Starts the target. A disabled target is parsed and validated, not started.", Guide: true},
		{Name: "url", Type: "string", Default: "(required)", Doc: "`amqp://user:password@host:5672/vhost`, or `amqps://…` for TLS.", Guide: true},
		{Name: "exchange", Type: "string", Default: "`\"\"`", Doc: "The exchange to publish to. Empty is the default exchange, which routes by queue name (`routingKey` is then the queue).", Guide: true},
		{Name: "routingKey", Type: "string", Default: "`\"\"`", Doc: "The routing key of every message.", Guide: true},
		{Name: "exchangeType", Type: "string", Default: "`\"\"`", Doc: "`direct`, `fanout`, `topic`, `headers` or a plugin's `x-…` type. The exchange is declared with it once per connection. Empty means the exchange must already exist (it is declared passively).", Guide: true},
		{Name: "deliveryMode", Type: "uint8", Default: "0", Doc: "0 or 1: transient messages; 2: persistent messages.", Guide: true},
		{Name: "mandatory", Type: "bool", Default: "false", Doc: "Ask the broker to return messages no queue takes. A returned message is **retried**, not dropped (see below).", Guide: true},
		{Name: "immediate", Type: "bool", Default: "false", Doc: "Not supported by RabbitMQ 3.0 and later: the broker closes the connection (`540 NOT_IMPLEMENTED - immediate=true`) on the first such publish. `true` is rejected by validation.", Guide: true},
		{Name: "durable", Type: "bool", Default: "false", Doc: "Declare a durable exchange.", Guide: true},
		{Name: "internal", Type: "bool", Default: "false", Doc: "Declare an internal exchange.", Guide: true},
		{Name: "noWait", Type: "bool", Default: "false", Doc: "Declare the exchange without waiting for the broker's answer.", Guide: true},
		{Name: "autoDeleted", Type: "bool", Default: "false", Doc: "Declare an auto-deleted exchange.", Guide: true},
		{Name: "publisherConfirms", Brief: "(default true)", Type: "bool", Default: "**true**", Doc: "Wait for the broker's acknowledgement of every message before counting it delivered. `false` trades the at-least-once guarantee for latency (see below)."},
		{Name: "username,password", Type: "string", Default: "`\"\"`", Doc: "Replace the credentials of `url`."},
		{Name: "caFile", Type: "string", Default: "`\"\"`", Doc: "PEM file of CAs to trust instead of the system's (`amqps://` only)."},
		{Name: "clientCert,clientKey", Type: "string", Default: "`\"\"`", Doc: "PEM files for TLS client authentication (`amqps://` only)."},
		{Name: "format", Type: "string", Default: "", Doc: "Empty for the guide's body; `cloudevents` publishes each event as a [CloudEvent](https://cloudevents.io) 1.0 (AMQP binding), id the event's id, the record as data."},
		{Name: "cloudeventsMode", Type: "string", Default: "`binary`", Doc: "With `format: cloudevents`: `binary` (`cloudEvents_*` application properties, content-type `application/json`, the record as the body) or `structured` (content-type `application/cloudevents+json`)."},
	},
}, New)
