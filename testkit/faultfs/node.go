package faultfs

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// mount is the state of one mount: what a cut throws away.
type mount struct {
	fsys *FS
	dead atomic.Bool // set at a cut: every operation fails from then on

	mu    sync.Mutex
	files map[uint64]*overlay // by inode number; kept until unlinked
	opens map[uint64]int
}

func newMount(fsys *FS) *mount {
	return &mount{fsys: fsys, files: map[uint64]*overlay{}, opens: map[uint64]int{}}
}

func (m *mount) get(ino uint64) *overlay {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.files[ino]
}

// getOrCreate returns ino's overlay, creating it over a backing file of
// the size size() returns.
func (m *mount) getOrCreate(ino uint64, size func() (int64, syscall.Errno)) (*overlay, syscall.Errno) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if o := m.files[ino]; o != nil {
		return o, 0
	}
	sz, e := size()
	if e != 0 {
		return nil, e
	}
	o := newOverlay(sz)
	m.files[ino] = o
	return o, 0
}

// forget drops the overlay of a file whose last name went away. An open
// file keeps its overlay until its last handle is released.
func (m *mount) forget(ino uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.opens[ino] > 0 {
		if o := m.files[ino]; o != nil {
			o.gone = true
		}
		return
	}
	delete(m.files, ino)
}

func (m *mount) opened(ino uint64) {
	m.mu.Lock()
	m.opens[ino]++
	m.mu.Unlock()
}

func (m *mount) released(ino uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.opens[ino]--
	if m.opens[ino] > 0 {
		return
	}
	delete(m.opens, ino)
	if o := m.files[ino]; o != nil && o.gone {
		delete(m.files, ino)
	}
}

func (m *mount) pendingBytes() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for _, o := range m.files {
		o.mu.Lock()
		n += o.pendingBytes()
		o.mu.Unlock()
	}
	return n
}

// node is a loopback node whose regular files keep unsynced data in an
// overlay. Metadata operations pass through to the backing directory.
type node struct {
	*fs.LoopbackNode
	m *mount
}

var (
	_ fs.NodeWrapChilder = (*node)(nil)
	_ fs.NodeOpener      = (*node)(nil)
	_ fs.NodeCreater     = (*node)(nil)
	_ fs.NodeGetattrer   = (*node)(nil)
	_ fs.NodeSetattrer   = (*node)(nil)
	_ fs.NodeStatxer     = (*node)(nil)
	_ fs.NodeFsyncer     = (*node)(nil)
	_ fs.NodeLookuper    = (*node)(nil)
	_ fs.NodeUnlinker    = (*node)(nil)
	_ fs.NodeRenamer     = (*node)(nil)
)

// WrapChild makes every node of the tree a *node.
func (n *node) WrapChild(_ context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	return &node{LoopbackNode: ops.(*fs.LoopbackNode), m: n.m}
}

func (n *node) ino() uint64 { return n.StableAttr().Ino }

func (n *node) rel() string { return n.Path(n.RootData.RootNode.EmbeddedInode()) }

func (n *node) path() string { return filepath.Join(n.RootData.Path, n.rel()) }

func (n *node) backingSize() (int64, syscall.Errno) {
	var st syscall.Stat_t
	if err := syscall.Lstat(n.path(), &st); err != nil {
		return 0, errno(err)
	}
	return st.Size, 0
}

// patch puts the logical size of ino's overlay into attributes read from
// the backing file.
func (m *mount) patch(ino uint64, a *fuse.Attr) {
	if o := m.get(ino); o != nil {
		o.mu.Lock()
		a.Size = uint64(o.size)
		a.Blocks = (a.Size + 511) / 512
		o.mu.Unlock()
	}
}

// Lookup reports the logical size of a file with pending writes.
func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if n.m.dead.Load() {
		return nil, syscall.EIO
	}
	ch, e := n.LoopbackNode.Lookup(ctx, name, out)
	if e == 0 {
		n.m.patch(ch.StableAttr().Ino, &out.Attr)
	}
	return ch, e
}

// Open opens the backing file read-write whatever the flags, so the
// overlay can read backing pages and fsync can write them; O_TRUNC is
// pending like any truncate.
func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if n.m.dead.Load() {
		return nil, 0, syscall.EIO
	}
	fl := flags&^(syscall.O_ACCMODE|syscall.O_TRUNC|syscall.O_APPEND|syscall.O_CREAT|syscall.O_EXCL) | syscall.O_RDWR
	fh, _, e := n.LoopbackNode.Open(ctx, fl)
	if e != 0 {
		return nil, 0, e
	}
	h, e := n.newHandle(fh)
	if e != 0 {
		return nil, 0, e
	}
	if flags&syscall.O_TRUNC != 0 {
		if e := h.truncate(0); e != 0 {
			h.Release(ctx)
			return nil, 0, e
		}
	}
	return h, 0, 0
}

