package mpcompat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hmacauth/auth"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGoToGo runs every pair of generations and digests between a Go
// Listener and a Go client.
func TestGoToGo(t *testing.T) {
	for _, sg := range []Generation{Auto, Legacy, Modern} {
		for _, cg := range []Generation{Auto, Legacy, Modern} {
			for _, d := range []string{"", "md5", "sha3_384"} {
				t.Run(fmt.Sprintf("%v-%v-%s", sg, cg, d), func(t *testing.T) {
					ln, err := (&Config{Generation: sg, Digest: d}).Listen("tcp", "127.0.0.1:0", testKey)
					require.NoError(t, err)
					defer ln.Close()
					c, err := (&Config{Generation: cg, Digest: d}).Dial("tcp", ln.Addr().String(), testKey)
					switch {
					case sg == Modern && cg == Legacy:
						// As a Python 3.11 client, it only learns it was refused.
						require.ErrorIs(t, err, ErrAnswerRejected)
						assert.ErrorContains(t, err, "refuses legacy answers")
						return
					case sg == Legacy && cg == Modern:
						require.ErrorIs(t, err, ErrLegacyPeer)
						return
					}
					require.NoError(t, err)
					defer c.Close()
					s, err := ln.Accept()
					require.NoError(t, err)
					defer s.Close()
					assert.Equal(t, c.ConnectionState().LocalAnswer, s.ConnectionState().PeerAnswer)
					assert.Equal(t, s.ConnectionState().LocalAnswer, c.ConnectionState().PeerAnswer)
					assert.Equal(t, sg == Legacy || cg == Legacy, c.ConnectionState().Legacy)

					require.NoError(t, c.SendBytes([]byte("to server")))
					got, err := s.RecvBytes()
					require.NoError(t, err)
					assert.Equal(t, "to server", string(got))
					require.NoError(t, s.SendBytes([]byte("to client")))
					got, err = c.RecvBytes()
					require.NoError(t, err)
					assert.Equal(t, "to client", string(got))
				})
			}
		}
	}
}

func TestWrongKeyGoToGo(t *testing.T) {
	events := make(chan HandshakeEvent, 1)
	ln, err := (&Config{HandshakeHook: func(ev HandshakeEvent) { events <- ev }}).Listen("tcp", "127.0.0.1:0", testKey)
	require.NoError(t, err)
	defer ln.Close()
	_, err = Dial("tcp", ln.Addr().String(), wrongKey)
	require.ErrorIs(t, err, ErrAnswerRejected)
	require.ErrorIs(t, err, auth.ErrAuthFailed)
	ev := <-events
	require.ErrorIs(t, ev.Err, ErrBadAnswer)
	require.ErrorIs(t, ev.Err, auth.ErrAuthFailed)
	require.NoError(t, ln.Close())
	_, err = ln.Accept()
	require.ErrorIs(t, err, net.ErrClosed)
}

func TestConfigErrors(t *testing.T) {
	_, err := Listen("tcp", "127.0.0.1:0", nil)
	assert.ErrorIs(t, err, auth.ErrKeyTooShort)
	_, err = Dial("tcp", "127.0.0.1:1", []byte{})
	assert.ErrorIs(t, err, auth.ErrKeyTooShort)
	_, err = (&Config{Digest: "sha1"}).Listen("tcp", "127.0.0.1:0", testKey)
	assert.ErrorContains(t, err, "sha1")
	_, err = (&Config{Generation: 7}).Dial("tcp", "127.0.0.1:1", testKey)
	assert.ErrorContains(t, err, "Generation")
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer inner.Close()
	_, err = NewListener(inner, nil)
	assert.ErrorIs(t, err, auth.ErrKeyTooShort)
}

// silentConn opens a raw connection that never speaks.
func silentConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// TestListenerConcurrentHandshakes: a silent peer does not hold up others,
// and runs into the handshake timeout.
func TestListenerConcurrentHandshakes(t *testing.T) {
	events := make(chan HandshakeEvent, 2)
	cfg := &Config{HandshakeTimeout: 300 * time.Millisecond, HandshakeHook: func(ev HandshakeEvent) { events <- ev }}
	ln, err := cfg.Listen("tcp", "127.0.0.1:0", testKey)
	require.NoError(t, err)
	defer ln.Close()
	silent := silentConn(t, ln.Addr().String())

	c, err := Dial("tcp", ln.Addr().String(), testKey)
	require.NoError(t, err)
	defer c.Close()
	s, err := ln.Accept()
	require.NoError(t, err)
	defer s.Close()
	ev := <-events
	require.NoError(t, ev.Err, "the good peer finishes first")
	ev = <-events
	require.ErrorIs(t, ev.Err, os.ErrDeadlineExceeded)
	assert.Contains(t, ev.Err.Error(), "timed out")

	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(silent) // the challenge, then EOF
	assert.Equal(t, challengePrefix, string(b[4:4+len(challengePrefix)]))
}

