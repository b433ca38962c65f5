package natscluster

import (
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestKillRestart checks the Go helper: three healthy nodes, one killed
// and restarted.
func TestKillRestart(t *testing.T) {
	c := Start(t, Options{})
	c.Kill(t, 2)
	if c.Running(2) {
		t.Fatal("node 2 running after Kill")
	}
	if conn, err := net.Dial("tcp", strings.TrimPrefix(c.URL(2), "nats://")); err == nil {
		conn.Close()
		t.Fatal("node 2 still accepts connections after Kill")
	}
	c.Restart(t, 2)
	if !c.Running(2) {
		t.Fatal("node 2 not running after Restart")
	}
	c.WaitHealthy(t)
}

// TestScript drives scripts/cluster.sh as an operator would, on free
// ports and a temporary directory.
func TestScript(t *testing.T) {
	Binary(t) // builds (or fails under CI) before the script needs it
	script, err := findScript()
	if err != nil {
		t.Fatal(err)
	}
	bases := consecutiveFree(t, 3)
	env := append(os.Environ(),
		"CLUSTER_DIR="+t.TempDir(),
		"CLUSTER_CLIENT_PORT="+strconv.Itoa(bases[0]),
		"CLUSTER_ROUTE_PORT="+strconv.Itoa(bases[1]),
		"CLUSTER_HTTP_PORT="+strconv.Itoa(bases[2]),
	)
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(script, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("cluster.sh %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	t.Cleanup(func() { run("stop") })
	run("start")
	if st := run("status"); strings.Count(st, "running") != 3 || strings.Count(st, `"ok"`) != 3 {
		t.Fatalf("status after start:\n%s", st)
	}
	run("kill", "3")
	if st := run("status"); !strings.Contains(st, "n3 stopped") {
		t.Fatalf("status after kill 3:\n%s", st)
	}
	run("restart", "3")
	if st := run("status"); strings.Count(st, `"ok"`) != 3 {
		t.Fatalf("status after restart 3:\n%s", st)
	}
	run("stop")
	if st := run("status"); strings.Count(st, "stopped") != 3 {
		t.Fatalf("status after stop:\n%s", st)
	}
}

// consecutiveFree returns n base ports, each the first of three free
// consecutive ports, the ranges apart: the script numbers nodes from a
// base.
func consecutiveFree(t testing.TB, n int) []int {
	t.Helper()
	var out []int
	for base := 21000 + rand.IntN(20000); len(out) < n && base < 60000; base += 3 {
		free := true
		for i := range 3 {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base+i))
			if err != nil {
				free = false
				break
			}
			l.Close()
		}
		if free {
			out = append(out, base)
		}
	}
	if len(out) < n {
		t.Fatal("no free consecutive ports")
	}
	return out
}

// TestStartAgainOnTakenPort: a port found free but taken before its node
// binds it (another test's server, in parallel) makes Start try again on
// other ports instead of waiting for a node that exited.
func TestStartAgainOnTakenPort(t *testing.T) {
	var attempts int
	portsFound = func(attempt int, ports []int) {
		attempts = attempt
		if attempt > 1 {
			return
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(ports[4])) // node 2's route port
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
	}
	t.Cleanup(func() { portsFound = nil })
	start := time.Now()
	c := Start(t, Options{})
	if attempts != 2 {
		t.Fatalf("Start made %d attempts, want 2 (the first on a taken port)", attempts)
	}
	if c.ports[1][1] == 0 {
		t.Fatal("no route port for node 2")
	}
	t.Logf("started after a taken port in %s", time.Since(start).Round(time.Millisecond))
}
