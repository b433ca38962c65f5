package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/testkit/gobuild"
	"github.com/bucketrelay/bucketrelay/wal"
	bolt "go.etcd.io/bbolt"
)

const (
	tgtA = "arn:minio:sqs::1:webhook"
	tgtB = "arn:minio:sqs::2:amqp"
)

// longErr is longer than the targets table shows.
var longErr = "500 Internal Server Error: " + strings.Repeat("the upstream said no; ", 10)

// fixture describes the log buildLog writes:
//
//	seq 1 images/a.jpg  Put     a b   (its own frame each)
//	seq 2 images/b.jpg  Put     a
//	seq 3 docs/readme   Put     b
//	seq 4 images/a.jpg  Delete  a b
//	seq 5 docs/x.txt    Put     a
//
// a's cursor is 3 (4 and 5 pending), b's is 1 (1, 3 and 4 pending). a's
// quarantine holds seq 2 ("first") and then seq 1 (longErr, the later one).
// Seq 2 itself is reclaimed: its only target has passed it.
func buildLog(t testing.TB) (dir string) {
	t.Helper()
	dir = t.TempDir()
	l, err := wal.Open(filepath.Join(dir, "wal.db"), wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.Register(tgtA)
	l.Register(tgtB)
	type rec struct {
		key, name string
		targets   []string
	}
	recs := []rec{
		{"images/a.jpg", "s3:ObjectCreated:Put", []string{tgtA, tgtB}},
		{"images/b.jpg", "s3:ObjectCreated:Put", []string{tgtA}},
		{"docs/readme", "s3:ObjectCreated:Put", []string{tgtB}},
		{"images/a.jpg", "s3:ObjectRemoved:Delete", []string{tgtA, tgtB}},
		{"docs/x.txt", "s3:ObjectCreated:Put", []string{tgtA}},
	}
	et := time.Date(2026, 11, 25, 1, 0, 0, 0, time.UTC)
	for i, r := range recs {
		bucket, object, _ := strings.Cut(r.key, "/")
		data := fmt.Sprintf(`{"eventName":%q,"s3":{"bucket":{"name":%q},"object":{"key":%q}},"i":%d}`, strings.TrimPrefix(r.name, "s3:"), bucket, object, i+1)
		seq, err := l.Append(context.Background(), &wal.Entry{Targets: r.targets, Key: r.key, Name: r.name, EventTime: et.Add(time.Duration(i) * time.Second), Data: []byte(data)})
		if err != nil || seq != uint64(i+1) {
			t.Fatalf("append %d: got seq %d err %v, want seq %d", i, seq, err, i+1)
		}
	}
	byseq := map[uint64]wal.Record{}
	if _, err := l.Read(context.Background(), 1, "", func(r wal.Record) bool { byseq[r.Seq] = r; return true }); err != nil {
		t.Fatal(err)
	}
	l.Quarantine(tgtA, byseq[2], "first", 1)
	time.Sleep(2 * time.Millisecond)
	l.Quarantine(tgtA, byseq[1], longErr, 3)
	l.Advance(tgtA, 3)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// run runs walinspect in-process.
func run(t testing.TB, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	m := &Main{Stdout: &o, Stderr: &e, progressEvery: time.Nanosecond}
	code = m.Exec(context.Background(), args)
	return code, o.String(), e.String()
}

// walinspectBin returns the walinspect binary, built once per test run.
func walinspectBin(t testing.TB) string {
	t.Helper()
	return gobuild.Binary(t, ".")
}

// TestMain removes the binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	gobuild.Clean()
	os.Exit(code)
}

// runBinary runs the built walinspect and returns its exit code.
func runBinary(t testing.TB, timeout time.Duration, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, walinspectBin(t), args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("walinspect %v did not return within %v", args, timeout)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), o.String(), e.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, o.String(), e.String()
}

type fileState struct {
	sum   [32]byte
	mtime time.Time
	size  int64
	names []string
}

func stateOf(t testing.TB, dir string) fileState {
	t.Helper()
	path := filepath.Join(dir, "wal.db")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return fileState{sha256.Sum256(b), fi.ModTime(), fi.Size(), names}
}

