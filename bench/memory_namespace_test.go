package main

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/bucketrelay/bucketrelay/wal"
)

// The newest event of a key is the last one in the log, not the one with
// the highest id: concurrent publishers take ids in one order and reach the
// log in another. The scenario's check used to expect the highest id and
// reported keys as stale whenever a publisher was overtaken near the end.
func TestNewestInLogFollowsLogOrder(t *testing.T) {
	l, err := wal.Open(filepath.Join(t.TempDir(), "wal.db"), wal.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	publish := func(first, n int) {
		entries := make([]*wal.Entry, n)
		for i := range entries {
			rec := namespaceRecord(first + i)
			entries[i] = &wal.Entry{Targets: []string{"t"}, Key: rec.Key(), Name: string(rec.EventName), Data: rec.AppendJSON(nil)}
		}
		if _, err := l.Append(ctx, entries...); err != nil {
			t.Fatal(err)
		}
	}
	// Ids 0-2999 over the 1000 keys, three events per key. The publisher
	// of ids 1000-1999 is overtaken by the one of ids 2000-2499 (keys
	// 0-499), so for those keys the newest event is not the highest id.
	publish(0, nsKeys)
	publish(2000, nsKeys/2)
	publish(1000, nsKeys)
	publish(2000+nsKeys/2, nsKeys/2)
	n := 3 * nsKeys
	want, err := newestInLog(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != nsKeys {
		t.Fatalf("newestInLog found %d keys, want %d", len(want), nsKeys)
	}
	for k := range nsKeys {
		newest := int64(n - nsKeys + k) // the highest id, logged last
		if k < nsKeys/2 {
			newest = int64(nsKeys + k) // logged after the highest id
		}
		if got := want[nsField(k)]; got != newest {
			t.Fatalf("key %d: newest logged id %d, want %d", k, got, newest)
		}
	}
	if got := overtaken(want, n); got != nsKeys/2 {
		t.Fatalf("overtaken = %d, want %d", got, nsKeys/2)
	}
}
