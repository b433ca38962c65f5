package logtest_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery/logtest"
	"github.com/bucketrelay/bucketrelay/wal"
)

// TestWAL runs the suite against the embedded bbolt log.
func TestWAL(t *testing.T) {
	// A run of its own: with -count=2 the last run's directories are gone.
	dirs = map[string]string{}
	logtest.Run(t, logtest.Harness{
		Features: logtest.Features{Contiguous: true},
		Open: func(t testing.TB, name string, small bool) logtest.Log {
			opts := wal.Options{CursorSyncInterval: 5 * time.Millisecond, NoSync: true}
			if small {
				opts.MaxEvents = 20
			}
			l, err := wal.Open(filepath.Join(dirFor(t), name+".db"), opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			return l
		},
	})
}

var dirs = map[string]string{}

// dirFor returns one temporary directory per top-level subtest, so a
// reopen finds the file it closed.
func dirFor(t testing.TB) string {
	if d, ok := dirs[t.Name()]; ok {
		return d
	}
	d := t.TempDir()
	dirs[t.Name()] = d
	return d
}
