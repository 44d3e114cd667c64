package main

import (
	"net"
	"sync"
)

// tracker keeps the open tunnels, so a shutdown can wait for them and, when
// the drain timeout runs out, close them.
type tracker struct {
	mu     sync.Mutex
	open   map[*tracked]struct{}
	forced bool // closeAll was called: close anything that shows up
	wg     sync.WaitGroup
}

// tracked is one tunnel: the accepted connection and, once dialed, its
// peer.
type tracked struct {
	t     *tracker
	conns []net.Conn
}

// start registers an accepted connection. The caller runs the tunnel and
// then calls finish. Only the accept loop calls start, and never after it
// has ended, so wait can follow it safely.
func (t *tracker) start(c net.Conn) *tracked {
	tc := &tracked{t: t, conns: []net.Conn{c}}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.open == nil {
		t.open = make(map[*tracked]struct{})
	}
	t.open[tc] = struct{}{}
	t.wg.Add(1)
	if t.forced {
		c.Close()
	}
	return tc
}

// attach adds the dialed peer. It returns false, having closed c, if the
// tunnels are being closed.
func (tc *tracked) attach(c net.Conn) bool {
	t := tc.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.forced {
		c.Close()
		return false
	}
	tc.conns = append(tc.conns, c)
	return true
}

// finish unregisters the tunnel.
func (tc *tracked) finish() {
	t := tc.t
	t.mu.Lock()
	delete(t.open, tc)
	t.mu.Unlock()
	t.wg.Done()
}

// count returns the number of open tunnels.
func (t *tracker) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.open)
}

// closeAll closes every open tunnel's connections, and any that start
// later, and returns how many tunnels it closed.
func (t *tracker) closeAll() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.forced = true
	for tc := range t.open {
		for _, c := range tc.conns {
			c.Close()
		}
	}
	return len(t.open)
}

// wait returns a channel closed once every tunnel has finished.
func (t *tracker) wait() <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		t.wg.Wait()
		close(ch)
	}()
	return ch
}
