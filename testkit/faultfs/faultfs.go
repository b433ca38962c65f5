package faultfs

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// FS is a mounted fault-injecting file system. Its methods are safe for
// concurrent use; Cut and Unmount must not run while a process the test
// cares about still writes to the mount (kill it first).
type FS struct {
	backing, dir string

	mu     sync.Mutex // serializes Cut and Unmount
	server *fuse.Server
	cur    *mount

	faultMu sync.Mutex
	rules   []fsyncRule
	quota   int64 // -1: none
	spent   int64
	delay   time.Duration
	stats   Stats
}

// Stats counts what the file system did since Mount.
type Stats struct {
	// Fsyncs is the fsync and fdatasync calls that succeeded.
	Fsyncs int64
	// FailedFsyncs is the fsyncs FailFsync made fail with EIO.
	FailedFsyncs int64
	// NoSpaceWrites is the writes the quota refused with ENOSPC.
	NoSpaceWrites int64
	// Cuts is the number of Cut calls.
	Cuts int64
	// LossyCuts is the cuts that dropped pending data: those that came
	// between a write and its fsync.
	LossyCuts int64
	// DroppedBytes is the pending data the cuts threw away, in pages of
	// 4 KiB.
	DroppedBytes int64
}

type fsyncRule struct {
	pattern string
	n       int // fsyncs still to fail; <0: all
}

// Mount mounts a faultfs at mountDir passing through to backingDir (both
// are created if missing). It needs root and /dev/fuse; see Available.
func Mount(backingDir, mountDir string) (*FS, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	var err error
	f := &FS{quota: -1}
	if f.backing, err = filepath.Abs(backingDir); err != nil {
		return nil, fmt.Errorf("faultfs: %w", err)
	}
	if f.dir, err = filepath.Abs(mountDir); err != nil {
		return nil, fmt.Errorf("faultfs: %w", err)
	}
	for _, d := range []string{f.backing, f.dir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("faultfs: %w", err)
		}
	}
	if err := f.mount(); err != nil {
		return nil, err
	}
	return f, nil
}

// MountTB mounts for a test and unmounts when it ends. Where FUSE is not
// usable it skips the test, or fails it when the CI environment variable
// is "true".
func MountTB(tb testing.TB, backingDir, mountDir string) *FS {
	tb.Helper()
	if err := Available(); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("faultfs: %v (CI needs root and /dev/fuse)", err)
		}
		tb.Skipf("faultfs: %v", err)
	}
	f, err := Mount(backingDir, mountDir)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := f.Unmount(); err != nil {
			tb.Errorf("faultfs: unmount: %v", err)
		}
	})
	return f
}

// Available returns nil when this process can mount: it runs as root and
// /dev/fuse opens.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("faultfs: mounting needs root")
	}
	fd, err := syscall.Open("/dev/fuse", syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("faultfs: /dev/fuse: %w", err)
	}
	syscall.Close(fd)
	return nil
}

// Dir returns the mount point.
func (f *FS) Dir() string { return f.dir }

// Backing returns the backing directory: what is durable. Read it only
// between Cut (or Unmount) and the next start of the program under test.
func (f *FS) Backing() string { return f.backing }

func (f *FS) mount() error {
	lb, err := fs.NewLoopbackRoot(f.backing)
	if err != nil {
		return fmt.Errorf("faultfs: %w", err)
	}
	m := newMount(f)
	root := &node{LoopbackNode: lb.(*fs.LoopbackNode), m: m}
	zero := time.Duration(0)
	srv, err := fs.Mount(f.dir, root, &fs.Options{
		// No attribute or entry caching: sizes change under the kernel
		// at a cut, and the logical size is the overlay's.
		AttrTimeout:  &zero,
		EntryTimeout: &zero,
		MountOptions: fuse.MountOptions{
			DirectMount: true,
			FsName:      "faultfs",
			Name:        "faultfs",
			// Passthrough would let the kernel write the backing file
			// directly, around the overlay.
			DisabledCapabilities: fuse.CAP_PASSTHROUGH,
		},
	})
	if err != nil {
		return fmt.Errorf("faultfs: mount %s: %w", f.dir, err)
	}
	f.server, f.cur = srv, m
	return nil
}

// powerOff marks the mount dead, so nothing more reaches the backing
// directory, and waits for an fsync applying pages (it holds its
// overlay's lock) to finish.
func (m *mount) powerOff() {
	m.dead.Store(true)
	m.mu.Lock()
	for _, o := range m.files {
		o.mu.Lock()
		o.mu.Unlock() //nolint:staticcheck // empty critical section on purpose
	}
	m.mu.Unlock()
}

// unmount ends the current mount after powering it off.
func (f *FS) unmount() error {
	if f.server == nil {
		return nil
	}
	f.cur.powerOff()
	err := f.server.Unmount()
	if err != nil {
		// Something still holds a file open: detach lazily. The mount is
		// dead, so whatever it still does fails with EIO.
		if derr := syscall.Unmount(f.dir, syscall.MNT_DETACH); derr != nil {
			return fmt.Errorf("faultfs: unmount %s: %w (detach: %v)", f.dir, err, derr)
		}
	}
	f.server, f.cur = nil, nil
	return nil
}

