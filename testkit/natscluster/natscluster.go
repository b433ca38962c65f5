// Package natscluster runs a real three-node NATS JetStream cluster on
// loopback for tests and benchmarks: nats-server built from its Go module
// at the version scripts/cluster.sh pins, one process per node, with
// free ports, data in a temporary directory and sync_interval "always"
// unless told otherwise. Nodes can be killed (SIGKILL), stopped and
// restarted to inject faults.
//
// Without the binary (and no way to build it) a test is skipped, or fails
// when CI=true.
package natscluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Options configures a cluster. The zero value is a durable cluster.
type Options struct {
	// SyncInterval is JetStream's sync_interval: "" means "always" (fsync
	// before every acknowledgement); "2m" is the server's own default.
	SyncInterval string
	// Dir holds configs, data and logs; "" means t.TempDir().
	Dir string
	// Partitionable routes every link between nodes through a proxy the
	// test controls (Isolate, Heal).
	Partitionable bool
}

// Cluster is a running three-node cluster. Node numbers are 1, 2 and 3.
type Cluster struct {
	bin  string
	dir  string
	opts Options
	// ports[i] holds node i+1's client, route and monitoring ports.
	ports [3][3]int

	proxy *routeProxy // nil unless Options.Partitionable

	mu    sync.Mutex
	procs [3]*exec.Cmd
	exits [3]chan struct{}
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Binary returns the path of the pinned nats-server binary, building it
// through scripts/cluster.sh on first use (about 2 minutes, then cached).
// NATS_SERVER_BIN overrides it.
func Binary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		if b := os.Getenv("NATS_SERVER_BIN"); b != "" {
			binPath = b
			return
		}
		script, err := findScript()
		if err != nil {
			binErr = err
			return
		}
		out, err := exec.Command(script, "bin").Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				err = fmt.Errorf("%w: %s", err, ee.Stderr)
			}
			binErr = fmt.Errorf("natscluster: building nats-server: %w", err)
			return
		}
		binPath = strings.TrimSpace(string(out))
	})
	if binErr == nil {
		if _, err := os.Stat(binPath); err != nil {
			binErr = fmt.Errorf("natscluster: %w", err)
		}
	}
	if binErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("nats-server for the cluster: %v", binErr)
		}
		t.Skipf("nats-server for the cluster: %v", binErr)
	}
	return binPath
}

// findScript walks up from the working directory to the module root.
func findScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "scripts", "cluster.sh")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("natscluster: scripts/cluster.sh not found above the working directory")
		}
		dir = parent
	}
}

