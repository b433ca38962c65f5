package event_test

import (
	"fmt"
	"hash/fnv"
	"testing"

	"github.com/bucketrelay/bucketrelay/event"
)

// TestLaneOf: the lane is FNV-1a of the key modulo lanes, in range, and 0
// with one lane or none.
func TestLaneOf(t *testing.T) {
	for i := range 1000 {
		key := fmt.Sprintf("bucket/obj-%d", i)
		h := fnv.New32a()
		h.Write([]byte(key))
		for _, n := range []int{2, 3, 8, 64} {
			if got, want := event.LaneOf(key, n), int(h.Sum32()%uint32(n)); got != want {
				t.Fatalf("LaneOf(%q, %d) = %d, want %d", key, n, got, want)
			}
		}
		if got := event.LaneOf(key, 1) + event.LaneOf(key, 0); got != 0 {
			t.Fatalf("LaneOf(%q) with one lane = %d, want 0", key, got)
		}
	}
}
