package relay

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"testing"
)

// plainWord agrees with the byte-by-byte rule of the string scanner for
// every byte value at every position of a word, and for random words.
func TestPlainWord(t *testing.T) {
	plain := func(c byte) bool { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\' }
	check := func(w []byte) {
		t.Helper()
		want := true
		for _, c := range w {
			want = want && plain(c)
		}
		if got := plainWord(binary.LittleEndian.Uint64(w)); got != want {
			t.Fatalf("plainWord(%q): got %v, want %v", w, got, want)
		}
	}
	for pos := range 8 {
		for c := range 256 {
			w := []byte("abcdefgh")
			w[pos] = byte(c)
			check(w)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	w := make([]byte, 8)
	for range 100000 {
		for i := range w {
			w[i] = byte(rng.IntN(256))
		}
		check(w)
	}
}

// The lowest byte specialBytes flags is the first one that is not plain,
// for words mixing plain and special bytes (later flags may be spurious).
func TestSpecialBytesFirst(t *testing.T) {
	plain := func(c byte) bool { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\' }
	odd := []byte{0, 1, 0x1f, '"', '\\', 0x80, 0xff, 0x20, 0x21, '#', '[', ']', 0x7f}
	rng := rand.New(rand.NewPCG(5, 6))
	w := make([]byte, 8)
	for range 50000 {
		for i := range w {
			if rng.IntN(3) == 0 {
				w[i] = odd[rng.IntN(len(odd))]
			} else {
				w[i] = byte(rng.IntN(256))
			}
		}
		first := 8
		for i, c := range w {
			if !plain(c) {
				first = i
				break
			}
		}
		m := specialBytes(binary.LittleEndian.Uint64(w))
		if got := bits.TrailingZeros64(m) / 8; got != first {
			t.Fatalf("specialBytes(%q): first flag at %d, want %d", w, got, first)
		}
	}
}
