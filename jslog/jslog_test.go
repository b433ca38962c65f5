package jslog_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery/logtest"
	"github.com/bucketrelay/bucketrelay/jslog"
	"github.com/bucketrelay/bucketrelay/testkit/natscluster"
	"github.com/bucketrelay/bucketrelay/wal"
)

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// open opens a log on stream of cluster c, closing it at the end of the
// test.
func open(t testing.TB, c *natscluster.Cluster, cfg jslog.Config) *jslog.Log {
	t.Helper()
	if cfg.Servers == nil {
		cfg.Servers = c.URLs()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := jslog.Open(ctx, cfg, jslog.Options{CursorSyncInterval: 5 * time.Millisecond, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// TestConformance runs the log suite against a JetStream log on a real
// three-node cluster (R3 stream, sync_interval always).
func TestConformance(t *testing.T) {
	c := natscluster.Start(t, natscluster.Options{})
	logtest.Run(t, logtest.Harness{
		Open: func(t testing.TB, name string, small bool) logtest.Log {
			cfg := jslog.Config{Stream: "LT_" + name}
			if small {
				cfg.MaxMessages = 20
			}
			return open(t, c, cfg)
		},
	})
	t.Run("LargeAppends", func(t *testing.T) { testLargeAppends(t, c) })
}

// testLargeAppends appends more than one message can carry (the servers'
// max_payload is 1 MiB): the entries are split over several messages, in
// order; one entry that can never fit returns wal.ErrTooLarge.
func testLargeAppends(t *testing.T, c *natscluster.Cluster) {
	l := open(t, c, jslog.Config{Stream: "LARGE"})
	from := l.Register("t")
	var es []*wal.Entry
	for i := 0; i < 400; i++ { // about 8 MiB, random so that it compresses little
		e := logtest.Entry(i, "t")
		e.Data = make([]byte, 20<<10)
		rand.Read(e.Data)
		es = append(es, e)
	}
	if _, err := l.Append(context.Background(), es...); err != nil {
		t.Fatal(err)
	}
	rs, _ := logtest.ReadAll(t, l, from, "t")
	if len(rs) != len(es) {
		t.Fatalf("read %d records, want %d", len(rs), len(es))
	}
	msgs := map[uint64]bool{}
	for i, r := range rs {
		if r.Key != es[i].Key || !bytes.Equal(r.Data, es[i].Data) {
			t.Fatalf("record %d is %s, want %s with its data", i, r.Key, es[i].Key)
		}
		s, _ := jslog.SplitSeq(r.Seq)
		msgs[s] = true
	}
	if len(msgs) < 8 {
		t.Fatalf("8 MiB went into %d messages, want at least 8", len(msgs))
	}
	t.Logf("%d records of 20 KiB in %d messages", len(rs), len(msgs))
	big := logtest.Entry(1, "t")
	big.Data = make([]byte, 2<<20)
	rand.Read(big.Data)
	if _, err := l.Append(context.Background(), big); !errors.Is(err, wal.ErrTooLarge) {
		t.Fatalf("a 2 MiB entry: %v, want wal.ErrTooLarge", err)
	}
}
