package kafka

import (
	"testing"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/bucketrelay/bucketrelay/testkit/probetest"
)

// TestProbe: the probe asks a broker speaking the Kafka protocol for the
// topic's metadata without producing; a wrong SASL password, a port
// nothing listens on, or a missing topic show the target down before any
// event, and the error never shows the password.
func TestProbe(t *testing.T) {
	b := NewBroker(t, "bucketevents", false, kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "user256", "pass-256"))
	sasl := SASLConfig{Enable: true, Username: "user256", Password: "pass-256", Mechanism: "sha256"}
	probetest.Up(t, newTarget(t, Config{Brokers: []string{b.Addr}, Topic: "bucketevents", SASL: sasl}), "with the right password")
	wrong := sasl
	wrong.Password = "wrong-s3cret"
	probetest.Down(t, newTarget(t, Config{Brokers: []string{b.Addr}, Topic: "bucketevents", SASL: wrong}), "kafka: probing", "wrong-s3cret")
	probetest.Down(t, newTarget(t, Config{Brokers: []string{b.Addr}, Topic: "no-such-topic", SASL: sasl}), "no-such-topic")
	probetest.Down(t, newTarget(t, Config{Brokers: []string{"127.0.0.1:1"}, Topic: "bucketevents"}), "kafka: probing")
	c, err := sarama.NewClient([]string{b.Addr}, newTarget(t, Config{Brokers: []string{b.Addr}, Topic: "bucketevents", SASL: sasl}).sc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.RefreshMetadata(); err != nil {
		t.Fatal(err)
	}
	if topics, err := c.Topics(); err != nil || len(topics) != 1 {
		t.Fatalf("topics after the probes: got %v (%v), want bucketevents alone (a probe never creates one)", topics, err)
	}
}