// TestReadOnly runs every subcommand, in-process and as a binary, and checks
// that the log file (bytes and mtime) and its directory did not change.
func TestReadOnly(t *testing.T) {
	dir := buildLog(t)
	file := filepath.Join(dir, "wal.db")
	before := stateOf(t, dir)
	time.Sleep(10 * time.Millisecond) // a write would now move the mtime
	cmds := [][]string{
		{"info", dir}, {"--json", "info", file},
		{"targets", dir}, {"targets", "--json", "--progress", file},
		{"dump", dir}, {"dump", "--target", tgtA, "--from", "2", "--to", "4", file},
		{"dump", "--quarantine", dir},
		{"verify", dir}, {"verify", "--json", file},
		{"frames", dir}, {"--json", "frames", file},
	}
	for _, args := range cmds {
		if code, _, stderr := run(t, args...); code != 0 {
			t.Errorf("in-process %v: got exit %d (%s), want 0", args, code, stderr)
		}
		if code, _, stderr := runBinary(t, 30*time.Second, args...); code != 0 {
			t.Errorf("binary %v: got exit %d (%s), want 0", args, code, stderr)
		}
	}
	after := stateOf(t, dir)
	if after.sum != before.sum {
		t.Errorf("wal.db sha256 got %x, want %x (unchanged)", after.sum, before.sum)
	}
	if !after.mtime.Equal(before.mtime) || after.size != before.size {
		t.Errorf("wal.db mtime/size got %v/%d, want %v/%d (unchanged)", after.mtime, after.size, before.mtime, before.size)
	}
	if !slices.Equal(after.names, before.names) {
		t.Errorf("data directory got %v, want %v (unchanged)", after.names, before.names)
	}
}

func TestInfo(t *testing.T) {
	dir := buildLog(t)
	code, out, stderr := run(t, "info", "--json", dir)
	if code != 0 {
		t.Fatalf("info --json: got exit %d (%s), want 0", code, stderr)
	}
	var got infoJSON
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("info --json is not JSON: %v\n%s", err, out)
	}
	if got.Records != 4 || got.FirstSeq == nil || *got.FirstSeq != 1 || got.LastSeq == nil || *got.LastSeq != 5 || got.NextSeq != 6 || got.Frames != 4 || got.Cursors != 2 || got.QuarantineTarget != 1 || len(got.Problems) != 0 {
		t.Errorf("info got %+v, want 4 records in 4 frames (seq 2 reclaimed), seq 1-5, next 6, 2 cursors, 1 quarantine, no problem", got)
	}
	if got.FileSize <= 0 || got.UsedSize <= 0 || got.UsedSize > got.FileSize || got.RecordBytes <= 0 || got.OldestAppendTime == nil || got.NewestAppendTime == nil || got.NewestAppendTime.Before(*got.OldestAppendTime) {
		t.Errorf("info got size %d (%d used), bytes %d, append times %v-%v; want positive sizes and ordered times", got.FileSize, got.UsedSize, got.RecordBytes, got.OldestAppendTime, got.NewestAppendTime)
	}
	if got.Path != filepath.Join(dir, "wal.db") {
		t.Errorf("info path got %q, want %q", got.Path, filepath.Join(dir, "wal.db"))
	}

	code, out, _ = run(t, "info", dir)
	if code != 0 {
		t.Fatalf("info: got exit %d, want 0", code)
	}
	norm := normLines(out)
	for _, want := range []string{"records 4 in 4 frames", "first seq 1", "last seq 5", "next seq 6", "cursors 2", "quarantines 1 targets"} {
		if !slices.Contains(norm, want) {
			t.Errorf("info output lacks line %q; got:\n%s", want, out)
		}
	}
}

// normLines splits out into lines with their runs of spaces made one.
func normLines(out string) []string {
	var norm []string
	for _, line := range strings.Split(out, "\n") {
		norm = append(norm, strings.Join(strings.Fields(line), " "))
	}
	return norm
}

