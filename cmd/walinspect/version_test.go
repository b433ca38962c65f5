package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestVersion: --version and version print the module version and exit 0.
func TestVersion(t *testing.T) {
	for _, arg := range []string{"--version", "version"} {
		var out, errOut bytes.Buffer
		m := &Main{Stdout: &out, Stderr: &errOut}
		if code := m.Exec(context.Background(), []string{arg}); code != exitOK {
			t.Fatalf("walinspect %s exited %d: %s", arg, code, errOut.String())
		}
		if s := out.String(); !strings.HasPrefix(s, "walinspect ") || !strings.Contains(s, "go1.") {
			t.Fatalf("walinspect %s printed %q", arg, s)
		}
	}
}
