package kafka

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/testkit/consumers"
)

// Broker is the shared in-process Kafka broker (kfake) with topic, plus,
// if asked, a consumer that reads the topic from the start into the
// Collector (values, keys and headers, redeliveries included).
type Broker struct {
	*consumers.KafkaBroker
	consumers.Collector
	Topic string
}

// NewBroker starts a broker with topic (3 partitions) and, if consume, its
// consumer, until the test ends.
func NewBroker(t testing.TB, topic string, consume bool, extra ...kfake.Opt) *Broker {
	t.Helper()
	b := &Broker{KafkaBroker: consumers.NewKafkaBroker(t, []string{topic}, extra...), Topic: topic}
	if consume {
		consumers.NewKafkaMessages(t, b.Addr, topic, b.AddMessage)
	}
	return b
}

// Start starts the broker again on its port and directory.
func (b *Broker) Start(t testing.TB) { t.Helper(); consumers.TB(b.KafkaBroker.Start)(t) }

// Stop stops the broker (it saves its data to disk first).
func (b *Broker) Stop(testing.TB) { b.KafkaBroker.Stop() }

func newTarget(t testing.TB, cfg Config) *Target {
	t.Helper()
	tg, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// TestConformance runs the suite against kfake, stopping and restarting it
// on the same port.
func TestConformance(t *testing.T) {
	b := NewBroker(t, "bucketevents", true)
	targettest.Run(t, targettest.Harness{
		Features: targettest.Features{Message: true},
		New: func(t testing.TB) delivery.Target {
			return newTarget(t, Config{Enable: true, Brokers: []string{b.Addr}, Topic: "bucketevents"})
		},
		Received: b.Received,
		Stop:     b.Stop,
		Start:    b.Start,
		Timeout:  45 * time.Second,
	})
}

func items(n int) []delivery.Item {
	out := make([]delivery.Item, n)
	for i := range out {
		e := targettest.Entry(targettest.Record("images", fmt.Sprintf("p%d.jpg", i%3), event.ObjectCreatedPut, i), "x")
		out[i] = delivery.Item{Seq: uint64(i + 1), Key: e.Key, EventName: event.Name(e.Name), Record: e.Data}
	}
	return out
}

func waitCount(t *testing.T, b *Broker, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for len(b.Received(t)) < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := len(b.Received(t)); got != n {
		t.Fatalf("consumer got %d records, want %d", got, n)
	}
}

// TestKeysAndCompression checks the record key is bucket/object and that
// every codec is accepted by the broker.
func TestKeysAndCompression(t *testing.T) {
	b := NewBroker(t, "bucketevents", true)
	total := 0
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		tg := newTarget(t, Config{Brokers: []string{b.Addr}, Topic: "bucketevents", Compression: codec})
		if err := tg.Send(context.Background(), items(6)); err != nil {
			t.Fatalf("%s: %v", codec, err)
		}
		tg.Close()
		total += 6
	}
	waitCount(t, b, total)
	for _, k := range b.Keys() {
		if !strings.HasPrefix(k, "images/p") {
			t.Fatalf("record key %q, want images/p…", k)
		}
	}
}

// TestSASL checks PLAIN and both SCRAM mechanisms against a broker that
// requires them, and that a wrong password is a retryable error that does
// not show the password.
func TestSASL(t *testing.T) {
	b := NewBroker(t, "bucketevents", false, kfake.EnableSASL(),
		kfake.Superuser("PLAIN", "plainuser", "plain-pass"),
		kfake.Superuser("SCRAM-SHA-256", "user256", "pass-256"),
		kfake.Superuser("SCRAM-SHA-512", "user512", "pass-512"))
	n := 0
	for _, s := range []SASLConfig{
		{Enable: true, Username: "plainuser", Password: "plain-pass", Mechanism: "plain"},
		{Enable: true, Username: "user256", Password: "pass-256", Mechanism: "sha256"},
		{Enable: true, Username: "user512", Password: "pass-512", Mechanism: "sha512"},
	} {
		tg := newTarget(t, Config{Brokers: []string{b.Addr}, Topic: "bucketevents", SASL: s})
		if err := tg.Send(context.Background(), items(2)); err != nil {
			t.Fatalf("%s: %v", s.Mechanism, err)
		}
		tg.Close()
		n += 2
	}
	t.Setenv(EnvSASLPassword, "wrong-password")
	tg := newTarget(t, Config{Brokers: []string{b.Addr}, Topic: "bucketevents", SASL: SASLConfig{Enable: true, Username: "user256", Mechanism: "sha256"}})
	defer tg.Close()
	err := tg.Send(context.Background(), items(1))
	if err == nil || delivery.IsPermanent(err) || strings.Contains(err.Error(), "wrong-password") {
		t.Fatalf("Send with a wrong password: got %v, want a retryable error without the password", err)
	}
}

// TestDownAtStartNoIO checks that New does not dial and that Send to a
// closed port fails retryably, then succeeds once the broker is up.
func TestDownAtStartNoIO(t *testing.T) {
	b := NewBroker(t, "bucketevents", true)
	b.Stop(t)
	start := time.Now()
	tg := newTarget(t, Config{Brokers: []string{b.Addr}, Topic: "bucketevents"})
	defer tg.Close()
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("New took %v", d)
	}
	err := tg.Send(context.Background(), items(1))
	if err == nil || delivery.IsPermanent(err) || !strings.HasPrefix(err.Error(), "kafka: ") {
		t.Fatalf("Send to a stopped broker: got %v, want a retryable kafka: error", err)
	}
	b.Start(t)
	if err := tg.Send(context.Background(), items(3)); err != nil {
		t.Fatal(err)
	}
	waitCount(t, b, 3)
}

