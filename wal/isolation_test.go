package wal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// keepUp advances target's cursor past every committed record until stop
// is closed, as a healthy drain loop does.
func keepUp(l *Log, target string, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-l.Appended():
				l.Advance(target, l.LastSeq()+1)
			case <-time.After(time.Millisecond):
				l.Advance(target, l.LastSeq()+1)
			}
		}
	}()
	return &wg
}

func TestBytesSameAfterReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wal.db")
	l := openTest(t, path, Options{})
	l.Register("a")
	l.Register("b")
	ctx := context.Background()
	for i := 0; i < 50; i++ {
		e := entry(i, "a")
		e.Data = bytes.Repeat([]byte("x"), 10+i*37)
		if _, err := l.Append(ctx, e, entry(1000+i, "a", "b")); err != nil {
			t.Fatal(err)
		}
	}
	l.Advance("b", 40)
	events, size := l.Events(), l.Bytes()
	pa, pab := l.Pending("a")
	pb, pbb := l.Pending("b")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openTest(t, path, Options{})
	defer l.Close()
	if l.Events() != events || l.Bytes() != size {
		t.Fatalf("after reopen: got %d events, %d bytes; want %d, %d", l.Events(), l.Bytes(), events, size)
	}
	if a, ab := l.Pending("a"); a != pa || ab != pab {
		t.Errorf("pending of a after reopen: got %d, %d; want %d, %d", a, ab, pa, pab)
	}
	if b, bb := l.Pending("b"); b != pb || bb != pbb {
		t.Errorf("pending of b after reopen: got %d, %d; want %d, %d", b, bb, pb, pbb)
	}
}

// A target that is down must not make the log refuse events routed only to
// a target that keeps up (issue 7, item 4).
func TestDeadTargetDoesNotBlockOthers(t *testing.T) {
	l := openTest(t, filepath.Join(t.TempDir(), "wal.db"), Options{MaxEvents: 1000, CursorSyncInterval: time.Millisecond, NoSync: true})
	defer l.Close()
	l.Register("A")
	l.Register("B")
	ctx := context.Background()
	if _, err := l.Append(ctx, entry(0, "A")); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	wg := keepUp(l, "B", stop)
	defer func() { close(stop); wg.Wait() }()
	for i := 1; i <= 10_000; i++ {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := l.Append(actx, entry(i, "B"))
		cancel()
		if err != nil {
			t.Fatalf("event %d for B: %v", i, err)
		}
	}
	waitFor(t, func() bool { return l.Events() < 100 })
	if n, _ := l.Pending("A"); n != 1 {
		t.Errorf("pending of A got %d, want 1", n)
	}
	if rs := readAll(t, l, 1, "A"); len(rs) != 1 || rs[0].Seq != 1 {
		t.Errorf("A's records got %d, want its one record", len(rs))
	}
}

// Records routed to both a dead target and a live one wait (block) or skip
// the dead one (drop) once the dead one's bound is reached.
func TestTargetBound(t *testing.T) {
	for _, drop := range []bool{false, true} {
		t.Run(fmt.Sprintf("drop=%v", drop), func(t *testing.T) {
			l := openTest(t, filepath.Join(t.TempDir(), "wal.db"), Options{MaxEvents: 1000, CursorSyncInterval: time.Millisecond, NoSync: true})
			defer l.Close()
			l.Register("A")
			l.Register("B")
			l.SetLimit("A", Limit{MaxEvents: 5, Drop: drop})
			stop := make(chan struct{})
			wg := keepUp(l, "B", stop)
			defer func() { close(stop); wg.Wait() }()
			ctx := context.Background()
			for i := 0; i < 5; i++ {
				if _, err := l.Append(ctx, entry(i, "A", "B")); err != nil {
					t.Fatal(err)
				}
			}
			short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancel()
			_, err := l.Append(short, entry(5, "A", "B"), entry(6, "A", "B"), entry(7, "B"))
			if !drop {
				if !errors.Is(err, ErrFull) || !strings.Contains(err.Error(), "target A ") {
					t.Fatalf("append beyond A's bound: err %v, want ErrFull naming A", err)
				}
				if l.Dropped("A") != 0 {
					t.Errorf("Dropped(A) got %d with the block policy, want 0", l.Dropped("A"))
				}
			} else {
				if err != nil {
					t.Fatalf("append beyond A's bound with drop: %v", err)
				}
				if got := l.Dropped("A"); got != 2 {
					t.Errorf("Dropped(A) got %d, want 2", got)
				}
				if got, _ := l.Routed("B"); got != 8 {
					t.Errorf("B got %d records, want 8", got)
				}
			}
			if got := len(readAll(t, l, 1, "A")); got != 5 {
				t.Errorf("A got %d records, want 5", got)
			}
			if n, _ := l.Pending("A"); n != 5 {
				t.Errorf("Pending(A) got %d, want 5", n)
			}
			// Events only for B are never held back by A.
			for i := 0; i < 2000; i++ {
				if _, err := l.Append(short, entry(100+i, "B")); err != nil {
					t.Fatalf("event %d only for B: %v", i, err)
				}
			}
			// Once A catches up, it takes records again.
			l.Advance("A", l.LastSeq()+1)
			if _, err := l.Append(ctx, entry(9, "A", "B")); err != nil {
				t.Fatalf("append after A caught up: %v", err)
			}
		})
	}
}

