package nats

import (
	"log/slog"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/internal/testenv"
	"github.com/bucketrelay/bucketrelay/testkit/sendtest"
)

// BenchmarkSendCore measures core NATS sends of 1,000 events to the system
// server: the relay's target with one send at a time and with 4 at once
// (the kind's default window), beside nats.go publishing the same
// messages (body and Nats-Msg-Id) and flushing per 1,000. cpu-ns/event
// is this process's CPU time per event, steadier than the rate on a
// shared machine.
func BenchmarkSendCore(b *testing.B) {
	testenv.Require(b, "nats", systemAddr)
	subject := testSubject("bench")
	items := sendtest.BenchItems(1000)
	sendtest.BenchTarget(b, items, func() (delivery.Target, error) {
		return New(Config{Enable: true, Address: systemAddr, Subject: subject}, slog.New(slog.DiscardHandler))
	})
	b.Run("direct-1", func(b *testing.B) {
		nc, err := natsgo.Connect("nats://" + systemAddr)
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		msgs := make([]*natsgo.Msg, len(items))
		for i := range items {
			msgs[i] = &natsgo.Msg{Subject: subject, Data: items[i].Message(),
				Header: natsgo.Header{natsgo.MsgIdHdr: {items[i].EventID()}}}
		}
		sendtest.Measure(b, len(items), 1, func() error {
			for _, m := range msgs {
				if err := nc.PublishMsg(m); err != nil {
					return err
				}
			}
			return nc.FlushTimeout(10 * time.Second)
		})
	})
}
