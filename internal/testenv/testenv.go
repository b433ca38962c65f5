// Package testenv finds the real servers tests run against. Under CI=true a
// missing server fails the test; elsewhere it skips it, with the command
// that starts it.
package testenv

import (
	"net"
	"os"
	"testing"
	"time"
)

// CI reports whether the tests run under CI (CI=true).
func CI() bool { return os.Getenv("CI") == "true" }

// Getenv returns the environment variable name, or def when it is empty.
func Getenv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// Require checks that a server of the given kind answers on addr (host:port)
// and fails (under CI) or skips the test if it does not.
func Require(t testing.TB, kind, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		c.Close()
		return
	}
	Missing(t, kind, err)
}

// Missing fails (under CI) or skips t because the server of kind is not
// reachable.
func Missing(t testing.TB, kind string, err error) {
	t.Helper()
	msg := kind + " is not reachable (" + err.Error() + "); start it with: scripts/services.sh start " + kind
	if CI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
