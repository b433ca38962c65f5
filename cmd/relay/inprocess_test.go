package main

import (
	"context"
	"io"
	"sync"
	"testing"

	"github.com/bucketrelay/bucketrelay/relay"
)

// parseConfig parses a configuration document or fails the test.
func parseConfig(t testing.TB, doc string) *relay.Config {
	t.Helper()
	cfg, err := relay.ParseConfig([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// serveInProcess runs serve with cfg in the test's own process, its
// output to out, and returns the API's address once it listens. stop ends
// it and waits for it (a serve error fails the test); it also runs when
// the test ends, and only once.
func serveInProcess(t testing.TB, cfg *relay.Config, out io.Writer) (addr string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, out, func(a string) { addrc <- a }) }()
	select {
	case addr = <-addrc:
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return addr, stop
}
