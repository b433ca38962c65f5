package jslog_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery/logtest"
	"github.com/bucketrelay/bucketrelay/jslog"
	"github.com/bucketrelay/bucketrelay/testkit/natscluster"
)

// TestPartition cuts the stream leader's server off from the other two
// (its route links go through a proxy the test controls): a log connected
// only to it gets no acknowledgement (the minority refuses writes), a log
// on the majority side goes on appending after an election, and once the
// link heals both append again and no acknowledged record is lost.
func TestPartition(t *testing.T) {
	c := natscluster.Start(t, natscluster.Options{Partitionable: true})
	setup := open(t, c, jslog.Config{Stream: "PART"})
	from := setup.Register("t")
	leader := streamLeader(t, c, 1, "PART")
	other := leader%3 + 1
	minority := open(t, c, jslog.Config{Stream: "PART", Servers: []string{c.URL(leader)}})
	majority := open(t, c, jslog.Config{Stream: "PART", Servers: []string{c.URL(other)}})

	maj := startAppender(majority, "t", 4, 20*time.Second)
	time.Sleep(500 * time.Millisecond)
	c.Isolate(t, leader)
	cut := time.Now()
	before := maj.count()
	t.Logf("isolated node %d (stream leader) after %d acknowledged records", leader, before)

	// The minority side acknowledges nothing.
	mino := startAppender(minority, "m", 2, 2*time.Second)
	deadline := time.Now().Add(30 * time.Second)
	for maj.count() < before+200 {
		if time.Now().After(deadline) {
			t.Fatalf("the majority side did not go on appending within 30 s of the cut (%d since)", maj.count()-before)
		}
		time.Sleep(10 * time.Millisecond)
	}
	failover := time.Since(cut)
	time.Sleep(2 * time.Second)
	mino.halt()
	if n := mino.count(); n != 0 {
		t.Fatalf("the isolated node acknowledged %d records", n)
	}
	refused := mino.failures.Load()
	if refused == 0 {
		t.Fatal("no append failed on the isolated node")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	_, err := minority.Append(ctx, logtest.Entry(-1, "m"))
	cancel()
	if !errors.Is(err, jslog.ErrUnavailable) {
		t.Fatalf("append on the isolated node: %v, want ErrUnavailable", err)
	}

	c.Heal(t, leader)
	healed := time.Now()
	mino = startAppender(minority, "m", 2, 20*time.Second)
	// Bounded: a log whose index lagged after the cut once waited 2 s
	// per Append for it, so 50 appends took 20 to 50 s.
	deadline = time.Now().Add(20 * time.Second)
	for mino.count() < 50 {
		if time.Now().After(deadline) {
			t.Fatalf("the healed node's clients appended %d records in the 20 s after the heal, want 50", mino.count())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("majority appending again %.1fs after the cut; minority refused %d appends; appends through the healed node resumed %.1fs after the heal",
		failover.Seconds(), refused, time.Since(healed).Seconds())
	mino.halt()
	maj.halt()
	checkNoneLost(t, c, "PART", from, "t", maj)
	checkNoneLost(t, c, "PART", from, "m", mino)
}
