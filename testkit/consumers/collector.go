package consumers

import (
	"sync"
	"testing"

	"github.com/bucketrelay/bucketrelay/delivery/targettest"
)

// Sink receives every message body a consumer gets, from the consumer's
// goroutine. body is valid only during the call: a Sink that keeps it must
// copy it.
type Sink func(body []byte)

// Collector is a Sink that keeps every body it gets, in arrival order, and
// counts bodies that arrive more than once. Its zero value is ready to use;
// it is safe for concurrent use.
type Collector struct {
	mu       sync.Mutex
	all      [][]byte
	distinct [][]byte
	seen     map[string]bool
	dups     int
	// msgs, distinctMsgs and keys are kept by AddMessage only.
	msgs         []targettest.Message
	distinctMsgs []targettest.Message
	keys         []string
}

// Add records one body (a copy of it). It is the Collector's Sink.
func (c *Collector) Add(body []byte) {
	b := append([]byte(nil), body...)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.add(b)
}

// add records b, which the Collector owns, and reports whether it is new.
// c.mu is held.
func (c *Collector) add(b []byte) bool {
	if c.seen == nil {
		c.seen = map[string]bool{}
	}
	c.all = append(c.all, b)
	if c.seen[string(b)] {
		c.dups++
		return false
	}
	c.seen[string(b)] = true
	c.distinct = append(c.distinct, b)
	return true
}

// Reset forgets everything received.
func (c *Collector) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.all, c.distinct, c.seen, c.dups = nil, nil, nil, 0
	c.msgs, c.distinctMsgs, c.keys = nil, nil, nil
}

// All returns every body received, duplicates included, in arrival order.
func (c *Collector) All() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.all...)
}

// Bodies returns each distinct body once, in order of first arrival.
func (c *Collector) Bodies() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.distinct...)
}

// Dups returns how many bodies arrived more than once.
func (c *Collector) Dups() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dups
}

// Received returns every body received, duplicates included: the shape of
// targettest.Harness.Received.
func (c *Collector) Received(testing.TB) [][]byte { return c.All() }

// Distinct returns each distinct body once: the shape of
// targettest.Harness.Received for a suite that must not count a
// redelivery toward the events it waits for.
func (c *Collector) Distinct(testing.TB) [][]byte { return c.Bodies() }

// TB adapts a start or stop function that returns an error to the
// func(testing.TB) of targettest.Harness's Start and Stop: the error fails
// the test.
func TB(f func() error) func(testing.TB) {
	return func(t testing.TB) {
		t.Helper()
		if err := f(); err != nil {
			t.Fatal(err)
		}
	}
}
