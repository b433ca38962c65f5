package wal

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func entry(i int, targets ...string) *Entry {
	return &Entry{
		Targets: targets,
		Key:     fmt.Sprintf("images/%d.jpg", i),
		Name:    "s3:ObjectCreated:Put",
		Data:    []byte(fmt.Sprintf(`{"i":%d}`, i)),
	}
}

func openTest(t testing.TB, path string, opts Options) *Log {
	t.Helper()
	l, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func readAll(t testing.TB, l *Log, from uint64, target string) []Record {
	t.Helper()
	var out []Record
	if _, err := l.Read(context.Background(), from, target, func(r Record) bool { out = append(out, r); return true }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAppendReadReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wal.db")
	l := openTest(t, path, Options{})
	l.Register("a")
	l.Register("b")
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		first, err := l.Append(ctx, entry(2*i, "a"), entry(2*i+1, "a", "b"))
		if err != nil {
			t.Fatal(err)
		}
		if want := uint64(2*i + 1); first != want {
			t.Fatalf("first = %d, want %d", first, want)
		}
	}
	if got := len(readAll(t, l, 1, "a")); got != 20 {
		t.Fatalf("records for a = %d, want 20", got)
	}
	if got := len(readAll(t, l, 1, "b")); got != 10 {
		t.Fatalf("records for b = %d, want 10", got)
	}
	rs := readAll(t, l, 15, "")
	if len(rs) != 6 || rs[0].Seq != 15 || string(rs[0].Data) != `{"i":14}` {
		t.Fatalf("read from 15: got %d records starting %+v", len(rs), rs[0])
	}
	if err := l.Advance("a", 21); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = openTest(t, path, Options{})
	defer l.Close()
	if c, _ := l.Cursor("a"); c != 21 {
		t.Fatalf("cursor a after reopen = %d, want 21", c)
	}
	if l.LastSeq() != 20 {
		t.Fatalf("LastSeq = %d, want 20", l.LastSeq())
	}
	first, err := l.Append(ctx, entry(99, "a"))
	if err != nil || first != 21 {
		t.Fatalf("append after reopen: first %d err %v, want 21", first, err)
	}
}

func TestReclaim(t *testing.T) {
	l := openTest(t, filepath.Join(t.TempDir(), "wal.db"), Options{CursorSyncInterval: time.Millisecond})
	defer l.Close()
	l.Register("a")
	l.Register("b")
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		if _, err := l.Append(ctx, entry(i, "a", "b")); err != nil {
			t.Fatal(err)
		}
	}
	l.Advance("a", 6)
	waitFor(t, func() bool { c := l.Cursors(); return c["a"] == 6 })
	time.Sleep(20 * time.Millisecond)
	if l.Events() != 5 {
		t.Fatalf("events = %d before b moved, want 5", l.Events())
	}
	l.Advance("b", 4)
	waitFor(t, func() bool { return l.Events() == 2 })
	if got := l.FirstSeq(); got != 4 {
		t.Fatalf("FirstSeq = %d, want 4", got)
	}
	rs := readAll(t, l, 1, "b")
	if len(rs) != 2 || rs[0].Seq != 4 {
		t.Fatalf("read after reclaim: %d records, first %d; want 2 from 4", len(rs), rs[0].Seq)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestFullPushesBack(t *testing.T) {
	l := openTest(t, filepath.Join(t.TempDir(), "wal.db"), Options{MaxEvents: 3, CursorSyncInterval: time.Millisecond})
	defer l.Close()
	l.Register("a")
	ctx := context.Background()
	if _, err := l.Append(ctx, entry(1, "a"), entry(2, "a"), entry(3, "a")); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := l.Append(short, entry(4, "a")); !errors.Is(err, ErrFull) {
		t.Fatalf("append to full log: err %v, want ErrFull", err)
	}
	if _, err := l.Append(ctx, entry(1, "a"), entry(2, "a"), entry(3, "a"), entry(4, "a")); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("append larger than the log: err %v, want ErrTooLarge", err)
	}
	done := make(chan error)
	go func() { _, err := l.Append(ctx, entry(4, "a")); done <- err }()
	time.Sleep(20 * time.Millisecond)
	l.Advance("a", 4) // the three records share one frame
	if err := <-done; err != nil {
		t.Fatalf("append after reclaim: %v", err)
	}
}

func TestConcurrentAppendsGroupCommit(t *testing.T) {
	l := openTest(t, filepath.Join(t.TempDir(), "wal.db"), Options{})
	defer l.Close()
	l.Register("a")
	var wg sync.WaitGroup
	seqs := make(chan uint64, 1000)
	for g := 0; g < 50; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				s, err := l.Append(context.Background(), entry(g*100+i, "a"))
				if err != nil {
					t.Error(err)
					return
				}
				seqs <- s
			}
		}(g)
	}
	wg.Wait()
	close(seqs)
	seen := map[uint64]bool{}
	for s := range seqs {
		if seen[s] {
			t.Fatalf("sequence %d assigned twice", s)
		}
		seen[s] = true
	}
	if len(seen) != 1000 || l.LastSeq() != 1000 {
		t.Fatalf("got %d sequences, last %d; want 1000", len(seen), l.LastSeq())
	}
	if got := len(readAll(t, l, 1, "a")); got != 1000 {
		t.Fatalf("read %d records, want 1000", got)
	}
}

