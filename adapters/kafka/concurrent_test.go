package kafka

import (
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
)

// TestConcurrentSends: Send is safe for concurrent use (kit.Kind.InFlight):
// batches in flight in lanes arrive whole and in order per key.
func TestConcurrentSends(t *testing.T) {
	b := NewBroker(t, "concurrent", true)
	targettest.RunConcurrent(t, targettest.Harness{
		Features: targettest.Features{Message: true},
		New: func(t testing.TB) delivery.Target {
			return newTarget(t, Config{Enable: true, Brokers: []string{b.Addr}, Topic: "concurrent"})
		},
		Received: b.Received,
		Timeout:  45 * time.Second,
	})
}
