package mqtt

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"testing"

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
	addr := probetest.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	conf := filepath.Join(dir, "mosquitto.conf")
	// user: run as the test's user (mosquitto started as root would switch
	// to "mosquitto", which cannot read the test's directory).
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(conf, []byte(fmt.Sprintf("user %s\nlistener %s 127.0.0.1\nallow_anonymous false\npassword_file %s\npersistence false\n", me.Username, port, pw)), 0o600)
	probetest.Serve(t, exec.Command(bin, "-c", conf), addr)
	return addr
}

// TestProbe: the probe connects to the real broker without publishing; a
// wrong password, or a port nothing listens on, shows the target down
// before any event, and the error never shows the password.
func TestProbe(t *testing.T) {
	testenv.Require(t, "mosquitto", brokerAddr)
	probetest.Up(t, newTarget(t, Config{Enable: true, Broker: brokerURL, Topic: "probe", QoS: 1}), "of the shared broker")
	addr := authBroker(t, "right-pass")
	probetest.Up(t, newTarget(t, Config{Enable: true, Broker: "tcp://" + addr, Topic: "probe", QoS: 1, Username: "relay", Password: "right-pass"}), "with the right password")
	probetest.Down(t, newTarget(t, Config{Enable: true, Broker: "tcp://" + addr, Topic: "probe", QoS: 1, Username: "relay", Password: "wrong-s3cret"}), "not Authorized", "wrong-s3cret")
	probetest.Down(t, newTarget(t, Config{Enable: true, Broker: "tcp://127.0.0.1:1", Topic: "probe", QoS: 1}), "connection refused")
}
