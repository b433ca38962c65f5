package amqp

import (
	"context"
	"sync"
	"testing"

	"github.com/bucketrelay/bucketrelay/internal/testenv"
)

// TestConcurrentDials: Probe and Send may dial at the same time; under
// -race this caught amqp091 writing into the connection properties the
// dials shared.
func TestConcurrentDials(t *testing.T) {
	testenv.Require(t, "rabbitmq", brokerAddr)
	tg := newTarget(t, testConfig("bucketevents"))
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			c, err := tg.dial(context.Background())
			if err == nil {
				err = c.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
