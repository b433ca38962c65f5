package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/testkit/walfault"
	"github.com/bucketrelay/bucketrelay/wal"
	bolt "go.etcd.io/bbolt"
)

// bigLog writes a log of frames frames of one record each, about 700
// bytes that do not compress much (so a bbolt leaf page holds a few
// frames), routed to tgtA; tgtA's cursor stays at 1 so every frame is
// held. It returns the data directory.
func bigLog(t *testing.T, frames int) string {
	t.Helper()
	dir := t.TempDir()
	l, err := wal.Open(filepath.Join(dir, "wal.db"), wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.Register(tgtA)
	for i := 1; i <= frames; i++ {
		pad := make([]byte, 300)
		rand.Read(pad)
		e := &wal.Entry{Targets: []string{tgtA}, Key: fmt.Sprintf("images/%d.jpg", i), Name: "s3:ObjectCreated:Put",
			Data: []byte(fmt.Sprintf(`{"i":%d,"pad":%q}`, i, hex.EncodeToString(pad)))}
		if _, err := l.Append(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestInfoLastNotHeld: the frame at the last sequence is not held (here
// deleted as a reclamation that does not go in order would) while older
// ones are: info used to dereference a nil append time and panic.
func TestInfoLastNotHeld(t *testing.T) {
	dir := buildLog(t)
	db, err := bolt.Open(filepath.Join(dir, "wal.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("records")).Delete(binary.BigEndian.AppendUint64(nil, 5))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	code, out, stderr := run(t, "info", dir)
	if code != 0 {
		t.Fatalf("info: got exit %d (%s), want 0", code, stderr)
	}
	norm := normLines(out)
	for _, want := range []string{"records 3 in 3 frames", "first seq 1", "last seq 4", "next seq 6"} {
		if !slices.Contains(norm, want) {
			t.Errorf("info output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "newest record  2") {
		t.Errorf("info output lacks the newest held record's time:\n%s", out)
	}
	code, out, _ = run(t, "info", "--json", dir)
	var got infoJSON
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != 0 {
		t.Fatalf("info --json: exit %d, %v\n%s", code, err, out)
	}
	if got.LastSeq == nil || *got.LastSeq != 4 || got.NextSeq != 6 || got.NewestAppendTime == nil {
		t.Errorf("info --json got lastSeq %v, nextSeq %d, newest %v; want 4, 6 and a time", got.LastSeq, got.NextSeq, got.NewestAppendTime)
	}
}

// TestInfoEmptyAfterReclaim: a log whose records were all delivered and
// reclaimed used to report firstSeq 6 and lastSeq 5.
func TestInfoEmptyAfterReclaim(t *testing.T) {
	dir := t.TempDir()
	l, err := wal.Open(filepath.Join(dir, "wal.db"), wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.Register(tgtA)
	for i := 0; i < 5; i++ {
		if _, err := l.Append(context.Background(), &wal.Entry{Targets: []string{tgtA}, Key: "b/o", Name: "s3:ObjectCreated:Put", Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	l.Advance(tgtA, 6)
	l.Close()
	code, out, _ := run(t, "info", "--json", dir)
	var raw map[string]any
	if err := json.Unmarshal([]byte(out), &raw); err != nil || code != 0 {
		t.Fatalf("info --json: exit %d, %v\n%s", code, err, out)
	}
	if raw["firstSeq"] != nil || raw["lastSeq"] != nil || raw["nextSeq"] != 6.0 || raw["records"] != 0.0 {
		t.Errorf("info --json of an emptied log got firstSeq %v, lastSeq %v, nextSeq %v, records %v; want null, null, 6, 0", raw["firstSeq"], raw["lastSeq"], raw["nextSeq"], raw["records"])
	}
	_, out, _ = run(t, "info", dir)
	for _, want := range []string{"first seq - (empty)", "last seq - (empty)", "next seq 6"} {
		if !slices.Contains(normLines(out), want) {
			t.Errorf("info lacks %q:\n%s", want, out)
		}
	}
}

// TestVerifyNewestMetaDamaged: bbolt opens the older meta page when the
// newest is damaged, silently losing the last transaction; verify used to
// say ok.
func TestVerifyNewestMetaDamaged(t *testing.T) {
	dir := buildLog(t)
	path := filepath.Join(dir, "wal.db")
	newest := walfault.NewestMeta(t, path)
	walfault.DamageMeta(t, path, newest)
	code, out, _ := run(t, "verify", dir)
	if code != exitDamage {
		t.Fatalf("verify: got exit %d, want %d\n%s", code, exitDamage, out)
	}
	for _, want := range []string{
		fmt.Sprintf("DAMAGE  meta: bbolt meta page %d (offset ", newest),
		"silently rolls back the last transaction",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("verify output lacks %q:\n%s", want, out)
		}
	}
	// info says so too: its numbers are older than the last commit.
	if code, out, _ := run(t, "info", dir); code != exitDamage || !strings.Contains(out, "rolls back") {
		t.Errorf("info: got exit %d and\n%s\nwant %d and the rollback", code, out, exitDamage)
	}
	// The older meta page alone damaged is damage too, without a rollback.
	dir = buildLog(t)
	path = filepath.Join(dir, "wal.db")
	walfault.DamageMeta(t, path, 1-walfault.NewestMeta(t, path))
	if code, out, _ := run(t, "verify", dir); code != exitDamage || strings.Contains(out, "rolls back") || !strings.Contains(out, "checksum mismatch") {
		t.Errorf("verify with the older meta damaged: got exit %d and\n%s\nwant %d naming it, no rollback", code, out, exitDamage)
	}
}

// TestVerifyDamagedPage: a damaged page made verify (and every command)
// panic; now verify names the lost range, walks past it, and exits 1,
// in-process and as a binary.
func TestVerifyDamagedPage(t *testing.T) {
	dir := bigLog(t, 200)
	walfault.DamageFramePage(t, filepath.Join(dir, "wal.db"), 100)
	code, out, stderr := run(t, "verify", "--json", dir)
	var v verifyJSON
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("verify --json: %v\n%s%s", err, out, stderr)
	}
	if code != exitDamage || v.OK || len(v.Damaged) != 1 || v.Damaged[0].First > 100 || v.Damaged[0].Last < 100 || v.DamagedRecords > 20 {
		t.Errorf("verify --json got exit %d, %+v; want 1 and one small damaged range holding 100", code, v)
	}
	if int64(v.DamagedRecords)+v.Records != 200 {
		t.Errorf("verify counted %d sound and %d damaged records, want 200 in all", v.Records, v.DamagedRecords)
	}
	if !strings.Contains(strings.Join(v.Problems, "\n"), "load: the relay cannot load this log") {
		t.Errorf("verify problems %q lack the load failure", v.Problems)
	}
	code, out, stderr = runBinary(t, 30*time.Second, "verify", dir)
	if code != exitDamage || !strings.Contains(out, "in pages bbolt cannot read") || !strings.Contains(stderr, "damage found") {
		t.Errorf("binary verify: got exit %d and\n%s%s\nwant %d naming the pages", code, out, stderr, exitDamage)
	}
	for _, cmd := range []string{"info", "targets", "dump"} {
		code, _, stderr := runBinary(t, 30*time.Second, cmd, dir)
		if code != exitDamage || !strings.Contains(stderr, "bbolt cannot read the file's pages") {
			t.Errorf("binary %s: got exit %d (%s), want %d saying bbolt cannot read the pages", cmd, code, stderr, exitDamage)
		}
	}
}

// TestVerifyUnopenable: damage that keeps bbolt from opening the file (or
// from looking up a bucket) is exit 1 with a clear message; it used to be
// exit 4 ("not a relay log").
func TestVerifyUnopenable(t *testing.T) {
	for _, c := range []struct {
		name   string
		damage func(t *testing.T, path string)
		want   string
	}{
		{"root page", func(t *testing.T, path string) { walfault.DamageRootPage(t, path) }, "bbolt cannot read the root of the file"},
		{"both meta pages", func(t *testing.T, path string) {
			walfault.DamageMeta(t, path, 0)
			walfault.DamageMeta(t, path, 1)
		}, "both meta pages are damaged"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := buildLog(t)
			c.damage(t, filepath.Join(dir, "wal.db"))
			code, out, stderr := runBinary(t, 30*time.Second, "verify", dir)
			if code != exitDamage || !strings.Contains(out, c.want) {
				t.Errorf("verify: got exit %d and\n%s%s\nwant %d saying %q", code, out, stderr, exitDamage, c.want)
			}
			code, _, stderr = runBinary(t, 30*time.Second, "info", dir)
			if code != exitDamage || !strings.Contains(stderr, "walinspect: ") {
				t.Errorf("info: got exit %d (%s), want %d", code, stderr, exitDamage)
			}
		})
	}
}

func TestSalvageCommand(t *testing.T) {
	dir := buildLog(t)
	src := filepath.Join(dir, "wal.db")
	walfault.FlipFrameByte(t, src, 3, -3)
	before := stateOf(t, dir)
	time.Sleep(10 * time.Millisecond) // a write would now move the mtime
	dst := filepath.Join(t.TempDir(), "salvaged.db")

	code, out, stderr := run(t, "salvage", dir, "-o", dst)
	if code != 0 {
		t.Fatalf("salvage: got exit %d (%s), want 0", code, stderr)
	}
	if after := stateOf(t, dir); after.sum != before.sum || !after.mtime.Equal(before.mtime) || after.size != before.size || !slices.Equal(after.names, before.names) {
		t.Error("salvage changed the source log (bytes, mtime or size) or its directory")
	}
	if !strings.Contains(stderr, "DAMAGE  records: sequence 3: frame checksum mismatch") || !strings.Contains(stderr, "skipped 1 damaged range(s), at most 1 records: 3-3") {
		t.Errorf("salvage stderr got\n%s\nwant the damaged frame and the summary", stderr)
	}
	want := fmt.Sprintf("salvaged %s into %s: 3 frames, 3 records, 2 cursors, 2 quarantine entries; next sequence 6\n", src, dst)
	if out != want {
		t.Errorf("salvage stdout got %q, want %q", out, want)
	}
	// The copy is sound and holds the same records, cursors and quarantine.
	if code, out, _ := run(t, "verify", dst); code != 0 {
		t.Errorf("verify of the copy: got exit %d\n%s", code, out)
	}
	for _, args := range [][]string{{"dump"}, {"dump", "--quarantine"}} {
		_, a, _ := run(t, append(args, dir, "--to", "2")...)
		_, b, _ := run(t, append(args, dst, "--to", "2")...)
		if a != b || a == "" {
			t.Errorf("%v of the copy differs from the source:\n%s\nvs\n%s", args, b, a)
		}
	}
	// targets fails on the source (it reads the damaged frame); on the copy
	// it shows what TestTargets shows, less record 3 (routed to b only).
	var rows []targetJSON
	_, b, _ := run(t, "--json", "targets", dst)
	if err := json.Unmarshal([]byte(b), &rows); err != nil || len(rows) != 2 {
		t.Fatalf("targets of the copy got %v\n%s", err, b)
	}
	if x := rows[0]; x.Target != tgtA || *x.Cursor != 3 || x.Pending != 2 || x.Quarantined != 2 || x.LastQuarantineError != longErr {
		t.Errorf("target a in the copy got %+v, want cursor 3, 2 pending, 2 quarantined", x)
	}
	if x := rows[1]; x.Target != tgtB || *x.Cursor != 1 || x.Pending != 2 || x.OldestPendingSeq != 1 {
		t.Errorf("target b in the copy got %+v, want cursor 1, 2 pending from 1", x)
	}
	// Never over an existing file.
	if code, _, stderr := run(t, "salvage", dir, "-o", dst); code != exitUsage || !strings.Contains(stderr, "exists") {
		t.Errorf("salvage onto an existing file: got exit %d (%s), want %d", code, stderr, exitUsage)
	}
	if code, _, _ := run(t, "salvage", dir); code != exitUsage {
		t.Errorf("salvage without -o: got exit %d, want %d", code, exitUsage)
	}

	// --json.
	dst2 := filepath.Join(t.TempDir(), "salvaged.db")
	code, out, _ = run(t, "salvage", "--json", "-o", dst2, src)
	var got salvageJSON
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != 0 {
		t.Fatalf("salvage --json: exit %d, %v\n%s", code, err, out)
	}
	if got.OK || got.Records != 3 || len(got.Damaged) != 1 || got.Damaged[0].First != 3 || got.DamagedRecords != 1 || got.NextSeq != 6 || got.Destination != dst2 {
		t.Errorf("salvage --json got %+v, want 3 records, sequence 3 damaged, next 6", got)
	}
}

func TestSalvageCommandFailures(t *testing.T) {
	dir := buildLog(t)
	src := filepath.Join(dir, "wal.db")
	l, err := wal.Open(src, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "salvaged.db")
	code, _, stderr := runBinary(t, 10*time.Second, "salvage", dir, "-o", dst)
	l.Close()
	if code != exitLocked || !strings.Contains(stderr, "held by a running relay") {
		t.Errorf("salvage of a held log: got exit %d (%s), want %d", code, stderr, exitLocked)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Errorf("salvage of a held log left %s", dst)
	}

	walfault.DamageRootPage(t, src)
	code, _, stderr = runBinary(t, 30*time.Second, "salvage", dir, "-o", dst)
	if code != exitDamage || !strings.Contains(stderr, "nothing written") || !strings.Contains(stderr, "bbolt cannot read the root of the file") {
		t.Errorf("salvage of an unopenable log: got exit %d (%s), want %d saying nothing was written", code, stderr, exitDamage)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Errorf("salvage that failed left %s", dst)
	}
}

// TestSalvagePastDamagedPage salvages a log whose damaged page makes every
// other command fail, and reports progress on stderr.
func TestSalvagePastDamagedPage(t *testing.T) {
	dir := bigLog(t, 200)
	walfault.DamageFramePage(t, filepath.Join(dir, "wal.db"), 100)
	dst := filepath.Join(t.TempDir(), "salvaged.db")
	code, out, stderr := run(t, "salvage", dir, "-o", dst)
	if code != 0 || !strings.Contains(stderr, "in pages bbolt cannot read") || !strings.Contains(stderr, "salvaging: sequence ") {
		t.Fatalf("salvage: got exit %d and\n%s%s\nwant 0, the damaged range and progress", code, out, stderr)
	}
	code, out, _ = run(t, "--json", "info", dst)
	var got infoJSON
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != 0 {
		t.Fatalf("info of the copy: exit %d, %v", code, err)
	}
	if got.Records < 180 || got.Records >= 200 || got.LastSeq == nil || *got.LastSeq != 200 {
		t.Errorf("copy holds %d records up to %v, want most of the 200 and the last one", got.Records, got.LastSeq)
	}
	if code, out, _ := run(t, "verify", dst); code != 0 {
		t.Errorf("verify of the copy: exit %d\n%s", code, out)
	}
}

// TestDumpUnknownTarget: dump --target for a target the log does not know
// printed nothing and exited 0, like a target with nothing pending.
func TestDumpUnknownTarget(t *testing.T) {
	dir := buildLog(t)
	code, out, stderr := run(t, "dump", "--target", "arn:minio:sqs::9:nope", dir)
	if code != exitDamage || out != "" {
		t.Errorf("dump of an unknown target: got exit %d and %q, want %d and nothing", code, out, exitDamage)
	}
	want := fmt.Sprintf(`walinspect: dump: unknown target "arn:minio:sqs::9:nope": the log knows %s, %s`+"\n", tgtA, tgtB)
	if stderr != want {
		t.Errorf("dump of an unknown target: got stderr %q, want %q", stderr, want)
	}
	// A target known only from the records routed to it is known.
	empty := t.TempDir()
	l, err := wal.Open(filepath.Join(empty, "wal.db"), wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(context.Background(), &wal.Entry{Targets: []string{"arn:x"}, Key: "b/o", Name: "s3:ObjectCreated:Put", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if got := dumpSeqs(t, "--target", "arn:x", empty); !slices.Equal(got, []uint64{1}) {
		t.Errorf("dump of a target with no cursor got %v, want [1]", got)
	}
	if code, _, stderr := run(t, "dump", "--quarantine", "--target", "arn:y", empty); code != exitDamage || !strings.Contains(stderr, "the log knows arn:x") {
		t.Errorf("dump --quarantine of an unknown target: got exit %d (%s), want %d", code, stderr, exitDamage)
	}
}

// TestJSONEverywhere: every command that prints a table or a summary has
// --json, and its output is one JSON document.
func TestJSONEverywhere(t *testing.T) {
	dir := buildLog(t)
	for _, args := range [][]string{
		{"info"}, {"targets"}, {"verify"}, {"salvage", "-o", filepath.Join(t.TempDir(), "s.db")},
	} {
		code, out, stderr := run(t, append(append([]string{"--json"}, args...), dir)...)
		var v any
		if err := json.Unmarshal([]byte(out), &v); err != nil || code != 0 {
			t.Errorf("%s --json: exit %d (%s), %v:\n%s", args[0], code, stderr, err, out)
		}
	}
	_, help, _ := run(t, "-h")
	for _, want := range []string{"salvage", "0  ok", "1  damage found", "2  usage error", "3  the log is held by a running relay", "4  the command could not run"} {
		if !strings.Contains(help, want) {
			t.Errorf("walinspect -h lacks %q", want)
		}
	}
}

// TestVerifyBadValues: a cursor of the wrong size, one past the end of the
// log, a quarantine entry that does not parse and a bad next sequence are
// each named on a DAMAGE line.
func TestVerifyBadValues(t *testing.T) {
	dir := buildLog(t)
	db, err := bolt.Open(filepath.Join(dir, "wal.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte("cursors"))
		if err := c.Put([]byte(tgtA), []byte{0, 1}); err != nil {
			return err
		}
		if err := c.Put([]byte(tgtB), binary.BigEndian.AppendUint64(nil, 99)); err != nil {
			return err
		}
		if err := tx.Bucket([]byte("meta")).Put([]byte("next"), []byte{6}); err != nil {
			return err
		}
		return tx.Bucket([]byte("quarantine")).Bucket([]byte(tgtA)).Put(binary.BigEndian.AppendUint64(nil, 2), []byte("{nope"))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	code, out, _ := run(t, "verify", dir)
	if code != exitDamage {
		t.Errorf("verify: got exit %d, want %d", code, exitDamage)
	}
	for _, want := range []string{
		`DAMAGE  meta: the next sequence is 1 bytes, want 8`,
		`DAMAGE  cursors: the cursor of "` + tgtA + `" is 2 bytes, want 8 (salvage restarts it at 1)`,
		`DAMAGE  cursors: the cursor of "` + tgtB + `" is 99, past the end of the log (6) (salvage restarts it at 1)`,
		`DAMAGE  quarantine of "` + tgtA + `": the entry at sequence 2 does not parse`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("verify output lacks %q:\n%s", want, out)
		}
	}
}

// TestDamagedQuarantinePage: a command meeting a damaged page after the
// log opened (here dump --quarantine, in a quarantine page the open does
// not read) exits 1 with a message instead of crashing with Go's exit 2;
// verify names the quarantine.
func TestDamagedQuarantinePage(t *testing.T) {
	dir := t.TempDir()
	l, err := wal.Open(filepath.Join(dir, "wal.db"), wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.Register(tgtA)
	for i := 1; i <= 60; i++ {
		if _, err := l.Append(context.Background(), &wal.Entry{Targets: []string{tgtA}, Key: fmt.Sprintf("b/%d", i), Name: "s3:ObjectCreated:Put", Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = l.Read(context.Background(), 1, "", func(r wal.Record) bool {
		l.Quarantine(tgtA, r, fmt.Sprintf("rejected %03d: %s", r.Seq, strings.Repeat("x", 600)), 3)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	walfault.DamagePageHolding(t, filepath.Join(dir, "wal.db"), []byte("rejected 030: "))
	if code, _, stderr := run(t, "info", dir); code != 0 {
		t.Fatalf("info (does not read the quarantine's pages): got exit %d (%s), want 0", code, stderr)
	}
	code, _, stderr := runBinary(t, 30*time.Second, "dump", "--quarantine", dir)
	if code != exitDamage || !strings.Contains(stderr, "walinspect: reading the log failed on a damaged page") {
		t.Errorf("dump --quarantine over a damaged page: got exit %d (%.300s), want %d", code, stderr, exitDamage)
	}
	code, out, _ := run(t, "verify", dir)
	if code != exitDamage || !strings.Contains(out, `DAMAGE  quarantine of "`+tgtA+`": pages bbolt cannot read`) {
		t.Errorf("verify: got exit %d and\n%s\nwant %d naming the quarantine", code, out, exitDamage)
	}
}
