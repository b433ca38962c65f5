// Package webhookrecv is a webhook endpoint for tests and benchmarks: it
// records every body POSTed to it, can refuse some, and can be stopped and
// restarted on the same address. It imports testing, so it lives here and
// not in adapters/webhook, which the relay binary links.
package webhookrecv

import (
	"io"
	"net"
	"net/http"
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

	mu       sync.Mutex
	bodies   [][]byte
	messages []Message
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
