package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/internal/clusterrun"
	"github.com/bucketrelay/bucketrelay/testkit/faultfs"
)

// faultRun is a relay on faultfs with producers whose every answer is
// kept with the moment its request was sent.
type faultRun struct {
	t       *testing.T
	fsys    *faultfs.FS
	bin     string
	addr    string
	cfgPath string
	logPath string
	client  *http.Client
	rcv     *receiver
	seen    *deliveries
	ids     clusterrun.IDs
	acked   clusterrun.Acked

	mu      sync.Mutex
	answers []timedAnswer
}

type timedAnswer struct {
	sent, got time.Time
	clusterrun.Answer
}

func newFaultRun(t *testing.T) *faultRun {
	fsys := fuseMount(t)
	dir := t.TempDir()
	r := &faultRun{
		t: t, fsys: fsys, bin: relayBinary(t), addr: freePort(t),
		cfgPath: filepath.Join(dir, "relay.json"), logPath: filepath.Join(dir, "relay.log"),
		client: &http.Client{Timeout: 10 * time.Second},
	}
	r.rcv = newReceiver(t)
	r.seen = watch(r.rcv)
	relayConfig{DataDir: filepath.Join(fsys.Dir(), "data"), Listen: r.addr, Webhook: r.rcv.URL()}.write(t, r.cfgPath)
	return r
}

func (r *faultRun) start() *clusterrun.Proc {
	p := launch(r.t, r.bin, r.cfgPath, r.logPath, r.addr)
	if err := p.WaitReady(30 * time.Second); err != nil {
		r.t.Fatalf("%v\n%s", err, logTail(r.logPath, 3000))
	}
	return p
}

// produce runs n producers posting batches of 5 events until ctx ends.
func (r *faultRun) produce(ctx context.Context, n int) *sync.WaitGroup {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				first := r.ids.Take(5)
				recs := make([]event.Record, 5)
				ids := make([]int, 5)
				for j := range recs {
					ids[j] = first + j
					recs[j] = targettest.Record("images", fmt.Sprintf("k%d.jpg", ids[j]%50), event.ObjectCreatedPut, ids[j])
				}
				sent := time.Now()
				ans := clusterrun.PostAnswer(ctx, r.client, r.addr, recs...)
				if ctx.Err() != nil && ans.Code == 0 {
					return
				}
				r.acked.Add(ans.Code, ids)
				r.mu.Lock()
				r.answers = append(r.answers, timedAnswer{sent: sent, got: time.Now(), Answer: ans})
				r.mu.Unlock()
				if ans.Code != http.StatusOK {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	return &wg
}

// answersSince returns the answers to requests sent at or after t.
func (r *faultRun) answersSince(t time.Time) []timedAnswer {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []timedAnswer
	for _, a := range r.answers {
		if !a.sent.Before(t) {
			out = append(out, a)
		}
	}
	return out
}

// deliveredAfterRestart cuts power, restarts the relay on the same log and
// checks that every event acknowledged with 200 is delivered.
func (r *faultRun) deliveredAfterRestart() {
	t := r.t
	if err := r.fsys.Cut(); err != nil {
		t.Fatal(err)
	}
	p := r.start()
	defer p.Kill()
	ackedIDs, status := r.acked.IDs(), r.acked.Status()
	if len(ackedIDs) == 0 {
		t.Fatalf("no event acknowledged (answers %v): the test did not exercise ingest", status)
	}
	var missing []int
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		missing, _ = r.seen.missing(ackedIDs)
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d of %d acknowledged events never delivered after the restart, first %v\n%s", len(missing), len(ackedIDs), missing[:min(10, len(missing))], logTail(r.logPath, 3000))
	}
	t.Logf("%d events acknowledged (answers by status %v), all delivered after the restart", len(ackedIDs), status)
}

