package mqtt

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/internal/testenv"
	"github.com/bucketrelay/bucketrelay/testkit/probetest"
)

// authBroker starts a mosquitto of the test's own on a free loopback port
// that requires user "relay" with password pass, and returns its address.
func authBroker(t *testing.T, pass string) string {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		testenv.Missing(t, "mosquitto", err)
	}
	dir := t.TempDir()
	pw := filepath.Join(dir, "passwd")
	if out, err := exec.Command("mosquitto_passwd", "-b", "-c", pw, "relay", pass).CombinedOutput(); err != nil {
		testenv.Missing(t, "mosquitto_passwd", fmt.Errorf("%v: %s", err, out))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	conf := filepath.Join(dir, "mosquitto.conf")
	// user: run as the test's user (mosquitto started as root would switch
	// to "mosquitto", which cannot read the test's directory).
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(conf, []byte(fmt.Sprintf("user %s\nlistener %s 127.0.0.1\nallow_anonymous false\npassword_file %s\npersistence false\n", me.Username, port, pw)), 0o600)
	cmd := exec.Command(bin, "-c", conf)
	var out lockedBuf
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto on %s did not start: %v\n%s", addr, err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lockedBuf collects a child's output.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestProbe: the probe connects to the real broker without publishing; a
// wrong password, or a port nothing listens on, shows the target down
// before any event, and the error never shows the password.
func TestProbe(t *testing.T) {
	testenv.Require(t, "mosquitto", brokerAddr)
	good, err := New(Config{Enable: true, Broker: brokerURL, Topic: "probe", QoS: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := good.Probe(context.Background()); err != nil {
		t.Fatalf("probe of the shared broker: %v", err)
	}
	good.Close()

	addr := authBroker(t, "right-pass")
	authed, err := New(Config{Enable: true, Broker: "tcp://" + addr, Topic: "probe", QoS: 1, Username: "relay", Password: "right-pass"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := authed.Probe(context.Background()); err != nil {
		t.Fatalf("probe with the right password: %v", err)
	}
	authed.Close()
	bad, err := New(Config{Enable: true, Broker: "tcp://" + addr, Topic: "probe", QoS: 1, Username: "relay", Password: "wrong-s3cret"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	probetest.Down(t, bad, "not Authorized", "wrong-s3cret")
	noPort, err := New(Config{Enable: true, Broker: "tcp://127.0.0.1:1", Topic: "probe", QoS: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	probetest.Down(t, noPort, "connection refused")
}
