// Package tlstest holds the TLS checks every adapter's test runs against
// its own server: the right CA delivers; a wrong CA, a wrong host name, the
// system's CAs and a plain port fail with an error that says which; with a
// server that requires a client certificate, none and one of another CA
// are refused. Certificates come from testkit/tlsca; each adapter says how
// to build its target and how to edit its configuration.
package tlstest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/testkit/tlsca"
)

// SendTimeout bounds one Send.
const SendTimeout = 30 * time.Second

// Checker sends one event at a time through new targets of an adapter
// whose configuration type is C.
type Checker[C any] struct {
	// New builds a target for a configuration; it is closed after its
	// one Send.
	New func(C) (delivery.Target, error)
	// NewMayFail returns New's error as the send's error (drivers that
	// check TLS settings when the target is built). Zero: an error from
	// New fails the test.
	NewMayFail bool
	// Secret, when not empty, must not appear in any error (a password).
	Secret string
	// MaxTook, when not zero, is how long one failing case may take.
	MaxTook time.Duration
}

// Case is one configuration that must fail.
type Case[C any] struct {
	// Name says what is wrong, in the test's messages.
	Name string
	// Edit changes a copy of the base configuration.
	Edit func(c *C)
	// Want is in the error ("" means any error).
	Want string
}

// Bad returns a Case (a function, so that a case list reads as a table
// and vet accepts it outside this package).
func Bad[C any](name string, edit func(c *C), want string) Case[C] {
	return Case[C]{Name: name, Edit: edit, Want: want}
}

// Send builds a target for cfg, sends it event i (key "k<i>") within
// SendTimeout, closes it and returns Send's error.
func (k Checker[C]) Send(t testing.TB, cfg C, i int) error {
	t.Helper()
	tg, err := k.New(cfg)
	if err != nil {
		if k.NewMayFail {
			return err
		}
		t.Fatalf("New: %v", err)
	}
	defer tg.Close()
	ctx, cancel := context.WithTimeout(context.Background(), SendTimeout)
	defer cancel()
	return tg.Send(ctx, []delivery.Item{targettest.Item("tls", fmt.Sprintf("k%d", i), event.ObjectCreatedPut, i)})
}

// Fails sends event first+i through base edited by cases[i], and checks
// each fails with an error containing its Want, without Secret, within
// MaxTook.
func (k Checker[C]) Fails(t testing.TB, base C, first int, cases []Case[C]) {
	t.Helper()
	for i, c := range cases {
		cfg := base
		c.Edit(&cfg)
		start := time.Now()
		err := k.Send(t, cfg, first+i)
		took := time.Since(start)
		t.Logf("%s (%v): %v", c.Name, took.Round(time.Millisecond), err)
		if k.MaxTook > 0 && took > k.MaxTook {
			t.Errorf("%s: took %v, want at most %v", c.Name, took, k.MaxTook)
		}
		if err == nil || !strings.Contains(err.Error(), c.Want) {
			t.Errorf("%s: got %v, want an error containing %q", c.Name, err, c.Want)
		}
		if k.Secret != "" && err != nil && strings.Contains(err.Error(), k.Secret) {
			t.Errorf("%s: the error quotes the secret: %v", c.Name, err)
		}
	}
}

// MutualTLS checks a server that requires a client certificate: base
// (with s.Client, set by the caller) delivers event 0; base without a
// client certificate and with s.WrongClient (events 1 and 2) fail. client
// sets the certificate and key files of a configuration ("" for none).
func (k Checker[C]) MutualTLS(t testing.TB, s *tlsca.Set, base C, client func(c *C, cert, key string)) {
	t.Helper()
	if err := k.Send(t, base, 0); err != nil {
		t.Fatalf("send with the client certificate: %v", err)
	}
	for i, p := range []tlsca.Pair{{}, s.WrongClient} {
		cfg := base
		client(&cfg, p.Cert, p.Key)
		err := k.Send(t, cfg, 1+i)
		t.Logf("client certificate %q: %v", p.Cert, err)
		if err == nil {
			t.Errorf("client certificate %q: got nil, want an error", p.Cert)
		}
	}
}

// WaitFor polls count until it reaches n, failing t after 30 s; what
// names the count in the message.
func WaitFor(t testing.TB, what string, count func() int, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: got %d messages, want %d", what, count(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stays waits a moment (a stray delivery would arrive by then) and checks
// count is still n.
func Stays(t testing.TB, what string, count func() int, n int) {
	t.Helper()
	time.Sleep(200 * time.Millisecond)
	if got := count(); got != n {
		t.Errorf("%s: got %d messages, want %d", what, got, n)
	}
}
