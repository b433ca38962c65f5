// Package faultfs is a FUSE file system for tests that behaves like a disk
// that can lose power and fail: it passes every operation through to a
// backing directory, except that file data written but not yet fsynced is
// held in memory, and it can inject storage errors.
//
// It follows the idea of LazyFS, which etcd's robustness tests and Jepsen
// use: a program whose data directory is on the mount sees its own writes
// at once (reads are served from the backing file overlaid with the
// pending writes), but only fsync and fdatasync make them durable. A power
// cut (FS.Cut) unmounts, drops every pending write and mounts again: what
// is left in the backing directory is what a disk would hold after power
// came back.
//
// # Modelled
//
//   - File data: write(2) and truncate (ftruncate, O_TRUNC, setattr size)
//     are pending until fsync or fdatasync of that file (any handle), kept
//     as 4 KiB pages and a logical size. Fsync writes the pages and the
//     size to the backing file, then fdatasyncs it. Data of one file never
//     becomes durable through another file's fsync, nor at close.
//   - A pending write is lost whole at a cut: pages are not torn, and
//     writes are not reordered (all of a file's pending writes are lost,
//     never a later one kept and an earlier one dropped). That is the
//     strongest loss a cut can cause without tearing.
//   - A failed fsync (FailFsync) returns EIO and leaves the file's pending
//     pages as Linux may leave dirty pages after a writeback error: still
//     readable by the running program, marked clean, and never written by a
//     later fsync (unless written again); the file's size still reaches the
//     disk at the next fsync, as inode metadata does. A cut then loses the
//     pages. A program that retries fsync and believes its data safe is
//     caught by this.
//   - Disk full (SetQuota): a write returns ENOSPC, writing nothing, once
//     the bytes written through the mount since SetQuota would exceed the
//     quota (the kernel may split a write at a page boundary, so a caller
//     can see a short write first). The quota can be lifted at run time.
//
// # Not modelled
//
//   - Metadata is applied at once and is durable: create, mkdir, rename,
//     unlink, link, chmod, utimes. LazyFS also loses unsynced metadata (a created file that no
//     directory fsync covered may vanish; a rename may be undone). Here a
//     file created and never fsynced survives a cut, empty or holding only
//     what was fsynced, and a rename survives even if the renamed file's
//     data did not: the classic "rename over a file whose data was never
//     fsynced" failure is reproduced, the "new file vanished" one is not.
//     Directory fsync is accepted and does nothing. The relay's log (one
//     bbolt file, created once, never renamed) depends on data only.
//   - Torn writes (part of a page) and bit rot: a write is kept or lost
//     whole.
//   - Shared writable mmap: the kernel writes such pages through FUSE like
//     write(2), so they are handled, but msync is not distinguished from
//     fsync. bbolt maps its file read-only and writes with pwrite.
//   - Space: the quota counts bytes written, not blocks allocated;
//     overwriting a page costs as much as appending one.
//
// # Use
//
// Mount needs root (or CAP_SYS_ADMIN) and /dev/fuse; it mounts directly
// (no fusermount). The process serving the mount must not itself map a
// file of the mount (mmap): a page fault served by the faulting process
// can deadlock the Go runtime. Run the program under test, such as a bbolt
// user, as a child process.
//
//	fsys, err := faultfs.Mount(backing, mnt)
//	fsys.SetFsyncDelay(2 * time.Millisecond) // a disk's fsync takes time
//	// start the program with its data on mnt, let it work
//	fsys.PowerOff() // the instant of the cut: nothing more reaches the disk
//	cmd.Process.Kill(); cmd.Wait()
//	fsys.Cut() // unsynced writes are gone; a fresh mount on the same dir
//	// start it again on mnt, check what it promised
//
// Stats counts fsyncs, injected failures and the cuts that found writes
// pending (LossyCuts): a crash test can check its cuts hit those moments.
package faultfs