// Create creates the file in the backing directory at once (metadata is
// not delayed).
func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	if n.m.dead.Load() {
		return nil, nil, 0, syscall.EIO
	}
	fl := flags&^(syscall.O_ACCMODE|syscall.O_TRUNC|syscall.O_APPEND) | syscall.O_RDWR
	ch, fh, _, e := n.LoopbackNode.Create(ctx, name, fl, mode, out)
	if e != 0 {
		return nil, nil, 0, e
	}
	child, ok := ch.Operations().(*node)
	if !ok { // every node is wrapped (WrapChild): cannot happen
		if r, ok := fh.(fs.FileReleaser); ok {
			r.Release(ctx)
		}
		return nil, nil, 0, syscall.EIO
	}
	h, e := child.newHandle(fh)
	if e != 0 {
		return nil, nil, 0, e
	}
	if flags&syscall.O_TRUNC != 0 {
		if e := h.truncate(0); e != 0 {
			h.Release(ctx)
			return nil, nil, 0, e
		}
	}
	n.m.patch(child.ino(), &out.Attr)
	return ch, h, 0, 0
}

func (n *node) newHandle(fh fs.FileHandle) (*handle, syscall.Errno) {
	lf, ok := fh.(*fs.LoopbackFile)
	if !ok {
		return nil, syscall.EIO
	}
	fd, ok := lf.PassthroughFd()
	if !ok {
		lf.Release(context.Background())
		return nil, syscall.EBADF
	}
	n.m.opened(n.ino())
	return &handle{lf: lf, fd: fd, n: n}, 0
}

// Getattr reports the logical size.
func (n *node) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if n.m.dead.Load() {
		return syscall.EIO
	}
	if h, ok := f.(*handle); ok {
		return h.Getattr(ctx, out)
	}
	if e := n.LoopbackNode.Getattr(ctx, nil, out); e != 0 {
		return e
	}
	n.m.patch(n.ino(), &out.Attr)
	return 0
}

// Statx reports the logical size.
func (n *node) Statx(ctx context.Context, f fs.FileHandle, flags, mask uint32, out *fuse.StatxOut) syscall.Errno {
	if n.m.dead.Load() {
		return syscall.EIO
	}
	if e := n.LoopbackNode.Statx(ctx, nil, flags, mask, out); e != 0 {
		return e
	}
	if o := n.m.get(n.ino()); o != nil {
		o.mu.Lock()
		out.Size = uint64(o.size)
		out.Blocks = (out.Size + 511) / 512
		o.mu.Unlock()
	}
	return 0
}

// Setattr makes a size change pending; other attributes pass through.
func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if n.m.dead.Load() {
		return syscall.EIO
	}
	if sz, ok := in.GetSize(); ok {
		var e syscall.Errno
		if h, ok := f.(*handle); ok {
			e = h.truncate(int64(sz))
		} else {
			var o *overlay
			if o, e = n.m.getOrCreate(n.ino(), n.backingSize); e == 0 {
				o.mu.Lock()
				o.truncate(int64(sz))
				o.mu.Unlock()
			}
		}
		if e != 0 {
			return e
		}
	}
	rest := *in
	rest.Valid &^= fuse.FATTR_SIZE
	if e := n.LoopbackNode.Setattr(ctx, nil, &rest, out); e != 0 {
		return e
	}
	n.m.patch(n.ino(), &out.Attr)
	return 0
}

// Fsync makes a file's pending writes durable. A directory's fsync does
// nothing (metadata is applied at once) but can be made to fail.
func (n *node) Fsync(ctx context.Context, f fs.FileHandle, flags uint32) syscall.Errno {
	if n.m.dead.Load() {
		return syscall.EIO
	}
	if h, ok := f.(*handle); ok {
		return h.Fsync(ctx, flags)
	}
	if n.m.fsys.fsyncFails(n.rel()) {
		return syscall.EIO
	}
	return 0
}

// Unlink drops the overlay of a file whose last link goes.
func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	if n.m.dead.Load() {
		return syscall.EIO
	}
	var st syscall.Stat_t
	lerr := syscall.Lstat(filepath.Join(n.path(), name), &st)
	if e := n.LoopbackNode.Unlink(ctx, name); e != 0 {
		return e
	}
	if lerr == nil && st.Nlink <= 1 {
		n.m.forget(st.Ino)
	}
	return 0
}

