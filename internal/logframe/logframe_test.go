package logframe

import (
	"bytes"
	"errors"
	"runtime"
	"testing"
)

func TestCodecsRoundTrip(t *testing.T) {
	raw := bytes.Repeat([]byte(`{"eventName":"s3:ObjectCreated:Put","key":"photos/a.jpg"}`), 200)
	for _, c := range []Codec{None, Zstd, S2} {
		t.Run(c.String(), func(t *testing.T) {
			prefix := []byte("hdr")
			v := c.Compress(append([]byte(nil), prefix...), raw)
			if !bytes.HasPrefix(v, prefix) {
				t.Fatalf("Compress did not append to dst: got %q…", v[:3])
			}
			got, err := c.Decompress(v[len(prefix):], len(raw))
			if err != nil || !bytes.Equal(got, raw) {
				t.Fatalf("got %d bytes, %v, want the %d bytes compressed", len(got), err, len(raw))
			}
			if _, err := c.Decompress(v[len(prefix):], len(raw)+1); err == nil {
				t.Errorf("Decompress with a wrong length: got no error, want one")
			}
			// A damaged payload is an error, never a panic.
			bad := append([]byte(nil), v[len(prefix):]...)
			for i := range bad {
				if i%7 == 0 {
					bad[i] ^= 0x5a
				}
			}
			if got, err := c.Decompress(bad, len(raw)); err == nil && c != None && bytes.Equal(got, raw) {
				t.Errorf("a damaged payload decompressed to the original")
			}
		})
	}
}

func TestParseCodec(t *testing.T) {
	for s, want := range map[string]Codec{"": Default, "none": None, "zstd": Zstd, "s2": S2} {
		if c, err := ParseCodec(s); err != nil || c != want || (s != "" && c.String() != s) {
			t.Errorf("ParseCodec(%q) = %v, %v, want %v", s, c, err, want)
		}
	}
	if _, err := ParseCodec("lz4"); !errors.Is(err, ErrUnknownCodec) {
		t.Errorf("ParseCodec(lz4): got %v, want ErrUnknownCodec", err)
	}
	if _, err := Codec(9).Decompress(nil, 0); !errors.Is(err, ErrUnknownCodec) {
		t.Errorf("Decompress with codec 9: got %v, want ErrUnknownCodec", err)
	}
}

// FuzzDecompress: no input makes a codec panic or return another length
// than asked.
func FuzzDecompress(f *testing.F) {
	raw := bytes.Repeat([]byte("abcdefgh"), 64)
	for _, c := range []Codec{None, Zstd, S2} {
		f.Add(uint8(c), c.Compress(nil, raw), len(raw))
	}
	f.Fuzz(func(t *testing.T, c uint8, payload []byte, n int) {
		if n < 0 || n > 1<<20 {
			return
		}
		got, err := Codec(c%3).Decompress(payload, n)
		if err == nil && len(got) != n {
			t.Fatalf("got %d bytes, want %d", len(got), n)
		}
	})
}

// Decompress allocates without clearing (makeNoZero): what it returns must
// still be exactly the records, whatever the reused memory held before,
// and a payload that fails must not hand out a buffer.
func TestDecompressReusedMemory(t *testing.T) {
	raws := [][]byte{
		bytes.Repeat([]byte(`{"eventName":"s3:ObjectCreated:Put","key":"photos/a.jpg"}`), 3000),
		bytes.Repeat([]byte{0}, 200<<10),
		bytes.Repeat([]byte("0123456789abcdef"), 10000),
	}
	for _, c := range []Codec{None, Zstd, S2} {
		for round := range 20 {
			// Leave garbage behind for the allocator to hand out again.
			for range 8 {
				junk := bytes.Repeat([]byte{0xa5}, 256<<10)
				_ = junk
			}
			if round%5 == 0 {
				runtime.GC()
			}
			raw := raws[round%len(raws)]
			v := c.Compress(nil, raw)
			got, err := c.Decompress(v, len(raw))
			if err != nil || !bytes.Equal(got, raw) {
				t.Fatalf("%v round %d: got %d bytes (equal %v), %v, want the %d bytes compressed", c, round, len(got), bytes.Equal(got, raw), err, len(raw))
			}
			if c != None {
				if got, err := c.Decompress(v[:len(v)/2], len(raw)); err == nil || got != nil {
					t.Fatalf("%v: half a payload: got %d bytes, %v, want no bytes and an error", c, len(got), err)
				}
			}
		}
	}
}

func TestMakeNoZero(t *testing.T) {
	for _, n := range []int{0, 1, 7, 4096, 1 << 20} {
		b := makeNoZero(n)
		if len(b) != n || cap(b) != n {
			t.Fatalf("makeNoZero(%d): len %d cap %d, want both %d", n, len(b), cap(b), n)
		}
		for i := range b {
			b[i] = byte(i)
		}
	}
}
