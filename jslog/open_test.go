package jslog_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/jslog"
	"github.com/bucketrelay/bucketrelay/testkit/natscluster"
)

// TestOpenConcurrently opens several logs at once on a stream that does
// not exist yet, as relays of a new cluster starting together do: one
// creates the stream, the others must find it although its replicas are
// still electing a leader (the stream answers "not found" for a moment).
func TestOpenConcurrently(t *testing.T) {
	c := natscluster.Start(t, natscluster.Options{})
	for round := range 4 {
		cfg := jslog.Config{Servers: c.URLs(), Stream: fmt.Sprintf("CONC%d", round)}
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				time.Sleep(time.Duration(i*round) * 15 * time.Millisecond) // staggered, as processes start
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				l, err := jslog.Open(ctx, cfg, jslog.Options{Logger: quietLogger()})
				if err == nil {
					err = l.Close()
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("round %d, log %d: Open: got %v, want nil", round, i, err)
			}
		}
	}
}
