package jslog_test

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery/logtest"
	"github.com/bucketrelay/bucketrelay/jslog"
	"github.com/bucketrelay/bucketrelay/testkit/natscluster"
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
}
