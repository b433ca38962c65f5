package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/internal/clusterrun"
	"github.com/bucketrelay/bucketrelay/testkit/faultfs"
	"github.com/bucketrelay/bucketrelay/wal"
)

var powerCuts = flag.Int("powercuts", 50, "power cuts in TestPowerCut (make crash-long runs thousands)")

// Phases of TestPowerCut, each taking an equal share of the cuts.
const (
	phaseIngest    = iota // receiver up: cuts during ingest and delivery
	phaseFlapping         // the receiver stops and starts under the relay
	phaseNamespace        // mostly namespace traffic, puts and deletes
	phasePoison           // one event the receiver answers 400 forever
	phaseFull             // a small queueLimit with the receiver down: 503s
	phases
)

var phaseNames = [phases]string{"ingest", "flapping", "namespace", "poison", "full"}

// TestPowerCut runs the real relay with its data directory on faultfs and
// cuts power under it (SIGKILL, then every write not fsynced is dropped)
// at random moments, -powercuts times, across the phases above; after
// each cut the log must open and the relay restart on it. At the end
// every event acknowledged with 200 has been delivered at least once, the
// Redis namespace target holds the state the acknowledged history allows,
// and the poison event is in the webhook target's quarantine.
func TestPowerCut(t *testing.T) {
	h := newPowerHarness(t, false)
	rdb := redisConn(t)
	h.redisKey = fmt.Sprintf("bucketrelay-powercut-%d-%d", os.Getpid(), time.Now().UnixNano())
	rdb.Close()
	// Each use dials anew: other packages' tests restart the shared Redis
	// (their outages), which closes a connection held across the run.
	t.Cleanup(func() { c := redisConn(t); c.Do("DEL", h.redisKey); c.Close() })

	n := *powerCuts
	// A disk's fsync takes time: cuts then often land between the log's
	// writes and their fsync, where unsynced data is at stake.
	h.fsys.SetFsyncDelay(2 * time.Millisecond)
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	start := time.Now()
	for cut := 0; cut < n; cut++ {
		phase := cut * phases / n
		h.cycle(rng, phase)
		if err := h.fsys.Cut(); err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		if err := checkLogOpens(h.fsys); err != nil {
			t.Fatalf("cut %d (%s): the log does not open after the cut: %v\nrelay log tail:\n%s", cut, phaseNames[phase], err, logTail(h.logPath, 3000))
		}
	}
	cutTime := time.Since(start)

	// The last run: the receiver up, the default queue limit; everything
	// acknowledged must arrive.
	h.up()
	h.writeConfig(-1)
	p := launch(t, h.bin, h.cfgPath, h.logPath, h.addr)
	if err := p.WaitReady(30 * time.Second); err != nil {
		t.Fatalf("last start: %v\n%s", err, logTail(h.logPath, 3000))
	}
	h.postPoisonUntilAcked()
	drainStart := time.Now()
	ackedIDs, status := h.acked.IDs(), h.acked.Status()
	var missing []int
	var dups int
	var nsErr error
	deadline := time.Now().Add(120 * time.Second)
	for {
		missing, dups = h.seen.missing(ackedIDs)
		c := redisConn(t)
		nsErr = h.ns.check(c, h.redisKey)
		c.Close()
		if len(missing) == 0 && nsErr == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	drainTime := time.Since(drainStart)
	if code := p.Stop(); code != 0 {
		t.Errorf("relay exited %d on SIGTERM, want 0\n%s", code, logTail(h.logPath, 2000))
	}
	if len(missing) > 0 {
		t.Errorf("%d of %d acknowledged webhook events never delivered after %d power cuts, first %v\nrelay log tail:\n%s",
			len(missing), len(ackedIDs), n, missing[:min(10, len(missing))], logTail(h.logPath, 3000))
	}
	if nsErr != nil {
		t.Errorf("namespace target after %d power cuts: %v", n, nsErr)
	}
	h.checkPoisonQuarantined()
	if len(ackedIDs) < 50*max(n/10, 1) {
		t.Errorf("only %d webhook events acknowledged over %d cuts: the test did not exercise ingest (answers %v)", len(ackedIDs), n, status)
	}
	st := h.fsys.Stats()
	if n >= 20 && st.LossyCuts == 0 {
		t.Errorf("none of %d cuts came between a write and its fsync: the cuts do not test durability", n)
	}
	t.Logf("power cuts: %d in %v (%s each phase), last run delivered the backlog in %v, %d webhook events acknowledged (answers by status %v), %d namespace writes acknowledged over %d keys, %d duplicate deliveries (at-least-once), %d fsyncs, %d cuts dropped %d KiB of unsynced writes",
		n, cutTime.Round(time.Millisecond), fmt.Sprint(phaseNames), drainTime.Round(time.Millisecond), len(ackedIDs), status, h.ns.ackedCount(), h.ns.keys(), dups, st.Fsyncs, st.LossyCuts, st.DroppedBytes>>10)
}

// TestPowerCutControlNoSync runs the same harness with "noSync": true in
// the relay's configuration. Without fsync the cuts must lose events the
// relay acknowledged: if they do not, the harness does not cut power.
func TestPowerCutControlNoSync(t *testing.T) {
	h := newPowerHarness(t, true)
	const cuts = 3
	for cut := 0; cut < cuts; cut++ {
		h.down() // nothing delivered before the cut: what is lost is lost
		h.writeConfig(-1)
		p := launch(t, h.bin, h.cfgPath, h.logPath, h.addr)
		if err := p.WaitReady(30 * time.Second); err != nil {
			t.Fatalf("cut %d: %v\n%s", cut, err, logTail(h.logPath, 3000))
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for i := 0; i < 3; i++ {
			wg.Add(1)
			go func() { defer wg.Done(); imagesProducer(ctx, h.client, h.addr, &h.ids, &h.acked, 10) }()
		}
		time.Sleep(300 * time.Millisecond)
		h.fsys.PowerOff()
		p.Kill()
		cancel()
		wg.Wait()
		if err := h.fsys.Cut(); err != nil {
			t.Fatal(err)
		}
	}
	h.up()
	ackedIDs := h.acked.IDs()
	p := launch(t, h.bin, h.cfgPath, h.logPath, h.addr)
	lost := len(ackedIDs)
	if err := p.WaitReady(30 * time.Second); err != nil {
		t.Logf("without fsync the relay does not even start after the cuts: %v", err)
	} else {
		// Wait until the deliveries stop growing.
		prev := -1
		for i := 0; i < 100; i++ {
			missing, _ := h.seen.missing(ackedIDs)
			if len(missing) == prev || len(missing) == 0 {
				break
			}
			prev = len(missing)
			time.Sleep(300 * time.Millisecond)
		}
		missing, _ := h.seen.missing(ackedIDs)
		lost = len(missing)
		p.Kill()
	}
	if len(ackedIDs) < 100 {
		t.Fatalf("only %d events acknowledged: the control did not exercise ingest", len(ackedIDs))
	}
	if lost == 0 {
		t.Fatalf("with noSync the %d cuts lost none of %d acknowledged events: the harness does not cut power", cuts, len(ackedIDs))
	}
	t.Logf("control (noSync): %d cuts lost %d of %d acknowledged events, as they must; %d KiB of unsynced writes dropped", cuts, lost, len(ackedIDs), h.fsys.Stats().DroppedBytes>>10)
}

// powerHarness is the state of one power-cut run.
type powerHarness struct {
	t        *testing.T
	fsys     *faultfs.FS
	bin      string
	addr     string
	cfgPath  string
	logPath  string
	redisKey string
	noSync   bool
	client   *http.Client
	rcv      *receiver
	rcvUp    bool
	seen     *deliveries
	ids      clusterrun.IDs
	acked    clusterrun.Acked
	ns       nsModel
	poison   int  // the poison event's id
	poisoned bool // the poison event was acknowledged
	poisonMu sync.Mutex
}

func newPowerHarness(t *testing.T, noSync bool) *powerHarness {
	fsys := fuseMount(t)
	dir := t.TempDir()
	h := &powerHarness{
		t: t, fsys: fsys, bin: relayBinary(t), addr: freePort(t),
		cfgPath: filepath.Join(dir, "relay.json"), logPath: filepath.Join(dir, "relay.log"),
		noSync: noSync, client: &http.Client{Timeout: 10 * time.Second},
	}
	h.rcv, h.rcvUp = newReceiver(t), true
	h.seen = watch(h.rcv)
	h.poison = h.ids.Take(1)
	h.rcv.Reject = isPoison
	h.ns.history = map[string][]nsAttempt{}
	return h
}

// isPoison picks the one event the receiver answers 400, for good.
func isPoison(body []byte) bool { return bytes.Contains(body, []byte(`"key":"poison.jpg"`)) }

// up starts the receiver if it is stopped.
func (h *powerHarness) up() {
	if !h.rcvUp {
		h.rcv.Start(h.t)
		h.rcvUp = true
	}
}

// down stops the receiver.
func (h *powerHarness) down() {
	h.rcv.Stop()
	h.rcvUp = false
}

// writeConfig writes the configuration for a phase (-1: the last run).
func (h *powerHarness) writeConfig(phase int) {
	c := relayConfig{
		DataDir: filepath.Join(h.fsys.Dir(), "data"), Listen: h.addr, Webhook: h.rcv.URL(),
		RedisKey: h.redisKey, NoSync: h.noSync,
	}
	if phase == phaseFull {
		c.QueueLimit, c.FullWait = 400, "100ms"
	}
	c.write(h.t, h.cfgPath)
}

// cycle runs the relay once in phase and kills it at a random moment.
func (h *powerHarness) cycle(rng *rand.Rand, phase int) {
	t := h.t
	h.writeConfig(phase)
	if phase != phaseFlapping && phase != phaseFull {
		h.up()
	}
	p := launch(t, h.bin, h.cfgPath, h.logPath, h.addr)
	if rng.Intn(10) == 0 {
		// A cut while the relay opens (and recovers) its log.
		time.Sleep(time.Duration(rng.Intn(40)) * time.Millisecond)
		h.fsys.PowerOff()
		p.Kill()
		return
	}
	if err := p.WaitReady(30 * time.Second); err != nil {
		t.Fatalf("%s phase: the relay does not restart after a cut: %v\nrelay log tail:\n%s", phaseNames[phase], err, logTail(h.logPath, 3000))
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	run := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	images, nsProducers := 3, 2
	if phase == phaseNamespace {
		images, nsProducers = 1, 4
	}
	for i := 0; i < images; i++ {
		run(func() { imagesProducer(ctx, h.client, h.addr, &h.ids, &h.acked, 10) })
	}
	for i := 0; i < nsProducers; i++ {
		i := i
		seed := rng.Int63()
		run(func() { h.nsProducer(ctx, i, rand.New(rand.NewSource(seed))) })
	}
	if phase == phasePoison {
		run(func() { h.poisonProducer(ctx) })
	}
	window := time.Duration(30+rng.Intn(370)) * time.Millisecond
	end := time.Now().Add(window)
	switch phase {
	case phaseFlapping:
		for up := rng.Intn(2) == 0; time.Now().Before(end); up = !up {
			if up {
				h.up()
			} else {
				h.down()
			}
			time.Sleep(min(time.Until(end), time.Duration(20+rng.Intn(130))*time.Millisecond))
		}
	case phaseFull:
		// Down long enough for the small log to fill, then up to drain.
		h.down()
		time.Sleep(window * 2 / 3)
		h.up()
		time.Sleep(time.Until(end))
	default:
		time.Sleep(window)
	}
	h.fsys.PowerOff() // the instant of the cut; the kill follows
	p.Kill()
	cancel()
	wg.Wait()
}

// poisonProducer posts the poison event until it is acknowledged.
func (h *powerHarness) poisonProducer(ctx context.Context) {
	for ctx.Err() == nil && !h.poisonAcked() {
		if clusterrun.PostAnswer(ctx, h.client, h.addr, h.poisonRecord()).Code == http.StatusOK {
			h.poisonMu.Lock()
			h.poisoned = true
			h.poisonMu.Unlock()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (h *powerHarness) poisonAcked() bool {
	h.poisonMu.Lock()
	defer h.poisonMu.Unlock()
	return h.poisoned
}

func (h *powerHarness) poisonRecord() event.Record {
	return targettest.Record("images", "poison.jpg", event.ObjectCreatedPut, h.poison)
}

// postPoisonUntilAcked makes sure the poison event is in the log, should
// the poison phase have had no acknowledgement for it.
func (h *powerHarness) postPoisonUntilAcked() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h.poisonProducer(ctx)
	if !h.poisonAcked() {
		h.t.Fatalf("the poison event was never acknowledged\n%s", logTail(h.logPath, 2000))
	}
}

// checkPoisonQuarantined: the poison event is in the webhook target's
// quarantine (read from the durable log), and was never delivered.
func (h *powerHarness) checkPoisonQuarantined() {
	t := h.t
	l, err := wal.OpenReadOnly(filepath.Join(h.fsys.Backing(), "data", "wal.db"))
	if err != nil {
		t.Errorf("opening the log after the last run: %v", err)
		return
	}
	defer l.Close()
	q, err := l.Quarantined(webhookARN)
	if err != nil {
		t.Errorf("reading the quarantine: %v", err)
		return
	}
	found := false
	for _, e := range q {
		var r event.Record
		if json.Unmarshal(e.Data, &r) == nil && recordID(&r) == h.poison {
			found = true
		} else {
			t.Errorf("quarantine holds event %d (%s): only the poison event %d belongs there", recordID(&r), e.Key, h.poison)
		}
	}
	if !found {
		t.Errorf("the poison event %d is not in %s's quarantine (%d entries)", h.poison, webhookARN, len(q))
	}
	if m, _ := h.seen.missing([]int{h.poison}); len(m) == 0 {
		t.Errorf("the poison event %d was delivered, yet the receiver rejects it", h.poison)
	}
}

// nsAttempt is one POST of a namespace event.
type nsAttempt struct {
	id    int
	del   bool
	acked bool
}

// nsModel is the history of every namespace key, in the order its only
// producer posted it.
type nsModel struct {
	mu      sync.Mutex
	history map[string][]nsAttempt // by Redis field ("nsbucket/<key>")
}

func (m *nsModel) begin(field string, id int, del bool) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.history[field] = append(m.history[field], nsAttempt{id: id, del: del})
	return len(m.history[field]) - 1
}

func (m *nsModel) ack(field string, i int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.history[field][i].acked = true
}

func (m *nsModel) ackedCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, h := range m.history {
		for _, a := range h {
			if a.acked {
				n++
			}
		}
	}
	return n
}

func (m *nsModel) keys() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.history)
}

// check compares the Redis hash with the model. A key's state must be the
// outcome of its last acknowledged write or of a later unacknowledged one
// (the relay may have logged a write whose answer was lost in the cut);
// with no acknowledged write, absence is allowed too.
func (m *nsModel) check(c redis.Conn, key string) error {
	got, err := redis.StringMap(c.Do("HGETALL", key))
	if err != nil {
		return fmt.Errorf("HGETALL %s: %w", key, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var bad []string
	for field := range got {
		if _, ok := m.history[field]; !ok {
			bad = append(bad, fmt.Sprintf("%s: present, never written", field))
		}
	}
	for field, hist := range m.history {
		v, present := got[field]
		id := -1
		if present {
			var b struct{ Records []event.Record }
			if json.Unmarshal([]byte(v), &b) != nil || len(b.Records) != 1 {
				bad = append(bad, fmt.Sprintf("%s: value %.80q is not one record", field, v))
				continue
			}
			id = recordID(&b.Records[0])
		}
		last := -1
		for i, a := range hist {
			if a.acked {
				last = i
			}
		}
		ok := last < 0 && !present
		for _, a := range hist[max(last, 0):] {
			if a.del && !present || !a.del && present && a.id == id {
				ok = true
			}
		}
		if !ok {
			want := "absent"
			if last >= 0 && !hist[last].del {
				want = fmt.Sprintf("event %d", hist[last].id)
			}
			state := "absent"
			if present {
				state = fmt.Sprintf("event %d", id)
			}
			bad = append(bad, fmt.Sprintf("%s: %s, want %s or a later unacknowledged write", field, state, want))
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("%d of %d keys differ from the model: %v", len(bad), len(m.history), bad[:min(5, len(bad))])
	}
	return nil
}

// nsProducer posts puts and deletes of its own keys (bucket "nsbucket", routed
// to the Redis namespace target), one at a time so that its order is the
// log's order for those keys.
func (h *powerHarness) nsProducer(ctx context.Context, p int, rng *rand.Rand) {
	for ctx.Err() == nil {
		key := fmt.Sprintf("p%d-k%d.jpg", p, rng.Intn(8))
		del := rng.Intn(4) == 0
		name := event.ObjectCreatedPut
		if del {
			name = event.ObjectRemovedDelete
		}
		id := h.ids.Take(1)
		rec := targettest.Record("nsbucket", key, name, id)
		field := rec.Key()
		i := h.ns.begin(field, id, del)
		ans := clusterrun.PostAnswer(ctx, h.client, h.addr, rec)
		if ans.Code == http.StatusOK {
			h.ns.ack(field, i)
		}
		if ans.Code != http.StatusOK {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// redisConn connects to the Redis on loopback: the test fails without it
// under CI=true and is skipped otherwise.
func redisConn(t *testing.T) redis.Conn {
	t.Helper()
	c, err := redis.Dial("tcp", "127.0.0.1:6379", redis.DialConnectTimeout(2*time.Second))
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis on 127.0.0.1:6379: %v (scripts/services.sh start redis)", err)
		}
		t.Skipf("redis on 127.0.0.1:6379: %v", err)
	}
	return c
}
