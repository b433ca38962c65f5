package jslog_test

import (
	"context"
	"testing"
	"time"
)

// jsCall calls a JetStream API request (fn) until it answers, within a
// minute, each attempt bounded by 5 s like the log's own requests: right
// after a cluster starts, on a loaded machine, a request can go unanswered
// (the meta leader or the stream's leader is still being elected) and
// asking again gets the answer, where one request with the client's default
// 5 s timeout failed the test. fn must be safe to repeat (a CreateStream
// with the same config is).
func jsCall[T any](t testing.TB, what string, fn func(ctx context.Context) (T, error)) T {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		v, err := fn(ctx)
		cancel()
		if err == nil {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