// TestFaultFsyncEIO injects one EIO on an fdatasync of wal.db under load.
// The relay must stop accepting at once (no 200 to a request sent after
// the failed fsync), exit non-zero with a log line naming the file and the
// error, and after a power cut and a restart without the fault deliver
// every event it acknowledged.
func TestFaultFsyncEIO(t *testing.T) {
	r := newFaultRun(t)
	p := r.start()
	ctx, cancel := context.WithCancel(context.Background())
	wg := r.produce(ctx, 3)
	time.Sleep(300 * time.Millisecond)

	r.fsys.FailFsync("wal.db", 1)
	var failedAt time.Time
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if r.fsys.Stats().FailedFsyncs > 0 {
			failedAt = time.Now()
			break
		}
		if time.Now().After(deadline) {
			cancel()
			wg.Wait()
			t.Fatal("no fsync of wal.db in 10s under load")
		}
	}
	code := p.Wait(10 * time.Second)
	cancel()
	wg.Wait()
	p.Kill()

	var late []string
	for _, a := range r.answersSince(failedAt) {
		if a.Code == http.StatusOK {
			late = append(late, fmt.Sprintf("200 %s after the failure", a.got.Sub(failedAt).Round(time.Microsecond)))
		}
	}
	if len(late) > 0 {
		t.Errorf("%d requests sent after the failed fsync were answered 200, want none (fail-stop): %v", len(late), late[:min(5, len(late))])
	}
	if code <= 0 {
		state := "still running 10s after"
		if code == 0 {
			state = "exited 0 after"
		}
		t.Errorf("relay %s the failed fsync, want a non-zero exit", state)
	}
	if !hasLine(r.logPath, "wal.db", "input/output error") {
		t.Errorf("no log line names wal.db and the error (input/output error)\n%s", logTail(r.logPath, 2000))
	}
	r.fsys.FailFsync("wal.db", 0)
	r.deliveredAfterRestart()
}

// TestFaultNoSpace fills the disk (a zero quota) under load. POSTs must be
// answered 503 with Retry-After and no file path in the body; once space
// frees the same relay process answers 200 again by itself; nothing it
// acknowledged is lost, even across a power cut afterwards.
func TestFaultNoSpace(t *testing.T) {
	r := newFaultRun(t)
	p := r.start()
	ctx, cancel := context.WithCancel(context.Background())
	wg := r.produce(ctx, 3)
	stopped := false
	stop := func() {
		if !stopped {
			cancel()
			wg.Wait()
			stopped = true
		}
	}
	defer stop()
	time.Sleep(300 * time.Millisecond)

	full := time.Now()
	r.fsys.SetQuota(0)
	time.Sleep(time.Second)
	if code := p.Wait(0); code >= 0 {
		stop()
		t.Fatalf("relay exited %d on a full disk, want it to keep running\n%s", code, logTail(r.logPath, 2000))
	}
	var wrong []string
	refused, okWhileFull := 0, 0
	for _, a := range r.answersSince(full) {
		if a.Code == http.StatusOK {
			okWhileFull++ // every commit writes: a 200 now was never logged
		}
		if a.Code == http.StatusOK || a.Code == 0 {
			continue
		}
		refused++
		switch {
		case a.Code != http.StatusServiceUnavailable:
			wrong = append(wrong, fmt.Sprintf("status %d (%.100s)", a.Code, a.Body))
		case a.Header.Get("Retry-After") == "":
			wrong = append(wrong, "503 without Retry-After")
		case strings.Contains(a.Body, r.fsys.Dir()) || strings.Contains(a.Body, r.fsys.Backing()) ||
			strings.Contains(a.Body, "wal.db") || strings.Contains(a.Body, "/tmp/"):
			wrong = append(wrong, fmt.Sprintf("503 naming a path: %.200s", a.Body))
		}
	}
	if okWhileFull > 0 {
		t.Errorf("%d requests sent while no write could succeed were answered 200", okWhileFull)
	}
	if r.fsys.Stats().NoSpaceWrites == 0 {
		t.Fatal("no write hit the quota: the test did not fill the disk")
	}
	if refused == 0 {
		t.Errorf("no POST was refused while the disk was full")
	}
	if len(wrong) > 0 {
		t.Errorf("%d of %d answers on a full disk are not 503 with Retry-After and no path: %v", len(wrong), refused, wrong[:min(5, len(wrong))])
	}

	freed := time.Now()
	r.fsys.SetQuota(-1)
	var recovered time.Duration
	for deadline := freed.Add(20 * time.Second); recovered == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, a := range r.answersSince(freed) {
			if a.Code == http.StatusOK {
				recovered = a.got.Sub(freed)
				break
			}
		}
	}
	if recovered == 0 {
		t.Errorf("no 200 in 20s after space freed: the relay does not recover by itself\n%s", logTail(r.logPath, 2000))
	} else {
		t.Logf("200 again %v after space freed, same process", recovered.Round(time.Millisecond))
	}
	if code := p.Wait(0); code >= 0 {
		t.Errorf("relay exited %d after the disk was full, want it running", code)
	}
	time.Sleep(200 * time.Millisecond)
	stop()
	p.Kill()
	t.Logf("%d writes refused with ENOSPC", r.fsys.Stats().NoSpaceWrites)
	r.deliveredAfterRestart()
}
