package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/internal/logframe"
)

// fixtureRecord is record n (1 to 12) of testdata/v2-zstd.db, a log written
// by the code before codecs were selectable (zstd, version 2 frames): three
// appends of four records, even ones routed to a and b, odd ones to a.
func fixtureRecord(n int) (key string, targets []string, data string, et time.Time) {
	targets = []string{"a"}
	if n%2 == 0 {
		targets = []string{"a", "b"}
	}
	return fmt.Sprintf("bucket/obj-%d", n), targets,
		fmt.Sprintf(`{"eventName":"s3:ObjectCreated:Put","n":%d,"pad":"%s"}`, n, strings.Repeat("x", 50)),
		time.Date(2026, 1, 2, 3, 4, 5, n, time.UTC)
}

func copyFixture(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/v2-zstd.db")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "wal.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func checkFixtureRecords(t *testing.T, got []Record, target string, upTo int) {
	t.Helper()
	var want []int
	for n := 1; n <= upTo; n++ {
		if _, ts, _, _ := fixtureRecord(n); strings.Contains(strings.Join(ts, ","), target) {
			want = append(want, n)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%s: got %d records, want %d", target, len(got), len(want))
	}
	for i, n := range want {
		key, ts, data, et := fixtureRecord(n)
		r := got[i]
		if r.Seq != uint64(n) || r.Key != key || string(r.Data) != data || !r.EventTime.Equal(et) || fmt.Sprint(r.Targets) != fmt.Sprint(ts) || r.Name != "s3:ObjectCreated:Put" {
			t.Fatalf("%s: got record %d %q %q %v %v, want %d %q %q %v %v", target, r.Seq, r.Key, r.Data, r.EventTime, r.Targets, n, key, data, et, ts)
		}
	}
}

func codecsOf(t *testing.T, l *Log) map[string]int {
	t.Helper()
	out := map[string]int{}
	if err := l.FrameInfos(func(fi FrameInfo) bool {
		if fi.Damage != "" {
			t.Errorf("frame %d-%d: %s", fi.First, fi.Last, fi.Damage)
		}
		out[fmt.Sprintf("v%d %s", fi.Version, fi.Codec)]++
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// A log written before codecs were selectable reads with every codec
// setting, takes new frames in the new codec beside its old ones, and a
// frame rewritten (release) takes the log's codec.
func TestCompressionReadsOldLog(t *testing.T) {
	path := copyFixture(t)
	l := openTest(t, path, Options{})
	checkFixtureRecords(t, readAll(t, l, 1, "a"), "a", 12)
	checkFixtureRecords(t, readAll(t, l, 1, "b"), "b", 12)
	if got := codecsOf(t, l); fmt.Sprint(got) != "map[v2 zstd:3]" {
		t.Fatalf("fixture frames: got %v, want 3 version 2 zstd frames", got)
	}
	if errs := l.Verify(); len(errs) != 0 {
		t.Fatalf("Verify: %v", errs)
	}
	var es []*Entry
	for n := 13; n <= 16; n++ {
		key, ts, data, et := fixtureRecord(n)
		es = append(es, &Entry{Targets: ts, Key: key, Name: "s3:ObjectCreated:Put", EventTime: et, Data: []byte(data)})
	}
	if _, err := l.Append(t.Context(), es...); err != nil {
		t.Fatal(err)
	}
	if got := codecsOf(t, l); fmt.Sprint(got) != "map[v2 zstd:3 v3 s2:1]" {
		t.Fatalf("after an append: got %v, want the 3 zstd frames and one s2 frame", got)
	}
	checkFixtureRecords(t, readAll(t, l, 1, "a"), "a", 16)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = openTest(t, path, Options{Compression: CompressionNone})
	defer l.Close()
	checkFixtureRecords(t, readAll(t, l, 1, "a"), "a", 16)
	var out bytes.Buffer
	n, err := l.Release("b", &out)
	if err != nil || n != 8 {
		t.Fatalf("Release b: got %d, %v, want 8 records", n, err)
	}
	// Every frame held records for b: each was rewritten without it.
	if got := codecsOf(t, l); fmt.Sprint(got) != "map[v3 none:4]" {
		t.Fatalf("after the release: got %v, want 4 uncompressed frames", got)
	}
	got := readAll(t, l, 1, "a")
	if len(got) != 16 || got[1].Key != "bucket/obj-2" || fmt.Sprint(got[1].Targets) != "[a]" {
		t.Fatalf("after the release: got %d records, record 2 %q to %v, want 16, bucket/obj-2 to [a]", len(got), got[1].Key, got[1].Targets)
	}
	if errs := l.Verify(); len(errs) != 0 {
		t.Fatalf("Verify: %v", errs)
	}
}

// Every codec writes frames that read back the same, across a reopen.
func TestCompressionCodecs(t *testing.T) {
	for _, c := range []Compression{"", CompressionS2, CompressionZstd, CompressionNone} {
		t.Run(string(c), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "wal.db")
			l := openTest(t, path, Options{Compression: c})
			l.Register("a")
			var es []*Entry
			for i := 1; i <= 50; i++ {
				es = append(es, entry(i, "a"))
			}
			if _, err := l.Append(t.Context(), es...); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = openTest(t, path, Options{})
			defer l.Close()
			got := readAll(t, l, 1, "a")
			if len(got) != 50 || string(got[49].Data) != string(es[49].Data) || got[49].Key != es[49].Key {
				t.Fatalf("got %d records, want 50 as appended", len(got))
			}
			want := map[Compression]string{"": "map[v3 s2:1]", CompressionS2: "map[v3 s2:1]", CompressionZstd: "map[v2 zstd:1]", CompressionNone: "map[v3 none:1]"}[c]
			if got := codecsOf(t, l); fmt.Sprint(got) != want {
				t.Errorf("got frames %v, want %s", got, want)
			}
		})
	}
}

func TestCompressionUnknown(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "wal.db"), Options{Compression: "lz4"})
	if !errors.Is(err, ErrCompression) || !strings.Contains(err.Error(), `"lz4"`) {
		t.Fatalf("got %v, want ErrCompression naming lz4", err)
	}
}

// A frame whose header names a codec this build does not know (written by
// a later release) is damage, reported as such, never a panic.
func TestUnknownCodecIsDamage(t *testing.T) {
	v := encodeFrame(logframe.S2, 1, 1, []frameRecord{{seq: 1, at: 1, e: entry(1, "a")}})
	if v[0] != frameV3 || logframe.Codec(v[9]) != logframe.S2 {
		t.Fatalf("got version %d codec %d, want version 3 and s2", v[0], v[9])
	}
	v[9] = 77
	// Recompute the header checksum: the header was written this way.
	h, _ := decodeHeader(1, encodeFrame(logframe.S2, 1, 1, []frameRecord{{seq: 1, at: 1, e: entry(1, "a")}}))
	hdrEnd := len(v) - len(h.payload)
	binary.BigEndian.PutUint32(v[1:5], logframe.CRC(v[9:hdrEnd]))
	_, err := decodeHeader(1, v)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "unknown codec 77") {
		t.Fatalf("got %v, want ErrCorrupt for unknown codec 77", err)
	}
}
