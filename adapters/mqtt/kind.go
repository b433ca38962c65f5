package mqtt

import "github.com/bucketrelay/bucketrelay/adapters/kit"

// Kind describes the mqtt kind of target to the relay and to the
// documentation: README's targets table and the parameter tables of
// docs/targets/mqtt.md are generated from it (go run ./internal/gendocs).
var Kind = kit.Define[Config](kit.Kind{
	Name:     "mqtt",
	Title:    "MQTT",
	InFlight: 4,
	MaxBatch: 1000,
	Delivery: "QoS 1/2: at least once (waits for PUBACK/PUBCOMP); QoS 0: at most once",
	Params: []kit.Param{
		{Name: "enable", Type: "bool", Default: "false", Doc: "Starts the target. A disabled target is parsed and validated, not started.", Guide: true},
		{Name: "broker", Brief: "(`tcp://`, `tls://`, `ws://`)", Type: "string", Default: "(required)", Doc: "`tcp://host:1883`; `tls://host:8883` or `ssl://…` for TLS; `ws://host:8080/mqtt` or `wss://…` for WebSocket. `mqtt://` and `mqtts://` are accepted as aliases of `tcp://` and `tls://`.", Guide: true},
		{Name: "topic", Type: "string", Default: "(required)", Doc: "The topic every event is published on (no `+` or `#`).", Guide: true},
		{Name: "qos", Type: "int", Default: "0", Doc: "0, 1 or 2. Use 1 (the seed's example): 0 is at-most-once.", Guide: true},
		{Name: "clientId", Type: "string", Default: "`bucketrelay-<random>`", Doc: "The client ID. Two clients with the same ID disconnect each other: give each target its own.", Guide: true},
		{Name: "username", Type: "string", Default: "`\"\"`", Doc: "User name, if the broker asks for one.", Guide: true},
		{Name: "password", Type: "string", Default: "`\"\"`", Doc: "Password; when empty, `RELAY_MQTT_PASSWORD` from the environment is used if set.", Guide: true},
		{Name: "caFile", Type: "string", Default: "`\"\"`", Doc: "PEM file of CAs to trust instead of the system's (`tls://`, `ssl://`, `wss://`)."},
		{Name: "clientCert,clientKey", Type: "string", Default: "`\"\"`", Doc: "PEM files for TLS client authentication."},
		{Name: "keepAlive", Type: "duration", Default: "`\"30s\"`", Doc: "The MQTT keep-alive interval."},
		{Name: "maxInFlight", Type: "int", Default: "4096 (QoS 1), 20 (QoS 2)", Doc: "Messages published and not yet acknowledged, shared by the batches in flight (`inflight`). For QoS 2 keep it at or below the broker's limit (Mosquitto: `max_inflight_messages`, default 20): Mosquitto completes the QoS 2 handshake for, then silently drops, the messages an MQTT 3.1.1 client sends beyond it."},
		{Name: "format", Type: "string", Default: "", Doc: "Empty for the guide's body; `cloudevents` publishes each event as a [CloudEvent](https://cloudevents.io) 1.0 (MQTT binding), id the event's id, the record as data."},
		{Name: "cloudeventsMode", Type: "string", Default: "`structured` (MQTT 5: `binary`)", Doc: "With `format: cloudevents`: `structured` (the JSON event format as the payload; the only mode of MQTT 3.1.1) or, with `protocolVersion: 5`, `binary` (the attributes as user properties, the record as the payload, Content Type `application/json`)."},
		{Name: "protocolVersion", Type: "int", Default: "`4` (MQTT 3.1.1)", Doc: "`5` speaks MQTT 5 (`tcp://` and `tls://` brokers): every message carries the event's id as the user property `event-id`, and CloudEvents can travel in binary mode. Messages are then published one at a time per batch in flight (`inflight`), each waiting for its acknowledgement (`maxInFlight` does not apply)."},
	},
}, New)
