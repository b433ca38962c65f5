// Package adapters holds one package per kind of target. Each exports
// Target, Config, New and Kind (its kit.Kind description: name, Config,
// constructor, batch size, format option and documented parameters), and
// asserts that *Target implements delivery.Target; the relay wires them
// from the "notify" section of its configuration through their Kind.
// What they share (field errors, redaction, the TLS block, the format
// option, event time) is in adapters/kit.
package adapters
