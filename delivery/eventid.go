package delivery

import "strconv"

// AppendEventID appends the event's id (EventID) to dst and returns the
// extended buffer, for a target that builds a batch's ids in one buffer
// rather than one string each. It appends nothing for an item without a
// log id.
func (it *Item) AppendEventID(dst []byte) []byte {
	if it.LogID == "" {
		return dst
	}
	dst = append(dst, it.LogID...)
	dst = append(dst, '-')
	return strconv.AppendUint(dst, it.Seq, 10)
}
