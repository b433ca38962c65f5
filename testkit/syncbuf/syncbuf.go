// Package syncbuf is a buffer that goroutines write while a test reads
// it: a relay's or a log's slog output, a child process's stdout and
// stderr.
package syncbuf

import (
	"bytes"
	"strings"
	"sync"
)

// Buffer is a bytes.Buffer safe for concurrent use. Its zero value is an
// empty buffer ready to use; it must not be copied after first use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Count returns how many times s occurs in what was written so far.
func (b *Buffer) Count(s string) int { return strings.Count(b.String(), s) }

// Lines returns the lines written so far that contain s (every line for
// "").
func (b *Buffer) Lines(s string) []string {
	var out []string
	for _, ln := range strings.Split(b.String(), "\n") {
		if ln != "" && strings.Contains(ln, s) {
			out = append(out, ln)
		}
	}
	return out
}
