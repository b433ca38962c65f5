package logframe

import (
	"bytes"
	"errors"
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
