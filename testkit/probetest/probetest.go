// Package probetest checks an adapter's delivery.Prober the way the relay
// uses it: the target, added to a delivery engine over a fresh log with no
// event, must be reported down with the probe's error, and the error must
// not carry the target's secrets.
package probetest

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/testkit/syncbuf"
	"github.com/bucketrelay/bucketrelay/wal"
)

// ID is the ARN the target is added under.
const ID = "arn:minio:sqs::probe:target"

// Down adds tg (a delivery.Prober) to an engine over an empty log, runs
// it and waits until the target's state is down with a last error that
// contains want; no event is ever logged. It fails the test if the error
// contains one of secrets, and returns the error's text. tg is closed when
// the test ends.
func Down(t testing.TB, tg delivery.Target, want string, secrets ...string) string {
	t.Helper()
	if _, ok := tg.(delivery.Prober); !ok {
		t.Fatalf("%T does not implement delivery.Prober", tg)
	}
	l, err := wal.Open(filepath.Join(t.TempDir(), "wal.db"), wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	eng := delivery.New(l, delivery.Options{MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, ShutdownGrace: time.Second})
	if err := eng.Add(delivery.Spec{ID: ID, Target: tg}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { eng.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		tg.Close()
		l.Close()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, s := range eng.Stats() {
			if s.ID != ID || s.State != delivery.StateDown {
				continue
			}
			for _, sec := range secrets {
				if sec != "" && strings.Contains(s.LastError, sec) {
					t.Fatalf("the probe's error shows a secret: %s", s.LastError)
				}
			}
			if !strings.Contains(s.LastError, want) {
				t.Fatalf("probe error: got %q, want it to contain %q", s.LastError, want)
			}
			if s.Pending != 0 || s.Delivered != 0 {
				t.Fatalf("got %d pending, %d delivered; want no event at all", s.Pending, s.Delivered)
			}
			return s.LastError
		}
		if time.Now().After(deadline) {
			t.Fatalf("the target was not reported down within 30s: %+v", eng.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Up probes tg once, as the relay does before a target's first event, and
// fails t unless the probe succeeds; what names the case in the message.
func Up(t testing.TB, tg delivery.Target, what string) {
	t.Helper()
	p, ok := tg.(delivery.Prober)
	if !ok {
		t.Fatalf("%T does not implement delivery.Prober", tg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Probe(ctx); err != nil {
		t.Fatalf("probe %s: %v", what, err)
	}
}

// FreeAddr returns a loopback address no one listens on now, for a server
// the test starts.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Serve starts cmd, a server of the test's own (one that asks for a
// password, say), kills it when the test ends, and waits up to 30 s until
// addr accepts connections; the server's output is in the failure
// message.
func Serve(t testing.TB, cmd *exec.Cmd, addr string) {
	t.Helper()
	var out syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s on %s did not start: %v\n%s", filepath.Base(cmd.Path), addr, err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