func TestInfoEmpty(t *testing.T) {
	dir := t.TempDir()
	l, err := wal.Open(filepath.Join(dir, "wal.db"), wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	code, out, _ := run(t, "info", dir)
	if code != 0 || !slices.Contains(normLines(out), "first seq - (empty)") || !slices.Contains(normLines(out), "last seq - (empty)") || !slices.Contains(normLines(out), "next seq 1") {
		t.Errorf("info of an empty log: got exit %d and\n%s\nwant exit 0, first and last seq - and next seq 1", code, out)
	}
	code, out, _ = run(t, "targets", dir)
	if code != 0 || strings.TrimSpace(out) != "TARGET  CURSOR  PENDING  OLDEST PENDING  QUARANTINED  LAST QUARANTINE ERROR" {
		t.Errorf("targets of an empty log: got exit %d and\n%s\nwant exit 0 and the header alone", code, out)
	}
}

func TestTargets(t *testing.T) {
	dir := buildLog(t)
	code, out, stderr := run(t, "--json", "targets", dir)
	if code != 0 {
		t.Fatalf("targets --json: got exit %d (%s), want 0", code, stderr)
	}
	var rows []targetJSON
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("targets --json is not JSON: %v\n%s", err, out)
	}
	if len(rows) != 2 || rows[0].Target != tgtA || rows[1].Target != tgtB {
		t.Fatalf("targets got %+v, want rows for %s and %s", rows, tgtA, tgtB)
	}
	a, b := rows[0], rows[1]
	if a.Cursor == nil || *a.Cursor != 3 || a.Pending != 2 || a.OldestPendingSeq != 4 || a.Quarantined != 2 ||
		a.LastQuarantineSeq != 1 || a.LastQuarantineError != longErr || a.OldestPendingTime == nil {
		t.Errorf("target a got %+v, want cursor 3, 2 pending from 4, 2 quarantined, last quarantine seq 1 with the full long error", a)
	}
	if b.Cursor == nil || *b.Cursor != 1 || b.Pending != 3 || b.OldestPendingSeq != 1 || b.Quarantined != 0 || b.LastQuarantineError != "" {
		t.Errorf("target b got %+v, want cursor 1, 3 pending from 1, no quarantine", b)
	}

	code, out, _ = run(t, "targets", dir)
	if code != 0 {
		t.Fatalf("targets: got exit %d, want 0", code)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("targets table got %d lines, want 3:\n%s", len(lines), out)
	}
	if f := strings.Fields(lines[0]); strings.Join(f, " ") != "TARGET CURSOR PENDING OLDEST PENDING QUARANTINED LAST QUARANTINE ERROR" {
		t.Errorf("targets header got %q", lines[0])
	}
	fa := strings.Fields(lines[1])
	if len(fa) < 6 || fa[0] != tgtA || fa[1] != "3" || fa[2] != "2" || fa[4] != "2" || fa[5] != "500" {
		t.Errorf("targets row a got %q, want %s 3 2 <age> 2 500 ...", lines[1], tgtA)
	}
	if !strings.HasSuffix(lines[1], "…") || strings.Contains(lines[1], longErr) {
		t.Errorf("targets row a got %q, want the error truncated with …", lines[1])
	}
	fb := strings.Fields(lines[2])
	if len(fb) != 6 || fb[0] != tgtB || fb[1] != "1" || fb[2] != "3" || fb[4] != "0" || fb[5] != "-" {
		t.Errorf("targets row b got %q, want %s 1 3 <age> 0 -", lines[2], tgtB)
	}
	if d, err := time.ParseDuration(fb[3]); err != nil || d < 0 || d > time.Minute {
		t.Errorf("oldest pending of b got %q, want a short age", fb[3])
	}
}

