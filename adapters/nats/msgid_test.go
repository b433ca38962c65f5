package nats

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/internal/testenv"
)

// TestCoreMsgIDPerMessage: in a batch, every core message carries its own
// event's id as Nats-Msg-Id (the ids are sliced from one string per send),
// over two sends of different lengths on the same target.
func TestCoreMsgIDPerMessage(t *testing.T) {
	testenv.Require(t, "nats", systemAddr)
	subject := testSubject("msgid")
	nc, err := natsgo.Connect("nats://" + systemAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var mu sync.Mutex
	got := map[string]string{} // object key → Nats-Msg-Id
	sub, err := nc.Subscribe(subject, func(m *natsgo.Msg) {
		var body struct{ Key string }
		if err := json.Unmarshal(m.Data, &body); err != nil {
			t.Errorf("body: %v", err)
			return
		}
		mu.Lock()
		got[body.Key] = m.Header.Get(natsgo.MsgIdHdr)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	tg := newTarget(t, Config{Enable: true, Address: systemAddr, Subject: subject})
	defer tg.Close()
	want := map[string]string{}
	seq := uint64(7)
	for _, n := range []int{37, 5} {
		items := make([]delivery.Item, n)
		for i := range items {
			seq += uint64(1 + i%3) // gaps, as a batch read past other targets' records has
			items[i] = targettest.Item("images", fmt.Sprintf("msgid/%d.jpg", seq), event.ObjectCreatedPut, int(seq))
			items[i].Seq, items[i].LogID = seq, "00000000deadbeef"
			want[items[i].Key] = fmt.Sprintf("00000000deadbeef-%d", seq)
		}
		if err := tg.Send(context.Background(), items); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d", len(got), len(want))
	}
	for k, id := range want {
		if got[k] != id {
			t.Errorf("%s: Nats-Msg-Id %q, want %q", k, got[k], id)
		}
	}
}
