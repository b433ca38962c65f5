package wal_test

import (
	"path/filepath"
	"regexp"
	"testing"

	"github.com/bucketrelay/bucketrelay/wal"
)

// TestLogIDPersists: a new log draws a 16-hex-digit id; it survives
// reopening, also read-only; two logs differ.
func TestLogIDPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wal.db")
	l, err := wal.Open(path, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	id := l.ID()
	l.Close()
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(id) {
		t.Fatalf("ID() = %q, want 16 hex digits", id)
	}
	l, err = wal.Open(path, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := l.ID(); got != id {
		t.Errorf("after reopening: ID() = %q, want %q", got, id)
	}
	l.Close()
	ro, err := wal.OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := ro.ID(); got != id {
		t.Errorf("read-only: ID() = %q, want %q", got, id)
	}
	ro.Close()
	other, err := wal.Open(filepath.Join(t.TempDir(), "wal.db"), wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if other.ID() == id {
		t.Errorf("two logs share the id %s", id)
	}
	if got := wal.EventID(id, 42); got != id+"-42" {
		t.Errorf("EventID = %q, want %q", got, id+"-42")
	}
}
