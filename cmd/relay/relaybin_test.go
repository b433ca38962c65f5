package main

import (
	"os"
	"testing"
)

// TestMain removes the relay binary that buildRelay built for the tests
// running the real process (crash, power-cut and storage-fault tests).
func TestMain(m *testing.M) {
	code := m.Run()
	if relayBinDir != "" {
		os.RemoveAll(relayBinDir)
	}
	os.Exit(code)
}
