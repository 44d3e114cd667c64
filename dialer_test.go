package auth

import (
	"context"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startSilentServer listens on 127.0.0.1, accepts connections and never
// writes to them, like a server that waits for a different protocol. With
// greeting set it writes that once to each connection instead, then stays
// silent. The cleanup closes everything.
func startSilentServer(t *testing.T, greeting []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	serveConns(t, ln, func(c net.Conn) {
		if greeting != nil {
			c.Write(greeting)
		}
	})
	return ln.Addr().String()
}

func TestDialerRightKey(t *testing.T) {
	key := mustGenerateTestKey(t)
	ln := startAuthEchoServer(t, WithKeys(map[string][]byte{"a": mustGenerateTestKey(t), "b": key}))
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"WithKey and WithKeyID", []Option{WithKey(key), WithKeyID("b")}},
		{"WithKeys picks the ID's key", []Option{WithKeys(map[string][]byte{"a": mustGenerateTestKey(t), "b": key}), WithKeyID("b")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := NewDialer(tc.opts...)
			require.NoError(t, err)
			for _, dial := range []func() (net.Conn, error){
				func() (net.Conn, error) { return d.Dial("tcp", ln.Addr().String()) },
				func() (net.Conn, error) { return d.DialContext(context.Background(), "tcp", ln.Addr().String()) },
				func() (net.Conn, error) { return Dial("tcp", ln.Addr().String(), tc.opts...) },
				func() (net.Conn, error) {
					return DialContext(context.Background(), "tcp", ln.Addr().String(), tc.opts...)
				},
			} {
				c, err := dial()
				require.NoError(t, err)
				ac, ok := c.(*Conn)
				require.True(t, ok, "the Dialer returns a *Conn, got %T", c)
				assert.Equal(t, "b", ac.ConnectionState().KeyID)
				echoOnce(t, c, "via the dialer")
				require.NoError(t, c.Close())
			}
		})
	}
}

func TestDialerConcurrentUse(t *testing.T) {
	key := mustGenerateTestKey(t)
	ln := startAuthEchoServer(t, WithKey(key))
	d, err := NewDialer(WithKey(key))
	require.NoError(t, err)
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := d.Dial("tcp", ln.Addr().String())
			if !assert.NoError(t, err) {
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			_, err = c.Write([]byte("ping"))
			assert.NoError(t, err)
			got := make([]byte, 4)
			_, err = io.ReadFull(c, got)
			assert.NoError(t, err)
			assert.Equal(t, "ping", string(got))
		}()
	}
	wg.Wait()
}

// TestDialerFailuresReturnNilConn checks that every failing dial returns an
// untyped nil net.Conn with a typed error.
func TestDialerFailuresReturnNilConn(t *testing.T) {
	key := mustGenerateTestKey(t)
	closedPort := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		l.Close()
		return addr
	}()
	for _, tc := range []struct {
		name string
		addr string
		opts []Option
		want []error
	}{
		{"nothing listens", closedPort, nil, []error{syscall.ECONNREFUSED}},
		{"server speaks HTTP", startSilentServer(t, []byte("HTTP/1.1 400 Bad Request\r\n\r\n")), nil, []error{ErrNotProtocol, ErrProtocol}},
		{"server speaks SSH", startSilentServer(t, []byte("SSH-2.0-OpenSSH_9.6\r\n")), nil, []error{ErrNotProtocol}},
		{"server closes at once", startSilentServer(t, []byte{}), []Option{WithHandshakeTimeout(100 * time.Millisecond)}, []error{os.ErrDeadlineExceeded}},
		{"server is silent", startSilentServer(t, nil), []Option{WithHandshakeTimeout(100 * time.Millisecond)}, []error{os.ErrDeadlineExceeded}},
		{"server has another key", startAuthEchoServer(t, WithKey(mustGenerateTestKey(t))).Addr().String(), nil, []error{ErrBadServerProof, ErrAuthFailed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := NewDialer(append([]Option{WithKey(key)}, tc.opts...)...)
			require.NoError(t, err)
			c, err := d.Dial("tcp", tc.addr)
			require.Error(t, err)
			assert.True(t, c == nil, "Dial returned a typed nil %T", c)
			for _, want := range tc.want {
				assert.ErrorIs(t, err, want)
			}
			ac, err := Dial("tcp", tc.addr, append([]Option{WithKey(key)}, tc.opts...)...)
			require.Error(t, err)
			assert.Nil(t, ac)
		})
	}
}

func TestDialerHandshakeTimeout(t *testing.T) {
	addr := startSilentServer(t, nil)
	d, err := NewDialer(WithKey(mustGenerateTestKey(t)), WithHandshakeTimeout(100*time.Millisecond))
	require.NoError(t, err)
	c, err := d.Dial("tcp", addr)
	require.Error(t, err)
	assert.True(t, c == nil)
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	assert.Contains(t, err.Error(), "timed out after 100ms")
	assert.True(t, strings.HasPrefix(err.Error(), "auth: "))
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	assert.True(t, ne.Timeout())
}

// TestDialerContext checks that a context bounds the handshake and, once
// DialContext has returned, has no effect on the connection.
func TestDialerContext(t *testing.T) {
	key := mustGenerateTestKey(t)
	silent := startSilentServer(t, nil)
	d, err := NewDialer(WithKey(key), WithHandshakeTimeout(time.Minute))
	require.NoError(t, err)

	t.Run("cancelled during the handshake", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		c, err := d.DialContext(ctx, "tcp", silent)
		require.Error(t, err)
		assert.True(t, c == nil)
		assert.ErrorIs(t, err, context.Canceled)
		assert.True(t, strings.HasPrefix(err.Error(), "auth: "), err.Error())
	})
	t.Run("deadline during the handshake", func(t *testing.T) {
		// Repeated: the context's timer and the connection's deadline
		// fire at the same instant, and either may be seen first.
		for i := range 20 {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			c, err := d.DialContext(ctx, "tcp", silent)
			cancel()
			require.Error(t, err)
			assert.True(t, c == nil)
			assert.ErrorIs(t, err, context.DeadlineExceeded, "attempt %d: %v", i, err)
			assert.ErrorIs(t, err, os.ErrDeadlineExceeded, "attempt %d", i)
		}
	})
	t.Run("cancelled before dialing", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		c, err := d.DialContext(ctx, "tcp", silent)
		require.Error(t, err)
		assert.True(t, c == nil)
		assert.ErrorIs(t, err, context.Canceled)
	})
	t.Run("cancelled before the handshake of Client", func(t *testing.T) {
		rc, _ := newRawConnPair(t, "tcp")
		c, err := Client(rc, WithKey(key))
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), -time.Second)
		defer cancel()
		err = c.HandshakeContext(ctx)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
		_, err = rc.Write([]byte("x"))
		assert.ErrorIs(t, err, net.ErrClosed, "the raw connection is closed")
	})

	ln := startAuthEchoServer(t, WithKey(key))
	t.Run("cancel after dial does not touch the conn", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
		require.NoError(t, err)
		defer c.Close()
		cancel()
		echoOnce(t, c, "still here")
	})
	t.Run("expired deadline after dial does not touch the conn", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
		require.NoError(t, err)
		defer c.Close()
		<-ctx.Done()
		time.Sleep(20 * time.Millisecond)
		echoOnce(t, c, "past the context's deadline")
	})
}
