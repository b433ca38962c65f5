package wal_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/testkit/walfault"
	"github.com/bucketrelay/bucketrelay/wal"
	bolt "go.etcd.io/bbolt"
)

const (
	salvA = "arn:minio:sqs::a:webhook"
	salvB = "arn:minio:sqs::b:redis"
)

// salvageLog writes a log of frames frames of two records each (records of
// about 700 bytes that do not compress much, so a bbolt leaf page holds a
// few frames), routed to a, to a and b, or to nobody; a's cursor at 15,
// b's at 1, two quarantine entries for a. It returns the file's path.
func salvageLog(t *testing.T, frames int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "wal.db")
	l, err := wal.Open(path, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.Register(salvA)
	l.Register(salvB)
	routes := [][]string{{salvA}, {salvA, salvB}, nil}
	for i := 0; i < frames; i++ {
		var es []*wal.Entry
		for j := 0; j < 2; j++ {
			pad := make([]byte, 300)
			rand.Read(pad)
			n := 2*i + j + 1
			es = append(es, &wal.Entry{
				Targets:   routes[n%3],
				Key:       fmt.Sprintf("images/%d.jpg", n),
				Name:      "s3:ObjectCreated:Put",
				EventTime: time.Date(2026, 12, 1, 0, 0, n, 0, time.UTC),
				Data:      []byte(fmt.Sprintf(`{"i":%d,"pad":%q}`, n, hex.EncodeToString(pad))),
			})
		}
		if seq, err := l.Append(context.Background(), es...); err != nil || seq != uint64(2*i+1) {
			t.Fatalf("append %d: got seq %d, err %v; want seq %d", i, seq, err, 2*i+1)
		}
	}
	recs := readLog(t, l)
	l.Quarantine(salvA, recs[4], "webhook: 400 Bad Request", 1)
	l.Quarantine(salvA, recs[7], "webhook: 400 Bad Request", 3)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// a's cursor goes to 15 behind the log's back: a cursor move through
	// the log would let it reclaim and compact what a has passed, and the
	// fixture wants every frame held (b at 1 holds them in a relay whose
	// commit has not run yet).
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("cursors")).Put([]byte(salvA), binary.BigEndian.AppendUint64(nil, 15))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	return path
}

func readLog(t *testing.T, l *wal.Log) map[uint64]wal.Record {
	t.Helper()
	out := map[uint64]wal.Record{}
	if _, err := l.Read(context.Background(), 1, "", func(r wal.Record) bool { out[r.Seq] = r; return true }); err != nil {
		t.Fatal(err)
	}
	return out
}

// content is what a log holds, as read through its API.
type content struct {
	records    map[uint64]wal.Record
	cursors    map[string]uint64
	quarantine map[string][]wal.QuarantineEntry
	lastSeq    uint64
}

