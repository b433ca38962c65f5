package consumers

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// KafkaBroker is an in-process Kafka broker (kfake: the real wire protocol)
// on a fixed loopback port, persisting to a directory so that what it
// acknowledged survives Stop and Start.
type KafkaBroker struct {
	// Addr is the broker's host:port.
	Addr string

	opts    []kfake.Opt
	mu      sync.Mutex
	cluster *kfake.Cluster
}

// StartKafkaBroker starts a broker storing in dir with topics (partitions
// each) seeded, on a free loopback port; extra options are appended.
func StartKafkaBroker(dir string, partitions int32, topics []string, extra ...kfake.Opt) (*KafkaBroker, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	b := &KafkaBroker{Addr: fmt.Sprintf("127.0.0.1:%d", port)}
	b.opts = append([]kfake.Opt{kfake.Ports(port), kfake.DataDir(dir), kfake.SeedTopics(partitions, topics...)}, extra...)
	return b, b.Start()
}

// NewKafkaBroker is StartKafkaBroker for a test, in t.TempDir() with 3
// partitions per topic: it fails t on error and stops the broker when the
// test ends.
func NewKafkaBroker(t testing.TB, topics []string, extra ...kfake.Opt) *KafkaBroker {
	t.Helper()
	b, err := StartKafkaBroker(t.TempDir(), 3, topics, extra...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	return b
}

// Start starts the cluster on the broker's port and directory, retrying for
// 5 s while the port lingers after a Stop.
func (b *KafkaBroker) Start() error {
	var c *kfake.Cluster
	var err error
	for range 50 {
		if c, err = kfake.NewCluster(b.opts...); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("consumers: starting kfake: %w", err)
	}
	b.mu.Lock()
	b.cluster = c
	b.mu.Unlock()
	return nil
}

// Stop closes the cluster (it saves its data to disk first).
func (b *KafkaBroker) Stop() {
	b.mu.Lock()
	c := b.cluster
	b.cluster = nil
	b.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// Cluster returns the running cluster, or nil.
func (b *KafkaBroker) Cluster() *kfake.Cluster {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cluster
}

// KafkaRecordSink receives the key and value of every record a Kafka
// consumer reads; both are valid only during the call.
type KafkaRecordSink func(key, value []byte)

// Kafka reads a topic from its first offset with franz-go (kgo), across
// broker restarts, until Close.
type Kafka struct {
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// StartKafka starts reading topic on the broker at addr (host:port). The
// client connects lazily, so it starts even while the broker is down.
func StartKafka(addr, topic string, sink KafkaRecordSink) (*Kafka, error) {
	return startKafka(addr, topic, func(r *kgo.Record) { sink(r.Key, r.Value) })
}

// StartKafkaMessages is StartKafka handing each record as a Message: its
// key, value and headers.
func StartKafkaMessages(addr, topic string, sink MessageSink) (*Kafka, error) {
	return startKafka(addr, topic, func(r *kgo.Record) {
		h := make(map[string]string, len(r.Headers))
		for _, rh := range r.Headers {
			h[rh.Key] = string(rh.Value)
		}
		sink(Message{Key: r.Key, Body: r.Value, Headers: h})
	})
}

func startKafka(addr, topic string, each func(*kgo.Record)) (*Kafka, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }))
	if err != nil {
		return nil, fmt.Errorf("consumers: kafka: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	k := &Kafka{cl: cl, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(k.done)
		for ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(each)
		}
	}()
	return k, nil
}

// NewKafka is StartKafka for a test: it fails t on error and closes the
// consumer when the test ends.
func NewKafka(t testing.TB, addr, topic string, sink KafkaRecordSink) *Kafka {
	t.Helper()
	return kafkaTB(t)(StartKafka(addr, topic, sink))
}

// NewKafkaMessages is StartKafkaMessages for a test: it fails t on error
// and closes the consumer when the test ends.
func NewKafkaMessages(t testing.TB, addr, topic string, sink MessageSink) *Kafka {
	t.Helper()
	return kafkaTB(t)(StartKafkaMessages(addr, topic, sink))
}

// kafkaTB fails t on a start error and closes the consumer when t ends.
func kafkaTB(t testing.TB) func(*Kafka, error) *Kafka {
	return func(k *Kafka, err error) *Kafka {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(k.Close)
		return k
	}
}

// Close stops reading and closes the client.
func (k *Kafka) Close() {
	k.once.Do(func() {
		k.cancel()
		<-k.done
		k.cl.Close()
	})
}

// Values adapts a Sink to a KafkaRecordSink that passes the values on.
func Values(sink Sink) KafkaRecordSink {
	return func(_, value []byte) { sink(value) }
}
