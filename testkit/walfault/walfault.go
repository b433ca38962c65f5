// Package walfault damages a closed relay log file the way a failing disk
// does, for tests: a flipped byte in a frame, a page whose header no longer
// matches, a damaged bbolt meta page. Every helper writes the file itself
// with WriteAt at offsets it finds in the file's bytes, never through
// bbolt, so bbolt sees exactly what a bad sector would show it.
//
// bbolt's layout is that of go.etcd.io/bbolt v1.5: every page starts with
// a 16-byte header (id uint64, flags uint16, count uint16, overflow
// uint32); pages 0 and 1 are the meta pages (magic, version, page size,
// flags, root bucket page and sequence, freelist page, high-water page,
// txid, checksum), all in the machine's byte order.
package walfault

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Offsets in a meta page, from the page's start.
const (
	metaPageSizeOff = 16 + 8
	metaRootOff     = 16 + 16
	metaTxidOff     = 16 + 48
)

// FrameValue returns a copy of the value stored under sequence seq in the
// log's records bucket (the frame whose first record is seq).
func FrameValue(t testing.TB, path string, seq uint64) []byte {
	t.Helper()
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v []byte
	err = db.View(func(tx *bolt.Tx) error {
		v = append(v, tx.Bucket([]byte("records")).Get(binary.BigEndian.AppendUint64(nil, seq))...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(v) == 0 {
		t.Fatalf("walfault: no frame is stored under sequence %d", seq)
	}
	return v
}

// offsets returns every offset of needle in the file at path: the live
// copy and old copies bbolt left in free pages.
func offsets(t testing.TB, path string, needle []byte) []int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for base := 0; ; {
		i := bytes.Index(b[base:], needle)
		if i < 0 {
			break
		}
		out = append(out, int64(base+i))
		base += i + 1
	}
	if len(out) == 0 {
		t.Fatal("walfault: the bytes to damage are not in the file")
	}
	return out
}

// xorAt flips the bits of mask in the byte at off.
func xorAt(t testing.TB, path string, off int64, mask byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= mask
	if _, err := f.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

// FlipFrameByte flips a byte of the frame stored under seq: the byte at
// off from the value's start, or from its end when off is negative
// (-1 is the last byte). Byte 0 is the frame's format version, bytes 1-4
// its checksum; a flip past them breaks the frame checksum.
func FlipFrameByte(t testing.TB, path string, seq uint64, off int) {
	t.Helper()
	v := FrameValue(t, path, seq)
	if off < 0 {
		off += len(v)
	}
	for _, at := range offsets(t, path, v) {
		xorAt(t, path, at+int64(off), 0x40)
	}
}

// PageSize returns the file's page size, from the first meta page.
func PageSize(t testing.TB, path string) int64 {
	t.Helper()
	return int64(readU32(t, path, metaPageSizeOff))
}

// DamageFramePage damages the header of the page holding the frame stored
// under seq (the frame must fit in its leaf page), so that bbolt panics
// when a cursor reaches that page. It returns the page's id.
func DamageFramePage(t testing.TB, path string, seq uint64) int64 {
	t.Helper()
	return DamagePageHolding(t, path, FrameValue(t, path, seq))
}

// DamagePageHolding damages the header of every page holding needle (a
// key or a value, which must not cross a page boundary), so that bbolt
// panics when it reads such a page. It returns the id of the last one.
func DamagePageHolding(t testing.TB, path string, needle []byte) int64 {
	t.Helper()
	ps := PageSize(t, path)
	var id int64
	for _, at := range offsets(t, path, needle) {
		id = at / ps
		xorAt(t, path, id*ps, 0x5a) // the page id's low byte
	}
	return id
}

// MetaTxids returns the txids stored in meta pages 0 and 1.
func MetaTxids(t testing.TB, path string) (tx0, tx1 uint64) {
	t.Helper()
	ps := PageSize(t, path)
	return readU64(t, path, metaTxidOff), readU64(t, path, ps+metaTxidOff)
}

// DamageMeta flips a byte covered by the checksum of meta page index (0 or
// 1): its root bucket page, so the page fails validation.
func DamageMeta(t testing.TB, path string, index int) {
	t.Helper()
	ps := PageSize(t, path)
	xorAt(t, path, int64(index)*ps+metaRootOff, 0x01)
}

// NewestMeta returns the index of the meta page with the higher txid: the
// one bbolt opens.
func NewestMeta(t testing.TB, path string) int {
	t.Helper()
	tx0, tx1 := MetaTxids(t, path)
	if tx1 > tx0 {
		return 1
	}
	return 0
}

// DamageRootPage damages the header of the page that holds bbolt's root
// bucket (the one the newest meta page points to), so that bbolt panics
// as soon as it looks a bucket up. It returns the page's id.
func DamageRootPage(t testing.TB, path string) int64 {
	t.Helper()
	ps := PageSize(t, path)
	root := int64(readU64(t, path, int64(NewestMeta(t, path))*ps+metaRootOff))
	xorAt(t, path, root*ps, 0x5a)
	return root
}

func readAt(t testing.TB, path string, off int64, n int) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}

func readU32(t testing.TB, path string, off int64) uint32 {
	t.Helper()
	return binary.NativeEndian.Uint32(readAt(t, path, off, 4))
}

func readU64(t testing.TB, path string, off int64) uint64 {
	t.Helper()
	return binary.NativeEndian.Uint64(readAt(t, path, off, 8))
}
