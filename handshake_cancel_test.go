package auth

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// silentServer accepts one connection and reads it without ever answering,
// until the client goes away.
func silentServer(t *testing.T) (addr string, wait func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer ln.Close()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.Copy(io.Discard, c)
	}()
	return ln.Addr().String(), wg.Wait
}

// TestHandshakeContextCancelInterrupts checks that cancelling the context
// of a running handshake ends it at once with the context's error.
func TestHandshakeContextCancelInterrupts(t *testing.T) {
	addr, wait := silentServer(t)
	defer wait()
	raw, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	c, err := Client(raw, WithKey(benchKey))
	require.NoError(t, err)
	defer c.Close()

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	err = c.HandshakeContext(ctx)
	require.Error(t, err)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Less(t, time.Since(start), 3*time.Second, "the cancellation must interrupt the blocked read")
}

// TestHandshakeContextDeadline checks that a context deadline ends a
// handshake as a timeout.
func TestHandshakeContextDeadline(t *testing.T) {
	addr, wait := silentServer(t)
	defer wait()
	raw, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	c, err := Client(raw, WithKey(benchKey))
	require.NoError(t, err)
	defer c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = c.HandshakeContext(ctx)
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
}

// echoPair returns an authenticated client over loopback TCP, handshaken
// with a cancellable context that is cancelled right after, and a function
// that returns the server side once the client has written (the client's
// proof travels with its first write).
func echoPair(t *testing.T, before func(c *Conn)) (client *Conn, server func() *Conn) {
	t.Helper()
	ln, err := Listen("tcp", "127.0.0.1:0", WithKey(benchKey))
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	raw, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	client, err = Client(raw, WithKey(benchKey))
	require.NoError(t, err)
	if before != nil {
		before(client)
	}
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, client.HandshakeContext(ctx))
	cancel() // after the handshake, the context no longer matters
	return client, func() *Conn {
		s, err := ln.AcceptAuth()
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		return s
	}
}

// TestHandshakeContextCancelAfterwards checks that cancelling a context
// after the handshake leaves the connection alone, on both sides (the
// listener handshakes under its own context).
func TestHandshakeContextCancelAfterwards(t *testing.T) {
	client, accept := echoPair(t, nil)
	defer client.Close()
	time.Sleep(20 * time.Millisecond) // give a stray interruption time to land
	_, err := client.Write([]byte("ping"))
	require.NoError(t, err)
	server := accept()
	buf := make([]byte, 4)
	_, err = io.ReadFull(server, buf)
	require.NoError(t, err)
	_, err = server.Write(buf)
	require.NoError(t, err)
	_, err = io.ReadFull(client, buf)
	require.NoError(t, err)
	assert.Equal(t, "ping", string(buf))
}

// TestHandshakeRestoresDistinctDeadlines checks that a read deadline set
// before the handshake survives it while the write side stays unbounded.
func TestHandshakeRestoresDistinctDeadlines(t *testing.T) {
	client, accept := echoPair(t, func(c *Conn) {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(300*time.Millisecond)))
	})
	defer client.Close()
	_, err := client.Write([]byte("x")) // no write deadline: must work
	require.NoError(t, err)
	accept()
	_, err = client.Read(make([]byte, 1)) // the server never answers
	var ne net.Error
	require.True(t, errors.As(err, &ne), "got %v", err)
	assert.True(t, ne.Timeout())
}

// TestInterruptWith checks the listener's direct interruption (eviction):
// before the handshake has started it still ends it at once with the
// cause, and after the handshake it leaves the connection alone.
func TestInterruptWith(t *testing.T) {
	t.Run("before start", func(t *testing.T) {
		addr, wait := silentServer(t)
		defer wait()
		raw, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		c, err := Client(raw, WithKey(benchKey))
		require.NoError(t, err)
		defer c.Close()
		c.interruptWith(errEvicted)
		start := time.Now()
		err = c.Handshake()
		require.ErrorIs(t, err, errEvicted)
		assert.Contains(t, err.Error(), "evicted")
		assert.Less(t, time.Since(start), 3*time.Second)
	})
	t.Run("after the handshake", func(t *testing.T) {
		client, accept := echoPair(t, nil)
		defer client.Close()
		client.interruptWith(errEvicted)
		_, err := client.Write([]byte("ping"))
		require.NoError(t, err)
		server := accept()
		buf := make([]byte, 4)
		_, err = io.ReadFull(server, buf)
		require.NoError(t, err)
		_, err = server.Write(buf)
		require.NoError(t, err)
		client.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = io.ReadFull(client, buf)
		require.NoError(t, err, "an interruption after the handshake must not touch the deadline")
	})
}