// Rename drops the overlay of a file the rename replaces.
func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if n.m.dead.Load() {
		return syscall.EIO
	}
	np, ok := newParent.(*node)
	if !ok {
		return syscall.EXDEV
	}
	var src, dst syscall.Stat_t
	serr := syscall.Lstat(filepath.Join(n.path(), name), &src)
	derr := syscall.Lstat(filepath.Join(np.path(), newName), &dst)
	if e := n.LoopbackNode.Rename(ctx, name, newParent, newName, flags); e != 0 {
		return e
	}
	const exchange = 2 // RENAME_EXCHANGE: both files stay
	if derr == nil && serr == nil && dst.Ino != src.Ino && dst.Nlink <= 1 && flags&exchange == 0 {
		n.m.forget(dst.Ino)
	}
	return 0
}

// handle is an open regular file.
type handle struct {
	lf *fs.LoopbackFile // owns fd
	fd int
	n  *node
}

var (
	_ fs.FileReader    = (*handle)(nil)
	_ fs.FileWriter    = (*handle)(nil)
	_ fs.FileFsyncer   = (*handle)(nil)
	_ fs.FileFlusher   = (*handle)(nil)
	_ fs.FileReleaser  = (*handle)(nil)
	_ fs.FileGetattrer = (*handle)(nil)
)

func (h *handle) fstatSize() (int64, syscall.Errno) {
	var st syscall.Stat_t
	if err := syscall.Fstat(h.fd, &st); err != nil {
		return 0, errno(err)
	}
	return st.Size, 0
}

func (h *handle) overlay() (*overlay, syscall.Errno) {
	return h.n.m.getOrCreate(h.n.ino(), h.fstatSize)
}

func (h *handle) truncate(size int64) syscall.Errno {
	o, e := h.overlay()
	if e != 0 {
		return e
	}
	o.mu.Lock()
	o.truncate(size)
	o.mu.Unlock()
	return 0
}

// Read serves the backing file overlaid with the pending writes.
func (h *handle) Read(_ context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	m := h.n.m
	if m.dead.Load() {
		return nil, syscall.EIO
	}
	o := m.get(h.n.ino())
	if o == nil {
		return fuse.ReadResultFd(uintptr(h.fd), off, len(dest)), 0
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	k, e := o.read(h.fd, dest, off)
	if e != 0 {
		return nil, e
	}
	return fuse.ReadResultData(dest[:k]), 0
}

// Write keeps data in memory until the next fsync, or fails with ENOSPC
// when the quota is spent.
func (h *handle) Write(_ context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	m := h.n.m
	if m.dead.Load() {
		return 0, syscall.EIO
	}
	if !m.fsys.spend(int64(len(data))) {
		return 0, syscall.ENOSPC
	}
	o, e := h.overlay()
	if e != 0 {
		return 0, e
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if e := o.write(h.fd, data, off); e != 0 {
		return 0, e
	}
	return uint32(len(data)), 0
}

// Fsync applies the file's pending writes to the backing file, or fails
// with EIO when a FailFsync rule says so (the pending pages are then lost
// for durability, as after a real writeback error).
func (h *handle) Fsync(_ context.Context, _ uint32) syscall.Errno {
	m := h.n.m
	if m.dead.Load() {
		return syscall.EIO
	}
	o := m.get(h.n.ino())
	if m.fsys.fsyncFails(h.n.rel()) {
		if o != nil {
			o.mu.Lock()
			o.lose()
			o.mu.Unlock()
		}
		return syscall.EIO
	}
	if o == nil {
		return 0
	}
	if d := m.fsys.fsyncDelay(); d > 0 {
		time.Sleep(d)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if m.dead.Load() { // a cut came while waiting: nothing reaches the disk
		return syscall.EIO
	}
	return o.apply(h.fd)
}

// Flush does nothing: close(2) makes nothing durable.
func (h *handle) Flush(context.Context) syscall.Errno { return 0 }

// Release closes the backing file; pending writes stay pending.
func (h *handle) Release(ctx context.Context) syscall.Errno {
	e := h.lf.Release(ctx)
	h.n.m.released(h.n.ino())
	return e
}

// Getattr reports the logical size.
func (h *handle) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	if e := h.lf.Getattr(ctx, out); e != 0 {
		return e
	}
	h.n.m.patch(h.n.ino(), &out.Attr)
	return 0
}
