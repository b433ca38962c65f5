package amqp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/internal/testenv"
	"github.com/bucketrelay/bucketrelay/testkit/consumers"
)

const (
	brokerAddr = "127.0.0.1:5672"
	brokerURL  = "amqp://relay:relay@127.0.0.1:5672/"
)

// NewConsumer consumes a fresh durable queue bound to the durable fanout
// exchange, as the seed's pika example does but durably, so that messages
// the broker confirmed survive the restarts the tests make, until the test
// ends. The collector's Bodies and DistinctMessages count each body once:
// the suite counts every body it gets toward the events it waits for, so a
// redelivery would end its wait before the last events arrived.
func NewConsumer(t testing.TB, url, exchange, queue string) *consumers.Collector {
	t.Helper()
	c := new(consumers.Collector)
	consumers.NewAMQPMessages(t, consumers.AMQPConfig{URL: url, Exchange: exchange, Queue: queue}, c.AddMessage)
	return c
}

// testConfig is the seed's example configuration with the settings that
// make acknowledged messages survive a broker restart.
func testConfig(exchange string) Config {
	return Config{
		Enable: true, URL: brokerURL, Exchange: exchange, RoutingKey: "bucketlogs", ExchangeType: "fanout",
		DeliveryMode: 2, Durable: true, Mandatory: true,
	}
}

func newTarget(t testing.TB, cfg Config) *Target {
	t.Helper()
	tg, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg
}

func TestConformance(t *testing.T) {
	testenv.Require(t, "rabbitmq", brokerAddr)
	c := NewConsumer(t, brokerURL, "bucketevents", fmt.Sprintf("bucketrelay-test-%d", os.Getpid()))
	t.Cleanup(func() { t.Logf("%d duplicates (at-least-once delivery)", c.Dups()) })
	targettest.Run(t, targettest.Harness{
		Features: targettest.Features{Message: true},
		New:      func(t testing.TB) delivery.Target { return newTarget(t, testConfig("bucketevents")) },
		Received: func(testing.TB) [][]byte { return c.Bodies() },
		Stop:     func(t testing.TB) { testenv.Services(t, "stop", "rabbitmq") },
		Start:    func(t testing.TB) { testenv.Services(t, "start", "rabbitmq") },
	})
}

func items(bucket string, n int) []delivery.Item {
	out := make([]delivery.Item, n)
	for i := range out {
		r := targettest.Record(bucket, fmt.Sprintf("k%d.jpg", i), event.ObjectCreatedPut, i)
		e := targettest.Entry(r, "x")
		out[i] = delivery.Item{Seq: uint64(i + 1), Key: e.Key, EventName: event.Name(e.Name), EventTime: e.EventTime, Record: e.Data}
	}
	return out
}

