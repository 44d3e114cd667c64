package auth

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// acceptResult is one outcome of Accept, for tests that accept on a
// goroutine.
type acceptResult struct {
	c   net.Conn
	err error
}

// acceptAsync calls Accept once on its own goroutine.
func acceptAsync(ln net.Listener) <-chan acceptResult {
	ch := make(chan acceptResult, 1)
	go func() {
		c, err := ln.Accept()
		ch <- acceptResult{c, err}
	}()
	return ch
}

// waitAccept waits up to 10 s for an Accept result.
func waitAccept(t *testing.T, ch <-chan acceptResult) acceptResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("Accept did not return within 10s")
		return acceptResult{}
	}
}

// echoOnce writes msg on c and reads the same number of bytes back.
func echoOnce(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	_, err := c.Write([]byte(msg))
	require.NoError(t, err)
	got := make([]byte, len(msg))
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	assert.Equal(t, msg, string(got))
	require.NoError(t, c.SetDeadline(time.Time{}))
}

func TestListenerAcceptsRightKey(t *testing.T) {
	key := mustGenerateTestKey(t)
	rec := newHandshakeRecorder()
	ln := startAuthEchoServer(t, WithKeys(map[string][]byte{"alice": key}), rec.option())

	c, err := Dial("tcp", ln.Addr().String(), WithKey(key), WithKeyID("alice"))
	require.NoError(t, err)
	defer c.Close()
	echoOnce(t, c, "hello through hmacauth")

	ev := rec.next(t)
	require.NoError(t, ev.Err)
	assert.False(t, ev.IsClient)
	assert.Equal(t, "alice", ev.KeyID)
	assert.Equal(t, SuiteHMACSHA256, ev.Suite)
	assert.Equal(t, ModeAuthOnly, ev.Mode)
	assert.Equal(t, c.LocalAddr().String(), ev.RemoteAddr.String())
	rec.none(t)
}

// TestListenerRefusesWrongKey checks both sides of a key mismatch: the
// client learns the server could not prove the key, the server learns the
// client refused its proof, and nothing comes out of Accept.
func TestListenerRefusesWrongKey(t *testing.T) {
	serverKey, clientKey := mustGenerateTestKey(t), mustGenerateTestKey(t)
	for _, tc := range []struct {
		name       string
		serverOpts []Option
		clientOpts []Option
		wantClient error
		wantServer error
	}{
		{
			name:       "client holds a different key",
			serverOpts: []Option{WithKey(serverKey)},
			clientOpts: []Option{WithKey(clientKey)},
			wantClient: ErrBadServerProof,
			wantServer: ErrClientRefusedServer,
		},
		{
			name:       "server holds a different key for the ID",
			serverOpts: []Option{WithKeys(map[string][]byte{"svc": serverKey})},
			clientOpts: []Option{WithKey(clientKey), WithKeyID("svc")},
			wantClient: ErrBadServerProof,
			wantServer: ErrClientRefusedServer,
		},
		{
			name:       "waiting for the verdict changes nothing",
			serverOpts: []Option{WithKey(serverKey)},
			clientOpts: []Option{WithKey(clientKey), WithWaitForVerdict()},
			wantClient: ErrBadServerProof,
			wantServer: ErrClientRefusedServer,
		},
		{
			name:       "SHA-512",
			serverOpts: []Option{WithKey(serverKey), WithSuites(SuiteHMACSHA512)},
			clientOpts: []Option{WithKey(clientKey), WithSuites(SuiteHMACSHA512)},
			wantClient: ErrBadServerProof,
			wantServer: ErrClientRefusedServer,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := newHandshakeRecorder()
			ln, err := Listen("tcp", "127.0.0.1:0", append(tc.serverOpts, rec.option())...)
			require.NoError(t, err)
			defer ln.Close()
			accepted := acceptAsync(ln)

			c, err := Dial("tcp", ln.Addr().String(), tc.clientOpts...)
			require.Error(t, err)
			assert.True(t, c == nil, "Dial returned a non-nil *Conn with an error")
			assert.ErrorIs(t, err, tc.wantClient)
			assert.ErrorIs(t, err, ErrAuthFailed)
			assert.True(t, strings.HasPrefix(err.Error(), "auth: "), err.Error())

			ev := rec.next(t)
			assert.ErrorIs(t, ev.Err, tc.wantServer)
			assert.ErrorIs(t, ev.Err, ErrAuthFailed)

			select {
			case r := <-accepted:
				t.Fatalf("Accept returned %v, %v for a refused client", r.c, r.err)
			case <-time.After(50 * time.Millisecond):
			}
			require.NoError(t, ln.Close())
			r := waitAccept(t, accepted)
			assert.ErrorIs(t, r.err, net.ErrClosed)
			assert.True(t, r.c == nil)
		})
	}
}

