package main

import (
	"os"
	"testing"

	"github.com/bucketrelay/bucketrelay/testkit/gobuild"
)

// relayBinary returns the relay binary, built once for the tests that run
// the real process (crash, power-cut, storage-fault and SIGHUP tests).
func relayBinary(t testing.TB) string {
	t.Helper()
	return gobuild.Binary(t, ".")
}

// TestMain removes the relay binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	gobuild.Clean()
	os.Exit(code)
}
