package nats

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
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
	items := make([]delivery.Item, 1000)
	for i := range items {
		items[i] = targettest.Item("images", fmt.Sprintf("photos/%04d.jpg", i), event.ObjectCreatedPut, i)
		items[i].LogID = "3f9a0c1d2e4b5a69"
	}
	for _, senders := range []int{1, 4} {
		b.Run(fmt.Sprintf("relay-%d", senders), func(b *testing.B) {
			tg, err := New(Config{Enable: true, Address: systemAddr, Subject: subject}, slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			defer tg.Close()
			if err := tg.Send(context.Background(), items); err != nil { // connect
				b.Fatal(err)
			}
			sendtest.Measure(b, len(items), senders, func() error { return tg.Send(context.Background(), items) })
		})
	}
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
