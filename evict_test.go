package auth

import (
	"context"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestEvictAge(t *testing.T) {
	for _, tc := range []struct{ timeout, want time.Duration }{
		{DefaultHandshakeTimeout, time.Second},
		{2 * time.Second, 500 * time.Millisecond},
		{0, time.Second},
		{-1, time.Second},
	} {
		require.Equal(t, tc.want, evictAge(tc.timeout), "timeout %v", tc.timeout)
	}
}

// TestEvictStalledHandshake: with every handshake slot taken by a client
// that stalls, a good client gets in by evicting it, and the staller's
// outcome says so.
func TestEvictStalledHandshake(t *testing.T) {
	s := atkStartServer(t, nil, WithKey(atkKey), WithMaxHandshakes(1), WithHandshakeTimeout(20*time.Second))
	staller := atkDial(t, s.addr)
	atkWrite(t, staller, magic[:])
	s.requireServes(t) // waits for the staller to be a second old, then evicts it
	ev := s.requireRefused(t, staller.LocalAddr(), os.ErrDeadlineExceeded)
	require.ErrorIs(t, ev.Err, errEvicted)
	require.Contains(t, ev.Err.Error(), "evicted")
	require.Empty(t, atkReadRest(t, staller))
	s.requireServes(t)
}

// TestEvictSparesConnectionsAwaitingAccept: an authenticated connection
// that waits for Accept holds its slot and is never evicted; a slow Accept
// still pushes back on the accept loop.
func TestEvictSparesConnectionsAwaitingAccept(t *testing.T) {
	const timeout = 2 * time.Second // evictAge 500 ms
	ln, err := Listen("tcp", "127.0.0.1:0", WithKey(atkKey), WithMaxHandshakes(1), WithHandshakeTimeout(timeout))
	require.NoError(t, err)
	defer ln.Close()
	dial := func() <-chan error {
		return atkAsync(func() error {
			ctx, cancel := context.WithTimeout(context.Background(), atkTimeout)
			defer cancel()
			c, err := DialContext(ctx, "tcp", ln.Addr().String(), WithKey(atkKey), WithWaitForVerdict(), WithHandshakeTimeout(atkTimeout))
			if err != nil {
				return err
			}
			defer c.Close()
			if _, err := c.Write([]byte("ping")); err != nil {
				return err
			}
			_, err = io.ReadFull(c, make([]byte, 4))
			return err
		})
	}
	first := dial()
	// Let the first connection finish its handshake and wait for Accept
	// far longer than the eviction age, while a second one waits.
	time.Sleep(4 * evictAge(timeout))
	second := dial()
	time.Sleep(4 * evictAge(timeout))

	for _, done := range []<-chan error{first, second} {
		c, err := ln.AcceptAuth()
		require.NoError(t, err)
		buf := make([]byte, 4)
		c.SetDeadline(time.Now().Add(atkTimeout))
		_, err = io.ReadFull(c, buf)
		require.NoError(t, err, "the connection waiting for Accept was cut")
		_, err = c.Write(buf)
		require.NoError(t, err)
		require.NoError(t, atkWait(t, done))
		c.Close()
	}
}

// TestTrackerExpire checks the watchdog's sweep: it interrupts the
// handshakes that have run for the timeout, oldest first, leaves the
// others, and says when the next one will have.
func TestTrackerExpire(t *testing.T) {
	const timeout = time.Minute
	var tr handshakeTracker
	now := time.Now()
	conns := make([]*Conn, 3)
	for i, age := range []time.Duration{2 * timeout, timeout, timeout / 2} {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		conns[i] = newConn(a, &config{}, false)
		tr.add(conns[i])
		conns[i].track.start = now.Add(-age)
	}
	next := tr.expire(timeout)
	require.InDelta(t, float64(timeout/2), float64(next), float64(time.Second), "until the youngest expires")
	for i, want := range []error{errTimedOut, errTimedOut, nil} {
		require.Equal(t, want, conns[i].intrCause, "handshake %d", i)
	}
	require.Equal(t, 1, tr.len())

	// Close interrupts the rest, and any handshake that starts after it.
	tr.interruptAll()
	require.Equal(t, errListenerClosed, conns[2].intrCause)
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	late := newConn(a, &config{}, false)
	tr.add(late)
	require.Equal(t, errListenerClosed, late.intrCause)
	require.Zero(t, tr.len())
	require.Equal(t, timeout, tr.expire(timeout), "a whole timeout when none is in progress")
}

// TestTrackerOrder checks the list through the Conns: handshakes that end
// leave it from anywhere, and eviction takes the oldest left.
func TestTrackerOrder(t *testing.T) {
	var tr handshakeTracker
	conns := make([]*Conn, 4)
	for i := range conns {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		conns[i] = newConn(a, &config{}, false)
		tr.add(conns[i])
	}
	tr.done(conns[1]) // from the middle
	tr.done(conns[3]) // from the end
	tr.done(conns[3]) // twice: nothing happens
	require.Equal(t, 2, tr.len())
	tr.evictOldest()
	require.Equal(t, errEvicted, conns[0].intrCause)
	require.Nil(t, conns[2].intrCause)
	tr.evictOldest()
	require.Equal(t, errEvicted, conns[2].intrCause)
	require.Nil(t, conns[1].intrCause)
	require.Nil(t, conns[3].intrCause)
	require.Zero(t, tr.len())
	_, ok := tr.untilEvictable(time.Second)
	require.False(t, ok)
	tr.evictOldest() // empty: nothing happens
}
