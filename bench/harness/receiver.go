package harness

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Receiver is a keep-alive HTTP endpoint standing in for a webhook
// consumer. It counts bodies, and for bodies carrying an event id it counts
// receipts per id, and can record publish-to-receipt latency and the time
// of each id's first receipt.
//
// It is not testkit's webhook receiver on purpose: that one keeps and
// verifies every body for tests; this one keeps no body, parses only the
// id (and stamp), and pools its buffers, so that at tens of thousands of
// events a second the receiver is not what the bench measures.
type Receiver struct {
	// ParseID finds the event id of a body. Nil: ID (the FieldID field).
	ParseID func(body []byte) (int, bool)
	// FirstReceipts, if set before Start, records when each id first
	// arrived (FirstReceipt, Receipts).
	FirstReceipts bool

	addr   string
	srv    *http.Server
	bodies atomic.Int64
	ids    IDSet
	keep   atomic.Bool // record latencies

	mu    sync.Mutex
	lat   []time.Duration
	first map[int]time.Time
	times []time.Time
}

// NewReceiver reserves a loopback port and returns a receiver that is not
// yet listening on it; the port stays the same across Stop and Start.
func NewReceiver() (*Receiver, error) {
	addr, err := FreeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	return &Receiver{addr: addr}, nil
}

// URL is the endpoint to configure.
func (rv *Receiver) URL() string { return "http://" + rv.addr + "/events" }

// Start listens on the receiver's port, retrying for 5 s while the port
// lingers after a Stop.
func (rv *Receiver) Start() error {
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", rv.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("receiver: %w", err)
	}
	rv.srv = &http.Server{Handler: http.HandlerFunc(rv.serve), ReadHeaderTimeout: 10 * time.Second}
	go rv.srv.Serve(ln)
	return nil
}

// Stop closes the listener and every connection, as a crashed consumer
// would.
func (rv *Receiver) Stop() {
	if rv.srv != nil {
		rv.srv.Close()
		rv.srv = nil
	}
}

var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (rv *Receiver) serve(w http.ResponseWriter, r *http.Request) {
	now := Since()
	wall := time.Now()
	buf := bodyPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bodyPool.Put(buf)
	if _, err := buf.ReadFrom(r.Body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rv.bodies.Add(1)
	b := buf.Bytes()
	parse := rv.ParseID
	if parse == nil {
		parse = ID
	}
	if id, ok := parse(b); ok {
		rv.ids.Mark(id)
		if rv.keep.Load() {
			if t, ok := Field(b, FieldTime); ok {
				rv.mu.Lock()
				rv.lat = append(rv.lat, time.Duration(now-t))
				rv.mu.Unlock()
			}
		}
		if rv.FirstReceipts {
			rv.mu.Lock()
			if rv.first == nil {
				rv.first = map[int]time.Time{}
			}
			if _, seen := rv.first[id]; !seen {
				rv.first[id] = wall
				rv.times = append(rv.times, wall)
			}
			rv.mu.Unlock()
		}
	}
	w.WriteHeader(http.StatusOK)
}

// Bodies returns how many bodies arrived.
func (rv *Receiver) Bodies() int64 { return rv.bodies.Load() }

// KeepLatencies starts or stops recording publish-to-receipt latencies.
func (rv *Receiver) KeepLatencies(on bool) { rv.keep.Store(on) }

// TakeLatencies returns and clears the recorded latencies.
func (rv *Receiver) TakeLatencies() []time.Duration {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	l := rv.lat
	rv.lat = nil
	return l
}

// IDs is the receiver's per-id receipt count.
func (rv *Receiver) IDs() *IDSet { return &rv.ids }

// Counts returns the distinct ids received and the duplicate receipts.
func (rv *Receiver) Counts() (unique, dups int) { return rv.ids.Counts() }

// Missing returns how many ids below n were never received.
func (rv *Receiver) Missing(n int) int { return rv.ids.Missing(n) }

// FirstReceipt reports whether id arrived, and when first (FirstReceipts
// only).
func (rv *Receiver) FirstReceipt(id int) (time.Time, bool) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	t, ok := rv.first[id]
	return t, ok
}

// Receipts returns the time of every id's first receipt, in arrival order
// (FirstReceipts only).
func (rv *Receiver) Receipts() []time.Time {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return append([]time.Time(nil), rv.times...)
}

// IDSet counts receipts per event id, for lost and duplicate counts. Its
// zero value is ready to use; it is safe for concurrent use.
type IDSet struct {
	mu     sync.Mutex
	seen   []uint8 // receipts per id, saturating at 255
	unique int
	dups   int
}

// Mark records one receipt of id (≥ 0).
func (s *IDSet) Mark(id int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id >= len(s.seen) {
		s.seen = slices.Grow(s.seen, id+1-len(s.seen)+1<<16)[:max(id+1, len(s.seen))]
	}
	if s.seen[id] > 0 {
		s.dups++
	} else {
		s.unique++
	}
	if s.seen[id] < 255 {
		s.seen[id]++
	}
}

// MarkBody marks the FieldID of body, if it has one: a consumers.Sink.
func (s *IDSet) MarkBody(body []byte) {
	if id, ok := ID(body); ok {
		s.Mark(id)
	}
}

// Counts returns the distinct ids received and the duplicate receipts.
func (s *IDSet) Counts() (unique, dups int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unique, s.dups
}

// Missing returns how many ids below n were never received.
func (s *IDSet) Missing(n int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	miss := 0
	for i := range n {
		if i >= len(s.seen) || s.seen[i] == 0 {
			miss++
		}
	}
	return miss
}
