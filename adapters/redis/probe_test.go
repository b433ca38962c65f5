package redis

import (
	"testing"

	"github.com/bucketrelay/bucketrelay/testkit/probetest"
)

// TestProbe: the probe PINGs the real server and checks the key's type
// without writing; a wrong password (AUTH refused), a port nothing listens
// on, or a key of the wrong type show the target down before any event,
// and the error never shows the password.
func TestProbe(t *testing.T) {
	requireRedis(t)
	key := uniqueKey(t, "probe")
	probetest.Up(t, newTarget(t, Config{Address: addr, Key: key}), "of the server")
	if n := do(t, "EXISTS", key); n.(int64) != 0 {
		t.Fatalf("after a probe the key exists (%v): the probe wrote", n)
	}
	probetest.Down(t, newTarget(t, Config{Address: addr, Key: key, Password: "wrong-s3cret"}), "AUTH", "wrong-s3cret")
	probetest.Down(t, newTarget(t, Config{Address: "127.0.0.1:1", Key: key}), "connection refused")
	do(t, "SET", key, "x")
	probetest.Down(t, newTarget(t, Config{Address: addr, Key: key}), "is a string, want a hash")
}
