package jslog

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"
)

// Crash drops the log's connection without flushing or releasing
// anything, as a process killed with SIGKILL would.
func (l *Log) Crash() { l.nc.Close() }

// FailFetches makes the next n message fetches of l fail as a stream
// without a leader answers (503, JetStream temporarily unavailable),
// before they reach the stream.
func (l *Log) FailFetches(n int) {
	l.stream = &failingStream{Stream: l.stream, left: n}
}

// failingStream fails the first fetches, then passes them through.
type failingStream struct {
	jetstream.Stream
	mu   sync.Mutex
	left int
}

func (s *failingStream) GetMsg(ctx context.Context, seq uint64, opts ...jetstream.GetMsgOpt) (*jetstream.RawStreamMsg, error) {
	s.mu.Lock()
	fail := s.left > 0
	s.left--
	s.mu.Unlock()
	if fail {
		return nil, &jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}
	}
	return s.Stream.GetMsg(ctx, seq, opts...)
}

// FailPurges makes every purge of l's stream fail as a stream without a
// leader answers, until stop is called; calls counts the purges tried.
func (l *Log) FailPurges() (calls func() int, stop func()) {
	s := &failingPurge{Stream: l.stream}
	s.failing.Store(true)
	l.stream = s
	return func() int { return int(s.calls.Load()) }, func() { s.failing.Store(false) }
}

// failingPurge fails purges while failing is set.
type failingPurge struct {
	jetstream.Stream
	failing atomic.Bool
	calls   atomic.Int64
}

func (s *failingPurge) Purge(ctx context.Context, opts ...jetstream.StreamPurgeOpt) error {
	s.calls.Add(1)
	if s.failing.Load() {
		return &jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}
	}
	return s.Stream.Purge(ctx, opts...)
}