// readContent opens path read-only and reads everything, skipping frames
// in the sequences of skip (damaged ones).
func readContent(t *testing.T, path string, skip []wal.DamagedRange) content {
	t.Helper()
	l, err := wal.OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c := content{records: map[uint64]wal.Record{}, cursors: l.Cursors(), quarantine: map[string][]wal.QuarantineEntry{}, lastSeq: l.LastSeq()}
	from := uint64(1)
	for _, d := range skip {
		if _, err := l.Read(context.Background(), from, "", func(r wal.Record) bool {
			if r.Seq >= d.First {
				return false
			}
			c.records[r.Seq] = r
			return true
		}); err != nil {
			t.Fatal(err)
		}
		from = d.Last + 1
	}
	if _, err := l.Read(context.Background(), from, "", func(r wal.Record) bool { c.records[r.Seq] = r; return true }); err != nil {
		t.Fatal(err)
	}
	for _, tg := range l.QuarantineTargets() {
		q, err := l.Quarantined(tg)
		if err != nil {
			t.Fatal(err)
		}
		c.quarantine[tg] = q
	}
	return c
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// salvageChecked salvages src into a new file and checks that src did not
// change and that the result opens, passes Verify and Scan.
func salvageChecked(t *testing.T, src string) (string, wal.SalvageReport) {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "salvaged.db")
	before := fileSum(t, src)
	rep, err := wal.Salvage(src, dst, wal.SalvageOptions{})
	if err != nil {
		t.Fatalf("salvage: %v", err)
	}
	if fileSum(t, src) != before {
		t.Fatal("salvage changed its source file")
	}
	l, err := wal.Open(dst, wal.Options{})
	if err != nil {
		t.Fatalf("open the salvaged log: %v", err)
	}
	if errs := l.Verify(); len(errs) > 0 {
		t.Errorf("verify of the salvaged log got %v, want none", errs)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if r, err := wal.Scan(dst, wal.SalvageOptions{}); err != nil || !r.OK() {
		t.Errorf("scan of the salvaged log got %v, %v; want no problem", r.Problems, err)
	}
	return dst, rep
}

func TestSalvageSound(t *testing.T) {
	src := salvageLog(t, 30)
	want := readContent(t, src, nil)
	var seen []uint64
	dst := filepath.Join(t.TempDir(), "salvaged.db")
	rep, err := wal.Salvage(src, dst, wal.SalvageOptions{Progress: func(seq, last uint64) { seen = append(seen, seq) }})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Frames != 30 || rep.Records != 60 || rep.Cursors != 2 || rep.QuarantineEntries != 2 || rep.NextSeq != 61 || len(rep.Damaged) != 0 || rep.UnreadablePages != 0 {
		t.Errorf("report got %+v, want 30 frames, 60 records, 2 cursors, 2 quarantine entries, next 61, no damage", rep)
	}
	if len(seen) != 30 || seen[29] != 60 {
		t.Errorf("progress got %v, want one call per frame ending at 60", seen)
	}
	if got := readContent(t, dst, nil); !reflect.DeepEqual(got, want) {
		t.Errorf("salvaged log differs from its source:\ngot  %d records, cursors %v, quarantine %d, last %d\nwant %d records, cursors %v, quarantine %d, last %d",
			len(got.records), got.cursors, len(got.quarantine[salvA]), got.lastSeq, len(want.records), want.cursors, len(want.quarantine[salvA]), want.lastSeq)
	}
	// The destination must not exist.
	if _, err := wal.Salvage(src, dst, wal.SalvageOptions{}); !errors.Is(err, wal.ErrExists) {
		t.Errorf("salvage onto an existing file got %v, want ErrExists", err)
	}
	if r, err := wal.Scan(src, wal.SalvageOptions{}); err != nil || !r.OK() || r.Records != 60 {
		t.Errorf("scan of a sound log got %+v, %v; want 60 records and no problem", r, err)
	}
}

func TestSalvageDamagedFrame(t *testing.T) {
	src := salvageLog(t, 30)
	want := readContent(t, src, nil)
	walfault.FlipFrameByte(t, src, 21, -3) // frame 21-22: routed to a, and to a and b
	dst, rep := salvageChecked(t, src)

	if len(rep.Damaged) != 1 || rep.Damaged[0].First != 21 || rep.Damaged[0].Last != 22 || rep.Damaged[0].Reason != "frame checksum mismatch" {
		t.Fatalf("damaged got %+v, want sequences 21-22 with a frame checksum mismatch", rep.Damaged)
	}
	if rep.DamagedRecords != 2 || rep.Frames != 29 || rep.Records != 58 || rep.NextSeq != 61 {
		t.Errorf("report got %+v, want 2 damaged, 29 frames, 58 records, next 61", rep)
	}
	if len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0], "records: sequences 21-22: frame checksum mismatch") {
		t.Errorf("problems got %q, want one naming records 21-22", rep.Problems)
	}
	if !slices.Equal(rep.Damaged[0].Targets, []string{salvA, salvB}) {
		t.Errorf("damaged targets got %v, want %v (from the frame's header)", rep.Damaged[0].Targets, []string{salvA, salvB})
	}
	delete(want.records, 21)
	delete(want.records, 22)
	got := readContent(t, dst, nil)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("salvaged log got %d records (cursors %v, last %d), want %d (cursors %v, last %d)", len(got.records), got.cursors, got.lastSeq, len(want.records), want.cursors, want.lastSeq)
	}
	if r, err := wal.Scan(src, wal.SalvageOptions{}); err != nil || !reflect.DeepEqual(r.Damaged, rep.Damaged) {
		t.Errorf("scan got %+v, %v; want the damage salvage found", r.Damaged, err)
	}
}