func TestListenerUnknownKeyID(t *testing.T) {
	known := mustGenerateTestKey(t)
	for _, tc := range []struct {
		name      string
		clientKey []byte
	}{
		{"same key bytes under an unknown ID", known},
		{"other key under an unknown ID", mustGenerateTestKey(t)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := newHandshakeRecorder()
			ln := startAuthEchoServer(t, WithKeys(map[string][]byte{"known": known}), rec.option())

			c, err := Dial("tcp", ln.Addr().String(), WithKey(tc.clientKey), WithKeyID("stranger"))
			require.Error(t, err)
			assert.True(t, c == nil)
			// The client cannot tell an unknown ID from a wrong key.
			assert.ErrorIs(t, err, ErrBadServerProof)

			ev := rec.next(t)
			assert.ErrorIs(t, ev.Err, ErrUnknownKeyID)
			assert.Equal(t, "stranger", ev.KeyID)
		})
	}
}

// TestListenerRefusesNonProtocolClients sends what other software sends to
// a port and checks that each is refused with the right typed error,
// reported to the hook, while Accept keeps waiting for a real client.
func TestListenerRefusesNonProtocolClients(t *testing.T) {
	key := mustGenerateTestKey(t)
	randomBytes := make([]byte, 64)
	rand.Read(randomBytes)
	randomBytes[0] &^= 0x80 // never the first byte of the magic

	for _, tc := range []struct {
		name    string
		client  func(t *testing.T, c net.Conn)
		want    []error
		wantMsg string
	}{
		{
			name: "TLS ClientHello",
			client: func(t *testing.T, c net.Conn) {
				tc := tls.Client(c, &tls.Config{ServerName: "example.com"})
				assert.Error(t, tc.Handshake())
			},
			want:    []error{ErrNotProtocol, ErrProtocol},
			wantMsg: "TLS ClientHello",
		},
		{
			name: "HTTP request",
			client: func(t *testing.T, c net.Conn) {
				c.Write([]byte("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"))
				io.Copy(io.Discard, c)
			},
			want:    []error{ErrNotProtocol, ErrProtocol},
			wantMsg: "HTTP request",
		},
		{
			name: "recipe client waiting for the server to speak",
			client: func(t *testing.T, c net.Conn) {
				challenge := make([]byte, 32)
				_, err := io.ReadFull(c, challenge)
				assert.Error(t, err, "the server must not send a challenge")
			},
			want:    []error{os.ErrDeadlineExceeded},
			wantMsg: "the client sent nothing",
		},
		{
			name:    "immediate close",
			client:  func(t *testing.T, c net.Conn) {},
			want:    []error{ErrProtocol, io.ErrUnexpectedEOF},
			wantMsg: "closed the connection",
		},
		{
			name: "half a client hello then close",
			client: func(t *testing.T, c net.Conn) {
				ch := marshalClientHello(nil, ModeAuthOnly, defaultSuites, "", make([]byte, nonceLen))
				c.Write(ch[:len(ch)/2])
			},
			want:    []error{ErrProtocol, io.ErrUnexpectedEOF},
			wantMsg: "closed the connection",
		},
		{
			name: "random bytes",
			client: func(t *testing.T, c net.Conn) {
				c.Write(randomBytes)
				io.Copy(io.Discard, c)
			},
			want:    []error{ErrNotProtocol, ErrProtocol},
			wantMsg: "unrecognized bytes",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := newHandshakeRecorder()
			ln, err := Listen("tcp", "127.0.0.1:0", WithKeys(map[string][]byte{"good": key}), WithHandshakeTimeout(200*time.Millisecond), rec.option())
			require.NoError(t, err)
			defer ln.Close()
			accepted := acceptAsync(ln)

			raw, err := net.Dial("tcp", ln.Addr().String())
			require.NoError(t, err)
			raw.SetDeadline(time.Now().Add(10 * time.Second))
			tc.client(t, raw)
			raw.Close()

			ev := rec.next(t)
			require.Error(t, ev.Err)
			for _, want := range tc.want {
				assert.ErrorIs(t, ev.Err, want)
			}
			assert.True(t, strings.HasPrefix(ev.Err.Error(), "auth: "), ev.Err.Error())
			assert.Contains(t, ev.Err.Error(), tc.wantMsg)
			assert.False(t, ev.IsClient)

			// The refused client never came out of Accept: the next
			// connection Accept returns is a good one.
			good, err := Dial("tcp", ln.Addr().String(), WithKey(key), WithKeyID("good"))
			require.NoError(t, err)
			defer good.Close()
			_, err = good.Write([]byte("x")) // carries the client's proof
			require.NoError(t, err)
			r := waitAccept(t, accepted)
			require.NoError(t, r.err)
			defer r.c.Close()
			assert.Equal(t, "good", r.c.(*Conn).ConnectionState().KeyID)
			assert.Equal(t, good.LocalAddr().String(), r.c.RemoteAddr().String())
			require.NoError(t, rec.next(t).Err)
		})
	}
}

