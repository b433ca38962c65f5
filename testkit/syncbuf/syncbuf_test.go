package syncbuf

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// TestConcurrentWrites: lines written from many goroutines while another
// reads all arrive whole (run with -race).
func TestConcurrentWrites(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				fmt.Fprintf(&b, "line g%d i%d\n", g, i)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for reading := true; reading; {
		select {
		case <-done:
			reading = false
		default:
			_ = b.Count("line")
		}
	}
	if got := b.Count("line g"); got != 800 {
		t.Fatalf("got %d lines, want 800", got)
	}
	for _, ln := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
		var g, i int
		if n, err := fmt.Sscanf(ln, "line g%d i%d", &g, &i); n != 2 || err != nil {
			t.Fatalf("line %q: torn by a concurrent write", ln)
		}
	}
}
