package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
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

// relayProc is one run of the relay binary.
type relayProc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // the exit, once done is closed
}

// launch starts `relay serve`, appending its output to logPath.
func launch(t testing.TB, bin, cfg, logPath string) *relayProc {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	p := &relayProc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	t.Cleanup(p.kill)
	return p
}

// waitReady polls /healthz until it answers, the process exits or timeout
// passes.
func (p *relayProc) waitReady(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: time.Second}
	for {
		if resp, err := c.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("relay exited at start: %v", p.err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("relay did not answer /healthz in %v", timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process to go.
func (p *relayProc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// wait waits up to d for the process to exit on its own and returns its
// exit code, or -1 if it still runs.
func (p *relayProc) wait(d time.Duration) int {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		return -1
	}
}

// stop sends SIGTERM and returns the exit code (-1: killed after 20s).
func (p *relayProc) stop() int {
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(20 * time.Second); code >= 0 {
		return code
	}
	p.kill()
	return -1
}

// ids hands out event ids, unique across a test.
type ids struct{ next atomic.Int64 }

func (g *ids) take(n int) int { return int(g.next.Add(int64(n))) - n }

// answer is a POST's outcome.
type answer struct {
	code   int // 0: no answer (connection refused or broken)
	header http.Header
	body   string
}

// post sends records to POST /v1/events.
func post(ctx context.Context, c *http.Client, addr string, recs ...event.Record) answer {
	var b bytes.Buffer
	b.WriteString(`{"Records":[`)
	for i := range recs {
		if i > 0 {
			b.WriteByte(',')
		}
		j, _ := json.Marshal(&recs[i])
		b.Write(j)
	}
	b.WriteString(`]}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/v1/events", &b)
	if err != nil {
		return answer{}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return answer{}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return answer{code: resp.StatusCode, header: resp.Header, body: string(body)}
}

// acked is the set of webhook event ids answered 200, with counts of the
// other answers.
type acked struct {
	mu     sync.Mutex
	ids    []int
	status map[int]int
}

func (a *acked) add(code int, ids []int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.status == nil {
		a.status = map[int]int{}
	}
	a.status[code]++
	if code == http.StatusOK {
		a.ids = append(a.ids, ids...)
	}
}

func (a *acked) snapshot() ([]int, map[int]int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := map[int]int{}
	for k, v := range a.status {
		st[k] = v
	}
	return append([]int(nil), a.ids...), st
}

// imagesProducer posts batches of put events for bucket "images" (routed
// to the webhook) until ctx ends, recording what was acknowledged.
func imagesProducer(ctx context.Context, c *http.Client, addr string, g *ids, a *acked, batch int) {
	for ctx.Err() == nil {
		first := g.take(batch)
		recs := make([]event.Record, batch)
		ids := make([]int, batch)
		for i := range recs {
			ids[i] = first + i
			recs[i] = targettest.Record("images", fmt.Sprintf("k%d.jpg", ids[i]%50), event.ObjectCreatedPut, ids[i])
		}
		ans := post(ctx, c, addr, recs...)
		a.add(ans.code, ids)
		switch ans.code {
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

func relayBinary(t testing.TB) string {
	t.Helper()
	bin, err := buildRelay()
	if err != nil {
		t.Fatal(err)
	}
	return bin
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