// TestListenerSilentClientsDoNotDelayOthers opens 100 connections that never
// speak, then checks that a good client is still accepted at once, and that
// Close ends the silent handshakes.
func TestListenerSilentClientsDoNotDelayOthers(t *testing.T) {
	const silent = 100
	key := mustGenerateTestKey(t)
	rec := newHandshakeRecorder()
	// A long handshake timeout: if silent clients were handshaken one after
	// the other, the good client would wait minutes.
	ln, err := Listen("tcp", "127.0.0.1:0", WithKey(key), WithHandshakeTimeout(5*time.Minute), rec.option())
	require.NoError(t, err)
	defer ln.Close()

	raws := make([]net.Conn, silent)
	for i := range raws {
		raws[i] = dialRawTCP(t, ln.Addr().String())
	}

	accepted := acceptAsync(ln)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := DialContext(ctx, "tcp", ln.Addr().String(), WithKey(key))
	require.NoError(t, err)
	defer c.Close()
	// The client's proof goes out with its first Write; only then can the
	// server finish the handshake and Accept return.
	msg := "not delayed"
	_, err = c.Write([]byte(msg))
	require.NoError(t, err)
	r := waitAccept(t, accepted)
	require.NoError(t, r.err)
	defer r.c.Close()
	go io.Copy(r.c, r.c)
	got := make([]byte, len(msg))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	assert.Equal(t, msg, string(got))
	require.NoError(t, rec.next(t).Err)

	require.NoError(t, ln.Close())
	for i, raw := range raws {
		raw.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := raw.Read(make([]byte, 1))
		assert.Equal(t, 0, n, "silent client %d got bytes", i)
		assert.False(t, errors.Is(err, os.ErrDeadlineExceeded), "silent client %d still open after Close: %v", i, err)
	}
	for range silent {
		ev := rec.next(t)
		assert.ErrorIs(t, ev.Err, context.Canceled)
	}
}

