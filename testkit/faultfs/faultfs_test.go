package faultfs_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bucketrelay/bucketrelay/testkit/faultfs"
)

// TestMain lets the test binary run as the bbolt writer child: the process
// serving a FUSE mount must not page-fault on a mapping of it.
func TestMain(m *testing.M) {
	if os.Getenv("FAULTFS_HELPER") == "bolt" {
		boltWriter(os.Getenv("FAULTFS_DB"), os.Getenv("FAULTFS_NOSYNC") == "1")
		return
	}
	os.Exit(m.Run())
}

func mount(t *testing.T) *faultfs.FS {
	t.Helper()
	d := t.TempDir()
	return faultfs.MountTB(t, filepath.Join(d, "backing"), filepath.Join(d, "mnt"))
}

func writeAt(t *testing.T, f *os.File, s string, off int64) {
	t.Helper()
	if _, err := f.WriteAt([]byte(s), off); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCutDropsUnsyncedWrites: what was fsynced survives a cut, what was
// only written is gone, and until the cut the writer reads its own writes.
func TestCutDropsUnsyncedWrites(t *testing.T) {
	fsys := mount(t)
	a, err := os.Create(filepath.Join(fsys.Dir(), "a"))
	if err != nil {
		t.Fatal(err)
	}
	writeAt(t, a, "synced-", 0)
	if err := a.Sync(); err != nil {
		t.Fatal(err)
	}
	writeAt(t, a, "lost", 7)
	writeAt(t, a, "S", 0) // an overwrite of synced data, not synced
	b, err := os.Create(filepath.Join(fsys.Dir(), "b"))
	if err != nil {
		t.Fatal(err)
	}
	writeAt(t, b, "never synced", 0)
	if got := readFile(t, filepath.Join(fsys.Dir(), "a")); got != "Synced-lost" {
		t.Fatalf("before the cut a reads %q, want %q", got, "Synced-lost")
	}
	if st, err := os.Stat(filepath.Join(fsys.Dir(), "b")); err != nil || st.Size() != 12 {
		t.Fatalf("before the cut b's size is %v (%v), want 12", st.Size(), err)
	}
	if got := readFile(t, filepath.Join(fsys.Backing(), "a")); got != "synced-" {
		t.Fatalf("backing a holds %q before the cut, want only the synced %q", got, "synced-")
	}
	a.Close()
	b.Close()
	if fsys.PendingBytes() == 0 {
		t.Fatal("PendingBytes is 0 with unsynced writes")
	}
	if err := fsys.Cut(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(fsys.Dir(), "a")); got != "synced-" {
		t.Fatalf("after the cut a reads %q, want %q", got, "synced-")
	}
	// Metadata is applied at once: b exists, without its data.
	if got := readFile(t, filepath.Join(fsys.Dir(), "b")); got != "" {
		t.Fatalf("after the cut b reads %q, want empty", got)
	}
	if s := fsys.Stats(); s.Cuts != 1 || s.DroppedBytes == 0 || s.Fsyncs != 1 {
		t.Fatalf("stats %+v, want 1 cut, 1 fsync, dropped bytes", s)
	}
}

// TestCutOverlayPagesAndTruncate: partial pages, writes across page
// boundaries, a truncate and an extension read back as a plain file would,
// through the mount before fsync and in the backing file after it.
func TestCutOverlayPagesAndTruncate(t *testing.T) {
	fsys := mount(t)
	name := filepath.Join(fsys.Dir(), "f")
	want := make([]byte, 3*4096+100)
	for i := range want {
		want[i] = byte('a' + i%26)
	}
	if err := os.WriteFile(name, want, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 200; i++ {
		switch op := rng.Intn(10); {
		case op < 7:
			off := rng.Intn(len(want) + 5000)
			b := make([]byte, 1+rng.Intn(9000))
			rng.Read(b)
			writeAt(t, f, string(b), int64(off))
			if off+len(b) > len(want) {
				want = append(want, make([]byte, off+len(b)-len(want))...)
			}
			copy(want[off:], b)
		case op < 9:
			sz := rng.Intn(len(want) + 5000)
			if err := f.Truncate(int64(sz)); err != nil {
				t.Fatal(err)
			}
			if sz < len(want) {
				want = want[:sz]
			} else {
				want = append(want, make([]byte, sz-len(want))...)
			}
		default:
			if err := f.Sync(); err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(filepath.Join(fsys.Backing(), "f")); !bytes.Equal(got, want) {
				t.Fatalf("step %d: backing file differs after fsync (len %d, want %d)", i, len(got), len(want))
			}
		}
		got, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("step %d: read %d bytes through the mount, want %d (equal prefix %d)", i, len(got), len(want), commonPrefix(got, want))
		}
	}
}

func commonPrefix(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// TestFaultFsyncEIO: an injected fsync failure reaches the writer as EIO;
// the data stays readable but is not durable, even after a later fsync
// succeeds, as after a real writeback error.
func TestFaultFsyncEIO(t *testing.T) {
	fsys := mount(t)
	f, err := os.Create(filepath.Join(fsys.Dir(), "wal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	writeAt(t, f, "one", 0)
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	fsys.FailFsync("wal.db", 1)
	writeAt(t, f, "two", 3)
	if err := f.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("fsync after FailFsync returned %v, want EIO", err)
	}
	if err := syscall.Fdatasync(int(f.Fd())); err != nil {
		t.Fatalf("second fdatasync returned %v, want success (only 1 was to fail)", err)
	}
	if got := readFile(t, f.Name()); got != "onetwo" {
		t.Fatalf("reads %q after the failed fsync, want %q", got, "onetwo")
	}
	// The size change is metadata and does reach the disk (as on ext4),
	// the failed fsync's data does not.
	if got := readFile(t, filepath.Join(fsys.Backing(), "wal.db")); got != "one\x00\x00\x00" {
		t.Fatalf("backing holds %q, want %q: a failed fsync's data must not become durable", got, "one\x00\x00\x00")
	}
	// Every fsync fails until the rule is removed.
	fsys.FailFsync("*.db", -1)
	for i := 0; i < 3; i++ {
		if err := f.Sync(); !errors.Is(err, syscall.EIO) {
			t.Fatalf("fsync %d with FailFsync(-1) returned %v, want EIO", i, err)
		}
	}
	fsys.FailFsync("*.db", 0)
	writeAt(t, f, "three", 8192) // another page: page 0 stays as the failed fsync left it
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := fsys.Cut(); err != nil {
		t.Fatal(err)
	}
	// "two" was never written again, so it is gone; "three" was synced.
	want := "one" + string(make([]byte, 8192-3)) + "three"
	if got := readFile(t, filepath.Join(fsys.Dir(), "wal.db")); got != want {
		t.Fatalf("after the cut reads %q, want %q", got, want)
	}
	if s := fsys.Stats(); s.FailedFsyncs != 4 {
		t.Fatalf("FailedFsyncs = %d, want 4", s.FailedFsyncs)
	}
}

// TestFaultQuotaENOSPC: past the quota a write fails with ENOSPC and writes
// nothing; lifting the quota at run time lets writes through again.
func TestFaultQuotaENOSPC(t *testing.T) {
	fsys := mount(t)
	f, err := os.Create(filepath.Join(fsys.Dir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fsys.SetQuota(10_000)
	if _, err := f.Write(make([]byte, 8000)); err != nil {
		t.Fatalf("write under the quota: %v", err)
	}
	_, err = f.Write(make([]byte, 4000))
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write past the quota returned %v, want ENOSPC", err)
	}
	// The kernel may split the write at a page boundary: the part that
	// fit is written (a short write), the rest is refused.
	if st, _ := f.Stat(); st.Size() > 10_000 {
		t.Fatalf("size %d after the refused write, want at most the quota 10000", st.Size())
	}
	fsys.SetQuota(-1)
	if _, err := f.Write(make([]byte, 4000)); err != nil {
		t.Fatalf("write after the quota was lifted: %v", err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if s := fsys.Stats(); s.NoSpaceWrites == 0 {
		t.Fatal("NoSpaceWrites = 0, want the refused write counted")
	}
}

// TestBoltSurvivesCuts runs a bbolt writer (a child process) on the mount,
// cuts power under it at random moments and checks that every transaction
// whose Commit returned is in the file. The same run with NoSync must lose
// committed transactions: the cut is real.
func TestBoltSurvivesCuts(t *testing.T) {
	for _, noSync := range []bool{false, true} {
		t.Run(fmt.Sprintf("noSync=%v", noSync), func(t *testing.T) {
			fsys := mount(t)
			fsys.SetFsyncDelay(time.Millisecond)
			rng := rand.New(rand.NewSource(time.Now().UnixNano()))
			lost, committed := 0, 0
			for cut := 0; cut < 6; cut++ {
				acked := runBoltWriter(t, fsys, noSync, time.Duration(100+rng.Intn(200))*time.Millisecond)
				if err := fsys.Cut(); err != nil {
					t.Fatal(err)
				}
				committed += len(acked)
				keys, err := boltKeys(filepath.Join(fsys.Backing(), "db"), !noSync)
				if err != nil {
					if noSync {
						t.Logf("cut %d: the NoSync database does not open: %v", cut, err)
						lost += len(acked)
						os.Remove(filepath.Join(fsys.Backing(), "db"))
						continue
					}
					t.Fatalf("cut %d: database does not open after the cut: %v", cut, err)
				}
				for _, k := range acked {
					if !keys[k] {
						lost++
					}
				}
			}
			if committed < 20 {
				t.Fatalf("only %d transactions committed: the writer did not run", committed)
			}
			switch {
			case !noSync && lost > 0:
				t.Fatalf("%d of %d committed transactions lost over 6 cuts", lost, committed)
			case noSync && lost == 0:
				t.Fatalf("NoSync lost none of %d committed transactions: the cut drops nothing", committed)
			}
			t.Logf("%d transactions committed, %d lost, %+v", committed, lost, fsys.Stats())
		})
	}
}

// runBoltWriter runs the writer child for d, kills it with SIGKILL and
// returns the keys it reported committed.
func runBoltWriter(t *testing.T, fsys *faultfs.FS, noSync bool, d time.Duration) []uint64 {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "FAULTFS_HELPER=bolt", "FAULTFS_DB="+filepath.Join(fsys.Dir(), "db"), "FAULTFS_NOSYNC="+map[bool]string{true: "1"}[noSync])
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	keys := make(chan []uint64)
	ready := make(chan struct{})
	go func() {
		var ks []uint64
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "ready" {
				close(ready)
			} else if k, err := strconv.ParseUint(sc.Text(), 10, 64); err == nil {
				ks = append(ks, k)
			}
		}
		keys <- ks
	}()
	select {
	case <-ready:
	case <-time.After(20 * time.Second):
		t.Error("the bbolt writer did not open its database in 20s")
	}
	time.Sleep(d)
	fsys.PowerOff()
	cmd.Process.Kill()
	ks := <-keys
	cmd.Wait()
	if len(ks) == 0 {
		t.Errorf("the bbolt writer committed nothing in %v; stderr: %s", d, stderr.String())
	}
	return ks
}

// boltWriter commits one key per transaction, each with a 2 KiB value,
// and prints the key once Commit returned, until killed.
func boltWriter(path string, noSync bool) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoSync: noSync})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var next uint64
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("k"))
		if err != nil {
			return err
		}
		if k, _ := b.Cursor().Last(); k != nil {
			next = binary.BigEndian.Uint64(k) + 1
		}
		return nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stdout, "ready")
	val := bytes.Repeat([]byte("v"), 2048)
	for ; ; next++ {
		err := db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("k")).Put(binary.BigEndian.AppendUint64(nil, next), val)
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Fprintln(os.Stdout, next)
	}
}

