//go:build unix

package wal

import (
	"os"
	"syscall"
)

// readersOnly reports whether the lock on the file at path is held only
// in shared mode (by readers), by trying a shared lock without waiting.
func readersOnly(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return false
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return true
}
