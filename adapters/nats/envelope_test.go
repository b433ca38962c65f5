package nats

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event/cloudevent"
	"github.com/bucketrelay/bucketrelay/internal/testenv"
)

// msgCollector keeps every message a subscriber received, headers too.
type msgCollector struct {
	mu   sync.Mutex
	msgs []targettest.Message
}

func (c *msgCollector) add(m *natsgo.Msg) {
	h := map[string]string{}
	for k := range m.Header {
		h[k] = m.Header.Get(k)
	}
	c.mu.Lock()
	c.msgs = append(c.msgs, targettest.Message{Body: append([]byte(nil), m.Data...), Headers: h})
	c.mu.Unlock()
}

func (c *msgCollector) Received(testing.TB) []targettest.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]targettest.Message(nil), c.msgs...)
}

// TestEnvelope: core NATS and JetStream messages carry the event's id as
// Nats-Msg-Id, and with format "cloudevents" are CloudEvents of the NATS
// binding (ce- headers, or structured).
func TestEnvelope(t *testing.T) {
	testenv.Require(t, "nats", systemAddr)
	nc, err := natsgo.Connect("nats://" + systemAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for _, c := range []struct {
		name string
		cfg  Config
		env  targettest.Envelope
	}{
		{"core plain", Config{}, targettest.Envelope{IDHeader: natsgo.MsgIdHdr}},
		{"core cloudevents binary", Config{Format: kit.FormatCloudEvents}, targettest.Envelope{IDHeader: natsgo.MsgIdHdr, CloudEvents: true, Binding: &cloudevent.NATS}},
		{"core cloudevents structured", Config{Format: kit.FormatCloudEvents, CloudEventsMode: kit.CloudEventsStructured}, targettest.Envelope{IDHeader: natsgo.MsgIdHdr, CloudEvents: true}},
		{"jetstream cloudevents binary", Config{Format: kit.FormatCloudEvents, JetStream: JetStreamConfig{Enable: true}}, targettest.Envelope{IDHeader: natsgo.MsgIdHdr, CloudEvents: true, Binding: &cloudevent.NATS}},
	} {
		t.Run(c.name, func(t *testing.T) {
			subject := testSubject("envelope." + strings.ReplaceAll(c.name, " ", "-"))
			if c.cfg.JetStream.Enable {
				js, err := jetstream.New(nc)
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				stream := fmt.Sprintf("RELAYTEST_ENVELOPE_%d", os.Getpid())
				if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{subject}, Storage: jetstream.MemoryStorage}); err != nil {
					t.Fatal(err)
				}
				defer js.DeleteStream(context.Background(), stream)
			}
			var col msgCollector
			sub, err := nc.Subscribe(subject, col.add)
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Unsubscribe()
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			targettest.RunEnvelope(t, targettest.EnvelopeHarness{
				Envelope: c.env,
				New: func(t testing.TB) delivery.Target {
					cfg := c.cfg
					cfg.Enable, cfg.Address, cfg.Subject = true, systemAddr, subject
					return newTarget(t, cfg)
				},
				Received: col.Received,
				Timeout:  20 * time.Second,
			})
		})
	}
}

// TestStreamingCloudEvents: NATS Streaming has no headers; with format
// "cloudevents" each message is a structured CloudEvent whose id is the
// event's id, the only place the id travels there.
func TestStreamingCloudEvents(t *testing.T) {
	s := newStanServer(t, "envelope")
	targettest.RunEnvelope(t, targettest.EnvelopeHarness{
		Envelope: targettest.Envelope{CloudEvents: true},
		New: func(t testing.TB) delivery.Target {
			return newTarget(t, Config{Enable: true, Address: s.addr(), Subject: s.subject, Format: kit.FormatCloudEvents,
				Streaming: StreamingConfig{Enable: true, ClusterID: testCluster, ClientID: "envelope-client"}})
		},
		Received: func(t testing.TB) []targettest.Message {
			var out []targettest.Message
			for _, b := range s.c.Received(t) {
				out = append(out, targettest.Message{Body: b})
			}
			return out
		},
	})
}
