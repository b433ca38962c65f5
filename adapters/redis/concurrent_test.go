package redis

import (
	"testing"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
)

// TestConcurrentSends: Send is safe for concurrent use (kit.Kind.InFlight),
// each concurrent Send on a connection of its own, in both formats:
// batches in flight in lanes leave the hash replaying the events in order
// gives, and the list every event, in order per key.
func TestConcurrentSends(t *testing.T) {
	requireRedis(t)
	t.Run("ns", func(t *testing.T) {
		targettest.RunConcurrent(t, namespaceHarness(uniqueKey(t, "conc-ns")))
	})
	t.Run("access", func(t *testing.T) {
		key := uniqueKey(t, "conc-access")
		targettest.RunConcurrent(t, targettest.Harness{
			New: func(t testing.TB) delivery.Target {
				return newTarget(t, Config{Enable: true, Format: "access", Address: addr, Key: key, Timeout: "2s"})
			},
			Received: func(t testing.TB) [][]byte { _, b := list(t, key); return b },
		})
	})
}
