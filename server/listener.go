package server

import (
	"net"
	"sync"
)

// limitListener accepts at most max connections at a time: Accept waits
// while that many are open, leaving the next ones in the kernel's backlog.
// It keeps a flood of connections (slow clients, header floods) from using
// up the process's file descriptors, which would fail every accept,
// health checks included, and from growing memory with them.
type limitListener struct {
	net.Listener
	slots chan struct{}

	closeOnce sync.Once
	closed    chan struct{}
}

func newLimitListener(l net.Listener, max int) *limitListener {
	return &limitListener{Listener: l, slots: make(chan struct{}, max), closed: make(chan struct{})}
}

// Accept waits for a free slot, then for a connection, whose Close frees
// the slot.
func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.closed:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &slotConn{Conn: c, free: func() { <-l.slots }}, nil
}

// Close stops Accept, also while it waits for a slot.
func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// open is the number of connections holding a slot.
func (l *limitListener) open() int { return len(l.slots) }

// slotConn frees its listener slot on its first Close.
type slotConn struct {
	net.Conn
	once sync.Once
	free func()
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.free)
	return err
}