// boltKeys opens the backing file directly (not through the mount) and
// returns its keys, after a consistency check if check is set. A damaged
// file that makes bbolt panic is an error.
func boltKeys(path string, check bool) (keys map[uint64]bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("bbolt panicked: %v", p)
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	keys = map[uint64]bool{}
	err = db.View(func(tx *bolt.Tx) error {
		if check {
			for err := range tx.Check() {
				return err
			}
		}
		b := tx.Bucket([]byte("k"))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, _ []byte) error {
			keys[binary.BigEndian.Uint64(k)] = true
			return nil
		})
	})
	return keys, err
}

// TestCutWithFileHeldOpen: a file still open at the cut (a process that
// was not killed) does not stop the cut; its descriptor fails from then on
// and the new mount serves the durable content.
func TestCutWithFileHeldOpen(t *testing.T) {
	fsys := mount(t)
	name := filepath.Join(fsys.Dir(), "held")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	writeAt(t, f, "durable", 0)
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	writeAt(t, f, "-pending", 7)
	if err := fsys.Cut(); err != nil {
		t.Fatalf("cut with a file held open: %v", err)
	}
	if _, err := f.WriteAt([]byte("late"), 0); err == nil {
		t.Fatal("a write through a descriptor opened before the cut succeeded, want an error")
	}
	if got := readFile(t, name); got != "durable" {
		t.Fatalf("after the cut reads %q, want %q", got, "durable")
	}
}
