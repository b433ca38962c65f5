// Package gobuild builds a package of the module into a binary once per
// test process, for tests that run the real program (kill -9, signals,
// power cuts).
package gobuild

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

var (
	mu    sync.Mutex
	dir   string                // holds every binary built; Clean removes it
	built = map[string]result{} // by package path
)

type result struct {
	bin string
	err error
}

// Binary builds pkg (a package path as `go build` takes it, relative to
// the test's directory: "." for the package under test) on first use and
// returns the binary's path; later calls in the same process return the
// same binary. A failed build fails t, and every later call with it. Call
// Clean from TestMain to remove the binaries.
func Binary(t testing.TB, pkg string) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	r, ok := built[pkg]
	if !ok {
		r = build(pkg)
		built[pkg] = r
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.bin
}

func build(pkg string) result {
	if dir == "" {
		d, err := os.MkdirTemp("", "gobuild-")
		if err != nil {
			return result{err: fmt.Errorf("gobuild: %w", err)}
		}
		dir = d
	}
	abs, err := filepath.Abs(pkg)
	if err != nil {
		return result{err: fmt.Errorf("gobuild: %s: %w", pkg, err)}
	}
	bin := filepath.Join(dir, fmt.Sprintf("%s-%d", filepath.Base(abs), len(built)))
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		goTool = "go" // from PATH
	}
	if out, err := exec.Command(goTool, "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		return result{err: fmt.Errorf("gobuild: go build %s: %v\n%s", pkg, err, out)}
	}
	return result{bin: bin}
}

// Clean removes every binary Binary built. Call it from TestMain after
// m.Run; Binary builds again after it.
func Clean() {
	mu.Lock()
	defer mu.Unlock()
	if dir != "" {
		os.RemoveAll(dir)
	}
	dir, built = "", map[string]result{}
}
