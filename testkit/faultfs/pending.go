package faultfs

import (
	"sync"
	"syscall"
)

const pageSize = 4096

// page is one page of a file held in memory.
type page struct {
	b []byte // pageSize bytes
	// dirty pages are written to the backing file at the next fsync. A page
	// that is not dirty is an overlay only: its fsync failed, so (as Linux
	// may after a writeback error) it is readable but will never be written
	// unless written again.
	dirty bool
}

// overlay is what one file holds in memory above its backing file: the
// pages written since the last fsync and its logical size. Its methods
// take the backing file's descriptor; they are called with mu held.
//
// Invariant: lim <= size. Backing data is valid in [0, lim); beyond lim
// (after a pending truncate) the file reads as zeros unless a page holds
// data.
type overlay struct {
	mu    sync.Mutex
	pages map[int64]*page
	size  int64 // logical size, as the program sees it
	lim   int64
	opens int  // open handles
	gone  bool // unlinked while open: dropped at the last release
}

func newOverlay(backingSize int64) *overlay {
	return &overlay{pages: map[int64]*page{}, size: backingSize, lim: backingSize}
}

// pending reports whether anything is not yet applied to the backing file.
func (o *overlay) pending() bool {
	if o.lim != o.size {
		return true
	}
	for _, p := range o.pages {
		if p.dirty {
			return true
		}
	}
	return false
}

// pendingBytes is the data a cut would lose now: dirty pages and lost ones.
func (o *overlay) pendingBytes() int64 {
	return int64(len(o.pages)) * pageSize
}

// read fills buf from offset off: backing data below lim, zeros above it,
// pages on top.
func (o *overlay) read(fd int, buf []byte, off int64) (int, syscall.Errno) {
	if off >= o.size {
		return 0, 0
	}
	n := int(min(int64(len(buf)), o.size-off))
	buf = buf[:n]
	m := 0
	if off < o.lim {
		want := int(min(int64(n), o.lim-off))
		for m < want {
			k, err := syscall.Pread(fd, buf[m:want], off+int64(m))
			if err != nil {
				return 0, errno(err)
			}
			if k == 0 {
				break
			}
			m += k
		}
	}
	clear(buf[m:])
	for pi := off / pageSize; pi*pageSize < off+int64(n); pi++ {
		p := o.pages[pi]
		if p == nil {
			continue
		}
		start := pi * pageSize
		lo, hi := max(start, off), min(start+pageSize, off+int64(n))
		copy(buf[lo-off:hi-off], p.b[lo-start:hi-start])
	}
	return n, 0
}

// write puts data at off into pages, reading a page's backing data first
// when data covers it only in part.
func (o *overlay) write(fd int, data []byte, off int64) syscall.Errno {
	end := off + int64(len(data))
	for pi := off / pageSize; pi*pageSize < end; pi++ {
		start := pi * pageSize
		lo, hi := max(start, off), min(start+pageSize, end)
		p := o.pages[pi]
		if p == nil {
			p = &page{b: make([]byte, pageSize)}
			if (lo > start || hi < start+pageSize) && start < o.lim {
				want := int(min(pageSize, o.lim-start))
				for m := 0; m < want; {
					k, err := syscall.Pread(fd, p.b[m:want], start+int64(m))
					if err != nil {
						return errno(err)
					}
					if k == 0 {
						break
					}
					m += k
				}
			}
			o.pages[pi] = p
		}
		copy(p.b[lo-start:hi-start], data[lo-off:hi-off])
		p.dirty = true
	}
	o.size = max(o.size, end)
	return 0
}

// truncate sets the logical size.
func (o *overlay) truncate(size int64) {
	if size < o.size {
		for pi, p := range o.pages {
			start := pi * pageSize
			switch {
			case start >= size:
				delete(o.pages, pi)
			case start+pageSize > size:
				// Reads only: the backing file is cut at lim when applied.
				clear(p.b[size-start:])
			}
		}
		o.lim = min(o.lim, size)
	}
	o.size = size
}

// apply writes the pending state to the backing file and fdatasyncs it.
// Pages whose fsync failed before stay in memory, unwritten.
func (o *overlay) apply(fd int) syscall.Errno {
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return errno(err)
	}
	if o.lim < st.Size {
		if err := syscall.Ftruncate(fd, o.lim); err != nil {
			return errno(err)
		}
		st.Size = o.lim
	}
	for pi, p := range o.pages {
		if !p.dirty {
			continue
		}
		start := pi * pageSize
		b := p.b[:min(pageSize, o.size-start)]
		for len(b) > 0 {
			k, err := syscall.Pwrite(fd, b, start)
			if err != nil {
				return errno(err)
			}
			b, start = b[k:], start+int64(k)
		}
	}
	if st.Size != o.size {
		if err := syscall.Ftruncate(fd, o.size); err != nil {
			return errno(err)
		}
	}
	if err := syscall.Fdatasync(fd); err != nil {
		return errno(err)
	}
	for pi, p := range o.pages {
		if p.dirty {
			delete(o.pages, pi)
		}
	}
	o.lim = o.size
	return 0
}

// lose marks every dirty page clean without writing it: an fsync failed.
func (o *overlay) lose() {
	for _, p := range o.pages {
		p.dirty = false
	}
}

func errno(err error) syscall.Errno {
	if e, ok := err.(syscall.Errno); ok {
		return e
	}
	return syscall.EIO
}
