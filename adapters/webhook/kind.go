package webhook

import "github.com/bucketrelay/bucketrelay/adapters/kit"

// Kind describes the webhook kind of target to the relay and to the
// documentation: README's targets table and the parameter tables of
// docs/targets/webhook.md are generated from it (go run ./internal/gendocs).
var Kind = kit.Define[Config](kit.Kind{
	Name:     "webhook",
	Title:    "Webhook",
	MaxBatch: 500,
	InFlight: 1,
	Delivery: "at least once, in order per object; 2xx = delivered, 3xx (never followed), 408, 429, 5xx = retried (429/503 after their `Retry-After`), 410 = target paused, other 4xx = quarantined",
	Params: []kit.Param{
		{Name: "enable", Type: "bool", Default: "required", Doc: "Start the target. A disabled target is parsed and validated, not started.", Guide: true},
		{Name: "endpoint", Type: "string", Default: "required", Doc: "The `http://` or `https://` URL events are POSTed to.", Guide: true},
		{Name: "authToken", Type: "string", Default: "", Doc: "Sent as `Authorization: Bearer <token>`; a value with a scheme of its own (`Basic …`) is sent as it is."},
		{Name: "caFile", Type: "string", Default: "system CAs", Doc: "PEM file of CAs to trust for `https://` (an error with `http://`)."},
		{Name: "clientCert,clientKey", Type: "string", Default: "", Doc: "PEM files for TLS client authentication (`https://` only); both or neither."},
		{Name: "timeout", Type: "string", Default: "`10s`", Doc: "Bounds each POST (Go duration)."},
		{Name: "signingSecrets", Type: "array of strings", Default: "", Doc: "Sign every POST as [Standard Webhooks](https://www.standardwebhooks.com) 1.0 does (`webhook-timestamp`, `webhook-signature` with one `v1` signature per secret, for rotation); each secret is `whsec_` and base64. Every POST carries `webhook-id`, the event's id, signed or not."},
		{Name: "format", Type: "string", Default: "", Doc: "Empty for the guide's body; `cloudevents` POSTs each event as a [CloudEvent](https://cloudevents.io) 1.0 (HTTP binding): type `com.amazonaws.s3.<eventName>`, source `<eventSource>.<awsRegion>.<bucket>`, subject the object key, id the event's id, the record as data."},
		{Name: "concurrency", Type: "int", Default: "`8`", Doc: "POSTs of one send in flight at once (1–256), each on its own keep-alive connection. Each object's events are posted one after another in log order; events of different objects go out side by side, so across objects the endpoint may see them out of log order (as with MinIO and S3: use `s3.object.sequencer` to order one object's events). `1` posts every event in log order, one at a time."},
		{Name: "cloudeventsMode", Type: "string", Default: "`binary`", Doc: "With `format: cloudevents`: `binary` (`ce-*` headers, the record as the body) or `structured` (the whole event as `application/cloudevents+json`)."},
	},
}, New)
