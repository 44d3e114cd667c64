package auth

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hmacauth/auth/internal/testutil"
)

// requireTool returns the path of an external tool a test needs. Locally a
// missing tool skips the test; under CI=true it fails it.
var requireTool = testutil.RequireTool

// mustGenerateTestKey returns a fresh random key of DefaultKeyLen bytes.
func mustGenerateTestKey(t testing.TB) []byte {
	t.Helper()
	key, err := GenerateKey()
	require.NoError(t, err)
	return key
}

// handshakeRecorder collects the events a WithHandshakeHook reports, so a
// test can wait for the outcome of a handshake that runs on a listener's
// goroutine.
type handshakeRecorder struct {
	events chan HandshakeEvent
}

func newHandshakeRecorder() *handshakeRecorder {
	return &handshakeRecorder{events: make(chan HandshakeEvent, 1024)}
}

// option returns the WithHandshakeHook option that feeds the recorder.
func (r *handshakeRecorder) option() Option {
	return WithHandshakeHook(func(ev HandshakeEvent) {
		select {
		case r.events <- ev:
		default:
			panic("handshakeRecorder: more than 1024 unread events")
		}
	})
}

// next waits up to 10 s for the next event.
func (r *handshakeRecorder) next(t testing.TB) HandshakeEvent {
	t.Helper()
	select {
	case ev := <-r.events:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no handshake event within 10s")
		return HandshakeEvent{}
	}
}

// none fails the test if an event is waiting.
func (r *handshakeRecorder) none(t testing.TB) {
	t.Helper()
	select {
	case ev := <-r.events:
		t.Fatalf("unexpected handshake event: %+v", ev)
	default:
	}
}

// startAuthEchoServer starts an AuthListener on 127.0.0.1 that echoes every
// accepted connection until its peer closes (see serveAuthEcho).
func startAuthEchoServer(t testing.TB, opts ...Option) *AuthListener {
	t.Helper()
	ln, err := Listen("tcp", "127.0.0.1:0", opts...)
	require.NoError(t, err)
	serveAuthEcho(t, ln)
	return ln
}

// serveAuthEcho echoes every connection ln accepts until its peer closes
// (see serveConns).
func serveAuthEcho(t testing.TB, ln *AuthListener) {
	serveConns(t, ln, func(c net.Conn) {
		defer c.Close()
		io.Copy(c, c)
	})
}

// serveConns runs handle on its own goroutine for every connection ln
// accepts. The cleanup closes the listener and every accepted connection
// and waits for every goroutine.
func serveConns(t testing.TB, ln net.Listener, handle func(net.Conn)) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

// rawPairKinds names the transports newRawConnPair makes, so the same
// subtests run over each.
var rawPairKinds = []string{"tcp", "pipe"}

// newRawConnPair returns two connected raw connections of the given kind:
// "tcp" over 127.0.0.1 or "pipe" from net.Pipe. The cleanup closes both.
func newRawConnPair(t testing.TB, kind string) (client, server net.Conn) {
	t.Helper()
	switch kind {
	case "pipe":
		client, server = net.Pipe()
	case "tcp":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()
		type res struct {
			c   net.Conn
			err error
		}
		ch := make(chan res, 1)
		go func() {
			c, err := ln.Accept()
			ch <- res{c, err}
		}()
		client, err = net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		r := <-ch
		require.NoError(t, r.err)
		server = r.c
	default:
		t.Fatalf("unknown raw pair kind %q", kind)
	}
	t.Cleanup(func() {
		client.Close()
		server.Close()
	})
	return client, server
}

// newAuthConnPair wraps a raw pair of the given kind with Client and Server,
// runs the server's handshake on its own goroutine and the client's here,
// and returns once the client's handshake has succeeded. The returned
// channel yields the server's handshake result. The server's handshake ends
// only after it has read the client's proof (sent by the client's first
// Write or Read) and, over a synchronous pipe, after the client has read the
// verdict: over "pipe" the client must read concurrently with its writes.
func newAuthConnPair(t testing.TB, kind string, clientOpts, serverOpts []Option) (client, server *Conn, serverErr <-chan error) {
	t.Helper()
	rc, rs := newRawConnPair(t, kind)
	client, err := Client(rc, clientOpts...)
	require.NoError(t, err)
	server, err = Server(rs, serverOpts...)
	require.NoError(t, err)
	errc := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		errc <- server.Handshake()
	}()
	t.Cleanup(func() {
		client.Close()
		server.Close()
		<-done
	})
	require.NoError(t, client.Handshake())
	return client, server, errc
}

// dialRawTCP opens a plain TCP connection to addr; the cleanup closes it.
func dialRawTCP(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}
