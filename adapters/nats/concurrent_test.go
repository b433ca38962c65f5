package nats

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/internal/testenv"
	"github.com/bucketrelay/bucketrelay/testkit/consumers"
)

// TestConcurrentSends: Send is safe for concurrent use (kit.Kind.InFlight):
// JetStream publishes from batches in flight in lanes arrive whole and in
// order per key.
func TestConcurrentSends(t *testing.T) {
	testenv.Require(t, "nats", systemAddr)
	subject := testSubject("concurrent")
	stream := fmt.Sprintf("RELAYTEST_CONC_%d", os.Getpid())
	nc, err := natsgo.Connect("nats://" + systemAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{subject}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = js.DeleteStream(ctx, stream)
	}()
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		t.Fatal(err)
	}
	var c consumers.Collector
	cc, err := cons.Consume(func(m jetstream.Msg) { c.Add(m.Data()) })
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Stop()
	targettest.RunConcurrent(t, targettest.Harness{
		Features: targettest.Features{Message: true},
		New: func(t testing.TB) delivery.Target {
			return newTarget(t, Config{Enable: true, Address: systemAddr, Subject: subject, JetStream: JetStreamConfig{Enable: true}})
		},
		Received: c.Received,
		Timeout:  45 * time.Second,
	})
}

// TestConcurrentSendsStreaming: the same for NATS Streaming.
func TestConcurrentSendsStreaming(t *testing.T) {
	s := newStanServer(t, "concurrent")
	targettest.RunConcurrent(t, targettest.Harness{
		Features: targettest.Features{Message: true},
		New: func(t testing.TB) delivery.Target {
			return newTarget(t, Config{Enable: true, Address: s.addr(), Subject: "concurrent",
				Streaming: StreamingConfig{Enable: true, ClusterID: testCluster, ClientID: "minio-client", Async: true, MaxPubAcksInflight: 10}})
		},
		Received: s.c.Received,
		Timeout:  45 * time.Second,
	})
}
