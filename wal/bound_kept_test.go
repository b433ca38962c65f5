package wal

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestKeptLateStaysInBound: records one target passed while another had
// not are not retained yet, so appends for the first take the room; when
// the other target passes them and they join the retained history, room is
// made (oldest first), so the first target's pending and retained records
// stay within its bound, and a rewind to the oldest retained record cannot
// take it over.
func TestKeptLateStaysInBound(t *testing.T) {
	const bound = 10
	l := openTest(t, filepath.Join(t.TempDir(), "wal.db"), Options{CursorSyncInterval: time.Millisecond, NoSync: true, MaxEvents: bound, Retention: Retention{Age: time.Hour}})
	defer l.Close()
	l.Register("a")
	l.Register("b")
	ctx := context.Background()
	for i := range bound {
		if _, err := l.Append(ctx, entry(i, "a", "b")); err != nil {
			t.Fatal(err)
		}
	}
	deliverAll(t, l, "a") // b holds these records: nothing is retained yet
	for i := bound; i < 2*bound; i++ {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := l.Append(ctx, entry(i, "a"))
		cancel()
		if err != nil {
			t.Fatalf("append %d: %v (a has %d pending, bound %d)", i, err, pendingOf(l, "a"), bound)
		}
	}
	deliverAll(t, l, "b") // the first records join the retained history
	waitFor(t, func() bool { return pendingOf(l, "a")+l.Retained().Events <= bound })
	if _, err := l.Rewind("a", l.Retained().First); err != nil {
		t.Fatal(err)
	}
	if p := pendingOf(l, "a"); p+l.Retained().Events > bound {
		t.Fatalf("after the rewind: pending %d + retained %d over the bound %d", p, l.Retained().Events, bound)
	}
}

func pendingOf(l *Log, target string) int64 {
	n, _ := l.Pending(target)
	return n
}
