package event

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// plainPrefix stops at the first byte the byte-by-byte rule (the plain
// table) refuses, or at a '^', '|' or '~' before it, for every byte value
// at every position of a word, and on random words and tails.
func TestPlainPrefix(t *testing.T) {
	// slow scans s from i; in the whole words from i, '^', '|' and '~'
	// stop it too.
	slow := func(s string, from int) int {
		words := from + (len(s)-from)/8*8
		for i := from; i < len(s); i++ {
			if !plain[s[i]] || i < words && strings.IndexByte("^|~", s[i]) >= 0 {
				return i
			}
		}
		return len(s)
	}
	for pos := range 8 {
		for c := range 256 {
			w := []byte("abcdefghijklmnop")
			w[pos] = byte(c)
			if got, want := plainPrefix(string(w), 0), slow(string(w), 0); got != want {
				t.Fatalf("plainPrefix(%q): got %d, want %d", w, got, want)
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("ab^|~<>&\"\\\x00\x1f\x7f\x80\xff =?;>%")
	for range 50000 {
		w := make([]byte, rng.IntN(24))
		for i := range w {
			if rng.IntN(4) == 0 {
				w[i] = byte(rng.IntN(256))
			} else if rng.IntN(3) == 0 {
				w[i] = alphabet[rng.IntN(len(alphabet))]
			} else {
				w[i] = 'a' + byte(rng.IntN(26))
			}
		}
		from := 0
		if len(w) > 0 {
			from = rng.IntN(len(w))
		}
		if got, want := plainPrefix(string(w), from), slow(string(w), from); got != want {
			t.Fatalf("plainPrefix(%q, %d): got %d, want %d", w, from, got, want)
		}
	}
}

// oddStrings are strings encoding/json escapes in every way it can.
var oddStrings = []string{"", "plain ascii key of some length", "tab\there and \"quotes\" and \\ slash",
	"ünïcödé mixed with ascii words", "ctl\x01\x1f after eight", "\b\f\n\r\t\x00\x7f", "bad \xff utf8 in a longer string",
	"line\u2028sep\u2029 long enough", "abcdefghij\"klmnopq\\rstuvwxyz\x7f\u00e9 and \x00 late",
	"<script>alert('x')</script> & more", "a&b", ">", "truncated \xe2\x80", "\xed\xa0\x80 surrogate", "\U0001F600 emoji",
	"%2Fphotos%2Fa+b.jpg", "\xc3\x28 bad continuation", "12345678<", "1234567&", "\u2029"}

// appendString writes exactly what encoding/json writes.
func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range oddStrings {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); string(got) != string(want) {
			t.Fatalf("appendString(%q): got %s, want %s", s, got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range oddStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); string(got) != string(want) {
			t.Fatalf("appendString(%q): got %s, want %s", s, got, want)
		}
	})
}

// randomRecord builds a record from odd strings and random maps, with
// optional fields present or not.
func randomRecord(rng *rand.Rand) Record {
	str := func() string {
		switch rng.IntN(4) {
		case 0:
			return oddStrings[rng.IntN(len(oddStrings))]
		case 1:
			b := make([]byte, rng.IntN(40))
			for i := range b {
				b[i] = byte(rng.IntN(256))
			}
			return string(b)
		default:
			return fmt.Sprintf("value-%d", rng.IntN(1000))
		}
	}
	m := func() map[string]string {
		switch n := rng.IntN(14) - 2; {
		case n == -2:
			return nil
		case n == -1:
			return map[string]string{}
		default:
			out := map[string]string{}
			for range n {
				out[str()] = str()
			}
			return out
		}
	}
	r := Record{
		EventVersion: str(), EventSource: str(), AwsRegion: str(), EventTime: str(), EventName: Name(str()),
		UserIdentity: Identity{PrincipalID: str()}, RequestParameters: m(), ResponseElements: m(),
		S3: S3{SchemaVersion: str(), ConfigurationID: str(),
			Bucket: Bucket{Name: str(), OwnerIdentity: Identity{PrincipalID: str()}, ARN: str()},
			Object: Object{Key: str(), Size: []int64{0, 1, -1, 1 << 40, math.MaxInt64, math.MinInt64}[rng.IntN(6)],
				UserMetadata: m(), Sequencer: str()}},
	}
	if rng.IntN(2) == 0 {
		r.S3.Object.ETag, r.S3.Object.ContentType, r.S3.Object.VersionID = str(), str(), str()
	}
	if rng.IntN(2) == 0 {
		r.Source = &Source{Host: str(), Port: str(), UserAgent: str()}
	}
	return r
}

// AppendJSON writes json.Marshal's bytes for many random records.
func TestAppendJSONMatchesMarshalMany(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 5000 {
		r := randomRecord(rng)
		want, err := json.Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.AppendJSON(nil); string(got) != string(want) {
			t.Fatalf("record %d: AppendJSON:\n%s\njson.Marshal:\n%s", i, got, want)
		}
	}
}

// AppendJSON allocates nothing when dst has room.
func TestAppendJSONAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	r := randomRecord(rng)
	r.S3.Object.UserMetadata = map[string]string{"a": "1", "c": "3", "b": "2"}
	buf := make([]byte, 0, 1<<16)
	if n := testing.AllocsPerRun(100, func() { buf = r.AppendJSON(buf[:0]) }); n != 0 {
		t.Fatalf("AppendJSON: got %v allocations, want 0", n)
	}
}

// Matches agrees with its definition (n's family is the pattern) on every
// pair of names, wildcards and odd strings.
func TestMatchesIsFamily(t *testing.T) {
	all := []Name{"", ":*", "s3:*", "s3:x", "s3:Object:", "s3:Object:*", "s3:ObjectCreated:", "x:y:z:*", "x:y:z:w", "a:b", "s3::*", "s3::x"}
	for n := range known {
		all = append(all, n)
	}
	for _, n := range all {
		for _, p := range all {
			want := n == p || p.IsWildcard() && n.family() == p
			if got := n.Matches(p); got != want {
				t.Errorf("%q.Matches(%q): got %v, want %v", n, p, got, want)
			}
		}
	}
}

// NameOf returns the package's own constant for a known name.
func TestNameOf(t *testing.T) {
	for n := range known {
		b := []byte(n)
		if got := NameOf(b); got != n {
			t.Fatalf("NameOf(%q): got %q", b, got)
		}
		if n := testing.AllocsPerRun(10, func() { NameOf(b) }); n != 0 {
			t.Fatalf("NameOf: got %v allocations, want 0", n)
		}
	}
	if got := NameOf([]byte("s3:Nope")); got != "s3:Nope" {
		t.Fatalf(`NameOf("s3:Nope"): got %q`, got)
	}
}
