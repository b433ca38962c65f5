package event

import "hash/fnv"

// LaneOf returns the lane of key ("bucket/object") among lanes: FNV-1a of
// the key modulo lanes, so every event of one object is in one lane. With
// lanes <= 1 it is 0. The delivery engine's lanes and jslog's lanes use
// it alike.
func LaneOf(key string, lanes int) int {
	if lanes <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(lanes))
}