func TestSalvageDamagedPage(t *testing.T) {
	src := salvageLog(t, 150)
	want := readContent(t, src, nil)
	page := walfault.DamageFramePage(t, src, 151)
	// Opening the log the plain way panics on such a page; salvage walks
	// past it.
	// (wal.Open walks the pages first and returns an error wrapping
	// ErrCorrupt where bbolt would panic.)
	failed := func() (bad bool) {
		defer func() {
			if recover() != nil {
				bad = true
			}
		}()
		l, err := wal.Open(src, wal.Options{})
		if err == nil {
			l.Close()
			return false
		}
		return errors.Is(err, wal.ErrCorrupt)
	}()
	if !failed {
		t.Fatalf("opening a log with page %d damaged neither panicked nor failed with ErrCorrupt: the page is not damaged", page)
	}
	dst, rep := salvageChecked(t, src)
	if len(rep.Damaged) == 0 || rep.OK() || rep.UnreadablePages != 1 {
		t.Fatalf("report got %+v, want the records of page %d damaged, one unreadable place", rep, page)
	}
	lost := map[uint64]bool{}
	for _, d := range rep.Damaged {
		if !strings.Contains(d.Reason, "pages bbolt cannot read") {
			t.Errorf("damaged range %+v: want a reason naming unreadable pages", d)
		}
		for s := d.First; s <= d.Last; s++ {
			lost[s] = true
		}
	}
	if !lost[151] || len(lost) > 40 {
		t.Errorf("lost sequences got %d (%+v), want 151 among a page's worth", len(lost), rep.Damaged)
	}
	got := readContent(t, dst, nil)
	for s, r := range want.records {
		if lost[s] {
			continue
		}
		if g, ok := got.records[s]; !ok || !reflect.DeepEqual(g, r) {
			t.Errorf("record %d outside the damage: got %v, want it copied", s, ok)
		}
	}
	if int64(len(got.records)) != rep.Records || rep.Records+int64(len(lost)) != 300 {
		t.Errorf("salvaged %d records, reported %d and %d lost; want 300 in all", len(got.records), rep.Records, len(lost))
	}
	if !reflect.DeepEqual(got.cursors, want.cursors) || !reflect.DeepEqual(got.quarantine, want.quarantine) || got.lastSeq != 300 {
		t.Errorf("cursors %v quarantine %d last %d, want %v, %d, 300", got.cursors, len(got.quarantine[salvA]), got.lastSeq, want.cursors, len(want.quarantine[salvA]))
	}
}

func TestSalvageUnopenable(t *testing.T) {
	for _, c := range []struct {
		name, want string
		damage     func(t *testing.T, path string)
	}{
		{"root page", "bbolt cannot read the root of the file", func(t *testing.T, path string) { walfault.DamageRootPage(t, path) }},
		{"both meta pages", "both meta pages are damaged", func(t *testing.T, path string) {
			walfault.DamageMeta(t, path, 0)
			walfault.DamageMeta(t, path, 1)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := salvageLog(t, 5)
			c.damage(t, src)
			before := fileSum(t, src)
			dst := filepath.Join(t.TempDir(), "salvaged.db")
			_, err := wal.Salvage(src, dst, wal.SalvageOptions{})
			if !errors.Is(err, wal.ErrCorrupt) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("salvage got %v, want ErrCorrupt saying %q", err, c.want)
			}
			if _, serr := os.Stat(dst); !os.IsNotExist(serr) {
				t.Errorf("salvage that failed left %s (%v), want it removed", dst, serr)
			}
			if fileSum(t, src) != before {
				t.Error("salvage changed its source file")
			}
		})
	}
}

