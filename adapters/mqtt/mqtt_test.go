package mqtt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/internal/testenv"
	"github.com/bucketrelay/bucketrelay/testkit/consumers"
)

const (
	brokerAddr = "127.0.0.1:1883"
	brokerURL  = "tcp://127.0.0.1:1883"
)

// StopMosquitto stops the broker and waits until its process, which
// lingers as a zombie for about a second after pkill, is gone.
func StopMosquitto(t testing.TB) {
	t.Helper()
	testenv.StopService(t, "mosquitto", "mosquitto")
}

// NewSubscriber subscribes to topic on broker at QoS 1, as the seed's paho
// example does (it subscribes to "minio"), resubscribing after the broker
// restarts, until the test ends. The collector's Bodies counts each body
// once: the suite counts every body it gets toward the events it waits
// for, so a redelivery would end its wait before the last events arrived.
func NewSubscriber(t testing.TB, broker, topic string) (*consumers.MQTT, *consumers.Collector) {
	t.Helper()
	c := new(consumers.Collector)
	return consumers.NewMQTT(t, consumers.MQTTConfig{Broker: broker, Topic: topic}, c.Add), c
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

func harness(t *testing.T, qos int) targettest.Harness { return harnessWith(t, qos, nil) }

// harnessWith is harness with the target's configuration changed by
// change (if not nil).
func harnessWith(t *testing.T, qos int, change func(*Config)) targettest.Harness {
	topic := fmt.Sprintf("minio/test-%d-qos%d", os.Getpid(), qos)
	if change != nil {
		topic += "-changed"
	}
	sub, got := NewSubscriber(t, brokerURL, topic)
	t.Cleanup(func() { t.Logf("%d duplicates (at-least-once delivery)", got.Dups()) })
	gate := consumers.NewGate(t, brokerAddr)
	return targettest.Harness{
		Features: targettest.Features{Message: true, AtMostOnce: qos == 0},
		New: func(t testing.TB) delivery.Target {
			cfg := Config{Enable: true, Broker: gate.URL(), Topic: topic, QoS: qos}
			if change != nil {
				change(&cfg)
			}
			return newTarget(t, cfg)
		},
		Received: got.Distinct,
		Stop: func(t testing.TB) {
			gate.SetOpen(false)
			StopMosquitto(t)
			sub.ForgetSubscriptions()
		},
		Start: func(t testing.TB) {
			testenv.Services(t, "start", "mosquitto")
			sub.RequireSubscribed(t)
			gate.SetOpen(true)
		},
		Timeout: 30 * time.Second,
	}
}

func TestConformanceQoS1(t *testing.T) {
	testenv.Require(t, "mosquitto", brokerAddr)
	targettest.Run(t, harness(t, 1))
}

func TestConformanceQoS2(t *testing.T) {
	testenv.Require(t, "mosquitto", brokerAddr)
	targettest.Run(t, harness(t, 2))
}

// QoS 0 is at-most-once: only the steady-state subtests run.
func TestConformanceQoS0(t *testing.T) {
	testenv.Require(t, "mosquitto", brokerAddr)
	targettest.Run(t, harness(t, 0))
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

// A connection cut in the middle of a batch fails the unacknowledged items
// as retryable, and the next Send reconnects by itself.
func TestCutConnectionIsRetried(t *testing.T) {
	testenv.Require(t, "mosquitto", brokerAddr)
	topic := fmt.Sprintf("minio/cut-%d", os.Getpid())
	_, sub := NewSubscriber(t, brokerURL, topic)
	gate := consumers.NewGate(t, brokerAddr)
	tg := newTarget(t, Config{Enable: true, Broker: gate.URL(), Topic: topic, QoS: 1})
	its := items("cut", 100)
	if err := tg.Send(context.Background(), its[:10]); err != nil {
		t.Fatal(err)
	}
	gate.SetOpen(false)
	err := tg.Send(context.Background(), its[10:])
	if err == nil {
		t.Fatal("Send through a closed gate succeeded")
	}
	if delivery.IsPermanent(err) {
		t.Fatalf("got permanent error %v, want retryable", err)
	}
	gate.SetOpen(true)
	if err := tg.Send(context.Background(), its[10:]); err != nil {
		t.Fatalf("Send after reopening: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(sub.Bodies()) < 100 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	got := sub.Bodies()
	if len(got) < 100 {
		t.Fatalf("subscriber got %d messages, want 100", len(got))
	}
	if !bytes.Equal(got[0], its[0].Message()) {
		t.Fatalf("got body %s, want %s", got[0], its[0].Message())
	}
}

// Send honours its context when the broker does not answer.
func TestSendHonoursContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // accept and say nothing
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	tg := newTarget(t, Config{Enable: true, Broker: "tcp://" + ln.Addr().String(), Topic: "minio", QoS: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := tg.Send(ctx, items("ctx", 1)); err == nil {
		t.Fatal("Send to a silent broker succeeded")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Send took %v, want about 300ms", d)
	}
}

func TestEnvPassword(t *testing.T) {
	t.Setenv(EnvPassword, "hunter22")
	tg, err := New(Config{Enable: true, Broker: "tcp://user@127.0.0.1:1", Topic: "minio", QoS: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tg.password != "hunter22" {
		t.Fatalf("got password %q, want the environment's", tg.password)
	}
	if !strings.HasPrefix(tg.cfg.ClientID, ClientIDPrefix) {
		t.Fatalf("got client ID %q, want %s…", tg.cfg.ClientID, ClientIDPrefix)
	}
	err = tg.Send(context.Background(), items("secret", 1))
	if err == nil {
		t.Fatal("send to a closed port succeeded")
	}
	if !strings.HasPrefix(err.Error(), "mqtt: ") || strings.Contains(err.Error(), "hunter22") {
		t.Fatalf("got error %q, want an mqtt: error without the password", err)
	}
}

// The seed's example configuration loads into Config, field for field, and
// validates.
func TestSeedExampleConfig(t *testing.T) {
	const seed = `{"mqtt": {
    "1": {
        "enable": true,
        "broker": "tcp://localhost:1883",
        "topic": "minio",
        "qos": 1,
        "clientId": "minio",
        "username": "",
        "password": ""
    }
}}`
	var outer map[string]map[string]json.RawMessage
	if err := json.Unmarshal([]byte(seed), &outer); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(outer["mqtt"]["1"]))
	dec.DisallowUnknownFields()
	var cfg Config
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("decoding the seed's example: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	want := Config{Enable: true, Broker: "tcp://localhost:1883", Topic: "minio", QoS: 1, ClientID: "minio"}
	if cfg != want {
		t.Fatalf("got %+v, want %+v", cfg, want)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		cfg   Config
		field string
	}{
		{Config{}, "broker"},
		{Config{Broker: "http://x:1883", Topic: "t"}, "broker"},
		{Config{Broker: "tcp://", Topic: "t"}, "broker"},
		{Config{Broker: "tcp://x:1883"}, "topic"},
		{Config{Broker: "tcp://x:1883", Topic: "a/#"}, "topic"},
		{Config{Broker: "tcp://x:1883", Topic: "t", QoS: 3}, "qos"},
		{Config{Broker: "tls://x:8883", Topic: "t", TLSFiles: kit.TLSFiles{ClientCert: "c"}}, "clientCert"},
		{Config{Broker: "tcp://x:1883", Topic: "t", TLSFiles: kit.TLSFiles{CAFile: "ca.pem"}}, "caFile"},
		{Config{Broker: "tcp://x:1883", Topic: "t", KeepAlive: "soon"}, "keepAlive"},
		{Config{Broker: "tcp://x:1883", Topic: "t", MaxInFlight: -1}, "maxInFlight"},
	} {
		var fe *kit.FieldError
		if err := c.cfg.Validate(); !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("Validate(%+v) = %v, want an error on %s", c.cfg, err, c.field)
		}
	}
	for _, b := range []string{"tcp://h:1883", "tls://h:8883", "ssl://h:8883", "ws://h:8080/mqtt", "wss://h/mqtt", "mqtt://h:1883"} {
		if err := (&Config{Broker: b, Topic: "minio", QoS: 1}).Validate(); err != nil {
			t.Errorf("Validate(%s) = %v, want nil", b, err)
		}
	}
}

// TestBrokerPasswordNotInErrors: a broker URL whose password holds a raw
// '/', '#' or '?' is refused without repeating any piece of it.
func TestBrokerPasswordNotInErrors(t *testing.T) {
	for _, pw := range []string{"Sekr/3tPw", "Sekr#3tPw", "Sekr?3tPw", "ab/Sekr@3t#Pw?xyz"} {
		err := (&Config{Broker: "tcp://relay:" + pw + "@127.0.0.1:1883", Topic: "t"}).Validate()
		if err == nil {
			continue // parsed: connection errors go through kit.Redact
		}
		for _, piece := range strings.FieldsFunc(pw, func(r rune) bool { return strings.ContainsRune("/@#?", r) }) {
			if len(piece) >= 3 && strings.Contains(err.Error(), piece) {
				t.Errorf("password %q: error %q leaks %q", pw, err, piece)
			}
		}
	}
}
