// Package tlsserver starts, for tests, second instances of the real servers
// the targets deliver to, with TLS on and the certificates of a
// tlsca.Set: RabbitMQ, Mosquitto, NATS (with JetStream, nkeys and JWT
// credentials), Redis, PostgreSQL and MariaDB. Each runs on free loopback
// ports with its data in a temporary directory, beside (never instead of)
// the shared servers of scripts/services.sh, and is stopped when the test
// ends.
//
// A missing server binary skips the test, or fails it when CI=true.
package tlsserver

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/internal/testenv"
)

// StartTimeout bounds a server's start, generous for a loaded 2-core
// machine.
const StartTimeout = 90 * time.Second

// binary returns the path of the first of names found in PATH or in dirs;
// without one it skips t, or fails it under CI.
func binary(t testing.TB, kind string, names []string, dirs ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
		for _, d := range dirs {
			matches, _ := filepath.Glob(filepath.Join(d, n))
			if len(matches) > 0 {
				return matches[len(matches)-1]
			}
		}
	}
	msg := fmt.Sprintf("tlsserver: %s: none of %s installed (scripts/services.sh install)", kind, strings.Join(names, ", "))
	if testenv.CI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// freePorts returns n distinct free loopback ports.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("tlsserver: %v", err)
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// proc is a server process started by the test, in its own process group.
type proc struct {
	kind string
	sig  syscall.Signal // the stop signal; 0 means SIGTERM
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// startProc starts cmd with its output in logFile and stops it (SIGTERM, or
// p.sig, to its process group, then SIGKILL after 20 s) when the test ends.
func startProc(t testing.TB, kind, logFile string, cmd *exec.Cmd) *proc {
	t.Helper()
	f, err := os.Create(logFile)
	if err != nil {
		t.Fatalf("tlsserver: %v", err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("tlsserver: starting %s: %v", kind, err)
	}
	p := &proc{kind: kind, cmd: cmd, log: logFile, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop() })
	return p
}

// stop ends the process group and waits for the leader.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	pgid := p.cmd.Process.Pid
	sig := p.sig
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	_ = syscall.Kill(-pgid, sig)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
}

// tail returns the end of the process's log, for failure messages.
func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(bytes.TrimSpace(b))
}

// waitPorts waits until every addr accepts TCP connections, failing t with
// the log's tail when the process exits or StartTimeout passes.
func (p *proc) waitPorts(t testing.TB, addrs ...string) {
	t.Helper()
	deadline := time.Now().Add(StartTimeout)
	for _, addr := range addrs {
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-p.done:
				t.Fatalf("tlsserver: %s exited (%v) before listening on %s:\n%s", p.kind, p.err, addr, p.tail())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("tlsserver: %s did not listen on %s within %v:\n%s", p.kind, addr, StartTimeout, p.tail())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// run runs a short command, failing t with its output on error.
func run(t testing.TB, cmd *exec.Cmd) string {
	t.Helper()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("tlsserver: %s: %v:\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	return string(out)
}

// copyFile copies src to dst with mode 0600.
func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err == nil {
		err = os.WriteFile(dst, b, 0o600)
	}
	if err != nil {
		t.Fatalf("tlsserver: %v", err)
	}
}

func writeFile(t testing.TB, name, data string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(data), 0o600); err != nil {
		t.Fatalf("tlsserver: %v", err)
	}
}

func addr(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }
