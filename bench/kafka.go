package main

// Scenario "kafka": the Kafka target (sarama, idempotent, acks=all) against
// an in-process Kafka broker speaking the real wire protocol (franz-go's
// kfake, persisting to disk so that a stop and start keeps what it
// acknowledged), beside a sarama AsyncProducer with the same settings, and
// the drain after the broker was down. No Kafka server can be installed on
// the bench machine; a real cluster would add its own costs (replication,
// fsync policy) that kfake does not have, and kfake's CPU is taken from the
// same two cores as the relay's.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	kafkaadapter "github.com/bucketrelay/bucketrelay/adapters/kafka"
	"github.com/bucketrelay/bucketrelay/bench/harness"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/testkit/consumers"
)

func init() { harness.Register("kafka", runKafka) }

// Topics of the scenario: the rate runs and the outage run each have their
// own, so the outage's consumer reads only the outage's events.
const (
	kafkaRateTopic   = "bucketevents"
	kafkaOutageTopic = "bucketevents-outage"
	kafkaPartitions  = 3
)

// kafkaProducerConfig is the target's producer configuration: idempotent,
// acks=all, one request in flight per broker, and the target's 1 ms flush
// frequency (until December 2026 the direct client flushed as fast as it
// could, a batching the target does not use).
func kafkaProducerConfig() *sarama.Config {
	sc := sarama.NewConfig()
	sc.ClientID = "bucketrelay-bench-direct"
	sc.Net.MaxOpenRequests = 1
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Idempotent = true
	sc.Producer.Retry.Max = kafkaadapter.DefaultRetries
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.Producer.Partitioner = sarama.NewHashPartitioner
	sc.Producer.Flush.Frequency = time.Millisecond
	return sc
}

func runKafka(ctx context.Context, o harness.Options) (harness.Result, error) {
	srv, err := consumers.StartKafkaBroker(filepath.Join(o.Dir, "kafka"), kafkaPartitions, []string{kafkaRateTopic, kafkaOutageTopic})
	if err != nil {
		return harness.Result{}, err
	}
	defer srv.Stop()
	addr := srv.Addr
	target := func(topic string) func() (delivery.Target, error) {
		return func() (delivery.Target, error) {
			return kafkaadapter.New(kafkaadapter.Config{Enable: true, Brokers: []string{addr}, Topic: topic}, harness.QuietLogger())
		}
	}
	return nkRun(ctx, o, nkSpec{
		newTarget:    target(kafkaRateTopic),
		inFlight:     4,
		outageTarget: target(kafkaOutageTopic),
		direct: func(ctx context.Context, bodies [][]byte, keys []string, d time.Duration) (float64, error) {
			return kafkaDirect(ctx, addr, bodies, keys, d)
		},
		consume: func(sink consumers.Sink) (func(), error) {
			c, err := consumers.StartKafka(addr, kafkaOutageTopic, consumers.Values(sink))
			if err != nil {
				return nil, err
			}
			return c.Close, nil
		},
		stop:  func() error { srv.Stop(); return nil },
		start: srv.Start,
		goal:  "≥ 50000",
		notes: []string{
			fmt.Sprintf("broker: franz-go kfake (in process, real Kafka protocol, %d partitions, data directory; Stop = Close, Start = a new cluster on the same port and directory)", kafkaPartitions),
			"target: one sarama AsyncProducer shared by the batches in flight (1000 each), idempotent, acks=all, MaxOpenRequests 1, 1 ms flush frequency, key bucket/object, event-id header; direct client: sarama AsyncProducer, same settings, no header, fed continuously",
			"outage: a consumer (franz-go kgo) reads the outage topic from the start throughout; lost = ids it never read",
		},
	})
}

// kafkaDirect feeds an AsyncProducer continuously for d and returns the
// acknowledged rate.
func kafkaDirect(ctx context.Context, addr string, bodies [][]byte, keys []string, d time.Duration) (float64, error) {
	p, err := sarama.NewAsyncProducer([]string{addr}, kafkaProducerConfig())
	if err != nil {
		return 0, err
	}
	var acked, failed atomic.Int64
	var lastErr atomic.Pointer[error]
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range p.Successes() {
			acked.Add(1)
		}
	}()
	go func() {
		defer wg.Done()
		for e := range p.Errors() {
			failed.Add(1)
			err := e.Err
			lastErr.Store(&err)
		}
	}()
	start := time.Now()
	n := 0
	for time.Since(start) < d && ctx.Err() == nil {
		for range 100 {
			k := n % len(bodies)
			p.Input() <- &sarama.ProducerMessage{Topic: kafkaRateTopic, Key: sarama.StringEncoder(keys[k]), Value: sarama.ByteEncoder(bodies[k])}
			n++
		}
	}
	for acked.Load()+failed.Load() < int64(n) && time.Since(start) < d+30*time.Second {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	p.AsyncClose()
	wg.Wait()
	if f := failed.Load(); f > 0 {
		return 0, fmt.Errorf("%d of %d direct messages failed: %v", f, n, *lastErr.Load())
	}
	if acked.Load() < int64(n) {
		return 0, errors.New("direct messages not all acknowledged within 30 s")
	}
	return float64(n) / elapsed.Seconds(), nil
}
