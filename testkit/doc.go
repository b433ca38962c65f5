// Package testkit holds helpers that tests and bench/ import: real
// endpoints and fixtures that take testing.TB. Nothing in it is linked into
// the relay's binaries (go list -deps ./cmd/relay lists no testing).
package testkit
