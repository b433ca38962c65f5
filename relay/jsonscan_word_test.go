package relay

import (
	"encoding/binary"
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
