package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestStatusNeedsClusterLog: relay status reads a cluster log only; on a
// configuration with the embedded log, or without one, it is a usage
// error (exit 2).
func TestStatusNeedsClusterLog(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "relay.json")
	if err := os.WriteFile(cfg, []byte(`{"relay":{"dataDir":"`+t.TempDir()+`"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"status", "--config", cfg}, {"status"}, {"status", "--config", cfg, "extra"}} {
		if code := run(context.Background(), args); code != 2 {
			t.Errorf("relay %v: exit %d, want 2", args, code)
		}
	}
}
