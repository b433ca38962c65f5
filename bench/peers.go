package main

// Scenario "peers" (only when named: go run ./bench peers; it builds MinIO
// and Benthos with scripts/peers.sh the first time): the relay beside what users would run instead,
// every system fed the same S3 events and delivering to the same receiver.
//
//	(a) latency at one offered rate, the rate MinIO sustains here:
//	    p50/p99 from acknowledgement to receipt;
//	(b) drain of a backlog built while the receiver was down, each at its
//	    own maximum;
//	(c) kill -9 mid-run with the receiver down, restart, receiver up:
//	    acknowledged events never delivered;
//	(d) the relay alone under overload: delivery while ingest runs flat
//	    out, against its drain rate without ingest.
//
// Figures are printed as ratios relay ÷ peer beside the raw values, and a
// chart of (b) is written to bench/peers.svg.

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bucketrelay/bucketrelay/bench/harness"
)

func init() { harness.RegisterExplicit("peers", runPeers) }

var (
	peersOnly      = flag.String("peers-systems", "", "peers: comma-separated systems to run (relay, minio, minio-sync, minio+relay, benthos); default all")
	peersPace      = flag.Float64("peers-pace", 0, "peers: offered rate in events/s for (a) when minio is not among the systems run")
	peersPhases    = flag.String("peers-phases", "abcd", "peers: measurements to run: a latency, b drain, c kill -9, d the relay under overload")
	peersLanes     = flag.Int("peers-relay-lanes", 8, "peers: (b) also drains with the relay's webhook in this many lanes, as system relay+lanes (the relay at its own maximum); 1: only the default configuration")
	peersRepeat    = flag.Int("peers-repeat", 0, "peers: (b) drains of each system, alternated, whose median is reported; 0: 3, 1 with --quick")
	peersBacklog   = flag.Int("peers-backlog", 0, "peers: events of the (b) and (c) backlogs; 0: 20000, 2000 with --quick")
	peersRelayHook = flag.String("peers-relay-webhook", "", `peers: JSON members added to the relay's webhook target, such as '"concurrency":4' (default: none, the default configuration)`)
	peersRelayBin  = flag.String("peers-relay-bin", "", "peers: run this relay binary (an earlier build, for a before/after comparison) instead of building the checkout's")
)

// phase reports whether measurement p (a, b, c or d) is to run.
func phase(p string) bool { return strings.Contains(*peersPhases, p) }

// newPeerReceiver returns the webhook endpoint every system delivers to,
// not yet listening. It finds the event id in a body by the object key's
// "obj-" and eight digits (MinIO's bodies carry no bench fields), and keeps
// the time of each id's first receipt.
func newPeerReceiver() (*harness.Receiver, error) {
	rv, err := harness.NewReceiver()
	if err != nil {
		return nil, err
	}
	rv.ParseID, rv.FirstReceipts = objID, true
	return rv, nil
}

// objID finds "obj-" and eight digits.
func objID(b []byte) (int, bool) {
	i := bytes.Index(b, []byte("obj-"))
	if i < 0 || len(b) < i+12 {
		return 0, false
	}
	n, err := strconv.Atoi(string(b[i+4 : i+12]))
	return n, err == nil
}

// acks records the acknowledgement time of every published id.
type acks struct {
	mu   sync.Mutex
	at   map[int]time.Time
	sent map[int]time.Time // when the request left the client
}

func (a *acks) add(id int, sent, t time.Time) {
	a.mu.Lock()
	a.at[id] = t
	if a.sent != nil {
		a.sent[id] = sent
	}
	a.mu.Unlock()
}

func (a *acks) n() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.at)
}