func TestListenerHandshakeTimeout(t *testing.T) {
	key := mustGenerateTestKey(t)
	rec := newHandshakeRecorder()
	ln, err := Listen("tcp", "127.0.0.1:0", WithKey(key), WithHandshakeTimeout(100*time.Millisecond), rec.option())
	require.NoError(t, err)
	defer ln.Close()

	for _, tc := range []struct {
		name  string
		speak func(c net.Conn)
	}{
		{"silent", func(net.Conn) {}},
		{"stops after the hello", func(c net.Conn) {
			c.Write(marshalClientHello(nil, ModeAuthOnly, defaultSuites, "", make([]byte, nonceLen)))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := dialRawTCP(t, ln.Addr().String())
			tc.speak(raw)
			ev := rec.next(t)
			assert.ErrorIs(t, ev.Err, os.ErrDeadlineExceeded)
			assert.Contains(t, ev.Err.Error(), "timed out after 100ms")
			var ne net.Error
			require.ErrorAs(t, ev.Err, &ne)
			assert.True(t, ne.Timeout())
			// The server closed the connection.
			raw.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err := io.Copy(io.Discard, raw)
			assert.False(t, errors.Is(err, os.ErrDeadlineExceeded), "connection still open: %v", err)
		})
	}
}

// countingListener wraps a listener and reports each raw connection its
// Accept returns.
type countingListener struct {
	net.Listener
	accepted chan net.Conn
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted <- c
	}
	return c, err
}

func TestListenerCloseWithQueuedAndInflightConns(t *testing.T) {
	key := mustGenerateTestKey(t)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cl := &countingListener{Listener: inner, accepted: make(chan net.Conn, 8)}
	rec := newHandshakeRecorder()
	ln, err := NewListener(cl, WithKey(key), rec.option())
	require.NoError(t, err)
	addr := ln.Addr().String()

	// Queued: authenticated, never accepted.
	queued, err := Dial("tcp", addr, WithKey(key), WithWaitForVerdict())
	require.NoError(t, err)
	defer queued.Close()
	require.NoError(t, rec.next(t).Err)
	<-cl.accepted

	// In flight: connected, silent.
	silent := dialRawTCP(t, addr)
	<-cl.accepted

	// A blocked Accept is released by Close, and does not take the queued
	// connection once Close has begun (it may have taken it before).
	closed := make(chan error, 1)
	go func() { closed <- ln.Close() }()
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return within 10s")
	}

	for name, c := range map[string]net.Conn{"queued": queued, "in-flight": silent} {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := c.Read(make([]byte, 1))
		assert.Equal(t, 0, n, name)
		assert.Error(t, err, name)
		assert.False(t, errors.Is(err, os.ErrDeadlineExceeded), "%s connection still open after Close: %v", name, err)
	}
	ev := rec.next(t)
	assert.ErrorIs(t, ev.Err, context.Canceled, "in-flight handshake ended by Close")

	for range 2 {
		c, err := ln.Accept()
		assert.ErrorIs(t, err, net.ErrClosed)
		assert.True(t, c == nil, "Accept returned a typed nil")
		var oe *net.OpError
		assert.ErrorAs(t, err, &oe)
	}
	assert.NoError(t, ln.Close(), "second Close")
}

func TestListenerCloseReleasesBlockedAccept(t *testing.T) {
	ln, err := Listen("tcp", "127.0.0.1:0", WithKey(mustGenerateTestKey(t)))
	require.NoError(t, err)
	accepted := acceptAsync(ln)
	time.Sleep(20 * time.Millisecond) // let Accept block
	require.NoError(t, ln.Close())
	r := waitAccept(t, accepted)
	assert.ErrorIs(t, r.err, net.ErrClosed)
	assert.True(t, r.c == nil)
	// The inner listener is closed: nothing listens on the port any more.
	_, err = net.DialTimeout("tcp", ln.Addr().String(), time.Second)
	assert.Error(t, err)
}

