package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/wal"
)

// stateTarget is a namespace store in memory: the newest value per key,
// down while down is set.
type stateTarget struct {
	mu    sync.Mutex
	state map[string]uint64 // key -> the sequence of the value it holds
	down  atomic.Bool
	sends atomic.Int64
}

func (s *stateTarget) Send(_ context.Context, items []delivery.Item) error {
	if s.down.Load() {
		return errors.New("store down")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, it := range items {
		s.state[it.Key] = it.Seq
	}
	s.sends.Add(1)
	return nil
}

func (s *stateTarget) Close() error { return nil }

// TestNamespaceWindowsKeepNewest: records appended concurrently while a
// namespace target is down, then drained over several bounded windows,
// leave every key holding its newest record.
func TestNamespaceWindowsKeepNewest(t *testing.T) {
	heavy := 400_000
	if raceEnabled {
		heavy = 60_000 // the race detector makes it ten times slower
	}
	for _, c := range []struct {
		name            string
		coalesceEvents  int
		windowBytes     int64
		records, writer int
		pad             int
	}{
		{"events-bound", 7_000, 0, 40_000, 8, 200},
		{"bytes-bound", 0, 64 << 10, 40_000, 8, 200},
		{"heavy", 0, 0, heavy, 8, 2000},
	} {
		t.Run(c.name, func(t *testing.T) {
			l, err := wal.Open(filepath.Join(t.TempDir(), "wal.db"), wal.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			const id = "arn:minio:sqs::1:redis"
			tg := &stateTarget{state: map[string]uint64{}}
			tg.down.Store(true)
			e := delivery.New(l, delivery.Options{MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
				CoalesceEvents: c.coalesceEvents, WindowBytes: c.windowBytes})
			if err := e.Add(delivery.Spec{ID: id, Target: tg, Namespace: true, MaxBatch: 1000}); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- e.Run(ctx) }()

			const keys = 1000
			var next atomic.Int64
			var wg sync.WaitGroup
			var mu sync.Mutex
			want := map[string]uint64{} // key -> newest sequence
			for range c.writer {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						first := int(next.Add(100)) - 100
						if first >= c.records {
							return
						}
						es := make([]*wal.Entry, 100)
						for i := range es {
							k := (first + i) % keys
							es[i] = &wal.Entry{Targets: []string{id}, Key: fmt.Sprintf("b/k%04d", k), Name: "s3:ObjectCreated:Put",
								Data: []byte(fmt.Sprintf(`{"n":%d,"pad":"%0*d"}`, first+i, c.pad, 0))}
						}
						seq, err := l.Append(context.Background(), es...)
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						for i, en := range es {
							if s := seq + uint64(i); s > want[en.Key] {
								want[en.Key] = s
							}
						}
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			tg.down.Store(false)
			deadline := time.Now().Add(30 * time.Second)
			for {
				if s := e.Stats()[0]; s.Pending == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("not drained: %+v", e.Stats()[0])
				}
				time.Sleep(10 * time.Millisecond)
			}
			cancel()
			<-done
			tg.mu.Lock()
			defer tg.mu.Unlock()
			wrong := 0
			for k, s := range want {
				if tg.state[k] != s {
					if wrong < 5 {
						t.Errorf("key %s holds seq %d, want %d", k, tg.state[k], s)
					}
					wrong++
				}
			}
			if wrong > 0 || len(tg.state) != keys {
				t.Fatalf("%d of %d keys not holding their newest record (%d keys stored, %d sends)", wrong, keys, len(tg.state), tg.sends.Load())
			}
		})
	}
}
