package elasticsearch

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/testkit/sendtest"
)

// TestConcurrentSends: Send is safe for concurrent use (kit.Kind.InFlight),
// in both formats: batches in flight in lanes leave the namespace state
// replaying the events in order gives, and the access index every event.
func TestConcurrentSends(t *testing.T) {
	b := newBackend(t)
	for _, f := range []struct {
		name string
		feat targettest.Features
	}{{"ns", targettest.Features{Namespace: true}}, {"access", targettest.Features{}}} {
		t.Run(f.name, func(t *testing.T) {
			index := indexName("conc-" + f.name)
			b.dropIndex(t, index)
			targettest.RunConcurrent(t, b.harness(t, index, f.feat))
		})
	}
}

// TestConcurrentSendsDirect calls Send from several goroutines at once,
// each batch on its own keys, in rounds over the same keys: the access
// index holds every event once, each object's in order; in a namespace
// index, a batch holding a key the index refuses (longer than 512 bytes)
// fails alone, naming that item, while the batches beside it are written
// whole.
func TestConcurrentSendsDirect(t *testing.T) {
	b := newBackend(t)
	index := indexName("conc-direct")
	b.dropIndex(t, index)
	h := b.harness(t, index, targettest.Features{})
	tg := h.New(t)
	defer tg.Close()
	rounds := sendtest.Rounds("conc-es", 3, 4, 60, 12)
	sendtest.SendAll(t, tg, rounds)
	sendtest.Check(t, h.Received(t), sendtest.Flatten(rounds...), true)

	nsIndex := indexName("conc-direct-ns")
	b.dropIndex(t, nsIndex)
	ns := newTarget(t, Config{Enable: true, Format: FormatNamespace, URL: b.url, Index: nsIndex})
	defer ns.Close()
	batches, bad := sendtest.Rounds("conc-es-ns", 1, 4, 60, 12)[0], 17
	batches[2][bad] = targettest.Item("conc-es-ns", strings.Repeat("k", 600), event.ObjectCreatedPut, 100_000)
	for i, err := range sendtest.Send(context.Background(), ns, batches) {
		var be *delivery.BatchError
		switch {
		case i != 2 && err != nil:
			t.Fatalf("batch %d beside the failing one: Send: %v, want nil", i, err)
		case i == 2 && (!errors.As(err, &be) || len(be.Failed) != 1 || be.Failed[0].Index != bad || !delivery.IsPermanent(be.Failed[0].Err)):
			t.Fatalf("batch 2: Send: got %v, want a BatchError with item %d alone, permanent", err, bad)
		}
	}
	// Each object holds its newest event of the round.
	newest := map[string]int{}
	for bi, batch := range batches {
		for i := range batch {
			if bi != 2 || i != bad {
				newest[batch[i].Key] = int(batch[i].Seq - 1)
			}
		}
	}
	docs := b.docs(t, nsIndex)
	if len(docs) != len(newest) {
		t.Fatalf("namespace index holds %d documents, want %d", len(docs), len(newest))
	}
	for _, d := range docs {
		if id, ok := sendtest.ID(d.Source); !ok || newest[d.ID] != id {
			t.Fatalf("document %s holds event %d, want %d", d.ID, id, newest[d.ID])
		}
	}
}
