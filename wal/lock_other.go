//go:build !unix

package wal

// readersOnly cannot tell readers from a writer here: Open fails at once
// with ErrLocked as before.
func readersOnly(string) bool { return false }