// An exchange with no queue bound returns mandatory messages: they must be
// retried, not counted as delivered, and go through once a queue is bound.
func TestReturnedMessageIsRetried(t *testing.T) {
	testenv.Require(t, "rabbitmq", brokerAddr)
	ex := fmt.Sprintf("bucketrelay-unbound-%d", os.Getpid())
	cfg := testConfig(ex)
	cfg.Durable, cfg.AutoDeleted = false, true
	tg := newTarget(t, cfg)
	its := items("returned", 5)
	err := tg.Send(context.Background(), its)
	if err == nil {
		t.Fatal("Send to an exchange without queues succeeded")
	}
	if delivery.IsPermanent(err) {
		t.Fatalf("Send: got permanent error %v, want retryable", err)
	}
	if !strings.Contains(err.Error(), "returned") {
		t.Fatalf("Send: got %v, want a returned-message error", err)
	}
	// Bind a queue; the retry succeeds.
	conn, err := amqp091.Dial(brokerURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, _ := conn.Channel()
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(q.Name, "", ex, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := tg.Send(context.Background(), its); err != nil {
		t.Fatalf("Send after binding a queue: %v", err)
	}
	q, err = ch.QueueDeclarePassive(q.Name, false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if q.Messages != 5 {
		t.Fatalf("queue holds %d messages, want 5", q.Messages)
	}
	d, ok, err := ch.Get(q.Name, true)
	if err != nil || !ok {
		t.Fatalf("Get: %v %v", ok, err)
	}
	if d.ContentType != ContentType || d.DeliveryMode != 2 || d.MessageId != "1" {
		t.Fatalf("got content type %q delivery mode %d message-id %q, want %q 2 \"1\"", d.ContentType, d.DeliveryMode, d.MessageId, ContentType)
	}
	if !bytes.Equal(d.Body, its[0].Message()) {
		t.Fatalf("got body %s, want %s", d.Body, its[0].Message())
	}
}

// Publishing to an exchange that was deleted makes the broker close the
// channel; the send fails (retryable) and the next one reconnects and
// declares the exchange again.
func TestReconnectsAfterChannelClosed(t *testing.T) {
	testenv.Require(t, "rabbitmq", brokerAddr)
	ex := fmt.Sprintf("bucketrelay-redeclare-%d", os.Getpid())
	cfg := testConfig(ex)
	cfg.Mandatory, cfg.Durable = false, false
	tg := newTarget(t, cfg)
	if err := tg.Send(context.Background(), items("redeclare", 3)); err != nil {
		t.Fatal(err)
	}
	first := tg.sess.conn
	conn, err := amqp091.Dial(brokerURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, _ := conn.Channel()
	if err := ch.ExchangeDelete(ex, false, false); err != nil {
		t.Fatal(err)
	}
	// Publishing to a missing exchange makes the broker close the channel.
	err = tg.Send(context.Background(), items("redeclare", 3))
	if err == nil {
		t.Fatal("Send to a deleted exchange succeeded")
	}
	if err := tg.Send(context.Background(), items("redeclare", 3)); err != nil {
		t.Fatalf("Send after reconnecting: %v", err)
	}
	if tg.sess.conn == first {
		t.Fatal("target kept the failed connection")
	}
	_ = ch.ExchangeDelete(ex, false, false)
}

// A queue that rejects publishes beyond its length makes the broker nack
// them: those items, and only those, fail (retryable) in a BatchError.
func TestNackedItemsInBatchError(t *testing.T) {
	testenv.Require(t, "rabbitmq", brokerAddr)
	ex := fmt.Sprintf("bucketrelay-nack-%d", os.Getpid())
	cfg := testConfig(ex)
	cfg.Durable, cfg.AutoDeleted = false, true
	conn, err := amqp091.Dial(brokerURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, _ := conn.Channel()
	if err := ch.ExchangeDeclare(ex, "fanout", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, amqp091.Table{"x-max-length": int32(3), "x-overflow": "reject-publish"})
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(q.Name, "", ex, false, nil); err != nil {
		t.Fatal(err)
	}
	tg := newTarget(t, cfg)
	err = tg.Send(context.Background(), items("nack", 5))
	var be *delivery.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("Send: got %v, want a BatchError", err)
	}
	var idx []int
	for _, f := range be.Failed {
		if delivery.IsPermanent(f.Err) {
			t.Errorf("item %d: got permanent error %v, want retryable", f.Index, f.Err)
		}
		idx = append(idx, f.Index)
	}
	if fmt.Sprint(idx) != "[3 4]" {
		t.Fatalf("failed items %v, want [3 4] (%v)", idx, err)
	}
	// The channel is still good: after the consumer makes room, the retry
	// of the failed items goes through on the same connection.
	first := tg.sess.conn
	if _, err := ch.QueuePurge(q.Name, false); err != nil {
		t.Fatal(err)
	}
	if err := tg.Send(context.Background(), items("nack", 5)[3:]); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if tg.sess.conn != first {
		t.Fatal("a nack dropped the connection, want it kept")
	}
}

// An empty exchangeType declares the exchange passively: it must exist.
func TestPassiveDeclare(t *testing.T) {
	testenv.Require(t, "rabbitmq", brokerAddr)
	tg := newTarget(t, Config{Enable: true, URL: brokerURL, Exchange: "amq.fanout"})
	if err := tg.Send(context.Background(), items("passive", 2)); err != nil {
		t.Fatalf("Send to the existing amq.fanout: %v", err)
	}
	tg = newTarget(t, Config{Enable: true, URL: brokerURL, Exchange: fmt.Sprintf("bucketrelay-missing-%d", os.Getpid())})
	err := tg.Send(context.Background(), items("passive", 2))
	if err == nil || delivery.IsPermanent(err) || !strings.Contains(err.Error(), "NOT_FOUND") {
		t.Fatalf("Send to a missing exchange: got %v, want a retryable NOT_FOUND error", err)
	}
}

func TestPublisherConfirmsOff(t *testing.T) {
	testenv.Require(t, "rabbitmq", brokerAddr)
	ex := fmt.Sprintf("bucketrelay-noconfirm-%d", os.Getpid())
	c := NewConsumer(t, brokerURL, ex, ex)
	cfg := testConfig(ex)
	off := false
	cfg.PublisherConfirms = &off
	tg := newTarget(t, cfg)
	if err := tg.Send(context.Background(), items("noconfirm", 50)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(c.Bodies()) < 50 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(c.Bodies()); n != 50 {
		t.Fatalf("consumer got %d messages, want 50", n)
	}
	conn, _ := amqp091.Dial(brokerURL)
	if conn != nil {
		if ch, err := conn.Channel(); err == nil {
			_ = ch.ExchangeDelete(ex, false, false)
		}
		conn.Close()
	}
}

// Credentials come from RELAY_AMQP_USERNAME/PASSWORD when the URL has none.
func TestEnvCredentials(t *testing.T) {
	testenv.Require(t, "rabbitmq", brokerAddr)
	t.Setenv(EnvUsername, "relay")
	t.Setenv(EnvPassword, "relay")
	tg := newTarget(t, Config{Enable: true, URL: "amqp://127.0.0.1:5672/", RoutingKey: "no-such-queue"})
	if err := tg.Send(context.Background(), items("env", 1)); err != nil {
		t.Fatalf("Send with credentials from the environment: %v", err)
	}
	// Fields beat the environment: a wrong password fails, and the error
	// does not show it.
	tg = newTarget(t, Config{Enable: true, URL: "amqp://127.0.0.1:5672/", Username: "relay", Password: "wrong-s3cret"})
	err := tg.Send(context.Background(), items("env", 1))
	if err == nil {
		t.Fatal("Send with a wrong password succeeded")
	}
	if strings.Contains(err.Error(), "wrong-s3cret") {
		t.Fatalf("error leaks the password: %v", err)
	}
}

func TestSecretsNotInErrors(t *testing.T) {
	tg, err := New(Config{Enable: true, URL: "amqp://user:hunter22@127.0.0.1:1/"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = tg.Send(context.Background(), items("secret", 1))
	if err == nil {
		t.Fatal("send to a closed port succeeded")
	}
	if !strings.HasPrefix(err.Error(), "amqp: ") || strings.Contains(err.Error(), "hunter22") {
		t.Fatalf("got error %q, want an amqp: error without the password", err)
	}
}

// RabbitMQ 3+ does not implement immediate: the broker closes the
// connection on the first publish with it. That is why Validate rejects it.
func TestImmediateUnsupportedByBroker(t *testing.T) {
	testenv.Require(t, "rabbitmq", brokerAddr)
	var fe *kit.FieldError
	cfg := Config{Enable: true, URL: brokerURL, Immediate: true}
	if err := cfg.Validate(); !errors.As(err, &fe) || fe.Field != "immediate" {
		t.Fatalf("Validate: got %v, want an error on immediate", err)
	}
	cfg.Immediate = false
	tg := newTarget(t, cfg)
	tg.cfg.Immediate = true // what Validate forbids
	err := tg.Send(context.Background(), items("immediate", 1))
	if err == nil {
		t.Fatal("broker accepted immediate=true; Validate need not reject it")
	}
	t.Logf("broker's answer to immediate=true: %v", err)
}

// The seed's example configuration loads into Config, field for field, and
// validates.
func TestSeedExampleConfig(t *testing.T) {
	const seed = `{"amqp": {
    "1": {
        "enable": true,
        "url": "amqp://myuser:mypassword@localhost:5672",
        "exchange": "bucketevents",
        "routingKey": "bucketlogs",
        "exchangeType": "fanout",
        "deliveryMode": 0,
        "mandatory": false,
        "immediate": false,
        "durable": false,
        "internal": false,
        "noWait": false,
        "autoDeleted": false
    }
}}`
	var outer map[string]map[string]json.RawMessage
	if err := json.Unmarshal([]byte(seed), &outer); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(outer["amqp"]["1"]))
	dec.DisallowUnknownFields()
	var cfg Config
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("decoding the seed's example: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	want := Config{Enable: true, URL: "amqp://myuser:mypassword@localhost:5672", Exchange: "bucketevents", RoutingKey: "bucketlogs", ExchangeType: "fanout"}
	if fmt.Sprint(cfg) != fmt.Sprint(want) {
		t.Fatalf("got %+v, want %+v", cfg, want)
	}
	if !cfg.Confirms() {
		t.Fatal("publisher confirms are off by default, want on")
	}
	if _, err := New(cfg, nil); err != nil {
		t.Fatalf("New: %v", err)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		cfg   Config
		field string
	}{
		{Config{}, "url"},
		{Config{URL: "http://x"}, "url"},
		{Config{URL: "amqp://x", DeliveryMode: 3}, "deliveryMode"},
		{Config{URL: "amqp://x", Immediate: true}, "immediate"},
		{Config{URL: "amqp://x", ExchangeType: "fanout"}, "exchangeType"},
		{Config{URL: "amqps://x", TLSFiles: kit.TLSFiles{ClientCert: "a"}}, "clientCert"},
		{Config{URL: "amqp://x", TLSFiles: kit.TLSFiles{CAFile: "ca.pem"}}, "caFile"},
	} {
		var fe *kit.FieldError
		if err := c.cfg.Validate(); !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("Validate(%+v) = %v, want an error on %s", c.cfg, err, c.field)
		}
	}
	if err := (&Config{URL: "amqps://u:p@host:5671/vh"}).Validate(); err != nil {
		t.Errorf("Validate(amqps url) = %v, want nil", err)
	}
}

// TestURLPasswordNotInErrors: a password holding a raw '/', '@', '#' or '?'
// never appears, whole or in pieces, in the configuration error or in a
// connection error.
func TestURLPasswordNotInErrors(t *testing.T) {
	for _, pw := range []string{"Sekr/3tPw", "Sekr@3tPw", "Sekr#3tPw", "Sekr?3tPw", "ab/Sekr@3t#Pw?xyz", "Sekr3tPw"} {
		u := "amqp://relay:" + pw + "@127.0.0.1:1/vhost"
		var msgs []string
		if err := (&Config{URL: u}).Validate(); err != nil {
			msgs = append(msgs, err.Error())
		} else {
			tg, err := New(Config{Enable: true, URL: u}, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = tg.Send(context.Background(), []delivery.Item{{Seq: 1, Key: "b/k", EventName: event.ObjectCreatedPut, Record: []byte(`{}`)}})
			if err == nil {
				t.Fatalf("%s: send to a closed port succeeded", pw)
			}
			msgs = append(msgs, err.Error())
		}
		for _, m := range msgs {
			for _, piece := range strings.FieldsFunc(pw, func(r rune) bool { return strings.ContainsRune("/@#?", r) }) {
				if len(piece) >= 3 && strings.Contains(m, piece) {
					t.Errorf("password %q: error %q leaks %q", pw, m, piece)
				}
			}
		}
	}
}
