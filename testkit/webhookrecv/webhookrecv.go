// Package webhookrecv is a webhook endpoint for tests and benchmarks: it
// records every body POSTed to it, can refuse some, and can be stopped and
// restarted on the same address. It imports testing, so it lives here and
// not in adapters/webhook, which the relay binary links.
package webhookrecv

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Receiver is a webhook endpoint for tests and benchmarks: it records every
// body it is POSTed and can be stopped and restarted on the same address.
// Reject, if set, picks bodies to answer with 400.
type Receiver struct {
	Addr   string
	Reject func(body []byte) bool
	// OnBody, if set, is called with every accepted body.
	OnBody func(body []byte)
	// Answer, if set, may answer a request itself: a status other than 0
	// is sent with the header h (Retry-After…) instead of accepting the
	// body. It runs after the bearer token check.
	Answer func(body []byte) (status int, h http.Header)

	// Delay, if set, is waited before each answer: a slow endpoint, and
	// with random delays one that answers concurrent requests out of
	// order.
	Delay func() time.Duration
	// Unavailable, if set, picks bodies to answer with 503 (the relay
	// retries them).
	Unavailable func(body []byte) bool

	mu       sync.Mutex
	bodies   [][]byte
	messages []Message
	// accepted lists, per object key, the sequences (from webhook-id) of
	// the events answered 2xx, in the order they were answered.
	accepted map[string][]uint64
	srv      *http.Server
	auth     string
}

// New starts a receiver on a free loopback port, stopped when t ends. When
// token is not empty every request must carry it as a bearer token (401
// otherwise).
func New(t testing.TB, token string) *Receiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Receiver{Addr: ln.Addr().String()}
	if token != "" {
		r.auth = "Bearer " + token
	}
	r.serve(ln)
	t.Cleanup(r.Stop)
	return r
}

// URL returns the receiver's endpoint.
func (r *Receiver) URL() string { return "http://" + r.Addr + "/" }

func (r *Receiver) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(r.handle), ReadHeaderTimeout: 5 * time.Second}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go srv.Serve(ln)
}

func (r *Receiver) handle(w http.ResponseWriter, req *http.Request) {
	if r.auth != "" && req.Header.Get("Authorization") != r.auth {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if r.Delay != nil {
		time.Sleep(r.Delay())
	}
	if r.Unavailable != nil && r.Unavailable(body) {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	if r.Answer != nil {
		if code, h := r.Answer(body); code != 0 {
			for k, vs := range h {
				w.Header()[k] = vs
			}
			w.WriteHeader(code)
			return
		}
	}
	if r.Reject != nil && r.Reject(body) {
		http.Error(w, "rejected", http.StatusBadRequest)
		return
	}
	r.accept(req.Header.Get("webhook-id"), body)
	if r.OnBody != nil {
		r.OnBody(body)
	} else {
		r.mu.Lock()
		r.bodies = append(r.bodies, body)
		r.messages = append(r.messages, Message{Header: req.Header.Clone(), Body: body})
		r.mu.Unlock()
	}
	w.WriteHeader(http.StatusOK)
}

// Bodies returns what was received so far.
func (r *Receiver) Bodies() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.bodies...)
}

// Message is one accepted request: its headers and body.
type Message struct {
	Header http.Header
	Body   []byte
}

// Messages returns the requests accepted so far (without OnBody), with
// their headers.
func (r *Receiver) Messages() []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Message(nil), r.messages...)
}

// Stop closes the listener and every connection.
func (r *Receiver) Stop() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// Start listens again on the same address.
func (r *Receiver) Start(t testing.TB) {
	t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", r.Addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	r.serve(ln)
}

// accept notes an accepted event's sequence under its key, when the
// request carries a webhook-id ("logid-seq") and the body a Key.
func (r *Receiver) accept(id string, body []byte) {
	i := strings.LastIndexByte(id, '-')
	if i < 0 {
		return
	}
	seq, err := strconv.ParseUint(id[i+1:], 10, 64)
	if err != nil {
		return
	}
	var msg struct{ Key string }
	if json.Unmarshal(body, &msg) != nil || msg.Key == "" {
		return
	}
	r.mu.Lock()
	if r.accepted == nil {
		r.accepted = map[string][]uint64{}
	}
	r.accepted[msg.Key] = append(r.accepted[msg.Key], seq)
	r.mu.Unlock()
}

// Accepted returns how many times each sequence (from webhook-id) was
// answered 2xx.
func (r *Receiver) Accepted() map[uint64]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := map[uint64]int{}
	for _, seqs := range r.accepted {
		for _, s := range seqs {
			n[s]++
		}
	}
	return n
}

// CheckKeyOrder returns an error naming the first object whose events
// were accepted out of log order. A re-send repeats events already
// accepted, so only each event's last acceptance counts: those must come
// in increasing sequence per key.
func (r *Receiver) CheckKeyOrder() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for key, seqs := range r.accepted {
		last := make(map[uint64]int, len(seqs))
		for i, s := range seqs {
			last[s] = i
		}
		var prev uint64
		for i, s := range seqs {
			if last[s] != i {
				continue
			}
			if s < prev {
				return fmt.Errorf("webhookrecv: key %s: event %d accepted after %d", key, s, prev)
			}
			prev = s
		}
	}
	return nil
}