// TestListenerMaxHandshakes: at the bound, the listener stops accepting
// until a slot frees.
func TestListenerMaxHandshakes(t *testing.T) {
	var mu sync.Mutex
	var order []bool
	cfg := &Config{MaxHandshakes: 1, HandshakeTimeout: 200 * time.Millisecond, HandshakeHook: func(ev HandshakeEvent) {
		mu.Lock()
		order = append(order, ev.Err == nil)
		mu.Unlock()
	}}
	ln, err := cfg.Listen("tcp", "127.0.0.1:0", testKey)
	require.NoError(t, err)
	defer ln.Close()
	silentConn(t, ln.Addr().String())
	time.Sleep(50 * time.Millisecond) // let the loop take the silent peer first
	c, err := Dial("tcp", ln.Addr().String(), testKey)
	require.NoError(t, err)
	defer c.Close()
	s, err := ln.Accept()
	require.NoError(t, err)
	s.Close()
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []bool{false, true}, order, "the good peer waited for the silent one's slot")
}

// TestListenerClose: Close ends handshakes in flight and connections
// waiting for Accept, and Accept then returns net.ErrClosed.
func TestListenerClose(t *testing.T) {
	ln, err := Listen("tcp", "127.0.0.1:0", testKey)
	require.NoError(t, err)
	silent := silentConn(t, ln.Addr().String())
	queued, err := Dial("tcp", ln.Addr().String(), testKey) // authenticated, never accepted
	require.NoError(t, err)
	defer queued.Close()

	blocked := make(chan error, 1)
	go func() {
		// Drain the queued conn, then block.
		c, err := ln.Accept()
		if err == nil {
			c.Close()
			_, err = ln.Accept()
		}
		blocked <- err
	}()
	time.Sleep(50 * time.Millisecond)
	require.NoError(t, ln.Close())
	require.ErrorIs(t, <-blocked, net.ErrClosed)
	_, err = ln.Accept()
	require.ErrorIs(t, err, net.ErrClosed)
	assert.NoError(t, ln.Close(), "a second Close does nothing")

	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadAll(silent)
	assert.NoError(t, err, "the in-flight handshake's connection was closed")
	queued.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = queued.RecvBytes()
	assert.ErrorIs(t, err, io.EOF)
}

func TestDialContextCancel(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer inner.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err = (&Config{HandshakeTimeout: -1}).DialContext(ctx, "tcp", inner.Addr().String(), testKey)
	require.ErrorIs(t, err, context.Canceled)
	assert.Contains(t, err.Error(), "interrupted")
}

// TestConcurrentSend: messages from several goroutines never interleave.
func TestConcurrentSend(t *testing.T) {
	ln, err := Listen("tcp", "127.0.0.1:0", testKey)
	require.NoError(t, err)
	defer ln.Close()
	c, err := Dial("tcp", ln.Addr().String(), testKey)
	require.NoError(t, err)
	defer c.Close()
	s, err := ln.Accept()
	require.NoError(t, err)
	defer s.Close()

	const senders, each = 4, 50
	var wg sync.WaitGroup
	for i := range senders {
		wg.Go(func() {
			msg := make([]byte, 20000+i)
			for j := range msg {
				msg[j] = byte(i)
			}
			for range each {
				assert.NoError(t, c.SendBytes(msg))
			}
		})
	}
	counts := make([]int, senders)
	for range senders * each {
		got, err := s.RecvBytes()
		require.NoError(t, err)
		i := len(got) - 20000
		require.True(t, i >= 0 && i < senders)
		require.Equal(t, len(got), bytes.Count(got, []byte{byte(i)}), "message %d interleaved", i)
		counts[i]++
	}
	wg.Wait()
	assert.Equal(t, []int{each, each, each, each}, counts)
}

func TestHandshakeLogger(t *testing.T) {
	var buf syncBuffer
	cfg := &Config{Logger: newTextLogger(&buf)}
	ln, err := cfg.Listen("tcp", "127.0.0.1:0", testKey)
	require.NoError(t, err)
	_, err = Dial("tcp", ln.Addr().String(), wrongKey)
	require.Error(t, err)
	require.NoError(t, ln.Close())
	assert.Contains(t, buf.String(), "mpcompat: handshake refused")
	assert.NotContains(t, buf.String(), string(testKey))
	assert.False(t, errors.Is(err, io.EOF))
}