func TestReadOnlyWhileHeld(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wal.db")
	l := openTest(t, path, Options{})
	defer l.Close()
	if _, err := OpenReadOnly(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("OpenReadOnly on a held log: err %v, want ErrLocked", err)
	}
}

func TestQuarantine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wal.db")
	l := openTest(t, path, Options{})
	l.Register("a")
	l.Append(context.Background(), entry(1, "a"))
	rs := readAll(t, l, 1, "a")
	l.Quarantine("a", rs[0], "400 Bad Request", 1)
	l.Advance("a", 2)
	l.Close()
	ro, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	q, err := ro.Quarantined("a")
	if err != nil || len(q) != 1 || q[0].Seq != 1 || q[0].Error != "400 Bad Request" {
		t.Fatalf("quarantine = %+v, %v; want one entry for seq 1", q, err)
	}
}

// A reader holding the log (a long walinspect) delays Open instead of
// failing it; another writer fails it at once.
func TestOpenWaitsForReader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wal.db")
	l := openTest(t, path, Options{})
	l.Register("a")
	l.Close()
	ro, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	released := make(chan time.Time, 1)
	go func() {
		time.Sleep(2500 * time.Millisecond)
		released <- time.Now()
		ro.Close()
	}()
	l, err = Open(path, Options{LockWait: 30 * time.Second})
	if err != nil {
		t.Fatalf("Open while a reader held the log: %v", err)
	}
	defer l.Close()
	if at := <-released; time.Now().Before(at) {
		t.Fatal("Open returned before the reader let go")
	}
	if c, ok := l.Cursor("a"); !ok || c != 1 {
		t.Fatalf("cursor of a got %d, %v; want 1", c, ok)
	}

	start := time.Now()
	if _, err := Open(path, Options{LockWait: 30 * time.Second}); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "running relay") {
		t.Fatalf("Open of a log another writer holds: err %v, want ErrLocked naming a running relay", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Open of a log another writer holds took %s, want it to fail at once", d)
	}

	ro2, err := OpenReadOnly(path)
	if err == nil {
		ro2.Close()
	}
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("OpenReadOnly while a writer holds the log: err %v, want ErrLocked", err)
	}
}

// A reader that does not let go fails Open after LockWait.
func TestOpenGivesUpOnReader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wal.db")
	openTest(t, path, Options{}).Close()
	ro, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	_, err = Open(path, Options{LockWait: 1500 * time.Millisecond})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "reader") {
		t.Fatalf("Open with a reader holding on: err %v, want ErrLocked naming a reader", err)
	}
}

// Read from a sequence inside a frame, the newest one included, starts at
// that sequence.
func TestReadFromInsideFrames(t *testing.T) {
	l := openTest(t, filepath.Join(t.TempDir(), "wal.db"), Options{})
	defer l.Close()
	l.Register("a")
	ctx := context.Background()
	for f := 0; f < 3; f++ {
		if _, err := l.Append(ctx, entry(3*f, "a"), entry(3*f+1, "a"), entry(3*f+2, "a")); err != nil {
			t.Fatal(err)
		}
	}
	for from := uint64(1); from <= 10; from++ {
		rs := readAll(t, l, from, "a")
		if want := 10 - int(from); len(rs) != want || (want > 0 && rs[0].Seq != from) {
			t.Fatalf("read from %d: got %d records starting %v, want %d from %d", from, len(rs), seqs(rs), want, from)
		}
	}
}
