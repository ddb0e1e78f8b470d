package ingest

import (
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// Listen listens on addr, accepting at most MaxConns connections at a
// time: beyond it Accept waits for one to close, and new connections wait
// in the kernel's accept queue (as golang.org/x/net/netutil.LimitListener
// does; written here to count open connections for the metrics).
func (s *Server) Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return s.LimitListener(ln), nil
}

// LimitListener bounds ln to MaxConns open connections.
func (s *Server) LimitListener(ln net.Listener) net.Listener {
	return &limitListener{Listener: ln, sem: make(chan struct{}, s.cfg.MaxConns), done: make(chan struct{}), open: &s.conns}
}

// HTTPServer returns an http.Server for h with the service's timeouts:
// headers within 10 s, each body within BodyTimeout (set per request, so
// the body is read outside the in-flight slots), answers within 30 s, and
// keep-alive connections closed after IdleTimeout.
func (s *Server) HTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		// An outer bound for routes that read no body; POST bodies get
		// BodyTimeout.
		ReadTimeout:    30 * time.Second,
		WriteTimeout:   30 * time.Second,
		IdleTimeout:    s.cfg.IdleTimeout,
		MaxHeaderBytes: 32 << 10,
	}
}

type limitListener struct {
	net.Listener
	sem       chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	open      interface{ Add(int64) int64 }
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	l.open.Add(1)
	return &limitConn{Conn: c, release: func() { l.open.Add(-1); <-l.sem }}, nil
}

func (l *limitListener) Close() error {
	err := l.Listener.Close()
	l.closeOnce.Do(func() { close(l.done) })
	return err
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