func TestTargetsWithoutCursor(t *testing.T) {
	dir := t.TempDir()
	l, err := wal.Open(filepath.Join(dir, "wal.db"), wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(context.Background(), &wal.Entry{Targets: []string{"arn:x"}, Key: "b/o", Name: "s3:ObjectCreated:Put", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	code, out, _ := run(t, "targets", dir)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 {
		t.Fatalf("targets: got exit %d and\n%s\nwant one row", code, out)
	}
	if f := strings.Fields(lines[1]); f[0] != "arn:x" || f[1] != "-" || f[2] != "1" {
		t.Errorf("row got %q, want arn:x - 1 ...", lines[1])
	}
}

// dumpSeqs runs dump and returns the sequences of its lines, checking that
// every line is a JSON object with a JSON object as record.
func dumpSeqs(t *testing.T, args ...string) []uint64 {
	t.Helper()
	code, out, stderr := run(t, append([]string{"dump"}, args...)...)
	if code != 0 {
		t.Fatalf("dump %v: got exit %d (%s), want 0", args, code, stderr)
	}
	seqs := []uint64{}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		var v struct {
			Seq       uint64          `json:"seq"`
			Key       string          `json:"key"`
			EventName string          `json:"eventName"`
			Record    json.RawMessage `json:"record"`
		}
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("dump %v line %q is not JSON: %v", args, line, err)
		}
		if !bytes.HasPrefix(v.Record, []byte("{")) || v.Key == "" || v.EventName == "" {
			t.Errorf("dump %v line %q: want key, eventName and a record object", args, line)
		}
		seqs = append(seqs, v.Seq)
	}
	return seqs
}

func TestDump(t *testing.T) {
	dir := buildLog(t)
	cases := []struct {
		args []string
		want []uint64
	}{
		{nil, []uint64{1, 3, 4, 5}},
		{[]string{"--from", "2", "--to", "4"}, []uint64{3, 4}},
		{[]string{"--from", "4"}, []uint64{4, 5}},
		{[]string{"--to", "1"}, []uint64{1}},
		{[]string{"--target", tgtA}, []uint64{1, 4, 5}},
		{[]string{"--target", tgtB, "--from", "2"}, []uint64{3, 4}},
		{[]string{"--bucket", "images"}, []uint64{1, 4}},
		{[]string{"--key", "images/a.jpg"}, []uint64{1, 4}},
		{[]string{"--bucket", "images", "--key", "a.jpg"}, []uint64{1, 4}},
		{[]string{"--key", "a.jpg"}, []uint64{1, 4}},
		{[]string{"--bucket", "docs", "--key", "a.jpg"}, []uint64{}},
		{[]string{"--target", tgtB, "--bucket", "docs"}, []uint64{3}},
		{[]string{"--limit", "2"}, []uint64{1, 3}},
		{[]string{"--target", tgtA, "--from", "3", "--limit", "1"}, []uint64{4}},
		{[]string{"--from", "9"}, []uint64{}},
		{[]string{"--quarantine"}, []uint64{1, 2}},
		{[]string{"--quarantine", "--target", tgtA, "--from", "2"}, []uint64{2}},
		{[]string{"--quarantine", "--target", tgtB}, []uint64{}},
		{[]string{"--quarantine", "--key", "images/b.jpg"}, []uint64{2}},
	}
	for _, c := range cases {
		// Flags after the path work too.
		args := append([]string{dir}, c.args...)
		if got := dumpSeqs(t, args...); !slices.Equal(got, c.want) {
			t.Errorf("dump %v: got seqs %v, want %v", c.args, got, c.want)
		}
	}

	_, out, _ := run(t, "dump", "--from", "4", "--to", "4", dir)
	var line struct {
		Seq        uint64          `json:"seq"`
		AppendTime time.Time       `json:"appendTime"`
		Targets    []string        `json:"targets"`
		Key        string          `json:"key"`
		EventName  string          `json:"eventName"`
		EventTime  time.Time       `json:"eventTime"`
		Record     json.RawMessage `json:"record"`
	}
	if err := json.Unmarshal([]byte(out), &line); err != nil {
		t.Fatal(err)
	}
	wantRec := `{"eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"images"},"object":{"key":"a.jpg"}},"i":4}`
	if line.Seq != 4 || line.Key != "images/a.jpg" || line.EventName != "s3:ObjectRemoved:Delete" ||
		!slices.Equal(line.Targets, []string{tgtA, tgtB}) || string(line.Record) != wantRec ||
		!line.EventTime.Equal(time.Date(2026, 11, 25, 1, 0, 3, 0, time.UTC)) || line.AppendTime.IsZero() {
		t.Errorf("dump of seq 4 got %+v (record %s), want images/a.jpg delete for both targets, record %s", line, line.Record, wantRec)
	}

	_, out, _ = run(t, "dump", "--quarantine", "--limit", "1", dir)
	var q wal.QuarantineEntry
	if err := json.Unmarshal([]byte(out), &q); err != nil {
		t.Fatal(err)
	}
	if q.Target != tgtA || q.Seq != 1 || q.Error != longErr || q.Attempts != 3 || q.Key != "images/a.jpg" {
		t.Errorf("quarantine line got %+v, want a's entry for seq 1 with 3 attempts", q)
	}
}

// damage flips one byte inside the frame stored under seq, as a bad disk
// would.
func damage(t *testing.T, path string, seq uint64, at func(v []byte) int) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("records"))
		k := binary.BigEndian.AppendUint64(nil, seq)
		v := append([]byte(nil), b.Get(k)...)
		if len(v) == 0 {
			return fmt.Errorf("no frame at %d", seq)
		}
		v[at(v)] ^= 0x40
		return b.Put(k, v)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestVerifyDamage(t *testing.T) {
	dir := buildLog(t)
	if code, out, _ := run(t, "verify", dir); code != 0 || !strings.HasSuffix(out, "\nok\n") {
		t.Fatalf("verify of a sound log: got exit %d and\n%s\nwant 0 and ok", code, out)
	}
	damage(t, filepath.Join(dir, "wal.db"), 3, func(v []byte) int { return len(v) - 3 })

	code, out, stderr := run(t, "verify", dir)
	if code != exitDamage {
		t.Fatalf("verify of a damaged log: got exit %d, want %d\n%s%s", code, exitDamage, out, stderr)
	}
	if !strings.Contains(out, "DAMAGE  records: sequence 3: frame checksum mismatch (routed to ["+tgtB+"])") || strings.Contains(out, "\nok\n") {
		t.Errorf("verify output got\n%s\nwant a DAMAGE line naming sequence 3", out)
	}
	if !strings.Contains(stderr, "damage found: 1 problem(s) in ") {
		t.Errorf("verify stderr got %q, want the damage summary", stderr)
	}

	code, out, _ = run(t, "verify", "--json", dir)
	var v verifyJSON
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("verify --json is not JSON: %v\n%s", err, out)
	}
	if code != exitDamage || v.OK || len(v.Problems) != 1 || !strings.Contains(v.Problems[0], "sequence 3") ||
		len(v.Damaged) != 1 || v.Damaged[0].First != 3 || v.Damaged[0].Last != 3 || v.DamagedRecords != 1 || v.Frames != 3 {
		t.Errorf("verify --json got exit %d and %+v, want exit 1, one problem and one damaged range at sequence 3, 3 sound frames", code, v)
	}

	if code, out, _ := runBinary(t, 30*time.Second, "verify", dir); code != exitDamage || !strings.Contains(out, "sequence 3") {
		t.Errorf("binary verify: got exit %d and\n%s\nwant %d naming sequence 3", code, out, exitDamage)
	}
	// Reading the damaged frame is damage too.
	if code, _, stderr := run(t, "dump", "--from", "3", dir); code != exitDamage || !strings.Contains(stderr, "sequence 3") {
		t.Errorf("dump of a damaged frame: got exit %d (%s), want %d naming sequence 3", code, stderr, exitDamage)
	}
	// Records before the damage still dump.
	if got := dumpSeqs(t, "--to", "2", dir); !slices.Equal(got, []uint64{1}) {
		t.Errorf("dump before the damage got %v, want [1]", got)
	}
}

