package consumers

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/stan.go"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bucketrelay/bucketrelay/internal/testenv"
)

// waitBodies waits until c has n distinct bodies.
func waitBodies(t *testing.T, c *Collector, n int) {
	t.Helper()
	end := time.Now().Add(20 * time.Second)
	for len(c.Bodies()) < n {
		if time.Now().After(end) {
			t.Fatalf("got %d bodies, want %d", len(c.Bodies()), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCollector(t *testing.T) {
	var c Collector
	for _, b := range []string{"a", "b", "a", "c", "b"} {
		c.Add([]byte(b))
	}
	if got := len(c.All()); got != 5 {
		t.Fatalf("All: got %d bodies, want 5", got)
	}
	if got := fmt.Sprintf("%s", c.Bodies()); got != "[a b c]" {
		t.Fatalf("Bodies: got %s, want [a b c]", got)
	}
	if got := c.Dups(); got != 2 {
		t.Fatalf("Dups: got %d, want 2", got)
	}
	c.Reset()
	if len(c.All()) != 0 || c.Dups() != 0 {
		t.Fatalf("after Reset: got %d bodies and %d dups, want none", len(c.All()), c.Dups())
	}
}

func TestAMQP(t *testing.T) {
	testenv.Require(t, "rabbitmq", "127.0.0.1:5672")
	const url = "amqp://relay:relay@127.0.0.1:5672/"
	ex := fmt.Sprintf("consumers-test-%d", os.Getpid())
	var c Collector
	cons := NewAMQP(t, AMQPConfig{URL: url, Exchange: ex, Queue: ex, DeleteExchange: true}, c.Add)
	ch := amqpChannel(t, url)
	for i := range 3 {
		if err := ch.PublishWithContext(context.Background(), ex, "", false, false, amqp091.Publishing{Body: []byte{byte('0' + i)}}); err != nil {
			t.Fatal(err)
		}
	}
	waitBodies(t, &c, 3)
	if got := cons.Count(); got != 3 {
		t.Fatalf("Count: got %d, want 3", got)
	}
}

func TestMQTTThroughGate(t *testing.T) {
	testenv.Require(t, "mosquitto", "127.0.0.1:1883")
	topic := fmt.Sprintf("consumers/test/%d", os.Getpid())
	var c Collector
	sub := NewMQTT(t, MQTTConfig{Broker: "tcp://127.0.0.1:1883", Topic: topic}, c.Add)
	if sub.WaitSubscribed(100*time.Millisecond) == nil {
		t.Fatal("WaitSubscribed returned a subscription already waited for")
	}
	g := NewGate(t, "127.0.0.1:1883")
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(g.URL()).SetClientID(fmt.Sprintf("consumers-test-pub-%d", os.Getpid())))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect through the gate: %v", tok.Error())
	}
	if tok := pub.Publish(topic, 1, false, "one"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	waitBodies(t, &c, 1)
	g.SetOpen(false)
	end := time.Now().Add(10 * time.Second)
	for pub.IsConnectionOpen() {
		if time.Now().After(end) {
			t.Fatal("the publisher is still connected after the gate closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	pub.Disconnect(0)
	if got := string(c.Bodies()[0]); got != "one" {
		t.Fatalf("got %q, want %q", got, "one")
	}
}

func TestNATSAndJetStream(t *testing.T) {
	addr := testenv.Getenv("RELAY_NATS_ADDR", "127.0.0.1:4222")
	testenv.Require(t, "nats", addr)
	subject := fmt.Sprintf("consumers.test.%d", os.Getpid())
	stream := fmt.Sprintf("CONSUMERS_TEST_%d", os.Getpid())
	nc, err := natsgo.Connect("nats://" + addr)
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
	NewStream(t, addr, jetstream.StreamConfig{Name: stream, Subjects: []string{subject}, Storage: jetstream.FileStorage})
	var core, jsc Collector
	NewNATS(t, addr, subject, core.Add)
	if _, err := js.Publish(ctx, subject, []byte("before")); err != nil {
		t.Fatal(err)
	}
	NewJetStream(t, addr, stream, jetstream.OrderedConsumerConfig{}, jsc.Add)
	if _, err := js.Publish(ctx, subject, []byte("after")); err != nil {
		t.Fatal(err)
	}
	waitBodies(t, &core, 2)
	waitBodies(t, &jsc, 2)
	if got := fmt.Sprintf("%s", jsc.Bodies()); got != "[before after]" {
		t.Fatalf("JetStream: got %s, want [before after]", got)
	}
}

func TestStreaming(t *testing.T) {
	srv := NewStanServer(t, "consumers-test")
	pub, err := stan.Connect(srv.Cluster, "pub", stan.NatsURL("nats://"+srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if err := pub.Publish("s", []byte("one")); err != nil {
		t.Fatal(err)
	}
	var c Collector
	NewStreaming(t, srv.Addr(), srv.Cluster, "sub", "s", c.Add, stan.DeliverAllAvailable())
	waitBodies(t, &c, 1)
	// What the server acknowledged survives a restart.
	pub.Close()
	srv.Stop()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	var again Collector
	NewStreaming(t, srv.Addr(), srv.Cluster, "sub2", "s", again.Add, stan.DeliverAllAvailable())
	waitBodies(t, &again, 1)
}

func TestKafka(t *testing.T) {
	b := NewKafkaBroker(t, []string{"t"})
	var c Collector
	keys := make(chan string, 10)
	NewKafka(t, b.Addr, "t", func(k, v []byte) { keys <- string(k); c.Add(v) })
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Key: []byte("k"), Value: []byte("v1")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	waitBodies(t, &c, 1)
	// The consumer keeps reading across a broker restart.
	b.Stop()
	TB(b.Start)(t)
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Key: []byte("k"), Value: []byte("v2")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	waitBodies(t, &c, 2)
	if got := <-keys; got != "k" {
		t.Fatalf("key: got %q, want %q", got, "k")
	}
}
