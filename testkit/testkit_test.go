package testkit

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestBinariesDoNotLinkTesting: no production package imports testing (a
// test helper in a production package would link it, with its flags, into
// the relay's binaries).
func TestBinariesDoNotLinkTesting(t *testing.T) {
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	for _, cmd := range []string{"../cmd/relay", "../cmd/walinspect"} {
		out, err := exec.Command(goTool, "list", "-deps", cmd).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", cmd, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if dep == "testing" {
				t.Errorf("%s links the testing package", cmd)
			}
		}
	}
}
