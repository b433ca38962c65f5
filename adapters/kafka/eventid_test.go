package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event/cloudevent"
)

// TestEventIDHeader: every record carries the event's id in the event-id
// header.
func TestEventIDHeader(t *testing.T) {
	b := NewBroker(t, "evid", false)
	tg := newTarget(t, Config{Brokers: []string{b.Addr}, Topic: "evid"})
	its := items(3)
	for i := range its {
		its[i].LogID = "00000000deadbeef"
	}
	if err := tg.Send(context.Background(), its); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.ConsumeTopics("evid"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var got []string
	for len(got) < len(its) && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			for _, h := range r.Headers {
				if h.Key == EventIDHeader {
					got = append(got, string(h.Value))
				}
			}
		})
	}
	// Records of different keys go to different partitions: any order.
	seen := map[string]bool{}
	for _, id := range got {
		seen[id] = true
	}
	for i := range its {
		if want := its[i].EventID(); !seen[want] {
			t.Fatalf("event-id headers %v, want one with %s", got, want)
		}
	}
}

// TestEnvelope: every record carries the event-id header, and with format
// "cloudevents" is a CloudEvent of the Kafka binding, binary (ce_ headers)
// or structured.
func TestEnvelope(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
		env  targettest.Envelope
	}{
		{"plain", Config{}, targettest.Envelope{IDHeader: EventIDHeader}},
		{"cloudevents binary", Config{Format: kit.FormatCloudEvents}, targettest.Envelope{IDHeader: EventIDHeader, CloudEvents: true, Binding: &cloudevent.Kafka}},
		{"cloudevents structured", Config{Format: kit.FormatCloudEvents, CloudEventsMode: kit.CloudEventsStructured}, targettest.Envelope{IDHeader: EventIDHeader, CloudEvents: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := NewBroker(t, "envelope", true)
			targettest.RunEnvelope(t, targettest.EnvelopeHarness{
				Envelope: c.env,
				New: func(t testing.TB) delivery.Target {
					cfg := c.cfg
					cfg.Brokers, cfg.Topic = []string{b.Addr}, b.Topic
					return newTarget(t, cfg)
				},
				Received: b.Messages,
			})
			if c.env.CloudEvents && c.env.Binding == nil {
				for _, m := range b.Messages(t) {
					if ct := m.Headers["content-type"]; ct != cloudevent.StructuredContentType {
						t.Fatalf("structured record content-type %q, want %q", ct, cloudevent.StructuredContentType)
					}
				}
			}
		})
	}
}
