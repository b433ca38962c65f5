package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestServeEmptyConfigSaysNoTargets: a configuration without targets
// starts, and its "SQS ARNs:" line says there are none instead of ending
// in nothing.
func TestServeEmptyConfigSaysNoTargets(t *testing.T) {
	cfg := parseConfig(t, fmt.Sprintf(`{"relay":{"dataDir":%q,"listen":"127.0.0.1:0"}}`, t.TempDir()))
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, &out, func(string) { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out.String()); !strings.HasPrefix(got, "SQS ARNs: none (no target is enabled") {
		t.Fatalf("got %q, want the SQS ARNs line to say there is no target", got)
	}
}