func TestSalvageLocked(t *testing.T) {
	src := salvageLog(t, 2)
	l, err := wal.Open(src, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dst := filepath.Join(t.TempDir(), "salvaged.db")
	if _, err := wal.Salvage(src, dst, wal.SalvageOptions{}); !errors.Is(err, wal.ErrLocked) {
		t.Errorf("salvage of a held log got %v, want ErrLocked", err)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Errorf("salvage that failed left %s", dst)
	}
}

// TestSalvageBadCursorAndQuarantine: a cursor of the wrong size is reset to
// the oldest sequence (redelivery, never a skip), a quarantine entry that
// does not parse is left out, both reported.
func TestSalvageBadCursorAndQuarantine(t *testing.T) {
	src := salvageLog(t, 10)
	db, err := bolt.Open(src, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket([]byte("cursors")).Put([]byte(salvB), []byte{1, 2, 3}); err != nil {
			return err
		}
		return tx.Bucket([]byte("quarantine")).Bucket([]byte(salvA)).Put(binary.BigEndian.AppendUint64(nil, 4), []byte(`{"target":`))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	dst, rep := salvageChecked(t, src)
	if !slices.Equal(rep.ResetCursors, []string{salvB}) || rep.QuarantineEntries != 1 || rep.Cursors != 2 {
		t.Errorf("report got %+v, want b's cursor reset, 1 quarantine entry, 2 cursors", rep)
	}
	joined := strings.Join(rep.Problems, "\n")
	for _, w := range []string{`cursors: the cursor of "` + salvB + `" is 3 bytes, want 8 (salvage restarts it at 1)`, `quarantine of "` + salvA + `": the entry at sequence 4 does not parse`} {
		if !strings.Contains(joined, w) {
			t.Errorf("problems got\n%s\nwant %q", joined, w)
		}
	}
	got := readContent(t, dst, nil)
	if got.cursors[salvB] != 1 || got.cursors[salvA] != 15 || len(got.quarantine[salvA]) != 1 || got.quarantine[salvA][0].Seq != 7 {
		t.Errorf("salvaged cursors %v, quarantine %+v; want b at 1, a at 15, a's entry 7 only", got.cursors, got.quarantine)
	}
}

func TestCheckMeta(t *testing.T) {
	src := salvageLog(t, 3)
	if p, err := wal.CheckMeta(src); err != nil || len(p) != 0 {
		t.Fatalf("sound meta pages: got %v, %v; want none", p, err)
	}
	older := salvageLog(t, 3)
	old := 1 - walfault.NewestMeta(t, older)
	walfault.DamageMeta(t, older, old)
	p, err := wal.CheckMeta(older)
	if err != nil || len(p) != 1 || !errors.Is(p[0], wal.ErrCorrupt) || !strings.Contains(p[0].Error(), fmt.Sprintf("bbolt meta page %d (offset ", old)) || !strings.Contains(p[0].Error(), "checksum mismatch") {
		t.Errorf("damaged older meta: got %v, %v; want one problem naming meta page %d", p, err, old)
	}

	// The newest meta damaged: bbolt opens the older one, which loses the
	// last transaction (here: the final cursor moves).
	walfault.DamageMeta(t, src, walfault.NewestMeta(t, src))
	p, err = wal.CheckMeta(src)
	if err != nil || len(p) != 2 || !strings.Contains(p[1].Error(), "silently rolls back the last transaction") {
		t.Errorf("damaged newest meta: got %v, %v; want the damage and the rollback", p, err)
	}
	rep, err := wal.Scan(src, wal.SalvageOptions{})
	if err != nil || rep.OK() || !strings.Contains(strings.Join(rep.Problems, "\n"), "rolls back") {
		t.Errorf("scan of a log with a damaged newest meta got %v, %v; want the rollback reported", rep.Problems, err)
	}
}

// TestSalvageUnreadableCursors: when pages of the cursors bucket cannot be
// read, the targets of the records copied whose cursor is lost restart at
// the oldest record copied, never at the end of the log.
func TestSalvageUnreadableCursors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wal.db")
	l, err := wal.Open(path, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Enough cursors for the bucket to span pages; the routed target
	// sorts after them all.
	for i := 0; i < 300; i++ {
		l.Register(fmt.Sprintf("arn:minio:sqs::dummy-%03d:webhook", i))
	}
	const z = "arn:minio:sqs::z:webhook"
	l.Register(z)
	for i := 0; i < 5; i++ {
		if _, err := l.Append(context.Background(), &wal.Entry{Targets: []string{z}, Key: "b/o", Name: "s3:ObjectCreated:Put", Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	l.Advance(z, 4) // 1-3 delivered and reclaimed, 4 and 5 pending
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	walfault.DamagePageHolding(t, path, []byte("arn:minio:sqs::dummy-150:webhook"))
	dst, rep := salvageChecked(t, path)
	if !slices.Contains(rep.ResetCursors, z) || !strings.Contains(strings.Join(rep.Problems, "\n"), "cursors: pages bbolt cannot read") {
		t.Fatalf("report got reset %v, problems %q; want %s reset and the cursors' pages named", rep.ResetCursors, rep.Problems, z)
	}
	got := readContent(t, dst, nil)
	if got.cursors[z] != 4 || len(got.records) != 2 {
		t.Errorf("salvaged cursor of z got %d with %d records, want 4 (the oldest record held) and 2", got.cursors[z], len(got.records))
	}
}
