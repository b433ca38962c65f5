package amqp

import (
	"context"
	"testing"

	"github.com/bucketrelay/bucketrelay/internal/testenv"
	"github.com/bucketrelay/bucketrelay/testkit/probetest"
)

// TestProbe: the probe logs in to the real broker without publishing; a
// wrong password, or a port nothing listens on, shows the target down
// before any event, and the error never shows the password.
func TestProbe(t *testing.T) {
	testenv.Require(t, "rabbitmq", brokerAddr)
	probetest.Up(t, newTarget(t, Config{Enable: true, URL: brokerURL, Exchange: "probe-missing-ok", ExchangeType: "fanout"}), "with the right credentials")
	probetest.Down(t, newTarget(t, Config{Enable: true, URL: "amqp://relay:wrong-s3cret@127.0.0.1:5672/"}), "username or password not allowed", "wrong-s3cret")
	probetest.Down(t, newTarget(t, Config{Enable: true, URL: "amqp://relay:relay@127.0.0.1:1/"}), "connection refused", "relay@")
	missing, err := New(Config{Enable: true, URL: brokerURL, Exchange: "no-such-exchange-probe"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := missing.Probe(context.Background()); err == nil {
		t.Fatal("probe of a missing exchange to be used passively: got nil, want an error")
	}
}
