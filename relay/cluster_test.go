package relay_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/internal/clusterrun"
	"github.com/bucketrelay/bucketrelay/relay"
	"github.com/bucketrelay/bucketrelay/testkit/natscluster"
)

// TestClusterLanesChange runs a target with one lane, stops the relay
// with a backlog, and starts it again with two lanes: the new lanes start
// where the old one was, so the backlog is delivered, not skipped.
func TestClusterLanesChange(t *testing.T) {
	nc := natscluster.Start(t, natscluster.Options{})
	rcv, err := clusterrun.NewReceiver()
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()
	rcv.SetDown(true)
	open := func(lanes int) *relay.Relay {
		c := clusterrun.RelayConfig{
			Listen: "127.0.0.1:9900", DataDir: t.TempDir(), Webhook: rcv.URL(), Servers: nc.URLs(),
			Lanes: lanes, LeaseTTL: "1s", Owner: "r", Rules: true,
		}
		cfg, err := relay.ParseConfig(c.JSON())
		if err != nil {
			t.Fatal(err)
		}
		r, err := relay.Open(cfg, relay.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := open(1)
	var ids []int
	for i := range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := r.Publish(ctx, clusterrun.Record(fmt.Sprintf("k%d.jpg", i), i))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, i)
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	r = open(2)
	defer r.Close(context.Background())
	rcv.SetDown(false)
	deadline := time.Now().Add(30 * time.Second)
	for !rcv.Has(ids) {
		if time.Now().After(deadline) {
			t.Fatalf("after the change from 1 to 2 lanes: %d of %d backlog events delivered, want all", rcv.Delivered(), len(ids))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
