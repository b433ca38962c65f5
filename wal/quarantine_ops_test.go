package wal

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestQuarantineOps: quarantine entries are listed with their failure
// history, replaced and deleted by sequence, and each change survives a
// reopen.
func TestQuarantineOps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wal.db")
	l := openTest(t, path, Options{CursorSyncInterval: time.Millisecond})
	l.Register("a")
	if _, err := l.Append(context.Background(), entry(1, "a"), entry(2, "a"), entry(3, "a")); err != nil {
		t.Fatal(err)
	}
	recs := readAll(t, l, 1, "a")
	for i, r := range recs {
		if err := l.Quarantine("a", r, "400 bad", i+1); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Advance("a", 4); err != nil {
		t.Fatal(err)
	}
	var items []QuarantineItem
	for deadline := time.Now().Add(5 * time.Second); len(items) < 3; {
		var err error
		if items, err = l.QuarantineItems("a"); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d quarantine items, want 3", len(items))
		}
		time.Sleep(time.Millisecond)
	}
	first := items[1].FirstFailure
	if items[1].Seq != 2 || items[1].Attempts != 2 || first.IsZero() || !first.Equal(items[1].LastFailure()) || string(items[1].Data) != `{"i":2}` {
		t.Fatalf("item 2 = %+v, want seq 2, 2 attempts, first = last failure, its record", items[1])
	}

	// Fails again: the first failure is kept, the rest replaced.
	again := items[1]
	again.Error, again.Attempts, again.Time = "401 unauthorized", 5, first.Add(time.Minute)
	if n, err := l.ReplaceQuarantine("a", []QuarantineItem{again}); err != nil || n != 1 {
		t.Fatalf("ReplaceQuarantine = %d, %v; want 1 written", n, err)
	}
	gone, err := l.DeleteQuarantine("a", []uint64{1, 99})
	if err != nil || len(gone) != 1 || gone[0].Seq != 1 || string(gone[0].Data) != `{"i":1}` {
		t.Fatalf("DeleteQuarantine(1, 99) = %+v, %v; want entry 1 only", gone, err)
	}
	// A dropped entry is not written back.
	gone[0].Error = "503"
	if n, err := l.ReplaceQuarantine("a", gone); err != nil || n != 0 {
		t.Fatalf("ReplaceQuarantine of a deleted entry = %d, %v; want 0 written", n, err)
	}
	l.Close()

	l = openTest(t, path, Options{})
	defer l.Close()
	items, err = l.QuarantineItems("a")
	if err != nil || len(items) != 2 || items[0].Seq != 2 || items[1].Seq != 3 {
		t.Fatalf("after reopen: %+v, %v; want entries 2 and 3", items, err)
	}
	if n := l.QuarantineCount("a"); n != 2 {
		t.Fatalf("QuarantineCount = %d, want 2", n)
	}
	q := items[0]
	if q.Error != "401 unauthorized" || q.Attempts != 5 || !q.FirstFailure.Equal(first) || !q.LastFailure().Equal(first.Add(time.Minute)) {
		t.Fatalf("entry 2 after reopen = %+v; want the new reason and attempts, first failure %v kept", q, first)
	}
	if got, ok, err := l.QuarantineItemAt("a", 3); err != nil || !ok || got.Key != "images/3.jpg" {
		t.Fatalf("QuarantineItemAt(3) = %+v, %v, %v", got, ok, err)
	}
	if _, ok, err := l.QuarantineItemAt("a", 1); err != nil || ok {
		t.Fatalf("QuarantineItemAt(1) after delete: found %v, err %v; want not found", ok, err)
	}
	// The old reader still reads the entries.
	if old, err := l.Quarantined("a"); err != nil || len(old) != 2 {
		t.Fatalf("Quarantined = %d entries, %v; want 2", len(old), err)
	}
}
