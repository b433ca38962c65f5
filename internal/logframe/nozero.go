package logframe

import (
	"strings"
	"unsafe"
)

// makeNoZero returns a new buffer of n bytes whose contents are whatever
// the allocator found there. A frame's decompressed records are hundreds of
// KiB that the codec overwrites at once: clearing them first, as make does,
// costs about a tenth of reading a record back. Only a caller that
// overwrites every byte before anything reads it may use it: Decompress
// returns such a buffer only once the codec wrote exactly n bytes into it,
// and drops it otherwise.
//
// strings.Builder.Grow is the one way the standard library allocates
// without clearing (before Go 1.21 it cleared, which is only slower). The
// builder is dropped here, so the buffer has one owner: the caller.
func makeNoZero(n int) []byte {
	if n <= 0 {
		return []byte{}
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteByte(0)
	return unsafe.Slice(unsafe.StringData(b.String()), n)
}
