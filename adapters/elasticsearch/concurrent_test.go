package elasticsearch

import (
	"testing"

	"github.com/bucketrelay/bucketrelay/delivery/targettest"
)

// TestConcurrentSends: Send is safe for concurrent use (kit.Kind.InFlight),
// in both formats: batches in flight in lanes leave the namespace state
// replaying the events in order gives, and the access index every event.
func TestConcurrentSends(t *testing.T) {
	b := newBackend(t)
	for _, f := range []struct {
		name string
		feat targettest.Features
	}{{"ns", targettest.Features{Namespace: true}}, {"access", targettest.Features{}}} {
		t.Run(f.name, func(t *testing.T) {
			index := indexName("conc-" + f.name)
			b.dropIndex(t, index)
			targettest.RunConcurrent(t, b.harness(t, index, f.feat))
		})
	}
}
