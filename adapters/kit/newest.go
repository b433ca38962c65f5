package kit

import "github.com/bucketrelay/bucketrelay/delivery"

// Newest returns the indexes of the items that are the last of their key,
// in order. A namespace batch from the engine already holds one item per
// key; a store target calls Newest so that a batch built without
// coalescing still applies only each key's newest state, since one batch
// statement cannot order two writes of the same key.
func Newest(items []delivery.Item) []int {
	idx := make(map[string]int, len(items))
	for i := range items {
		idx[items[i].Key] = i
	}
	out := make([]int, 0, len(idx))
	for i := range items {
		if idx[items[i].Key] == i {
			out = append(out, i)
		}
	}
	return out
}
