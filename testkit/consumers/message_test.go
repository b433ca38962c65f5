package consumers

import (
	"context"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bucketrelay/bucketrelay/internal/testenv"
)

// waitMessage waits for c's first message and returns it.
func waitMessage(t *testing.T, c *Collector) (body string, headers map[string]string) {
	t.Helper()
	end := time.Now().Add(20 * time.Second)
	for len(c.Messages(t)) == 0 {
		if time.Now().After(end) {
			t.Fatal("no message arrived")
		}
		time.Sleep(20 * time.Millisecond)
	}
	m := c.Messages(t)[0]
	return string(m.Body), m.Headers
}

func TestCollectorMessages(t *testing.T) {
	var c Collector
	body := []byte("a")
	c.AddMessage(Message{Key: []byte("k1"), Body: body, Headers: map[string]string{"h": "1"}})
	body[0] = 'x' // the sink's slice is reused by the consumer: the collector copied it
	c.AddMessage(Message{Key: []byte("k2"), Body: []byte("a"), Headers: map[string]string{"h": "2"}})
	c.AddMessage(Message{Body: []byte("b")})
	all, distinct := c.Messages(t), c.DistinctMessages(t)
	if len(all) != 3 || len(distinct) != 2 || string(all[0].Body) != "a" || distinct[0].Headers["h"] != "1" || string(distinct[1].Body) != "b" {
		t.Fatalf("got all %v, distinct %v; want 3 messages, 2 distinct (a with h=1, b)", all, distinct)
	}
	if got := fmt.Sprint(c.Keys()); got != "[k1 k2 ]" {
		t.Fatalf("Keys: got %s, want [k1 k2 ]", got)
	}
	if c.Dups() != 1 || len(c.Bodies()) != 2 || len(c.All()) != 3 {
		t.Fatalf("the body views: got %d dups, %d bodies, %d in all; want 1, 2, 3", c.Dups(), len(c.Bodies()), len(c.All()))
	}
	c.Reset()
	if len(c.Messages(t)) != 0 || len(c.DistinctMessages(t)) != 0 || len(c.Keys()) != 0 {
		t.Fatal("after Reset: messages remain")
	}
}

// TestAMQPMessages: the headers are the application properties, and
// content-type and message-id.
func TestAMQPMessages(t *testing.T) {
	testenv.Require(t, "rabbitmq", "127.0.0.1:5672")
	const url = "amqp://relay:relay@127.0.0.1:5672/"
	ex := fmt.Sprintf("consumers-test-msg-%d", os.Getpid())
	var c Collector
	NewAMQPMessages(t, AMQPConfig{URL: url, Exchange: ex, Queue: ex, DeleteExchange: true}, c.AddMessage)
	ch := amqpChannel(t, url)
	if err := ch.PublishWithContext(context.Background(), ex, "", false, false, amqp091.Publishing{
		Body: []byte("b"), ContentType: "application/json", MessageId: "id-1", Headers: amqp091.Table{"ce_id": "id-1", "n": int32(7)},
	}); err != nil {
		t.Fatal(err)
	}
	body, h := waitMessage(t, &c)
	if body != "b" || h["content-type"] != "application/json" || h["message-id"] != "id-1" || h["ce_id"] != "id-1" || h["n"] != "7" {
		t.Fatalf("got %q with %v", body, h)
	}
}

// TestKafkaMessages: the record's key, value and headers.
func TestKafkaMessages(t *testing.T) {
	b := NewKafkaBroker(t, []string{"t"})
	var c Collector
	NewKafkaMessages(t, b.Addr, "t", c.AddMessage)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := &kgo.Record{Topic: "t", Key: []byte("k"), Value: []byte("v"), Headers: []kgo.RecordHeader{{Key: "ce_id", Value: []byte("id-1")}}}
	if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
		t.Fatal(err)
	}
	body, h := waitMessage(t, &c)
	if body != "v" || h["ce_id"] != "id-1" || fmt.Sprint(c.Keys()) != "[k]" {
		t.Fatalf("got %q with %v, keys %v", body, h, c.Keys())
	}
}

// TestMQTT5Messages: the headers are the user properties and the content
// type.
func TestMQTT5Messages(t *testing.T) {
	testenv.Require(t, "mosquitto", "127.0.0.1:1883")
	topic := fmt.Sprintf("consumers/test5/%d", os.Getpid())
	var c Collector
	NewMQTT5(t, "127.0.0.1:1883", topic, c.AddMessage)
	conn, err := net.Dial("tcp", "127.0.0.1:1883")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	pub := paho5.NewClient(paho5.ClientConfig{Conn: conn})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := pub.Connect(ctx, &paho5.Connect{ClientID: fmt.Sprintf("consumers-test-pub5-%d", os.Getpid()), KeepAlive: 30, CleanStart: true}); err != nil {
		t.Fatal(err)
	}
	defer pub.Disconnect(&paho5.Disconnect{})
	if _, err := pub.Publish(ctx, &paho5.Publish{Topic: topic, QoS: 1, Payload: []byte("p"), Properties: &paho5.PublishProperties{
		ContentType: "application/json", User: paho5.UserProperties{{Key: "event-id", Value: "id-1"}},
	}}); err != nil {
		t.Fatal(err)
	}
	body, h := waitMessage(t, &c)
	if body != "p" || h["content-type"] != "application/json" || h["event-id"] != "id-1" {
		t.Fatalf("got %q with %v", body, h)
	}
}

// amqpChannel opens a channel to publish on, closed when the test ends.
func amqpChannel(t *testing.T, url string) *amqp091.Channel {
	t.Helper()
	conn, err := amqp091.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return ch
}
