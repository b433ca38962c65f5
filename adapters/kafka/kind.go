package kafka

import "github.com/bucketrelay/bucketrelay/adapters/kit"

// Kind describes the kafka kind of target to the relay and to the
// documentation: README's targets table and the parameter tables of
// docs/targets/kafka.md are generated from it (go run ./internal/gendocs).
var Kind = kit.Define[Config](kit.Kind{
	Name:     "kafka",
	Title:    "Kafka",
	MaxBatch: 1000,
	InFlight: 4, // see README "Delivery policy per target": the client pipelines
	Delivery: "at least once: idempotent producer, acks from all in-sync replicas; key `bucket/object`, so one object's events stay in one partition, in order",
	Params: []kit.Param{
		{Name: "enable", Type: "bool", Default: "false", Doc: "Start the target.", Guide: true},
		{Name: "brokers", Type: "[]string", Default: "required", Doc: "Bootstrap brokers, `host:port`.", Guide: true},
		{Name: "topic", Type: "string", Default: "required", Doc: "Topic events are produced to (letters, digits, `.`, `_`, `-`).", Guide: true},
		{Name: "tls.enable", Type: "bool", Default: "false", Doc: "Connect with TLS."},
		{Name: "tls.skipVerify", Type: "bool", Default: "false", Doc: "Accept any broker certificate (insecure; for tests)."},
		{Name: "tls.caFile", Type: "string", Default: "", Doc: "PEM CAs to trust instead of the system's."},
		{Name: "tls.clientCert,tls.clientKey", Type: "string", Default: "", Doc: "PEM certificate and key for TLS client authentication."},
		{Name: "sasl.enable", Type: "bool", Default: "false", Doc: "Authenticate with SASL."},
		{Name: "sasl.username", Type: "string", Default: "required with SASL", Doc: "User name."},
		{Name: "sasl.password", Type: "string", Default: "`$RELAY_KAFKA_SASL_PASSWORD`", Doc: "Password."},
		{Name: "sasl.mechanism", Brief: "(plain, sha256, sha512)", Type: "string", Default: "`plain`", Doc: "`plain` (SASL/PLAIN), `sha256` (SCRAM-SHA-256) or `sha512` (SCRAM-SHA-512)."},
		{Name: "compression", Type: "string", Default: "`none`", Doc: "Batch compression: `none`, `gzip`, `snappy`, `lz4`, `zstd` (zstd needs Kafka 2.1)."},
		{Name: "version", Type: "string", Default: "`2.8.0`", Doc: "Kafka version of the brokers, as `sarama.ParseKafkaVersion` reads it (`3.6.0`, `0.10.2.0`). Below 0.11 the producer is not idempotent."},
		{Name: "format", Type: "string", Default: "", Doc: "Empty for the guide's value; `cloudevents` produces each event as a [CloudEvent](https://cloudevents.io) 1.0 (Kafka binding), id the event's id, the record as data."},
		{Name: "cloudeventsMode", Type: "string", Default: "`binary`", Doc: "With `format: cloudevents`: `binary` (`ce_*` record headers, the record as the value) or `structured` (the JSON event format, header `content-type: application/cloudevents+json`)."},
	},
}, New)
