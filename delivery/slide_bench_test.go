package delivery_test

import (
	"math/rand"
	"sync"
	"testing"
	"time"
)

// BenchmarkDrainInFlight is BenchmarkDrain through a pipeline of 4
// batches in flight (the default of every kind but the webhook) over
// 1000 objects, so batches do not wait for each other's keys: the
// relay's own cost per event in a sliding pipeline.
func BenchmarkDrainInFlight(b *testing.B) {
	benchDrain(b, 1000, 0, 4, nil)
}

// BenchmarkDrainInFlightJitter drains through 4 batches of 10 in flight
// into a target that answers each after 0–10 ms: how much of the target's
// parallelism the pipeline uses when answers take uneven times, as a
// broker's do (ns/op: the wall time per event; a pipeline that empties at
// each window's end waits for its slowest last batch there).
func BenchmarkDrainInFlightJitter(b *testing.B) {
	var mu sync.Mutex
	rng := rand.New(rand.NewSource(1))
	benchDrain(b, 1000, 10, 4, func() {
		mu.Lock()
		d := time.Duration(rng.Intn(10000)) * time.Microsecond
		mu.Unlock()
		time.Sleep(d)
	})
}