// A target whose cursor was removed (released) never blocks the others,
// and its frames are reclaimed.
func TestReleasedTargetNeverBlocks(t *testing.T) {
	l := openTest(t, filepath.Join(t.TempDir(), "wal.db"), Options{MaxEvents: 100, CursorSyncInterval: time.Millisecond, NoSync: true})
	defer l.Close()
	l.Register("gone")
	l.Register("B")
	ctx := context.Background()
	for i := 0; i < 50; i++ {
		if _, err := l.Append(ctx, entry(i, "gone", "B"), entry(1000+i, "gone")); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	n, err := l.Release("gone", &out)
	if err != nil || n != 100 {
		t.Fatalf("Release: %d, %v; want 100 records", n, err)
	}
	if _, ok := l.Cursor("gone"); ok {
		t.Fatal("the released target still has a cursor")
	}
	stop := make(chan struct{})
	wg := keepUp(l, "B", stop)
	defer func() { close(stop); wg.Wait() }()
	for i := 0; i < 1000; i++ {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := l.Append(actx, entry(i, "B"))
		cancel()
		if err != nil {
			t.Fatalf("event %d for B: %v", i, err)
		}
	}
	waitFor(t, func() bool { return l.Events() < 10 })
}

func TestRelease(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wal.db")
	l := openTest(t, path, Options{CursorSyncInterval: time.Millisecond})
	l.Register("old")
	l.Register("live")
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		if _, err := l.Append(ctx, entry(i, "old"), entry(100+i, "old", "live"), entry(200+i, "live")); err != nil {
			t.Fatal(err)
		}
	}
	l.Advance("old", 4) // records 1 and 2 of old delivered: 18 pending
	l.Advance("live", l.LastSeq()+1)
	var out bytes.Buffer
	n, err := l.Release("old", &out)
	if err != nil {
		t.Fatal(err)
	}
	if n != 18 {
		t.Fatalf("Release wrote %d records, want 18", n)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 18 {
		t.Fatalf("export has %d lines, want 18", len(lines))
	}
	var first struct {
		Seq  uint64          `json:"seq"`
		Key  string          `json:"key"`
		Name string          `json:"eventName"`
		Data json.RawMessage `json:"record"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if first.Seq != 4 || first.Key != "images/1.jpg" || first.Name != "s3:ObjectCreated:Put" || string(first.Data) != `{"i":1}` {
		t.Errorf("first line got %s, want seq 4 of images/1.jpg", lines[0])
	}
	waitFor(t, func() bool { return l.Events() == 0 })
	if n, _ := l.Pending("old"); n != 0 {
		t.Errorf("Pending(old) after release got %d, want 0", n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openTest(t, path, Options{})
	defer l.Close()
	if _, ok := l.Cursor("old"); ok || l.Events() != 0 {
		t.Fatalf("after reopen: cursor of old present %v, %d events; want none, 0", ok, l.Events())
	}
}

// A frame pinned by a lagging target while another passed it is rewritten
// keeping only the lagging target's records.
func TestCompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wal.db")
	l := openTest(t, path, Options{CursorSyncInterval: time.Millisecond, NoSync: true})
	l.Register("A")
	l.Register("B")
	ctx := context.Background()
	var want []string
	for f := 0; f < 20; f++ {
		es := []*Entry{entry(f*100, "A", "B")}
		want = append(want, es[0].Key)
		for i := 1; i < 50; i++ {
			es = append(es, entry(f*100+i, "B"))
		}
		if _, err := l.Append(ctx, es...); err != nil {
			t.Fatal(err)
		}
	}
	if l.Events() != 1000 {
		t.Fatalf("events got %d, want 1000", l.Events())
	}
	l.Advance("B", l.LastSeq()+1)
	waitFor(t, func() bool { return l.Events() == 20 })
	size := l.Bytes()
	check := func(l *Log) {
		rs := readAll(t, l, 1, "A")
		if len(rs) != 20 {
			t.Fatalf("A's records after compaction: got %d, want 20", len(rs))
		}
		for i, r := range rs {
			if r.Key != want[i] || r.Seq != uint64(i*50+1) {
				t.Fatalf("A's record %d: got seq %d key %s, want seq %d key %s", i, r.Seq, r.Key, i*50+1, want[i])
			}
		}
		if n, _ := l.Pending("A"); n != 20 {
			t.Errorf("Pending(A) got %d, want 20", n)
		}
	}
	check(l)
	if errs := l.Verify(); len(errs) != 0 {
		t.Fatalf("Verify after compaction: %v", errs)
	}
	l.Close()
	l = openTest(t, path, Options{})
	defer l.Close()
	if l.Events() != 20 || l.Bytes() != size {
		t.Fatalf("after reopen got %d events, %d bytes; want 20, %d", l.Events(), l.Bytes(), size)
	}
	check(l)
	l.Advance("A", l.LastSeq()+1)
	waitFor(t, func() bool { return l.Events() == 0 })
}

// A dead target's records, left one per frame by compaction, are merged
// into few frames so that the index stays small.
func TestCompactionMerges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wal.db")
	l := openTest(t, path, Options{CursorSyncInterval: time.Millisecond, NoSync: true})
	l.Register("A")
	l.Register("B")
	stop := make(chan struct{})
	wg := keepUp(l, "B", stop)
	ctx := context.Background()
	for f := 0; f < 200; f++ {
		es := []*Entry{entry(f*10, "A", "B")}
		for i := 1; i < 10; i++ {
			es = append(es, entry(f*10+i, "B"))
		}
		if _, err := l.Append(ctx, es...); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return l.Events() == 200 && l.Frames() <= 200/mergeMin+mergeMin })
	close(stop)
	wg.Wait()
	check := func(l *Log) {
		rs := readAll(t, l, 1, "A")
		if len(rs) != 200 {
			t.Fatalf("A's records: got %d, want 200", len(rs))
		}
		for i, r := range rs {
			if r.Seq != uint64(i*10+1) || r.Key != entry(i*10).Key {
				t.Fatalf("A's record %d: got seq %d key %s", i, r.Seq, r.Key)
			}
		}
		if n, _ := l.Pending("A"); n != 200 {
			t.Errorf("Pending(A) got %d, want 200", n)
		}
		if errs := l.Verify(); len(errs) != 0 {
			t.Fatalf("Verify: %v", errs)
		}
	}
	check(l)
	size, frames := l.Bytes(), l.Frames()
	l.Close()
	l = openTest(t, path, Options{CursorSyncInterval: time.Millisecond})
	defer l.Close()
	// Merges still queued at Close are committed by it: frames can only
	// have gone down.
	if l.Events() != 200 || l.Bytes() != size || l.Frames() > frames || l.Frames() < 1 {
		t.Fatalf("after reopen: %d events, %d bytes, %d frames; want 200, %d, at most %d", l.Events(), l.Bytes(), l.Frames(), size, frames)
	}
	check(l)
	// A reads half its backlog (pending counts whole frames), then all of
	// it: the frames go.
	l.Advance("A", 1001)
	if n, _ := l.Pending("A"); n < 100 || n > 200 {
		t.Errorf("Pending(A) half way got %d, want between 100 and 200", n)
	}
	l.Advance("A", l.LastSeq()+1)
	waitFor(t, func() bool { return l.Events() == 0 && l.Frames() == 0 })
	if n, b := l.Pending("A"); n != 0 || b != 0 {
		t.Errorf("Pending(A) after it passed all got %d, %d; want 0, 0", n, b)
	}
}
