package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/wal"
)

// TestInfoRetained: info shows the retained range of a log that keeps
// delivered records (relay.retention), and that of one that does not.
func TestInfoRetained(t *testing.T) {
	dir := t.TempDir()
	l, err := wal.Open(filepath.Join(dir, "wal.db"), wal.Options{Retention: wal.Retention{Age: time.Hour}, CursorSyncInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	l.Register(tgtA)
	for i := 1; i <= 5; i++ {
		if _, err := l.Append(context.Background(), &wal.Entry{Targets: []string{tgtA}, Key: fmt.Sprintf("images/%d.jpg", i), Name: "s3:ObjectCreated:Put", Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	l.Advance(tgtA, 4)
	deadline := time.Now().Add(10 * time.Second)
	for l.Retained().Events != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("retained %+v, want 3 delivered records kept", l.Retained())
		}
		time.Sleep(time.Millisecond)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := run(t, "info", "--json", dir)
	var got infoJSON
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil {
		t.Fatalf("info --json: exit %d (%s)\n%s", code, stderr, out)
	}
	r := got.Retained
	if r.FirstSeq != 1 || r.LastSeq != 5 || r.Events != 3 || r.Bytes <= 0 || r.OldestAppendTime == nil || time.Since(*r.OldestAppendTime) > time.Minute {
		t.Fatalf("info --json retained = %+v, want seq 1-5, 3 kept, the oldest appended just now", r)
	}
	code, out, _ = run(t, "info", dir)
	if flat := strings.Join(strings.Fields(out), " "); code != 0 || !strings.Contains(flat, "retained seq 1-5, oldest ") || !strings.Contains(flat, "; 3 delivered records kept (") {
		t.Fatalf("info: exit %d\n%s\nwant the retained line", code, out)
	}

	// buildLog's log keeps nothing delivered: seq 2 went, so a target can
	// be rewound to 3 at the oldest (what a lagging target still holds).
	_, out, _ = run(t, "info", "--json", buildLog(t))
	json.Unmarshal([]byte(out), &got)
	if r := got.Retained; r.FirstSeq != 3 || r.LastSeq != 5 || r.Events != 0 {
		t.Fatalf("info --json retained without retention = %+v, want seq 3-5, none kept", r)
	}
}
