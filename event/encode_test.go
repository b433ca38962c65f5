package event

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
)

// plainRun agrees with the byte-by-byte rule for every byte value at every
// position of a word.
func TestPlainRun(t *testing.T) {
	plain := func(c byte) bool { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\' }
	for pos := range 8 {
		for c := range 256 {
			w := []byte("abcdefgh")
			w[pos] = byte(c)
			if got, want := plainRun(string(w), 0) == 8, plain(byte(c)); got != want {
				t.Fatalf("plainRun(%q): got %v, want %v", w, got, want)
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		var w [8]byte
		want := true
		for i := range w {
			w[i] = byte(rng.IntN(256))
			want = want && plain(w[i])
		}
		if got := plainRun(string(w[:]), 0) == 8; got != want {
			t.Fatalf("plainRun(%q): got %v, want %v", w, got, want)
		}
	}
}

// appendString with the word-at-a-time scan still encodes as encoding/json
// does (HTML characters aside, which it does not escape).
func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain ascii key of some length", "tab\there and \"quotes\" and \\ slash", "ünïcödé mixed with ascii words", "ctl\x01\x1f after eight", "bad \xff utf8 in a longer string", "line\u2028sep\u2029 long enough", "abcdefghij\"klmnopq\\rstuvwxyz\x7f\u00e9 and \x00 late"} {
		want, _ := json.Marshal(s)
		var back string
		if err := json.Unmarshal(appendString(nil, s), &back); err != nil {
			t.Fatalf("appendString(%q) is not JSON: %v", s, err)
		}
		var wantBack string
		json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Fatalf("appendString(%q) decodes to %q, want %q", s, back, wantBack)
		}
	}
}