func TestVerifyDamagedHeader(t *testing.T) {
	dir := buildLog(t)
	// Byte 0 is the frame version: the log no longer loads at all.
	damage(t, filepath.Join(dir, "wal.db"), 3, func([]byte) int { return 0 })
	// The relay still loads such a log (the frame's records are lost and
	// quarantined); verify names the frame.
	code, out, _ := run(t, "verify", dir)
	if code != exitDamage || !strings.Contains(out, "DAMAGE  records: sequence 3: ") {
		t.Errorf("verify of a bad frame header: got exit %d and\n%s\nwant %d naming sequence 3", code, out, exitDamage)
	}
	if code, out, stderr := run(t, "info", dir); code != exitDamage || !strings.Contains(out+stderr, "sequence 3") {
		t.Errorf("info of a bad frame header: got exit %d (%s), want %d", code, stderr, exitDamage)
	}
}

func TestLocked(t *testing.T) {
	dir := buildLog(t)
	l, err := wal.Open(filepath.Join(dir, "wal.db"), wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, cmd := range []string{"info", "targets", "dump", "verify"} {
		start := time.Now()
		code, _, stderr := runBinary(t, 10*time.Second, cmd, dir)
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("%s on a held log took %v, want under 3s", cmd, took)
		}
		if code != exitLocked {
			t.Errorf("%s on a held log: got exit %d (%s), want %d", cmd, code, stderr, exitLocked)
		}
		want := fmt.Sprintf("walinspect: the log at %s is held by a running relay", filepath.Join(dir, "wal.db"))
		if !strings.HasPrefix(stderr, want) || !strings.Contains(stderr, "stop it or use the relay's /metrics") {
			t.Errorf("%s on a held log: got stderr %q, want it to start %q", cmd, stderr, want)
		}
		if runtime.GOOS == "linux" && !strings.Contains(stderr, fmt.Sprintf("(pid %d)", os.Getpid())) {
			t.Logf("%s: the holder's pid %d is not named: %q", cmd, os.Getpid(), stderr)
		}
	}
	if code, _, _ := run(t, "info", dir); code != exitLocked {
		t.Errorf("in-process info on a held log: got exit %d, want %d", code, exitLocked)
	}
}