// scriptedListener is a fake inner listener whose Accept returns, in order,
// what the test sends on results; it blocks when there is nothing to return
// and fails with net.ErrClosed after Close.
type scriptedListener struct {
	results   chan acceptResult
	done      chan struct{}
	closeOnce sync.Once
	closes    atomic.Int32
	accepts   atomic.Int32
}

func newScriptedListener() *scriptedListener {
	return &scriptedListener{results: make(chan acceptResult, 16), done: make(chan struct{})}
}

func (l *scriptedListener) Accept() (net.Conn, error) {
	l.accepts.Add(1)
	select {
	case r := <-l.results:
		return r.c, r.err
	case <-l.done:
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: net.ErrClosed}
	}
}

func (l *scriptedListener) Close() error {
	l.closes.Add(1)
	l.closeOnce.Do(func() { close(l.done) })
	return nil
}

func (l *scriptedListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }

// timeoutErr is a net.Error that is a timeout.
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestListenerRetriesTemporaryAcceptErrors(t *testing.T) {
	key := mustGenerateTestKey(t)
	fake := newScriptedListener()
	rec := newHandshakeRecorder()
	ln, err := NewListener(fake, WithKey(key), rec.option())
	require.NoError(t, err)
	defer ln.Close()

	temporaries := []error{
		timeoutErr{},
		&net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.ECONNABORTED)},
		&net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)},
		&net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.ENFILE)},
	}
	for _, e := range temporaries {
		fake.results <- acceptResult{err: e}
	}
	cr, sr := net.Pipe()
	defer cr.Close()
	fake.results <- acceptResult{c: sr}

	accepted := acceptAsync(ln)
	client, err := Client(cr, WithKey(key))
	require.NoError(t, err)
	echoed := make(chan error, 1)
	go func() {
		// Over a pipe the client reads while it writes: the server's
		// verdict needs a reader.
		_, err := client.Write([]byte("after retries"))
		echoed <- err
	}()
	readDone := make(chan error, 1)
	go func() {
		_, err := io.ReadFull(client, make([]byte, 1))
		readDone <- err
	}()
	r := waitAccept(t, accepted)
	require.NoError(t, r.err, "temporary errors must be retried, not returned")
	defer r.c.Close()
	got := make([]byte, len("after retries"))
	_, err = io.ReadFull(r.c, got)
	require.NoError(t, err)
	assert.Equal(t, "after retries", string(got))
	require.NoError(t, <-echoed)
	_, err = r.c.Write([]byte{'!'})
	require.NoError(t, err)
	require.NoError(t, <-readDone)
	require.NoError(t, rec.next(t).Err)
	assert.GreaterOrEqual(t, int(fake.accepts.Load()), len(temporaries)+1)

	permanent := errors.New("listener broke for good")
	fake.results <- acceptResult{err: permanent}
	for range 2 {
		c, err := ln.Accept()
		assert.ErrorIs(t, err, permanent, "a permanent error ends Accept")
		assert.True(t, c == nil, "Accept returned a typed nil")
	}
	require.NoError(t, ln.Close())
	c, err := ln.Accept()
	assert.ErrorIs(t, err, net.ErrClosed)
	assert.True(t, c == nil)
	assert.Equal(t, int32(1), fake.closes.Load())
}

func TestListenerAcceptConcurrentClients(t *testing.T) {
	const clients = 20
	key := mustGenerateTestKey(t)
	ln := startAuthEchoServer(t, WithKey(key))
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := Dial("tcp", ln.Addr().String(), WithKey(key))
			if !assert.NoError(t, err) {
				return
			}
			defer c.Close()
			msg := strings.Repeat(string(rune('a'+i)), 100+i)
			c.SetDeadline(time.Now().Add(10 * time.Second))
			_, err = c.Write([]byte(msg))
			assert.NoError(t, err)
			got := make([]byte, len(msg))
			_, err = io.ReadFull(c, got)
			assert.NoError(t, err)
			assert.Equal(t, msg, string(got))
		}()
	}
	wg.Wait()
}
