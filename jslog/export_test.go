package jslog

import (
	"context"
	"sync"

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
