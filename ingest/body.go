package ingest

import (
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Request bodies are read into memory before a request takes an in-flight
// slot, so that a client trickling its body holds a connection and the
// bytes it has sent, never a slot good clients need. What they hold is
// charged to one byte budget (BodyMemory) as it is allocated, not as it is
// declared: a slow client that announced 1 MiB but sent 10 bytes costs one
// first chunk. A request that cannot be charged is answered 503 at once.
const (
	// firstChunk is the buffer a body starts in; once full, it grows to
	// the declared length (or doubles, up to the limit, when the length
	// is unknown or the body is gzipped).
	firstChunk = 16 << 10
	// smallBody: requests holding at most this much may use the budget's
	// reserve, so a flood of large bodies cannot starve beacons.
	smallBody = 128 << 10
	// gzipState is charged per gzip reader: the inflater's 32 KiB window,
	// its Huffman tables and its bufio.Reader.
	gzipState = 48 << 10
	// poolMax is the largest buffer kept for reuse: a burst of 1 MiB
	// bodies must not leave 1 MiB buffers pinned once it is over, and a
	// beacon that draws a pooled buffer is charged its capacity, so pooled
	// buffers are first chunks, never more.
	poolMax = firstChunk
)

// budget is a weighted semaphore that never waits: bytes are acquired or
// refused at once. The last reserve bytes are kept for small requests.
type budget struct {
	limit, reserve int64
	used           atomic.Int64
}

func (b *budget) acquire(n int64, small bool) bool {
	limit := b.limit
	if !small {
		limit -= b.reserve
	}
	for {
		u := b.used.Load()
		if u+n > limit {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

func (b *budget) release(n int64) { b.used.Add(-n) }

// fits reports whether n more large-request bytes would fit now.
func (b *budget) fits(n int64) bool { return b.used.Load()+n <= b.limit-b.reserve }

// body is one request's body in memory and what it is charged.
type body struct {
	s    *Server
	buf  []byte
	held int64
}

func (b *body) charge(n int64) bool {
	if !b.s.mem.acquire(n, b.held+n <= smallBody) {
		return false
	}
	b.held += n
	return true
}

// free returns the buffer (to the pool when small) and the charge.
func (b *body) free() {
	if b.buf != nil {
		b.s.putBuf(b.buf)
	}
	b.buf = nil
	b.s.mem.release(b.held)
	b.held = 0
}

// putBuf keeps buf for reuse when it is no bigger than poolMax.
func (s *Server) putBuf(buf []byte) {
	if cap(buf) <= poolMax {
		buf = buf[:0]
		s.bufs.Put(&buf)
	}
}

// readBody reads the (possibly gzipped) body of r within the body deadline
// and the memory budget. max bounds the decompressed bytes; declared is the
// Content-Length (-1 when unknown).
func (s *Server) readBody(src io.Reader, gz bool, declared int64) (*body, *httpError) {
	b := &body{s: s}
	max := s.cfg.MaxBodyBytes
	limit := max + 1 // one byte more than allowed tells an oversized body
	if !gz && declared >= 0 {
		limit = declared // the server holds the client to its Content-Length
	}
	// A large declared body that could not be held now is refused before
	// a byte of it is read: under a flood of them, shedding costs a
	// header parse, not a read.
	if declared > smallBody && !s.mem.fits(declared) {
		return b, s.overMemory()
	}
	first := min(limit, firstChunk)
	if p, ok := s.bufs.Get().(*[]byte); ok && int64(cap(*p)) >= first {
		b.buf = (*p)[:0]
	} else {
		if ok {
			s.putBuf(*p)
		}
		b.buf = make([]byte, 0, first)
	}
	if !b.charge(int64(cap(b.buf))) {
		b.buf = nil
		return b, s.overMemory()
	}
	var r io.Reader = src
	if gz {
		if !b.charge(gzipState) {
			return b, s.overMemory()
		}
		zr, _ := s.gzips.Get().(*gzip.Reader)
		var err error
		if zr == nil {
			zr, err = gzip.NewReader(src)
		} else {
			err = zr.Reset(src)
		}
		if err != nil {
			return b, readError(err, errorf(http.StatusBadRequest, "invalid gzip body"), s.cfg.BodyTimeout)
		}
		defer func() {
			if zr.Close() == nil {
				s.gzips.Put(zr)
			}
		}()
		r = zr
	}
	for {
		if len(b.buf) == cap(b.buf) {
			if int64(len(b.buf)) >= limit {
				break
			}
			// Double, but once a client has sent a first chunk, take its
			// declared length at once: one allocation, not a trail of
			// garbage doubling up to it. A slow client never gets here
			// before its deadline.
			grown := min(2*int64(cap(b.buf)), limit)
			if !gz && declared > 0 {
				grown = limit
			}
			if !b.charge(grown) {
				return b, s.overMemory()
			}
			nb := make([]byte, len(b.buf), grown)
			copy(nb, b.buf)
			old := b.buf
			b.buf = nb
			b.s.mem.release(int64(cap(old)))
			b.held -= int64(cap(old))
			s.putBuf(old)
		}
		n, err := r.Read(b.buf[len(b.buf):cap(b.buf)])
		b.buf = b.buf[:len(b.buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return b, readError(err, errorf(http.StatusBadRequest, "cannot read body"), s.cfg.BodyTimeout)
		}
	}
	if int64(len(b.buf)) > max {
		return b, errorf(http.StatusRequestEntityTooLarge, "body larger than %d bytes", max)
	}
	return b, nil
}

func (s *Server) overMemory() *httpError {
	s.stats.shedMemory.Add(1)
	return &httpError{status: http.StatusServiceUnavailable, msg: "overloaded: request memory budget exhausted, retry later"}
}

// readError maps a failed body read: over the limit (413), past the body
// deadline (408), or other (a broken gzip stream, a cut connection).
func readError(err error, other *httpError, timeout time.Duration) *httpError {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return errorf(http.StatusRequestEntityTooLarge, "body larger than %d bytes", mbe.Limit)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return &httpError{status: http.StatusRequestTimeout, msg: "body not received within " + timeout.String()}
	}
	return other
}

// pools of the server, reused across requests.
type pools struct {
	bufs  sync.Pool // *[]byte, cap ≤ poolMax
	gzips sync.Pool // *gzip.Reader
}
