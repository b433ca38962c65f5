package wal_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/bucketrelay/bucketrelay/wal"
)

// TestBacklogMatchesRead: Backlog, counting from frame tallies, gives what
// reading the range gives, for ranges that cut frames at either end, for a
// target sharing frames with another, and for an empty range.
func TestBacklogMatchesRead(t *testing.T) {
	l, err := wal.Open(filepath.Join(t.TempDir(), "wal.db"), wal.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := 0; i < 20; i++ {
		var es []*wal.Entry
		for j := 0; j < 50; j++ {
			ts := []string{"a"}
			if j%3 == 0 {
				ts = []string{"a", "b"}
			} else if j%3 == 1 {
				ts = []string{"b"}
			}
			es = append(es, &wal.Entry{Targets: ts, Key: fmt.Sprintf("b/k%d", j), Name: "s3:ObjectCreated:Put", Data: []byte(`{}`)})
		}
		if _, err := l.Append(context.Background(), es...); err != nil {
			t.Fatal(err)
		}
	}
	last := l.LastSeq()
	for _, target := range []string{"a", "b", "c"} {
		for _, r := range [][2]uint64{{1, last}, {7, last}, {7, last - 13}, {120, 130}, {last, last}, {last + 1, last}} {
			var want int64
			if _, err := l.Read(context.Background(), r[0], target, func(rec wal.Record) bool {
				if rec.Seq > r[1] {
					return false
				}
				want++
				return true
			}); err != nil {
				t.Fatal(err)
			}
			got, ok := l.Backlog(target, r[0], r[1])
			if !ok || got != want {
				t.Errorf("Backlog(%s, %d, %d) = %d, %v; want %d, true", target, r[0], r[1], got, ok, want)
			}
		}
	}
}
