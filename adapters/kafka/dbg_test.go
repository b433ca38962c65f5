package kafka

import (
	"context"
	"testing"
	"time"
)

func TestDbg(t *testing.T) {
	b := NewBroker(t, "bucketevents", true)
	s := time.Now()
	b.Stop(t)
	t.Log("stop", time.Since(s))
	s = time.Now()
	tg := newTarget(t, Config{Brokers: []string{b.Addr}, Topic: "bucketevents"})
	err := tg.Send(context.Background(), items(1))
	t.Log("send", time.Since(s), err)
	s = time.Now()
	b.Start(t)
	t.Log("start", time.Since(s))
	s = time.Now()
	err = tg.Send(context.Background(), items(1))
	t.Log("send", time.Since(s), err)
}