func TestKeyOrdered(t *testing.T) {
	its := items(6) // keys p0 p1 p2 p0 p1 p2
	boom := errors.New("boom")
	errs := []error{nil, boom, delivery.Permanent(boom), nil, nil, nil}
	var be *delivery.BatchError
	if err := keyOrdered(its, errs); !errors.As(err, &be) {
		t.Fatalf("got %v, want a BatchError", err)
	}
	var got []int
	for _, f := range be.Failed {
		got = append(got, f.Index)
	}
	// 1 failed; 4 has 1's key and is resent; 2 is permanent, so 5 is not.
	if fmt.Sprint(got) != "[1 2 4]" {
		t.Fatalf("failed items %v, want [1 2 4]", got)
	}
	if keyOrdered(its, make([]error, 6)) != nil {
		t.Fatal("no failures: want nil")
	}
}

// TestSCRAMVector checks the SCRAM client against RFC 7677's example.
func TestSCRAMVector(t *testing.T) {
	c := &scramClient{newHash: sha256.New, fixedNonce: "rOprNGfwEbeRWgbNEkqO"}
	if err := c.Begin("user", "pencil", ""); err != nil {
		t.Fatal(err)
	}
	first, _ := c.Step("")
	if first != "n,,n=user,r=rOprNGfwEbeRWgbNEkqO" {
		t.Fatalf("client-first %q", first)
	}
	final, err := c.Step("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
	if err != nil {
		t.Fatal(err)
	}
	want := "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
	if final != want {
		t.Fatalf("client-final: got %q, want %q", final, want)
	}
	if _, err := c.Step("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="); err != nil || !c.Done() {
		t.Fatalf("server-final: got %v done=%v, want nil and done", err, c.Done())
	}
	c2 := &scramClient{newHash: sha256.New, fixedNonce: "rOprNGfwEbeRWgbNEkqO"}
	c2.Begin("user", "pencil", "")
	c2.Step("")
	c2.Step("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
	if _, err := c2.Step("v=AAAA"); err == nil {
		t.Fatal("a wrong server signature was accepted")
	}
}

func TestValidate(t *testing.T) {
	ok := Config{Brokers: []string{"localhost:9092"}, Topic: "bucketevents"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("Validate(%+v) = %v, want nil", ok, err)
	}
	b := []string{"h:1"}
	for _, c := range []struct {
		cfg   Config
		field string
	}{
		{Config{Topic: "t"}, "brokers"},
		{Config{Brokers: []string{"nohost"}, Topic: "t"}, "brokers"},
		{Config{Brokers: b}, "topic"},
		{Config{Brokers: b, Topic: "a/b"}, "topic"},
		{Config{Brokers: b, Topic: "t", Compression: "brotli"}, "compression"},
		{Config{Brokers: b, Topic: "t", Compression: "zstd", Version: "1.0.0"}, "compression"},
		{Config{Brokers: b, Topic: "t", Version: "banana"}, "version"},
		{Config{Brokers: b, Topic: "t", TLS: TLSConfig{TLSFiles: kit.TLSFiles{ClientKey: "k"}}}, "tls.clientCert"},
		{Config{Brokers: b, Topic: "t", SASL: SASLConfig{Enable: true}}, "sasl.username"},
		{Config{Brokers: b, Topic: "t", SASL: SASLConfig{Enable: true, Username: "u", Mechanism: "kerberos"}}, "sasl.mechanism"},
	} {
		var fe *kit.FieldError
		if err := c.cfg.Validate(); !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("Validate(%+v) = %v, want an error on %s", c.cfg, err, c.field)
		}
	}
	// Old brokers get a producer without idempotence.
	tg := newTarget(t, Config{Brokers: b, Topic: "t", Version: "0.10.2.0"})
	if tg.sc.Producer.Idempotent {
		t.Fatal("idempotent producer for Kafka 0.10")
	}
}

// TestOversizedIsPermanent checks that a record larger than the broker
// takes is quarantined (permanent) and the others of the batch delivered.
func TestOversizedIsPermanent(t *testing.T) {
	b := NewBroker(t, "bucketevents", true)
	tg := newTarget(t, Config{Brokers: []string{b.Addr}, Topic: "bucketevents"})
	defer tg.Close()
	r := targettest.Record("images", "huge.jpg", event.ObjectCreatedPut, 0)
	r.S3.Object.UserMetadata = map[string]string{"X-Amz-Meta-Blob": strings.Repeat("x", 2<<20)}
	e := targettest.Entry(r, "x")
	batch := append(items(2), delivery.Item{Seq: 99, Key: e.Key, EventName: event.Name(e.Name), Record: e.Data})
	batch = append(batch, items(1)...)
	err := tg.Send(context.Background(), batch)
	var be *delivery.BatchError
	if !errors.As(err, &be) || len(be.Failed) != 1 || be.Failed[0].Index != 2 || !delivery.IsPermanent(be.Failed[0].Err) {
		t.Fatalf("Send: got %v, want only item 2 failed, permanently", err)
	}
	waitCount(t, b, 3)
}