func TestUsageAndErrors(t *testing.T) {
	dir := buildLog(t)
	notLog := filepath.Join(t.TempDir(), "notalog")
	os.WriteFile(notLog, bytes.Repeat([]byte("x"), 8192), 0o600)
	emptyFile := filepath.Join(t.TempDir(), "wal.db")
	os.WriteFile(emptyFile, nil, 0o600)
	foreign := filepath.Join(t.TempDir(), "other.db")
	if db, err := bolt.Open(foreign, 0o600, nil); err != nil {
		t.Fatal(err)
	} else {
		db.Close()
	}
	cases := []struct {
		args []string
		want int
	}{
		{nil, exitUsage},
		{[]string{"frobnicate", dir}, exitUsage},
		{[]string{"info"}, exitUsage},
		{[]string{"info", dir, dir}, exitUsage},
		{[]string{"dump", "--from", "x", dir}, exitUsage},
		{[]string{"dump", "--from", "5", "--to", "2", dir}, exitUsage},
		{[]string{"dump", "--bucket", "a/b", dir}, exitUsage},
		{[]string{"--nope", "info", dir}, exitUsage},
		{[]string{"-h"}, exitOK},
		{[]string{"help"}, exitOK},
		{[]string{"help", "dump"}, exitOK},
		{[]string{"dump", "-h"}, exitOK},
		{[]string{"info", filepath.Join(dir, "missing")}, exitOther},
		{[]string{"info", t.TempDir()}, exitOther},
		{[]string{"info", notLog}, exitOther},
		{[]string{"info", foreign}, exitOther},
		{[]string{"verify", foreign}, exitOther},
		{[]string{"verify", emptyFile}, exitOther},
		{[]string{"salvage", emptyFile, "-o", filepath.Join(t.TempDir(), "x.db")}, exitOther},
	}
	for _, c := range cases {
		code, _, stderr := run(t, c.args...)
		if code != c.want {
			t.Errorf("walinspect %v: got exit %d (%s), want %d", c.args, code, stderr, c.want)
		}
		if c.want != exitOK && !strings.HasPrefix(stderr, "walinspect: ") {
			t.Errorf("walinspect %v: got stderr %q, want a walinspect: message", c.args, stderr)
		}
	}
	for _, c := range cases[:4] {
		if code, _, _ := runBinary(t, 30*time.Second, c.args...); code != c.want {
			t.Errorf("binary walinspect %v: got exit %d, want %d", c.args, code, c.want)
		}
	}
	if code, _, _ := runBinary(t, 30*time.Second, "info", filepath.Join(dir, "missing")); code != exitOther {
		t.Errorf("binary info of a missing file: got exit %d, want %d", code, exitOther)
	}
}

func TestProgress(t *testing.T) {
	dir := buildLog(t)
	code, _, stderr := run(t, "targets", "--progress", dir)
	if code != 0 || !strings.Contains(stderr, "scanning: sequence ") {
		t.Errorf("targets --progress: got exit %d and stderr %q, want progress lines", code, stderr)
	}
	code, _, stderr = run(t, "dump", "--progress", dir)
	if code != 0 || !strings.Contains(stderr, "dumping: sequence ") {
		t.Errorf("dump --progress: got exit %d and stderr %q, want progress lines", code, stderr)
	}
	if _, _, stderr := run(t, "targets", dir); stderr != "" {
		t.Errorf("targets without --progress off a terminal: got stderr %q, want none", stderr)
	}
}
