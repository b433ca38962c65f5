// Package adapters holds one package per kind of target. Each exports
// Target, Config and New, and asserts that *Target implements
// delivery.Target; the relay wires them from the "notify" section of its
// configuration.
package adapters
