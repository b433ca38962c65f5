package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ServicesScript returns the path of scripts/services.sh, found in the
// module root above the test's working directory.
func ServicesScript(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "scripts", "services.sh")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testenv: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Services runs scripts/services.sh with args ("stop", "rabbitmq"; "start",
// "rabbitmq") and fails t if it fails.
func Services(t testing.TB, args ...string) {
	t.Helper()
	out, err := exec.Command(ServicesScript(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("services.sh %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// StopService stops service with scripts/services.sh and waits, up to 20 s,
// until no process is named process: services.sh stop returns once the
// signal is sent, and services.sh start skips starting a server while
// pgrep still sees the old process.
func StopService(t testing.TB, service, process string) {
	t.Helper()
	Services(t, "stop", service)
	deadline := time.Now().Add(20 * time.Second)
	for exec.Command("pgrep", "-x", process).Run() == nil {
		if time.Now().After(deadline) {
			t.Fatalf("%s's process did not go away", process)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
