package wal

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/internal/logframe"
	bolt "go.etcd.io/bbolt"
)

// storedValue returns a copy of the frame stored under first.
func storedValue(t *testing.T, path string, first uint64) []byte {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v []byte
	db.View(func(tx *bolt.Tx) error {
		v = append(v, tx.Bucket(bucketRecords).Get(seqKey(first))...)
		return nil
	})
	if v == nil {
		t.Fatalf("no frame stored under %d", first)
	}
	return v
}

// flipInFile flips 8 bytes of the file at offset off within the stored
// bytes of the frame under first, as a bad disk would: not through bbolt.
func flipInFile(t *testing.T, path string, first uint64, off int) {
	t.Helper()
	v := storedValue(t, path, first)
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// bbolt copies pages on write: damage every copy, the live one too.
	found := 0
	for at := 0; ; {
		i := bytes.Index(file[at:], v)
		if i < 0 {
			break
		}
		at += i
		for i := 0; i < 8 && off+i < len(v); i++ {
			file[at+off+i] ^= 0x5a
		}
		found++
		at += len(v)
	}
	if found == 0 {
		t.Fatalf("frame %d not found in the file", first)
	}
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
}

// threeFrames writes frames 1-2 (a; a,b), 3-5 (a,b; b; a) and 6-7 (a,b;
// b), with a's cursor past the second frame and b's at the start.
func threeFrames(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "wal.db")
	l := openTest(t, path, Options{})
	l.Register("a")
	l.Register("b")
	ctx := context.Background()
	for _, es := range [][]*Entry{
		{entry(1, "a"), entry(2, "a", "b")},
		{entry(3, "a", "b"), entry(4, "b"), entry(5, "a")},
		{entry(6, "a", "b"), entry(7, "b")},
	} {
		if _, err := l.Append(ctx, es...); err != nil {
			t.Fatal(err)
		}
	}
	l.Advance("a", 6)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func seqs(rs []Record) []uint64 {
	var out []uint64
	for _, r := range rs {
		out = append(out, r.Seq)
	}
	return out
}

// A damaged frame costs only its own records: the log opens, the intact
// records are read, and the damaged range is quarantined for the target
// that still needed it, not for one that had delivered it (issue 7,
// item 5).
func TestDamagedFrameIsolated(t *testing.T) {
	for _, tc := range []struct {
		name string
		off  func(v []byte) int
	}{
		{"payload", func(v []byte) int { return len(v) - 12 }},
		{"header", func(v []byte) int { return 9 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := threeFrames(t)
			flipInFile(t, path, 3, tc.off(storedValue(t, path, 3)))
			l, err := Open(path, Options{CursorSyncInterval: time.Millisecond})
			if err != nil {
				t.Fatalf("Open of a log with a damaged frame: %v", err)
			}
			if got := seqs(readAll(t, l, 1, "b")); len(got) != 3 || got[0] != 2 || got[1] != 6 || got[2] != 7 {
				t.Fatalf("b read %v, want [2 6 7]", got)
			}
			if got := seqs(readAll(t, l, 6, "a")); len(got) != 1 || got[0] != 6 {
				t.Fatalf("a read %v, want [6]", got)
			}
			if d := l.Damage(); len(d) != 1 || d[0].First != 3 || d[0].Last != 5 || d[0].Reason == "" {
				t.Fatalf("Damage got %+v, want one frame 3-5 with a reason", d)
			}
			waitFor(t, func() bool { q, _ := l.Quarantined("b"); return len(q) == 1 })
			q, _ := l.Quarantined("b")
			if q[0].Seq != 3 || q[0].Last != 5 || !strings.HasPrefix(q[0].Error, "damaged frame: ") {
				t.Fatalf("b's quarantine got %+v, want the range 3-5 with the reason", q[0])
			}
			if q, _ := l.Quarantined("a"); len(q) != 0 {
				t.Fatalf("a's quarantine got %+v, want none: a had delivered the frame", q)
			}
			// Reading again records nothing twice.
			readAll(t, l, 1, "b")
			l.Advance("a", 8)
			l.Advance("b", 8)
			waitFor(t, func() bool { return len(l.Damage()) == 0 && l.Events() == 0 })
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = openTest(t, path, Options{})
			defer l.Close()
			if q, _ := l.Quarantined("b"); len(q) != 1 {
				t.Fatalf("b's quarantine after reopen got %d entries, want 1", len(q))
			}
			if errs := l.Verify(); len(errs) != 0 {
				t.Fatalf("Verify after the damaged frame was passed: %v", errs)
			}
		})
	}
}

func TestVerifyNamesDamage(t *testing.T) {
	path := threeFrames(t)
	flipInFile(t, path, 3, 20)
	l, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	errs := l.Verify()
	if len(errs) != 1 || !errors.Is(errs[0], ErrCorrupt) || !strings.Contains(errs[0].Error(), "sequences 3-5") {
		t.Fatalf("Verify got %v, want one error naming sequences 3-5", errs)
	}
	b, err := l.Backlogs(nil)
	if err != nil {
		t.Fatal(err)
	}
	if b["b"].Pending != 3 {
		t.Errorf("b's backlog got %d, want 3 intact records", b["b"].Pending)
	}
	if q, _ := l.Quarantined("b"); len(q) != 0 {
		t.Errorf("a read-only log wrote a quarantine: %+v", q)
	}
}

