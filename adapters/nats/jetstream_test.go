package nats

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/internal/testenv"
	"github.com/bucketrelay/bucketrelay/testkit/consumers"
)

// TestJetStreamRefusedItems: a stream that refuses messages (full, discard
// new) fails exactly the refused items with the server's reason, and the
// items after the first refused one too (sent again in order); the items
// before it count as delivered.
func TestJetStreamRefusedItems(t *testing.T) {
	testenv.Require(t, "nats", systemAddr)
	subject := testSubject("jsfull")
	stream := fmt.Sprintf("RELAYTEST_FULL_%d", os.Getpid())
	s := consumers.NewStream(t, systemAddr, jetstream.StreamConfig{Name: stream, Subjects: []string{subject},
		Storage: jetstream.MemoryStorage, MaxMsgs: 3, Discard: jetstream.DiscardNew})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tg := newTarget(t, Config{Enable: true, Address: systemAddr, Subject: subject, JetStream: JetStreamConfig{Enable: true}})
	defer tg.Close()
	err := tg.Send(ctx, items(5))
	var be *delivery.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("Send: got %v, want a BatchError", err)
	}
	var failed []int
	for _, f := range be.Failed {
		failed = append(failed, f.Index)
	}
	if fmt.Sprint(failed) != "[3 4]" {
		t.Fatalf("failed items %v, want [3 4]", failed)
	}
	if e := be.Failed[0].Err; delivery.IsPermanent(e) || !strings.Contains(e.Error(), "maximum messages") {
		t.Errorf("item 3: got %v, want a retryable \"maximum messages\" error from the server", e)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 3 {
		t.Errorf("the stream holds %d messages, want 3", info.State.Msgs)
	}
}

// TestJetStreamManySends: sends in flight at once on one target each get
// their own PubAcks (the reply subjects name the send and the item), and
// every message is stored once.
func TestJetStreamManySends(t *testing.T) {
	testenv.Require(t, "nats", systemAddr)
	subject := testSubject("jsmany")
	stream := fmt.Sprintf("RELAYTEST_MANY_%d", os.Getpid())
	s := consumers.NewStream(t, systemAddr, jetstream.StreamConfig{Name: stream, Subjects: []string{subject}, Storage: jetstream.MemoryStorage})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tg := newTarget(t, Config{Enable: true, Address: systemAddr, Subject: subject, JetStream: JetStreamConfig{Enable: true}})
	defer tg.Close()
	const sends, per = 8, 250
	errs := make(chan error, sends)
	for k := range sends {
		go func() {
			batch := items(per)
			for i := range batch {
				batch[i].Seq = uint64(k*per + i + 1)
				batch[i].LogID = "00000000feedface"
			}
			errs <- tg.Send(ctx, batch)
		}()
	}
	for range sends {
		if err := <-errs; err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != sends*per {
		t.Errorf("the stream holds %d messages, want %d", info.State.Msgs, sends*per)
	}
}

// TestPubAckErr reads the replies JetStream sends to a publish.
func TestPubAckErr(t *testing.T) {
	noResp := &natsgo.Msg{Header: natsgo.Header{"Status": []string{"503"}}}
	cases := []struct {
		name string
		msg  *natsgo.Msg
		want string // "" for nil; else a substring of the error
	}{
		{"stored", &natsgo.Msg{Data: []byte(`{"stream":"S","seq":7}`)}, ""},
		{"duplicate", &natsgo.Msg{Data: []byte(`{"stream":"S","seq":7,"duplicate":true}`)}, ""},
		{"stream named error", &natsgo.Msg{Data: []byte(`{"stream":"error","seq":1}`)}, ""},
		{"refused", &natsgo.Msg{Data: []byte(`{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"},"stream":"S","seq":0}`)}, "maximum messages exceeded"},
		{"no responders", noResp, "no responders"},
		{"other status", &natsgo.Msg{Header: natsgo.Header{"Status": []string{"408"}, "Description": []string{"Request Timeout"}}}, "408 Request Timeout"},
		{"not JSON", &natsgo.Msg{Data: []byte(`+OK`)}, "invalid jetstream publish response"},
		{"no stream", &natsgo.Msg{Data: []byte(`{"seq":1}`)}, "invalid jetstream publish response"},
	}
	for _, c := range cases {
		err := pubAckErr(c.msg)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: got %v, want nil", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
	}
	var apiErr *jetstream.APIError
	if err := pubAckErr(cases[3].msg); !errors.As(err, &apiErr) || apiErr.ErrorCode != 10077 {
		t.Errorf("refused: got %v, want a *jetstream.APIError with err_code 10077", err)
	}
	if err := pubAckErr(noResp); !errors.Is(err, natsgo.ErrNoResponders) {
		t.Errorf("no responders: got %v, want natsgo.ErrNoResponders", err)
	}
}

// TestParseReply reads "<send>.<item>" after the inbox prefix.
func TestParseReply(t *testing.T) {
	const prefix = "_INBOX.abc."
	cases := []struct {
		subject    string
		send, item int
		ok         bool
	}{
		{prefix + "1.0", 1, 0, true},
		{prefix + "42.999", 42, 999, true},
		{prefix + "42", 0, 0, false},
		{prefix + "4x.1", 0, 0, false},
		{prefix + "1.2.3", 0, 0, false},
		{prefix, 0, 0, false},
	}
	for _, c := range cases {
		send, item, ok := parseReply(c.subject, len(prefix))
		if ok != c.ok || (ok && (int(send) != c.send || item != c.item)) {
			t.Errorf("parseReply(%q): got %d %d %v, want %d %d %v", c.subject, send, item, ok, c.send, c.item, c.ok)
		}
	}
}