// PowerOff is the instant of a power cut: from now on nothing reaches the
// backing directory and every operation on the mount fails with EIO. An
// fsync in flight either finished before (its data is durable) or fails.
// Call it just before killing the processes using the mount, then Cut:
// without it, an fsync the kernel already passed to the file system
// completes after the kill, and the cut misses that moment.
func (f *FS) PowerOff() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cur != nil {
		f.cur.powerOff()
	}
}

// Cut simulates a power cut: the caller has killed (SIGKILL) every
// process using the mount and waited for it (calling PowerOff before the
// kill makes the cut's instant exact). Cut powers off if PowerOff was not
// called, unmounts, drops every write not yet fsynced, and mounts a fresh
// file system on the same directory over the same backing directory.
// Fault settings (FailFsync, SetQuota, SetFsyncDelay) stay as they were.
func (f *FS) Cut() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.server == nil {
		return errors.New("faultfs: not mounted")
	}
	f.cur.powerOff()
	dropped := f.cur.pendingBytes()
	if err := f.unmount(); err != nil {
		return err
	}
	f.faultMu.Lock()
	f.stats.Cuts++
	if dropped > 0 {
		f.stats.LossyCuts++
	}
	f.stats.DroppedBytes += dropped
	f.faultMu.Unlock()
	return f.mount()
}

// Unmount unmounts, dropping writes not fsynced as a cut would. It is a
// no-op when not mounted.
func (f *FS) Unmount() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.unmount()
}

// FailFsync makes the next n fsyncs (and fdatasyncs) of files matching
// pattern fail with EIO; n < 0 makes all of them fail and n == 0 removes
// the pattern's rule. pattern is a path.Match pattern tried against the
// file's path relative to the mount root and against its base name
// ("wal.db", "data/*.db"). The failed fsync's pending pages are lost for
// durability (see the package doc).
func (f *FS) FailFsync(pattern string, n int) {
	if _, err := path.Match(pattern, ""); err != nil {
		panic(fmt.Sprintf("faultfs: bad pattern %q: %v", pattern, err))
	}
	f.faultMu.Lock()
	defer f.faultMu.Unlock()
	rules := f.rules[:0]
	for _, r := range f.rules {
		if r.pattern != pattern {
			rules = append(rules, r)
		}
	}
	f.rules = rules
	if n != 0 {
		f.rules = append(f.rules, fsyncRule{pattern: pattern, n: n})
	}
}

// fsyncFails reports whether an fsync of the file at rel must fail, and
// counts it.
func (f *FS) fsyncFails(rel string) bool {
	f.faultMu.Lock()
	defer f.faultMu.Unlock()
	for i := range f.rules {
		r := &f.rules[i]
		if r.n == 0 {
			continue
		}
		ok1, _ := path.Match(r.pattern, rel)
		ok2, _ := path.Match(r.pattern, path.Base(rel))
		if !ok1 && !ok2 {
			continue
		}
		if r.n > 0 {
			r.n--
		}
		f.stats.FailedFsyncs++
		return true
	}
	f.stats.Fsyncs++
	return false
}

// SetQuota makes writes fail with ENOSPC once the bytes written through
// the mount from now on would exceed bytes: SetQuota(0) fails every write
// at once. A negative value lifts the quota.
func (f *FS) SetQuota(bytes int64) {
	f.faultMu.Lock()
	defer f.faultMu.Unlock()
	f.quota, f.spent = bytes, 0
}

// spend accounts for a write of n bytes, or reports false (ENOSPC).
func (f *FS) spend(n int64) bool {
	f.faultMu.Lock()
	defer f.faultMu.Unlock()
	if f.quota >= 0 && f.spent+n > f.quota {
		f.stats.NoSpaceWrites++
		return false
	}
	f.spent += n
	return true
}

// SetFsyncDelay makes every fsync of a file wait d before it applies the
// pending writes, as a slow disk would; 0 (the default) removes the delay.
// A longer fsync widens the moments at which a cut finds writes pending.
func (f *FS) SetFsyncDelay(d time.Duration) {
	f.faultMu.Lock()
	defer f.faultMu.Unlock()
	f.delay = d
}

func (f *FS) fsyncDelay() time.Duration {
	f.faultMu.Lock()
	defer f.faultMu.Unlock()
	return f.delay
}

// Stats returns the counters since Mount.
func (f *FS) Stats() Stats {
	f.faultMu.Lock()
	defer f.faultMu.Unlock()
	return f.stats
}

// PendingBytes is the data a cut would drop now, in pages of 4 KiB.
func (f *FS) PendingBytes() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cur == nil {
		return 0
	}
	return f.cur.pendingBytes()
}
