package auth

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// sealedTestKey is the key of the sealed tests.
var sealedTestKey = bytes.Repeat([]byte{0x5e}, 32)

// sealedListen starts an AuthListener on loopback and closes it with the
// test.
func sealedListen(t testing.TB, opts ...Option) *AuthListener {
	t.Helper()
	ln, err := Listen("tcp", "127.0.0.1:0", append([]Option{WithKey(sealedTestKey)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	return ln
}

// sealedDial dials addr with the test key and closes the client with the
// test.
func sealedDial(t testing.TB, addr string, opts ...Option) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := DialContext(ctx, "tcp", addr, append([]Option{WithKey(sealedTestKey)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// sealedAccept accepts the next connection within a few seconds and closes
// it with the test. The server's handshake ends only once the client's
// proof arrives, with the client's first Write or Read.
func sealedAccept(t testing.TB, ln *AuthListener) *Conn {
	t.Helper()
	type res struct {
		c   *Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.AcceptAuth()
		ch <- res{c, err}
	}()
	select {
	case r := <-ch:
		require.NoError(t, r.err)
		t.Cleanup(func() { r.c.Close() })
		return r.c
	case <-time.After(10 * time.Second):
		ln.Close()
		<-ch
		t.Fatal("no connection accepted within 10s")
		return nil
	}
}

// sealedPair returns both ends of an authenticated connection over
// loopback TCP, dialed to addr (or straight to ln when addr is empty), the
// client's proof already sent. Both are closed with the test.
func sealedPair(t testing.TB, ln *AuthListener, addr string, clientOpts ...Option) (client, server *Conn) {
	t.Helper()
	if addr == "" {
		addr = ln.Addr().String()
	}
	client = sealedDial(t, addr, clientOpts...)
	require.NoError(t, client.flush())
	return client, sealedAccept(t, ln)
}

// pipePair returns both ends of a connection over net.Pipe. The server's
// handshake runs in the background; over the unbuffered pipe every write
// waits for a reader on the other end.
func pipePair(t testing.TB, clientOpts, serverOpts []Option) (client, server *Conn) {
	t.Helper()
	a, b := net.Pipe()
	client, err := Client(a, append([]Option{WithKey(sealedTestKey)}, clientOpts...)...)
	require.NoError(t, err)
	server, err = Server(b, append([]Option{WithKey(sealedTestKey)}, serverOpts...)...)
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Go(func() { server.Handshake() })
	t.Cleanup(func() { client.Close(); server.Close(); wg.Wait() })
	require.NoError(t, client.Handshake())
	return client, server
}

// pattern returns n bytes that differ from one position to the next, so a
// lost, repeated or reordered chunk shows up.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

// readAllTimeout reads until EOF or an error, bounded by a deadline.
func readAllTimeout(t testing.TB, c net.Conn, d time.Duration) ([]byte, error) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(d)))
	b, err := io.ReadAll(c)
	return b, err
}