// publishLoad runs workers publishing ids from next until stop returns
// true or ctx ends. rate > 0 paces the whole load at rate events/s.
func publishLoad(ctx context.Context, s peerSystem, workers int, rate float64, next *atomic.Int64, a *acks, stop func() bool) (errs int64) {
	var wg sync.WaitGroup
	var errCount atomic.Int64
	start := time.Now()
	var issued atomic.Int64
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && !stop() {
				if rate > 0 {
					k := issued.Add(1)
					due := start.Add(time.Duration(float64(k) / rate * float64(time.Second)))
					if d := time.Until(due); d > 0 {
						select {
						case <-time.After(d):
						case <-ctx.Done():
							return
						}
					}
				}
				id := int(next.Add(1) - 1)
				sent := time.Now()
				if err := s.Publish(ctx, id); err != nil {
					errCount.Add(1)
					if rate == 0 {
						time.Sleep(10 * time.Millisecond)
					}
					continue
				}
				a.add(id, sent, time.Now())
			}
		}()
	}
	wg.Wait()
	return errCount.Load()
}

// waitDelivered waits until every acknowledged id arrived, or no new one
// arrived for quiet, or limit passed. It returns the ids never received.
func waitDelivered(ctx context.Context, rv *harness.Receiver, a *acks, quiet, limit time.Duration) []int {
	deadline := time.Now().Add(limit)
	lastCount, lastChange := -1, time.Now()
	for {
		u, _ := rv.Counts()
		if u != lastCount {
			lastCount, lastChange = u, time.Now()
		}
		end := time.Since(lastChange) > quiet || time.Now().After(deadline) || ctx.Err() != nil
		// Only look for the missing ids once as many arrived as were
		// acknowledged (or at the end): a look takes the receiver's lock
		// once per id, which would slow the drain it measures.
		if u >= a.n() || end {
			a.mu.Lock()
			var missing []int
			for id := range a.at {
				if _, ok := rv.FirstReceipt(id); !ok {
					missing = append(missing, id)
				}
			}
			a.mu.Unlock()
			if len(missing) == 0 || end {
				sort.Ints(missing)
				return missing
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// peerFigures is what one system measured.
type peerFigures struct {
	name             string
	p50, p99         float64 // ms, (a), acknowledgement to receipt
	e2e50, e2e99     float64 // ms, (a), request sent to receipt
	delivered        int     // (a)
	drain            float64 // events/s, (b), first to last receipt; 0 = not measured
	resume           float64 // s, (b): receiver up to first receipt
	drainNote        string
	acked, lost, dup int // (c)
	killNote         string
	curve            []time.Time // (b) first receipts
	drainStart       time.Time
}

type systemFactory func(dir string, rv *harness.Receiver) (peerSystem, error)

func runPeers(ctx context.Context, o harness.Options) (harness.Result, error) {
	var res harness.Result
	const workers = 16
	// Set once the binaries are built, below; the factories read them.
	var relayBin, minioBin, benthosBin string
	var err error
	backlog, window, repeat := 20000, o.Duration, 3
	if o.Quick {
		backlog, repeat = 2000, 1
	}
	if *peersBacklog > 0 {
		backlog = *peersBacklog
	}
	if *peersRepeat > 0 {
		repeat = *peersRepeat
	}
	factories := []struct {
		name string
		make systemFactory
	}{
		{"relay", func(dir string, rv *harness.Receiver) (peerSystem, error) {
			return newRelaySystem(relayBin, dir, rv.URL(), 1)
		}},
		{"minio", func(dir string, rv *harness.Receiver) (peerSystem, error) {
			return newMinioSystem("minio", minioBin, dir, rv.URL(), false, true)
		}},
		{"minio-sync", func(dir string, rv *harness.Receiver) (peerSystem, error) {
			return newMinioSystem("minio-sync", minioBin, dir, rv.URL(), true, true)
		}},
		{"minio+relay", func(dir string, rv *harness.Receiver) (peerSystem, error) {
			r, err := newRelaySystem(relayBin, filepath.Join(dir, "r"), rv.URL(), 1)
			if err != nil {
				return nil, err
			}
			m, err := newMinioSystem("minio+relay", minioBin, filepath.Join(dir, "m"), r.eventsURL(), true, false)
			if err != nil {
				return nil, err
			}
			return &chainSystem{relay: r, minio: m}, nil
		}},
		{"benthos", func(dir string, rv *harness.Receiver) (peerSystem, error) {
			return newBenthosSystem(benthosBin, dir, rv.URL())
		}},
	}
	if *peersOnly != "" {
		want := map[string]bool{}
		for _, n := range strings.Split(*peersOnly, ",") {
			want[strings.TrimSpace(n)] = true
		}
		kept := factories[:0]
		for _, f := range factories {
			if want[f.name] {
				kept = append(kept, f)
				delete(want, f.name)
			}
		}
		for n := range want {
			return res, fmt.Errorf("--peers-systems: unknown system %q", n)
		}
		factories = kept
	}
	var need []string
	for _, f := range factories {
		if strings.HasPrefix(f.name, "minio") && !slices.Contains(need, "minio") {
			need = append(need, "minio")
		}
		if f.name == "benthos" {
			need = append(need, "benthos")
		}
	}
	if *peersPace == 0 && phase("a") && !slices.Contains(need, "minio") {
		need = append(need, "minio")
	}
	relayBin, minioBin, benthosBin, err = peerBinaries(ctx, o.Dir, need...)
	if err != nil {
		return res, err
	}
	// fresh starts a system on a new directory with a new receiver.
	var fresh freshFunc = func(name string, mk systemFactory, receiverUp bool) (peerSystem, *harness.Receiver, func(), error) {
		dir, err := os.MkdirTemp(o.Dir, name+"-")
		if err != nil {
			return nil, nil, nil, err
		}
		os.MkdirAll(filepath.Join(dir, "r"), 0o755)
		os.MkdirAll(filepath.Join(dir, "m"), 0o755)
		rv, err := newPeerReceiver()
		if err != nil {
			return nil, nil, nil, err
		}
		if receiverUp {
			if err := rv.Start(); err != nil {
				return nil, nil, nil, err
			}
		}
		s, err := mk(dir, rv)
		if err == nil {
			err = s.Start(ctx)
		}
		done := func() {
			if s != nil {
				s.Stop()
			}
			rv.Stop()
		}
		if err != nil {
			done()
			return nil, nil, nil, fmt.Errorf("%s: %w", name, err)
		}
		return s, rv, done, nil
	}

	// The pace: what MinIO (defaults) sustains here with 16 clients.
	var next atomic.Int64
	var a *acks
	var t0 time.Time
	pace := *peersPace
	switch {
	case !phase("a"):
		// Only (a) is paced: no MinIO run for a rate nobody uses.
	case pace == 0:
		mk, err := newMinioFactory(minioBin)
		if err != nil {
			return res, err
		}
		fmt.Fprintf(os.Stderr, "bench: peers: measuring MinIO's sustained PUT rate (%v)\n", window)
		s, _, done, err := fresh("pace", mk, true)
		if err != nil {
			return res, err
		}
		a = &acks{at: map[int]time.Time{}}
		t0 = time.Now()
		publishLoad(ctx, s, workers, 0, &next, a, func() bool { return time.Since(t0) > window })
		pace = float64(a.n()) / time.Since(t0).Seconds()
		done()
		res.Add("pace: MinIO (defaults) sustained PUT rate, 16 clients", pace, "events/s", "")
	default:
		res.Add("pace: given with --peers-pace", pace, "events/s", "")
	}

	figs := map[string]*peerFigures{}
	for _, f := range factories {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		fg := &peerFigures{name: f.name}
		figs[f.name] = fg

		var s peerSystem
		var rv *harness.Receiver
		var done func()
		// (a) latency at the pace.
		if phase("a") {
			fmt.Fprintf(os.Stderr, "bench: peers: %s: latency at %.0f events/s\n", f.name, pace)
			s, rv, done, err = fresh(f.name+"-a", f.make, true)
			if err != nil {
				return res, err
			}
			next.Store(0)
			a = &acks{at: map[int]time.Time{}, sent: map[int]time.Time{}}
			t0 = time.Now()
			publishLoad(ctx, s, workers, pace, &next, a, func() bool { return time.Since(t0) > window })
			waitDelivered(ctx, rv, a, 15*time.Second, 60*time.Second)
			var lat, e2e []time.Duration
			a.mu.Lock()
			for id, at := range a.at {
				if got, ok := rv.FirstReceipt(id); ok {
					lat = append(lat, max(0, got.Sub(at)))
					e2e = append(e2e, got.Sub(a.sent[id]))
				}
			}
			a.mu.Unlock()
			fg.p50, fg.p99, fg.delivered = harness.Percentile(lat, 50), harness.Percentile(lat, 99), len(lat)
			fg.e2e50, fg.e2e99 = harness.Percentile(e2e, 50), harness.Percentile(e2e, 99)
			done()
		}

		// (c) kill -9 mid-run with the receiver down.
		if phase("c") {
			fmt.Fprintf(os.Stderr, "bench: peers: %s: kill -9 with the receiver down\n", f.name)
			s, rv, done, err = fresh(f.name+"-c", f.make, false)
			if err != nil {
				return res, err
			}
			next.Store(0)
			a = &acks{at: map[int]time.Time{}}
			loadCtx, stopLoad := context.WithCancel(ctx)
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				publishLoad(loadCtx, s, workers, 0, &next, a, func() bool { return false })
			}()
			t0 = time.Now()
			for a.n() < backlog/2 && time.Since(t0) < 15*time.Second && ctx.Err() == nil {
				time.Sleep(5 * time.Millisecond)
			}
			s.Kill()
			stopLoad()
			wg.Wait()
			fg.acked = a.n()
			if err := s.Start(ctx); err != nil {
				fg.killNote = "restart failed: " + err.Error()
			}
			rv.Start()
			missing := waitDelivered(ctx, rv, a, 20*time.Second, 3*time.Minute)
			fg.lost = len(missing)
			_, fg.dup = rv.Counts()
			done()
		}
	}

	// (b) drains after the receiver was down, every system in turn, repeat
	// rounds (MinIO's drain moves by half between runs on a shared
	// machine): the medians are reported.
	drainers := factories
	if phase("b") && *peersLanes > 1 && figs["relay"] != nil {
		lanes := *peersLanes
		drainers = append(slices.Clip(factories), struct {
			name string
			make systemFactory
		}{"relay+lanes", func(dir string, rv *harness.Receiver) (peerSystem, error) {
			return newRelaySystem(relayBin, dir, rv.URL(), lanes)
		}})
		figs["relay+lanes"] = &peerFigures{name: "relay+lanes"}
	}
	rounds := map[string][]drainRun{}
	for r := 0; phase("b") && r < repeat; r++ {
		for _, f := range drainers {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			fmt.Fprintf(os.Stderr, "bench: peers: %s: drain of %d events (%d of %d)\n", f.name, backlog, r+1, repeat)
			d, err := drainOnce(ctx, fresh, f.name, f.make, backlog, workers)
			if err != nil {
				return res, err
			}
			rounds[f.name] = append(rounds[f.name], d)
		}
	}
	for _, f := range drainers {
		if d, ok := medianDrain(rounds[f.name]); ok {
			fg := figs[f.name]
			fg.drain, fg.resume, fg.curve, fg.drainStart = d.rate, d.resume, d.curve, d.start
		}
		for i, d := range rounds[f.name] {
			if d.note != "" {
				figs[f.name].drainNote = strings.TrimPrefix(figs[f.name].drainNote+"; ", "; ") + fmt.Sprintf("drain %d: %s", i+1, d.note)
			}
		}
	}

	// (d) the relay under overload (peers_overload.go).
	var od overloadFigures
	if phase("d") {
		fmt.Fprintf(os.Stderr, "bench: peers: relay under overload (%v), then its drain without ingest\n", window)
		if od, err = overload(ctx, fresh, relayBin, window, workers); err != nil {
			return res, err
		}
	}

	relay, mio := figs["relay"], figs["minio"]
	both := relay != nil && mio != nil
	if relay == nil {
		relay = &peerFigures{}
	}
	if mio == nil {
		mio = &peerFigures{}
	}
	for _, f := range factories {
		fg := figs[f.name]
		if phase("a") {
			res.Add(fg.name+": (a) p50 acknowledgement → receipt", fg.p50, "ms", "")
			res.Add(fg.name+": (a) p99 acknowledgement → receipt", fg.p99, "ms", "")
			res.Add(fg.name+": (a) p50 request sent → receipt", fg.e2e50, "ms", "")
			res.Add(fg.name+": (a) p99 request sent → receipt", fg.e2e99, "ms", "")
		}
		if phase("c") {
			res.Add(fg.name+": (c) acknowledged before kill -9", float64(fg.acked), "events", "")
			res.Add(fg.name+": (c) acknowledged, never delivered", float64(fg.lost), "events", "0")
		}
		if fg.killNote != "" {
			res.Notes = append(res.Notes, fg.name+" (c): "+fg.killNote)
		}
	}
	for _, f := range drainers {
		fg := figs[f.name]
		if fg.drain > 0 {
			res.Add(fmt.Sprintf("%s: (b) drain rate, first to last receipt, median of %d", fg.name, len(rounds[f.name])), fg.drain, "events/s", "")
			res.Add(fg.name+": (b) receiver up → first receipt, that drain", fg.resume, "s", "")
		}
		var cpus []float64
		for _, d := range rounds[f.name] {
			if d.cpu > 0 {
				cpus = append(cpus, d.cpu)
			}
		}
		if len(cpus) > 0 {
			res.Add(fmt.Sprintf("%s: (b) CPU of its processes per event delivered, median of %d", fg.name, len(cpus)), median(cpus), "µs", "")
		}
		var rcpus []float64
		for _, d := range rounds[f.name] {
			if d.rcpu > 0 {
				rcpus = append(rcpus, d.rcpu)
			}
		}
		if len(rcpus) > 0 {
			res.Add(fmt.Sprintf("%s: (b) CPU of the receiver (the bench process) per event delivered, median of %d", fg.name, len(rcpus)), median(rcpus), "µs", "")
		}
		if len(rounds[f.name]) > 1 {
			var each []string
			for _, d := range rounds[f.name] {
				each = append(each, fmt.Sprintf("%.0f", d.rate))
			}
			res.Notes = append(res.Notes, fmt.Sprintf("%s (b): each drain, in run order: %s events/s", fg.name, strings.Join(each, ", ")))
		}
		if fg.drainNote != "" {
			res.Notes = append(res.Notes, fg.name+" (b): "+fg.drainNote)
		}
	}
	if both && mio.p99 > 0 {
		res.Add("ratio: relay p99 ÷ MinIO p99 at MinIO's rate", relay.p99/mio.p99, "×", "≤ 0.02")
	}
	// Goal 3b: relay ÷ MinIO drain, the median of the rounds' ratios (each
	// round drains every system once, so a round's ratio shares its load),
	// with the relay's default configuration and with lanes.
	for _, rn := range []string{"relay", "relay+lanes"} {
		ratios := pairedRatios(rounds[rn], rounds["minio"])
		if len(ratios) == 0 {
			continue
		}
		what := "default configuration"
		if rn == "relay+lanes" {
			what = fmt.Sprintf("%d lanes", *peersLanes)
		}
		res.Add(fmt.Sprintf("ratio: %s drain ÷ MinIO drain (%s), median of %d rounds", rn, what, len(ratios)), median(ratios), "×", "≥ 5")
		if len(ratios) > 1 {
			res.Notes = append(res.Notes, fmt.Sprintf("%s ÷ minio (b), each round: %s", rn, joinRatios(ratios)))
		}
	}
	// The relay against every other system, without goals: p99 from the
	// request (comparable whether a system answers before or after it
	// delivers) and the drain rate.
	for _, f := range factories {
		fg := figs[f.name]
		if f.name == "relay" || figs["relay"] == nil {
			continue
		}
		if phase("a") && fg.e2e99 > 0 {
			res.Add(fmt.Sprintf("ratio: relay ÷ %s, p99 request sent → receipt", f.name), relay.e2e99/fg.e2e99, "×", "")
		}
		if fg.drain > 0 && relay.drain > 0 {
			res.Add(fmt.Sprintf("ratio: relay ÷ %s, drain rate (medians)", f.name), relay.drain/fg.drain, "×", "")
		}
	}
	if phase("d") {
		where := "a child process"
		if od.inline {
			where = "the bench process, beside the receiver"
		}
		res.Add("relay (d): ingest rate, 16 clients × 50 records/POST flat out in "+where+", receiver up", od.ingest, "events/s", "")
		res.Add("relay (d): delivery rate during that ingest", od.during, "events/s", "")
		res.Add("relay (d): delivery rate right after, the backlog left and no ingest", od.after, "events/s", "")
		if od.cpuEach > 0 {
			res.Add("relay (d): relay CPU per event acknowledged or delivered, during the ingest", od.cpuEach, "µs", "")
		}
	}
	switch {
	case !phase("d"):
	case od.during >= 0.95*od.ingest:
		res.Notes = append(res.Notes, fmt.Sprintf("relay (d): delivery kept up with ingest (%.0f of %.0f events/s): no overload reached on this machine, so the overload ratio is not measured", od.during, od.ingest))
	case od.after > 0:
		res.Add("ratio: relay delivery under overload ÷ its delivery right after without ingest", od.during/od.after, "×", "≥ 0.5")
		if relay.drain > 0 {
			res.Add("ratio: relay delivery under overload ÷ its (b) drain (another relay process, earlier)", od.during/relay.drain, "×", "")
		}
	}
	res.Notes = append(res.Notes,
		"every system is a real process on loopback: the relay daemon built from this checkout, MinIO and Benthos built by scripts/peers.sh at pinned versions; 16 clients, one event per request (an S3 PUT of 1 KiB for MinIO, a POST of one record for the relay and Benthos)",
		"latency is from the client's acknowledgement to the receiver's first receipt; an event delivered before it was acknowledged (Benthos answers after its output; MinIO with sync events) counts 0",
		"MinIO's webhook uses queue_dir (its persistent queue); minio+relay is MinIO with MINIO_API_SYNC_EVENTS=on and no queue_dir posting to the relay, so a PUT returns once the relay fsynced its event; in (c) only MinIO is killed")
	if path, err := peersChart(figs, o.Dir, []string{"relay", "minio", "minio-sync", "minio+relay", "benthos", "relay+lanes"}); err == nil {
		res.Files = append(res.Files, path)
	} else {
		res.Notes = append(res.Notes, "chart: "+err.Error())
	}
	return res, nil
}

// peersChart draws the drains of (b): events delivered since the receiver
// came up, one line per system.
func peersChart(figs map[string]*peerFigures, scratch string, order []string) (string, error) {
	colors := []string{"#1f77b4", "#d62728", "#ff7f0e", "#2ca02c", "#9467bd", "#17becf"}
	c := &harness.Chart{Title: "Drain after the receiver was down (each system's median drain): events delivered over time", YLabel: "events delivered"}
	var end float64
	for _, n := range order {
		if f := figs[n]; f != nil && len(f.curve) > 0 {
			end = max(end, f.curve[len(f.curve)-1].Sub(f.drainStart).Seconds())
		}
	}
	if end == 0 {
		return "", fmt.Errorf("no system drained")
	}
	const steps = 200
	for i := 0; i <= steps; i++ {
		c.X = append(c.X, end*float64(i)/steps)
	}
	for i, n := range order {
		f := figs[n]
		if f == nil || len(f.curve) == 0 {
			continue
		}
		s := harness.Series{Name: n, Color: colors[i%len(colors)]}
		k := 0
		for _, x := range c.X {
			for k < len(f.curve) && f.curve[k].Sub(f.drainStart).Seconds() <= x {
				k++
			}
			s.Y = append(s.Y, float64(k))
		}
		c.Lines = append(c.Lines, s)
	}
	// Beside outage.svg: into ./bench when run from the module root.
	dir := "bench"
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		dir = scratch
	}
	path := filepath.Join(dir, "peers.svg")
	return path, c.Write(path)
}

// newMinioFactory makes MinIO systems with default settings.
func newMinioFactory(bin string) (systemFactory, error) {
	return func(dir string, rv *harness.Receiver) (peerSystem, error) {
		return newMinioSystem("minio", bin, dir, rv.URL(), false, true)
	}, nil
}
