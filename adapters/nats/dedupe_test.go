package nats

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/internal/testenv"
	"github.com/bucketrelay/bucketrelay/testkit/consumers"
)

// TestJetStreamDropsResentEvents: a batch sent twice (a retry after a lost
// acknowledgement) is stored once: every message carries the event's id as
// Nats-Msg-Id, and the server drops the second copies.
func TestJetStreamDropsResentEvents(t *testing.T) {
	testenv.Require(t, "nats", systemAddr)
	subject := testSubject("jsdedupe")
	stream := fmt.Sprintf("RELAYTEST_DEDUPE_%d", os.Getpid())
	s := consumers.NewStream(t, systemAddr, jetstream.StreamConfig{Name: stream, Subjects: []string{subject}, Storage: jetstream.MemoryStorage, Duplicates: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	tg := newTarget(t, Config{Enable: true, Address: systemAddr, Subject: subject, JetStream: JetStreamConfig{Enable: true}})
	items := make([]delivery.Item, 5)
	for i := range items {
		rec := targettest.Record("images", fmt.Sprintf("k%d.jpg", i), event.ObjectCreatedPut, i)
		items[i] = delivery.Item{Seq: uint64(i + 1), Key: "images/" + rec.S3.Object.Key, EventName: event.ObjectCreatedPut, Record: rec.AppendJSON(nil), LogID: "00000000deadbeef"}
	}
	for range 2 {
		if err := tg.Send(ctx, items); err != nil {
			t.Fatal(err)
		}
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(len(items)) {
		t.Fatalf("the stream holds %d messages after sending %d events twice, want %d", info.State.Msgs, len(items), len(items))
	}
	msg, err := s.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if id := msg.Header.Get(natsgo.MsgIdHdr); id != "00000000deadbeef-1" {
		t.Errorf("Nats-Msg-Id %q, want 00000000deadbeef-1", id)
	}
}
