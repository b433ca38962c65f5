package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/internal/clusterrun"
	"github.com/bucketrelay/bucketrelay/testkit/faultfs"
	"github.com/bucketrelay/bucketrelay/testkit/webhookrecv"
	"github.com/bucketrelay/bucketrelay/wal"
	bolt "go.etcd.io/bbolt"
)

// The harness of the power-cut and storage-fault tests: the real relay
// binary with its data directory on a faultfs mount, a webhook receiver
// that counts what it is sent, and producers that remember which events
// the relay acknowledged (answered 200).

const webhookARN = "arn:minio:sqs::1:webhook"

// receiver is the webhook endpoint of these tests. It is chosen here only,
// so moving the test receiver out of adapters/webhook changes one line.
type receiver = webhookrecv.Receiver

func newReceiver(t testing.TB) *receiver { return webhookrecv.New(t, "") }

// recordID is the event id a record carries (targettest.Record sets the
// object size to 1000+i).
func recordID(r *event.Record) int { return int(r.S3.Object.Size - 1000) }

// deliveries counts, per event id, the records the receiver was sent.
type deliveries struct {
	mu sync.Mutex
	n  map[int]int
}

func watch(rcv *receiver) *deliveries {
	d := &deliveries{n: map[int]int{}}
	rcv.OnBody = func(b []byte) {
		var m struct{ Records []event.Record }
		if json.Unmarshal(b, &m) != nil {
			return
		}
		d.mu.Lock()
		for i := range m.Records {
			d.n[recordID(&m.Records[i])]++
		}
		d.mu.Unlock()
	}
	return d
}

// missing returns the ids of want never delivered, and the duplicate
// deliveries of all ids.
func (d *deliveries) missing(want []int) (missing []int, dups int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, id := range want {
		if d.n[id] == 0 {
			missing = append(missing, id)
		}
	}
	for _, n := range d.n {
		dups += max(n-1, 0)
	}
	return missing, dups
}

// relayConfig is the configuration the harness writes before each start.
type relayConfig struct {
	DataDir, Listen, Webhook string
	// RedisKey, if set, adds a namespace-format Redis target for bucket "nsbucket".
	RedisKey   string
	QueueLimit int64
	FullWait   string
	NoSync     bool
}

func (c relayConfig) write(t testing.TB, path string) {
	t.Helper()
	settings := map[string]any{
		"dataDir": c.DataDir, "listen": c.Listen, "minBackoff": "10ms", "maxBackoff": "200ms",
		"noSync": c.NoSync,
	}
	if c.QueueLimit > 0 {
		settings["queueLimit"] = c.QueueLimit
	}
	if c.FullWait != "" {
		settings["fullWait"] = c.FullWait
	}
	notify := map[string]any{"webhook": map[string]any{"1": map[string]any{"enable": true, "endpoint": c.Webhook}}}
	buckets := map[string]any{"images": []any{map[string]any{"arn": webhookARN, "events": []string{"put"}}}}
	if c.RedisKey != "" {
		notify["redis"] = map[string]any{"1": map[string]any{"enable": true, "format": "namespace", "address": "127.0.0.1:6379", "key": c.RedisKey}}
		buckets["nsbucket"] = []any{map[string]any{"arn": "arn:minio:sqs::1:redis", "events": []string{"put", "delete"}}}
	}
	b, err := json.MarshalIndent(map[string]any{"relay": settings, "notify": notify, "buckets": buckets}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// launch starts `relay serve` with the API on addr, appending its output
// to logPath; it is killed when the test ends.
func launch(t testing.TB, bin, cfg, logPath, addr string) *clusterrun.Proc {
	t.Helper()
	p := &clusterrun.Proc{Bin: bin, Config: cfg, LogPath: logPath, Addr: addr}
	if err := p.Launch(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p
}

// imagesProducer posts batches of put events for bucket "images" (routed
// to the webhook) until ctx ends, recording what was acknowledged.
func imagesProducer(ctx context.Context, c *http.Client, addr string, g *clusterrun.IDs, a *clusterrun.Acked, batch int) {
	for ctx.Err() == nil {
		first := g.Take(batch)
		recs := make([]event.Record, batch)
		ids := make([]int, batch)
		for i := range recs {
			ids[i] = first + i
			recs[i] = targettest.Record("images", fmt.Sprintf("k%d.jpg", ids[i]%50), event.ObjectCreatedPut, ids[i])
		}
		code := clusterrun.Post(ctx, c, addr, recs...)
		a.Add(code, ids)
		switch code {
		case http.StatusOK:
		case 0:
			time.Sleep(5 * time.Millisecond) // the relay is gone; wait for the cut
		default:
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// fuseMount mounts a faultfs for the test (skipped without FUSE, failed
// under CI=true).
func fuseMount(t *testing.T) *faultfs.FS {
	t.Helper()
	d := t.TempDir()
	return faultfs.MountTB(t, filepath.Join(d, "backing"), filepath.Join(d, "mnt"))
}

// checkLogOpens opens the durable log (the backing file, not the mount)
// read-only: after any cut it must open.
func checkLogOpens(fsys *faultfs.FS) error {
	path := filepath.Join(fsys.Backing(), "data", "wal.db")
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) || (err == nil && fi.Size() == 0) {
		return nil // cut before the log was created
	}
	l, err := wal.OpenReadOnly(path)
	if err != nil {
		if uncommitted(path) {
			// Cut during the relay's first start, before the transaction
			// creating the log's buckets was synced: nothing was ever
			// acknowledged, and the relay's Open creates them on restart
			// (the next cycle starts it on this file).
			return nil
		}
		return err
	}
	return l.Close()
}

// uncommitted reports whether path is a bbolt file in which no transaction
// was ever committed: no bucket at all.
func uncommitted(path string) bool {
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return false
	}
	defer db.Close()
	empty := true
	db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
	})
	return empty
}

func logTail(path string, n int) string {
	b, _ := os.ReadFile(path)
	return string(tail(b, n))
}

func hasLine(path string, subs ...string) bool {
	b, _ := os.ReadFile(path)
	for _, line := range strings.Split(string(b), "\n") {
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(line, s)
		}
		if ok {
			return true
		}
	}
	return false
}

// TestUncommittedLogFile: the check behind checkLogOpens tells a log whose
// creation never committed (a bbolt file without buckets) from a real one.
func TestUncommittedLogFile(t *testing.T) {
	dir := t.TempDir()
	bare := filepath.Join(dir, "bare.db")
	db, err := bolt.Open(bare, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if !uncommitted(bare) {
		t.Errorf("a bbolt file without buckets: uncommitted = false, want true")
	}
	if _, err := wal.OpenReadOnly(bare); err == nil {
		t.Errorf("OpenReadOnly of a bbolt file without buckets succeeded; the check is not needed")
	}
	real := filepath.Join(dir, "wal.db")
	l, err := wal.Open(real, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if uncommitted(real) {
		t.Errorf("a relay log: uncommitted = true, want false")
	}
	// The relay's own Open takes the bare file and makes it a log.
	l, err = wal.Open(bare, wal.Options{})
	if err != nil {
		t.Fatalf("wal.Open of a log whose creation was cut: %v", err)
	}
	l.Close()
}
