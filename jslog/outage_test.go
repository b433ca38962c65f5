package jslog_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/jslog"
	"github.com/bucketrelay/bucketrelay/testkit/natscluster"
	"github.com/bucketrelay/bucketrelay/testkit/syncbuf"
	"github.com/bucketrelay/bucketrelay/wal"
)

// TestReclaimFailureLoggedOncePerOutage: while purging delivered messages
// fails (the stream has no leader), the log retries at every cursor flush
// but warns once, and says once when purging works again.
func TestReclaimFailureLoggedOncePerOutage(t *testing.T) {
	c := natscluster.Start(t, natscluster.Options{})
	var out syncbuf.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := jslog.Open(ctx, jslog.Config{Servers: c.URLs(), Stream: "RECLAIMQ"}, jslog.Options{CursorSyncInterval: 5 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&out, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	calls, stop := l.FailPurges()
	const target = "arn:minio:sqs::r:webhook"
	l.Register(target)
	advance := func() {
		t.Helper()
		if _, err := l.Append(ctx, &wal.Entry{Targets: []string{target}, Key: "b/k", Name: "s3:ObjectCreated:Put", Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for l.LastSeq() == 0 || func() bool { c, _ := l.Cursor(target); return c > l.LastSeq() }() {
			if time.Now().After(deadline) {
				t.Fatal("the appended record is not indexed after 30 s")
			}
			time.Sleep(5 * time.Millisecond)
		}
		if err := l.Advance(target, l.LastSeq()+1); err != nil {
			t.Fatal(err)
		}
	}
	for calls() < 5 {
		advance()
		time.Sleep(20 * time.Millisecond)
	}
	const warn, back = "reclaiming delivered messages failed", "reclaiming delivered messages works again"
	if n := out.Count(warn); n != 1 {
		t.Fatalf("%d purges failed: got %d warnings, want 1", calls(), n)
	}
	stop()
	deadline := time.Now().Add(30 * time.Second)
	for out.Count(back) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no %q line 30 s after purges work again", back)
		}
		advance()
		time.Sleep(20 * time.Millisecond)
	}
	advance()
	time.Sleep(100 * time.Millisecond)
	if w, b := out.Count(warn), out.Count(back); w != 1 || b != 1 {
		t.Fatalf("got %d warnings and %d recoveries, want 1 and 1", w, b)
	}
}