// bbolt pages that cannot be read make Open fail with ErrCorrupt, never
// panic.
func TestDamagedPagesFailOpen(t *testing.T) {
	for _, tc := range []struct {
		name     string
		from, to func(size int) int
	}{
		{"data pages", func(int) int { return 2 * os.Getpagesize() }, func(size int) int { return size }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := threeFrames(t)
			file, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for i := tc.from(len(file)); i < tc.to(len(file)); i++ {
				file[i] = byte(i*7 + 3)
			}
			if err := os.WriteFile(path, file, 0o600); err != nil {
				t.Fatal(err)
			}
			for name, open := range map[string]func() (*Log, error){
				"Open":         func() (*Log, error) { return Open(path, Options{}) },
				"OpenReadOnly": func() (*Log, error) { return OpenReadOnly(path) },
			} {
				l, err := open()
				if err == nil {
					l.Close()
					t.Fatalf("%s of a log with damaged pages succeeded", name)
				}
				if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) {
					t.Errorf("%s: err %v, want ErrCorrupt naming the file", name, err)
				}
			}
		})
	}
	t.Run("meta pages", func(t *testing.T) {
		path := threeFrames(t)
		file, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, page := range []int{0, os.Getpagesize()} {
			file[page+16+40] ^= 0xff // the transaction id, under the meta checksum
		}
		if err := os.WriteFile(path, file, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(path, Options{}); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "meta pages") {
			t.Errorf("Open: err %v, want ErrCorrupt naming the meta pages", err)
		}
		if _, err := OpenReadOnly(path); !errors.Is(err, ErrCorrupt) {
			t.Errorf("OpenReadOnly: err %v, want ErrCorrupt", err)
		}
	})
}

// encodeFrameV1 is the version 1 encoder, kept to test that logs written
// before version 2 still read.
func encodeFrameV1(first uint64, now time.Time, entries []*Entry) []byte {
	idx := make(map[string]uint64)
	var targets []string
	for _, e := range entries {
		for _, t := range e.Targets {
			if _, ok := idx[t]; !ok {
				idx[t] = uint64(len(targets))
				targets = append(targets, t)
			}
		}
	}
	var raw []byte
	for _, e := range entries {
		start := len(raw)
		raw = binary.AppendVarint(raw, now.UnixNano())
		raw = binary.AppendVarint(raw, 0)
		raw = binary.AppendUvarint(raw, uint64(len(e.Targets)))
		for _, t := range e.Targets {
			raw = binary.AppendUvarint(raw, idx[t])
		}
		raw = appendBytes(raw, []byte(e.Key))
		raw = appendBytes(raw, []byte(e.Name))
		raw = appendBytes(raw, e.Data)
		raw = binary.BigEndian.AppendUint32(raw, crc32.Checksum(raw[start:], castagnoli))
	}
	out := make([]byte, 5)
	out[0] = frameV1
	out = binary.AppendUvarint(out, uint64(len(entries)))
	out = binary.AppendUvarint(out, uint64(len(targets)))
	for _, t := range targets {
		out = appendBytes(out, []byte(t))
	}
	out = binary.AppendUvarint(out, uint64(len(raw)))
	out = logframe.Zstd.Compress(out, raw)
	binary.BigEndian.PutUint32(out[1:5], crc32.Checksum(out[5:], castagnoli))
	return out
}

func TestVersion1Frames(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wal.db")
	l := openTest(t, path, Options{})
	l.Register("A")
	l.Register("B")
	l.Close()
	es := []*Entry{entry(1, "A", "B"), entry(2, "B"), entry(3, "B"), entry(4, "B")}
	var size int64
	for _, e := range es {
		size += e.size()
	}
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketRecords).Put(seqKey(1), encodeFrameV1(1, time.Now(), es)); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keyNextSeq, seqKey(5))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	l = openTest(t, path, Options{CursorSyncInterval: time.Millisecond})
	defer l.Close()
	l.Advance("A", 1)
	l.Advance("B", 1)
	if l.Events() != 4 || l.Bytes() != size {
		t.Fatalf("v1 log: %d events, %d bytes; want 4, %d", l.Events(), l.Bytes(), size)
	}
	if got := seqs(readAll(t, l, 1, "B")); len(got) != 4 || got[3] != 4 {
		t.Fatalf("B read %v, want [1 2 3 4]", got)
	}
	// B passes: the v1 frame is compacted into a v2 one holding A's record.
	l.Advance("B", 5)
	waitFor(t, func() bool { return l.Events() == 1 })
	if got := readAll(t, l, 1, "A"); len(got) != 1 || got[0].Seq != 1 || got[0].Key != es[0].Key {
		t.Fatalf("A read %v after compaction, want its record 1", seqs(got))
	}
}

// Releasing a target lets go of damaged frames it pinned too.
func TestReleaseDamagedFrame(t *testing.T) {
	path := threeFrames(t)
	flipInFile(t, path, 3, len(storedValue(t, path, 3))-12)
	l := openTest(t, path, Options{CursorSyncInterval: time.Millisecond})
	defer l.Close()
	var out bytes.Buffer
	n, err := l.Release("b", &out)
	if err != nil || n != 3 {
		t.Fatalf("Release: %d, %v; want the 3 intact records", n, err)
	}
	if l.Frames() != 1 || l.Events() != 1 || len(l.Damage()) != 0 {
		t.Fatalf("after release: %d frames, %d events, damage %v; want 1, 1, none", l.Frames(), l.Events(), l.Damage())
	}
	if got := seqs(readAll(t, l, 6, "a")); len(got) != 1 || got[0] != 6 {
		t.Fatalf("a read %v, want [6]", got)
	}
}