// Start starts a cluster, waits until every node is healthy (JetStream has
// a meta leader), and stops it at the end of the test.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	c := &Cluster{bin: Binary(t), dir: opts.Dir, opts: opts}
	if c.dir == "" {
		c.dir = t.TempDir()
	}
	if c.opts.SyncInterval == "" {
		c.opts.SyncInterval = "always"
	}
	if opts.Partitionable {
		p, err := newRouteProxy()
		if err != nil {
			t.Fatal(err)
		}
		c.proxy = p
		t.Cleanup(p.close)
	}
	t.Cleanup(c.stopAll)
	// A port found free can be taken before the node binds it (tests
	// run in parallel): such a start is tried again on other ports.
	for attempt := 1; ; attempt++ {
		ports := freePorts(t, 9)
		if portsFound != nil {
			portsFound(attempt, ports)
		}
		for i := range c.ports {
			c.ports[i] = [3]int{ports[i], ports[3+i], ports[6+i]}
		}
		if c.proxy != nil {
			var targets [3]string
			for i := range targets {
				targets[i] = fmt.Sprintf("127.0.0.1:%d", c.ports[i][1])
			}
			c.proxy.start(targets)
		}
		for n := 1; n <= 3; n++ {
			c.start(t, n)
		}
		err := c.healthy(t)
		if err == nil {
			return c
		}
		if attempt == 3 || !errors.Is(err, errPortTaken) {
			t.Fatal(err)
		}
		t.Logf("natscluster: %v; starting again on other ports", err)
		c.stopAll()
		for n := 1; n <= 3; n++ {
			if err := os.RemoveAll(filepath.Join(c.dir, fmt.Sprintf("n%d", n))); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// portsFound, when set (by a test), sees the ports of each attempt
// before the nodes start.
var portsFound func(attempt int, ports []int)

// errPortTaken: a node could not bind a port found free a moment before.
var errPortTaken = errors.New("natscluster: a port was taken before the node bound it")

// freePorts returns n distinct loopback ports free a moment ago, taken
// below the ephemeral range when it is known: a port there is not handed
// to some other test's outgoing connection between this check and the
// node's bind.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	low := ephemeralLow()
	var out []int
	for tries := 0; len(out) < n; tries++ {
		addr := "127.0.0.1:0"
		if low > 12000 && tries < 1000 {
			addr = fmt.Sprintf("127.0.0.1:%d", 10000+rand.IntN(low-10000))
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			if addr != "127.0.0.1:0" {
				continue // in use: another
			}
			t.Fatal(err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out
}

// ephemeralLow returns the first port of Linux's ephemeral range, or 0.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	low, _ := strconv.Atoi(f[0])
	return low
}

func (c *Cluster) config(n int) string {
	var routes strings.Builder
	advertise := ""
	for i := range c.ports {
		if c.proxy != nil {
			fmt.Fprintf(&routes, "    nats-route://%s\n", c.proxy.addr(i+1))
		} else {
			fmt.Fprintf(&routes, "    nats-route://127.0.0.1:%d\n", c.ports[i][1])
		}
	}
	if c.proxy != nil {
		advertise = fmt.Sprintf("  advertise: %q\n", c.proxy.addr(n))
	}
	p := c.ports[n-1]
	return fmt.Sprintf(`server_name: n%d
listen: 127.0.0.1:%d
http: 127.0.0.1:%d
jetstream {
  store_dir: %q
  sync_interval: %s
}
cluster {
  name: bucketrelay
  listen: 127.0.0.1:%d
%s  routes: [
%s  ]
}
`, n, p[0], p[2], filepath.Join(c.dir, fmt.Sprintf("n%d", n)), c.opts.SyncInterval, p[1], advertise, routes.String())
}

func (c *Cluster) start(t testing.TB, n int) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.procs[n-1] != nil {
		return
	}
	conf := filepath.Join(c.dir, fmt.Sprintf("n%d.conf", n))
	if err := os.WriteFile(conf, []byte(c.config(n)), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.OpenFile(filepath.Join(c.dir, fmt.Sprintf("n%d.log", n)), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(c.bin, "-c", conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("starting nats-server node %d: %v", n, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	c.procs[n-1], c.exits[n-1] = cmd, done
}

// URL returns node n's client URL.
func (c *Cluster) URL(n int) string { return fmt.Sprintf("nats://127.0.0.1:%d", c.ports[n-1][0]) }

// URLs returns the client URLs of the three nodes.
func (c *Cluster) URLs() []string { return []string{c.URL(1), c.URL(2), c.URL(3)} }

// Dir returns the directory holding the nodes' configs, data and logs.
func (c *Cluster) Dir() string { return c.dir }

// Kill kills node n with SIGKILL and waits for it to exit.
func (c *Cluster) Kill(t testing.TB, n int) { t.Helper(); c.signal(n, true) }

// Stop stops node n with SIGTERM (a clean shutdown) and waits for it.
func (c *Cluster) Stop(t testing.TB, n int) { t.Helper(); c.signal(n, false) }

func (c *Cluster) signal(n int, kill bool) {
	c.mu.Lock()
	cmd, done := c.procs[n-1], c.exits[n-1]
	c.procs[n-1] = nil
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	if kill {
		_ = cmd.Process.Kill()
	} else {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
	}
	<-done
}

// Restart starts node n again (after Kill or Stop) and waits until it is
// healthy.
func (c *Cluster) Restart(t testing.TB, n int) {
	t.Helper()
	c.start(t, n)
	if err := c.waitNode(t, n, time.Now().Add(healthyWithin)); err != nil {
		t.Fatal(err)
	}
}

// Running reports whether node n's process is running.
func (c *Cluster) Running(n int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.procs[n-1] != nil
}

// healthyWithin bounds the wait for nodes to become healthy. A meta leader
// election takes seconds on an idle machine, but CI runs test packages in
// parallel on two cores, each package's cluster slowed by the others and
// by the race detector: 30 s was seen not to be enough there.
const healthyWithin = 2 * time.Minute

// WaitHealthy waits until every running node answers /healthz with 200:
// it serves clients and JetStream has a meta leader.
func (c *Cluster) WaitHealthy(t testing.TB) {
	t.Helper()
	if err := c.healthy(t); err != nil {
		t.Fatal(err)
	}
}

func (c *Cluster) healthy(t testing.TB) error {
	t.Helper()
	deadline := time.Now().Add(healthyWithin)
	for n := 1; n <= 3; n++ {
		if c.Running(n) {
			if err := c.waitNode(t, n, deadline); err != nil {
				return err
			}
		}
	}
	return nil
}

// waitNode waits until node n is healthy, and fails at once, with the end
// of its log, if its process exits meanwhile (errPortTaken if it could not
// bind a port).
func (c *Cluster) waitNode(t testing.TB, n int, deadline time.Time) error {
	t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", c.ports[n-1][2])
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	var last string
	for ctx.Err() == nil {
		// Any node exiting (nats-server exits when it cannot bind a
		// port) can keep this one from ever having a meta leader.
		if m := c.exited(); m != 0 {
			tail := c.logTail(m)
			for _, l := range strings.Split(tail, "\n") {
				if strings.Contains(l, "address already in use") {
					return fmt.Errorf("%w: node %d: %s", errPortTaken, m, l)
				}
			}
			return fmt.Errorf("natscluster: nats-server node %d exited; its log ends:\n%s", m, tail)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				if c.proxy != nil {
					c.proxy.setID(n, c.serverID(t, n))
				}
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("natscluster: nats-server node %d not healthy after %s: %s; its log ends:\n%s", n, time.Since(start).Round(time.Second), last, c.logTail(n))
}

// exited returns a node whose process exited although neither Kill nor
// Stop was asked, or 0.
func (c *Cluster) exited() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, cmd := range c.procs {
		if cmd == nil {
			continue
		}
		select {
		case <-c.exits[i]:
			return i + 1
		default:
		}
	}
	return 0
}

// logTail returns the last lines of node n's log.
func (c *Cluster) logTail(n int) string {
	b, _ := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("n%d.log", n)))
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if !strings.Contains(l, "Healthcheck failed") { // our own polling
			lines = append(lines, l)
		}
	}
	return strings.Join(lines[max(0, len(lines)-15):], "\n")
}

// serverID returns node n's server ID (new at every start) from /varz.
func (c *Cluster) serverID(t testing.TB, n int) string {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/varz", c.ports[n-1][2]))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		ID string `json:"server_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || v.ID == "" {
		t.Fatalf("node %d /varz: no server_id (%v)", n, err)
	}
	return v.ID
}

// Isolate cuts node n off from the other two (a network partition): its
// route connections close and new ones are refused. Clients connected to
// it stay connected. Only for a cluster started Partitionable.
func (c *Cluster) Isolate(t testing.TB, n int) {
	t.Helper()
	if c.proxy == nil {
		t.Fatal("natscluster: Isolate needs Options.Partitionable")
	}
	c.proxy.isolate(n)
}

// Heal lets node n's routes connect again.
func (c *Cluster) Heal(t testing.TB, n int) {
	t.Helper()
	if c.proxy == nil {
		t.Fatal("natscluster: Heal needs Options.Partitionable")
	}
	c.proxy.heal(n)
}

func (c *Cluster) stopAll() {
	var wg sync.WaitGroup
	for n := 1; n <= 3; n++ {
		wg.Add(1)
		go func() { defer wg.Done(); c.signal(n, true) }()
	}
	wg.Wait()
}
