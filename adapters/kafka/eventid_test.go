package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
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
