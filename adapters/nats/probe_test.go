package nats

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bucketrelay/bucketrelay/internal/testenv"
	"github.com/bucketrelay/bucketrelay/testkit/probetest"
)

// authServer starts a nats-server of the test's own on a free loopback
// port that requires user "relay" with password pass.
func authServer(t *testing.T, pass string) string {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		testenv.Missing(t, "nats-server", err)
	}
	addr := probetest.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	probetest.Serve(t, exec.Command(bin, "-a", "127.0.0.1", "-p", port, "--user", "relay", "--pass", pass), addr)
	return addr
}

func probeTarget(t *testing.T, cfg Config) *Target {
	t.Helper()
	cfg.Enable = true
	tg, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// TestProbe: the probe connects to a real server without publishing; a
// wrong password, a port nothing listens on, or (JetStream) a subject no
// stream stores show the target down before any event, and the error
// never shows the password.
func TestProbe(t *testing.T) {
	addr := authServer(t, "right-pass")
	probetest.Up(t, probeTarget(t, Config{Address: addr, Subject: "probe", Username: "relay", Password: "right-pass"}), "with the right password")
	probetest.Down(t, probeTarget(t, Config{Address: addr, Subject: "probe", Username: "relay", Password: "wrong-s3cret"}), "Authorization Violation", "wrong-s3cret")
	probetest.Down(t, probeTarget(t, Config{Address: "127.0.0.1:1", Subject: "probe"}), "no servers available")

	testenv.Require(t, "nats", systemAddr)
	subject := testSubject("probe")
	probetest.Down(t, probeTarget(t, Config{Address: systemAddr, Subject: subject, JetStream: JetStreamConfig{Enable: true}}), "no stream stores subject")
	nc, err := natsgo.Connect("nats://" + systemAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream := fmt.Sprintf("RELAYTEST_PROBE_%d", os.Getpid())
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{subject}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	defer js.DeleteStream(context.Background(), stream)
	probetest.Up(t, probeTarget(t, Config{Address: systemAddr, Subject: subject, JetStream: JetStreamConfig{Enable: true}}), "of JetStream with a stream for the subject")
}
