package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// patternBytes returns n bytes that differ from one offset to the next, so
// a lost, repeated or reordered byte shows up in a comparison.
func patternBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// TestConnPipelinedData writes right after the client's handshake, before
// the server has even checked the client's proof, and checks that the
// server's application receives exactly those bytes, for many sizes, over
// TCP and net.Pipe, while the client reads concurrently.
func TestConnPipelinedData(t *testing.T) {
	key := mustGenerateTestKey(t)
	for _, kind := range rawPairKinds {
		for _, size := range []int{0, 1, 2, 33, 1000, 1460, 4096, 65535, 1 << 20} {
			t.Run(fmt.Sprintf("%s/%d", kind, size), func(t *testing.T) {
				client, server, serverErr := newAuthConnPair(t, kind,
					[]Option{WithKey(key), WithKeyID("k")},
					[]Option{WithKeys(map[string][]byte{"k": key})})
				data := patternBytes(size)
				reply := []byte("got it")

				// The client writes first, then a reader starts while the
				// write may still be blocked (over a pipe it is: the server
				// cannot read the data before it has written its verdict).
				wrote := make(chan error, 1)
				go func() {
					n, err := client.Write(data)
					if err == nil && n != len(data) {
						err = fmt.Errorf("wrote %d of %d bytes", n, len(data))
					}
					wrote <- err
				}()
				time.Sleep(10 * time.Millisecond)
				readBack := make(chan []byte, 1)
				go func() {
					got, _ := io.ReadAll(client)
					readBack <- got
				}()

				server.SetDeadline(time.Now().Add(20 * time.Second))
				got := make([]byte, size)
				_, err := io.ReadFull(server, got)
				require.NoError(t, err)
				require.True(t, bytes.Equal(data, got), "server application got different bytes")
				require.NoError(t, <-serverErr)
				require.NoError(t, <-wrote)
				_, err = server.Write(reply)
				require.NoError(t, err)
				require.NoError(t, server.Close())
				select {
				case back := <-readBack:
					assert.Equal(t, reply, back, "the verdict byte must be stripped, the reply intact")
				case <-time.After(20 * time.Second):
					t.Fatal("client read did not end")
				}
			})
		}
	}
}

// TestConnPipelinedDataThroughListener dials, writes at once and checks the
// bytes reach the application behind Accept exactly.
func TestConnPipelinedDataThroughListener(t *testing.T) {
	key := mustGenerateTestKey(t)
	ln, err := Listen("tcp", "127.0.0.1:0", WithKey(key))
	require.NoError(t, err)
	defer ln.Close()
	for _, size := range []int{1, 100, 1 << 16, 1 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			data := patternBytes(size)
			c, err := Dial("tcp", ln.Addr().String(), WithKey(key))
			require.NoError(t, err)
			defer c.Close()
			wrote := make(chan error, 1)
			go func() {
				_, err := c.Write(data)
				wrote <- err
			}()
			s, err := ln.Accept()
			require.NoError(t, err)
			defer s.Close()
			s.SetDeadline(time.Now().Add(20 * time.Second))
			got := make([]byte, size)
			_, err = io.ReadFull(s, got)
			require.NoError(t, err)
			require.True(t, bytes.Equal(data, got))
			require.NoError(t, <-wrote)
			// Nothing more than the data arrives.
			require.NoError(t, c.Close())
			n, err := s.Read(make([]byte, 1))
			assert.Equal(t, 0, n)
			assert.ErrorIs(t, err, io.EOF)
		})
	}
}

func TestConnClientServerOverPipeEcho(t *testing.T) {
	key := mustGenerateTestKey(t)
	for _, kind := range rawPairKinds {
		t.Run(kind, func(t *testing.T) {
			client, server, serverErr := newAuthConnPair(t, kind, []Option{WithKey(key)}, []Option{WithKey(key)})
			done := make(chan struct{})
			go func() {
				defer close(done)
				io.Copy(server, server)
			}()
			for i, msg := range []string{"one", "two", string(patternBytes(5000))} {
				// Write and read concurrently: a pipe has no buffer.
				go client.Write([]byte(msg))
				got := make([]byte, len(msg))
				client.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, err := io.ReadFull(client, got)
				require.NoError(t, err, "message %d", i)
				assert.Equal(t, msg, string(got))
			}
			require.NoError(t, <-serverErr)
			client.Close()
			<-done
		})
	}
}

// finishedTamperConn flips a bit in the client's finished message on its
// way out, so an honest server must reject the client's proof.
type finishedTamperConn struct {
	net.Conn
	writes atomic.Int32
}

func (c *finishedTamperConn) Write(p []byte) (int, error) {
	if c.writes.Add(1) == 2 && len(p) > 0 && (p[0] == msgClientFinished || p[0] == msgClientFinishedWait) {
		q := bytes.Clone(p)
		q[1] ^= 1 // the proof's first byte: the write may carry data behind it
		return c.Conn.Write(q)
	}
	return c.Conn.Write(p)
}

// TestConnRejectedClient makes the server reject the client's proof and
// checks that the client learns it as ErrRejected: from its first Read, or
// from the handshake with WithWaitForVerdict, and then from every call.
func TestConnRejectedClient(t *testing.T) {
	key := mustGenerateTestKey(t)
	for _, kind := range rawPairKinds {
		for _, wait := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/wait=%v", kind, wait), func(t *testing.T) {
				rc, rs := newRawConnPair(t, kind)
				rec := newHandshakeRecorder()
				opts := []Option{WithKey(key)}
				if wait {
					opts = append(opts, WithWaitForVerdict())
				}
				client, err := Client(&finishedTamperConn{Conn: rc}, opts...)
				require.NoError(t, err)
				server, err := Server(rs, WithKey(key), rec.option())
				require.NoError(t, err)
				serverErr := make(chan error, 1)
				go func() { serverErr <- server.Handshake() }()

				client.SetDeadline(time.Now().Add(10 * time.Second))
				err = client.Handshake()
				if wait {
					require.ErrorIs(t, err, ErrRejected)
				} else {
					require.NoError(t, err, "without WithWaitForVerdict the client learns the verdict on Read")
					var n int
					n, err = client.Read(make([]byte, 10))
					assert.Equal(t, 0, n)
					require.ErrorIs(t, err, ErrRejected)
				}
				assert.ErrorIs(t, err, ErrAuthFailed)
				// Sticky: every later call fails the same way.
				_, err = client.Read(make([]byte, 1))
				assert.ErrorIs(t, err, ErrRejected)
				_, err = client.Write([]byte("x"))
				assert.ErrorIs(t, err, ErrRejected)

				assert.ErrorIs(t, <-serverErr, ErrBadClientProof)
				ev := rec.next(t)
				assert.ErrorIs(t, ev.Err, ErrBadClientProof)
				_, err = server.Read(make([]byte, 1))
				assert.ErrorIs(t, err, ErrBadClientProof, "the server's handshake error is sticky")
			})
		}
	}
}

// TestConnRejectedClientThroughListener checks the same against a real
// listener: the rejected client never comes out of Accept.
func TestConnRejectedClientThroughListener(t *testing.T) {
	key := mustGenerateTestKey(t)
	rec := newHandshakeRecorder()
	ln := startAuthEchoServer(t, WithKey(key), rec.option())
	raw := dialRawTCP(t, ln.Addr().String())
	c, err := Client(&finishedTamperConn{Conn: raw}, WithKey(key))
	require.NoError(t, err)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = c.Write([]byte("pipelined data that must never reach the server application"))
	require.NoError(t, err)
	_, err = c.Read(make([]byte, 100))
	assert.ErrorIs(t, err, ErrRejected)
	assert.Contains(t, err.Error(), "rejected this client's proof")
	assert.ErrorIs(t, rec.next(t).Err, ErrBadClientProof)
}

func TestConnWaitForVerdict(t *testing.T) {
	key := mustGenerateTestKey(t)
	t.Run("listener", func(t *testing.T) {
		rec := newHandshakeRecorder()
		ln, err := Listen("tcp", "127.0.0.1:0", WithKey(key), rec.option())
		require.NoError(t, err)
		defer ln.Close()
		c, err := Dial("tcp", ln.Addr().String(), WithKey(key), WithWaitForVerdict())
		require.NoError(t, err)
		defer c.Close()
		// Without any Write from the client, the server has already
		// accepted it: Dial waited for the verdict.
		require.NoError(t, rec.next(t).Err)
		r := waitAccept(t, acceptAsync(ln))
		require.NoError(t, r.err)
		defer r.c.Close()
		_, err = r.c.Write([]byte("server speaks first"))
		require.NoError(t, err)
		got := make([]byte, len("server speaks first"))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = io.ReadFull(c, got)
		require.NoError(t, err)
		assert.Equal(t, "server speaks first", string(got))
	})
	t.Run("pipe", func(t *testing.T) {
		rc, rs := newRawConnPair(t, "pipe")
		client, err := Client(rc, WithKey(key), WithWaitForVerdict())
		require.NoError(t, err)
		server, err := Server(rs, WithKey(key))
		require.NoError(t, err)
		serverErr := make(chan error, 1)
		go func() { serverErr <- server.Handshake() }()
		require.NoError(t, client.Handshake())
		require.NoError(t, <-serverErr)
		assert.True(t, server.ConnectionState().HandshakeComplete)
	})
}

func TestConnHalfClose(t *testing.T) {
	key := mustGenerateTestKey(t)
	t.Run("tcp", func(t *testing.T) {
		for _, side := range []string{"client closes write", "server closes write"} {
			t.Run(side, func(t *testing.T) {
				client, server, _ := newAuthConnPair(t, "tcp", []Option{WithKey(key)}, []Option{WithKey(key)})
				closer, peer := client, server
				if side == "server closes write" {
					// The client's proof must reach the server first.
					_, err := client.Write([]byte("hi"))
					require.NoError(t, err)
					_, err = io.ReadFull(server, make([]byte, 2))
					require.NoError(t, err)
					closer, peer = server, client
				}
				request := patternBytes(10000)
				_, err := closer.Write(request)
				require.NoError(t, err)
				require.NoError(t, closer.CloseWrite())
				_, err = closer.Write([]byte("x"))
				assert.Error(t, err, "Write after CloseWrite")

				peer.SetDeadline(time.Now().Add(10 * time.Second))
				got, err := io.ReadAll(peer)
				require.NoError(t, err, "the peer reads EOF after the data")
				require.True(t, bytes.Equal(request, got))
				// The peer can still answer.
				_, err = peer.Write([]byte("answer"))
				require.NoError(t, err)
				require.NoError(t, peer.Close())
				closer.SetDeadline(time.Now().Add(10 * time.Second))
				answer, err := io.ReadAll(closer)
				require.NoError(t, err)
				assert.Equal(t, "answer", string(answer))
			})
		}
	})
	t.Run("pipe is unsupported", func(t *testing.T) {
		client, _, _ := newAuthConnPair(t, "pipe", []Option{WithKey(key)}, []Option{WithKey(key)})
		go io.Copy(io.Discard, client) // takes the verdict
		err := client.CloseWrite()
		assert.ErrorIs(t, err, errors.ErrUnsupported)
		assert.ErrorIs(t, client.CloseRead(), errors.ErrUnsupported)
	})
	t.Run("before the handshake", func(t *testing.T) {
		rc, _ := newRawConnPair(t, "tcp")
		c, err := Client(rc, WithKey(key))
		require.NoError(t, err)
		assert.Error(t, c.CloseWrite())
	})
}

// copySpyConn records whether io.Copy reached the inner connection's
// ReadFrom and WriteTo.
type copySpyConn struct {
	*net.TCPConn
	readFrom, writeTo atomic.Int32
}

func (c *copySpyConn) ReadFrom(r io.Reader) (int64, error) {
	c.readFrom.Add(1)
	return c.TCPConn.ReadFrom(r)
}

func (c *copySpyConn) WriteTo(w io.Writer) (int64, error) {
	c.writeTo.Add(1)
	return c.TCPConn.WriteTo(w)
}

// plainReader and plainWriter hide every method but Read and Write, so
// io.Copy must use the other side's ReadFrom or WriteTo.
type plainReader struct{ io.Reader }
type plainWriter struct{ io.Writer }

func TestConnCopyReachesInnerReadFromAndWriteTo(t *testing.T) {
	key := mustGenerateTestKey(t)
	rc, rs := newRawConnPair(t, "tcp")
	spyC := &copySpyConn{TCPConn: rc.(*net.TCPConn)}
	spyS := &copySpyConn{TCPConn: rs.(*net.TCPConn)}
	client, err := Client(spyC, WithKey(key))
	require.NoError(t, err)
	server, err := Server(spyS, WithKey(key))
	require.NoError(t, err)
	serverErr := make(chan error, 1)
	go func() { serverErr <- server.Handshake() }()
	require.NoError(t, client.Handshake())

	data := patternBytes(300_000)
	sent := make(chan error, 1)
	go func() {
		n, err := io.Copy(client, plainReader{bytes.NewReader(data)})
		if err == nil && n != int64(len(data)) {
			err = fmt.Errorf("copied %d of %d bytes", n, len(data))
		}
		if err == nil {
			err = client.CloseWrite()
		}
		sent <- err
	}()
	var got bytes.Buffer
	server.SetDeadline(time.Now().Add(20 * time.Second))
	n, err := io.Copy(plainWriter{&got}, server)
	require.NoError(t, err)
	require.NoError(t, <-sent)
	require.NoError(t, <-serverErr)
	assert.Equal(t, int64(len(data)), n)
	require.True(t, bytes.Equal(data, got.Bytes()))
	assert.Equal(t, int32(1), spyC.readFrom.Load(), "io.Copy into the client must reach the inner ReadFrom")
	assert.Equal(t, int32(1), spyS.writeTo.Load(), "io.Copy out of the server must reach the inner WriteTo")

	// And the other way, where the client must strip the verdict first.
	back := patternBytes(70_000)
	go func() {
		_, err := io.Copy(server, plainReader{bytes.NewReader(back)})
		if err == nil {
			err = server.CloseWrite()
		}
		sent <- err
	}()
	got.Reset()
	client.SetDeadline(time.Now().Add(20 * time.Second))
	_, err = io.Copy(plainWriter{&got}, client)
	require.NoError(t, err)
	require.NoError(t, <-sent)
	require.True(t, bytes.Equal(back, got.Bytes()), "the verdict byte must not leak into the copy")
	assert.Equal(t, int32(1), spyS.readFrom.Load())
	assert.Equal(t, int32(1), spyC.writeTo.Load())
}

// TestConnProxyCopyBetweenAuthConns runs a proxy that accepts authenticated
// clients and forwards each to an authenticated backend with io.Copy both
// ways, the copy running between two *Conn.
func TestConnProxyCopyBetweenAuthConns(t *testing.T) {
	frontKey, backKey := mustGenerateTestKey(t), mustGenerateTestKey(t)
	backend := startAuthEchoServer(t, WithKey(backKey))
	front, err := Listen("tcp", "127.0.0.1:0", WithKey(frontKey))
	require.NoError(t, err)
	defer front.Close()
	dialer, err := NewDialer(WithKey(backKey))
	require.NoError(t, err)

	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := front.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer in.Close()
				out, err := dialer.Dial("tcp", backend.Addr().String())
				if !assert.NoError(t, err) {
					return
				}
				defer out.Close()
				var pw sync.WaitGroup
				pw.Add(1)
				go func() {
					defer pw.Done()
					io.Copy(out, in)
					out.(*Conn).CloseWrite()
				}()
				io.Copy(in, out)
				in.(*Conn).CloseWrite()
				pw.Wait()
			}()
		}
	}()

	for _, size := range []int{1, 5000, 1 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			c, err := Dial("tcp", front.Addr().String(), WithKey(frontKey))
			require.NoError(t, err)
			defer c.Close()
			data := patternBytes(size)
			sent := make(chan error, 1)
			go func() {
				_, err := c.Write(data)
				if err == nil {
					err = c.CloseWrite()
				}
				sent <- err
			}()
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			got, err := io.ReadAll(c)
			require.NoError(t, err)
			require.NoError(t, <-sent)
			require.True(t, bytes.Equal(data, got), "got %d bytes back, sent %d", len(got), len(data))
		})
	}
	front.Close()
}

func TestConnDeadlines(t *testing.T) {
	key := mustGenerateTestKey(t)

	t.Run("handshake timeout does not outlive the handshake", func(t *testing.T) {
		// Timeouts long enough for a loaded CI machine to finish the
		// handshake in, short enough to wait past.
		ln, err := Listen("tcp", "127.0.0.1:0", WithKey(key), WithHandshakeTimeout(300*time.Millisecond))
		require.NoError(t, err)
		defer ln.Close()
		c, err := Dial("tcp", ln.Addr().String(), WithKey(key), WithHandshakeTimeout(300*time.Millisecond), WithWaitForVerdict())
		require.NoError(t, err)
		defer c.Close()
		s, err := ln.Accept()
		require.NoError(t, err)
		defer s.Close()
		time.Sleep(500 * time.Millisecond) // well past both handshake timeouts
		_, err = c.Write([]byte("late"))
		require.NoError(t, err)
		_, err = io.ReadFull(s, make([]byte, 4))
		require.NoError(t, err, "the server's handshake deadline must be cleared")
		_, err = s.Write([]byte("back"))
		require.NoError(t, err)
		_, err = io.ReadFull(c, make([]byte, 4))
		require.NoError(t, err, "the client's handshake deadline must be cleared")
	})

	t.Run("read deadline set before the handshake is restored", func(t *testing.T) {
		client, server, _ := newAuthConnPair(t, "tcp", []Option{WithKey(key)}, []Option{WithKey(key)})
		deadline := time.Now().Add(800 * time.Millisecond)
		require.NoError(t, server.SetReadDeadline(deadline))
		_, err := client.Write([]byte("a"))
		require.NoError(t, err)
		_, err = io.ReadFull(server, make([]byte, 1))
		require.NoError(t, err)
		// The client sends nothing more: the user's deadline fires.
		_, err = server.Read(make([]byte, 1))
		assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
		assert.False(t, time.Now().Before(deadline), "the read timed out before the user's deadline")
	})

	t.Run("write deadline set before the handshake is restored", func(t *testing.T) {
		// Over a pipe a write blocks until the peer reads: the deadline
		// shows.
		client, server, serverErr := newAuthConnPair(t, "pipe", []Option{WithKey(key)}, []Option{WithKey(key)})
		require.NoError(t, server.SetWriteDeadline(time.Now().Add(800*time.Millisecond)))
		go client.Read(make([]byte, 1)) // sends the proof, takes the verdict
		require.NoError(t, <-serverErr)
		_, err := server.Write([]byte("nobody reads this"))
		assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	})

	t.Run("deadline set during the handshake survives it", func(t *testing.T) {
		rc, rs := newRawConnPair(t, "tcp")
		server, err := Server(rs, WithKey(key), WithHandshakeTimeout(time.Minute))
		require.NoError(t, err)
		serverErr := make(chan error, 1)
		go func() { serverErr <- server.Handshake() }()
		time.Sleep(20 * time.Millisecond) // the server waits for the hello
		deadline := time.Now().Add(800 * time.Millisecond)
		require.NoError(t, server.SetReadDeadline(deadline))
		client, err := Client(rc, WithKey(key))
		require.NoError(t, err)
		_, err = client.Write([]byte("a"))
		require.NoError(t, err)
		require.NoError(t, <-serverErr)
		_, err = io.ReadFull(server, make([]byte, 1))
		require.NoError(t, err)
		_, err = server.Read(make([]byte, 1))
		assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
		assert.False(t, time.Now().Before(deadline), "the read timed out before the user's deadline")
	})

	t.Run("deadline earlier than the handshake bounds it", func(t *testing.T) {
		raw, _ := newRawConnPair(t, "tcp") // the server side never answers
		c, err := Client(raw, WithKey(key))
		require.NoError(t, err)
		require.NoError(t, c.SetDeadline(time.Now().Add(100*time.Millisecond)))
		err = c.Handshake()
		assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
		assert.Contains(t, err.Error(), "hit the deadline")
	})

	t.Run("deadline cleared before the handshake stays cleared", func(t *testing.T) {
		client, server, serverErr := newAuthConnPair(t, "tcp",
			[]Option{WithKey(key), WithHandshakeTimeout(300 * time.Millisecond)},
			[]Option{WithKey(key), WithHandshakeTimeout(time.Minute)})
		require.NoError(t, client.SetDeadline(time.Time{}))
		_, err := client.Write([]byte("x"))
		require.NoError(t, err)
		require.NoError(t, <-serverErr)
		time.Sleep(400 * time.Millisecond)
		go func() {
			time.Sleep(50 * time.Millisecond)
			server.Write([]byte("y"))
		}()
		client.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = io.ReadFull(client, make([]byte, 1))
		require.NoError(t, err)
	})
}

func TestConnHandshakeErrorIsSticky(t *testing.T) {
	rc, rs := newRawConnPair(t, "tcp")
	c, err := Client(rc, WithKey(mustGenerateTestKey(t)))
	require.NoError(t, err)
	rs.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
	err = c.Handshake()
	require.ErrorIs(t, err, ErrNotProtocol)
	for range 2 {
		_, err2 := c.Read(make([]byte, 1))
		assert.Equal(t, err, err2)
		_, err2 = c.Write([]byte("x"))
		assert.Equal(t, err, err2)
		assert.Equal(t, err, c.HandshakeContext(context.Background()))
	}
	assert.False(t, c.ConnectionState().HandshakeComplete)
	// The raw connection was closed.
	_, err = rc.Write([]byte("x"))
	assert.ErrorIs(t, err, net.ErrClosed)
}

func TestConnConnectionState(t *testing.T) {
	key := mustGenerateTestKey(t)
	for _, tc := range []struct {
		name                      string
		clientSuites, serverSuite []Suite
		want                      Suite
	}{
		{"defaults", nil, nil, SuiteHMACSHA256},
		{"client prefers SHA-512, server decides", []Suite{SuiteHMACSHA512, SuiteHMACSHA256}, nil, SuiteHMACSHA256},
		{"server prefers SHA-512", nil, []Suite{SuiteHMACSHA512, SuiteHMACSHA256}, SuiteHMACSHA512},
		{"only SHA-512 in common", []Suite{SuiteHMACSHA512}, nil, SuiteHMACSHA512},
	} {
		for _, kind := range rawPairKinds {
			t.Run(tc.name+"/"+kind, func(t *testing.T) {
				copts := []Option{WithKey(key), WithKeyID("svc-1")}
				sopts := []Option{WithKeys(map[string][]byte{"svc-1": key})}
				if tc.clientSuites != nil {
					copts = append(copts, WithSuites(tc.clientSuites...))
				}
				if tc.serverSuite != nil {
					sopts = append(sopts, WithSuites(tc.serverSuite...))
				}
				rc, rs := newRawConnPair(t, kind)
				client, err := Client(rc, copts...)
				require.NoError(t, err)
				server, err := Server(rs, sopts...)
				require.NoError(t, err)
				assert.Equal(t, ConnectionState{IsClient: true}, client.ConnectionState())
				assert.Equal(t, ConnectionState{}, server.ConnectionState())

				serverErr := make(chan error, 1)
				go func() { serverErr <- server.Handshake() }()
				require.NoError(t, client.Handshake())
				go client.Read(make([]byte, 1)) // proof out, verdict in
				require.NoError(t, <-serverErr)

				want := ConnectionState{HandshakeComplete: true, IsClient: true, Version: 1, KeyID: "svc-1", Suite: tc.want, Mode: ModeAuthOnly}
				assert.Equal(t, want, client.ConnectionState())
				want.IsClient = false
				assert.Equal(t, want, server.ConnectionState())
				client.Close()
			})
		}
	}
}

func TestConnExportKeyingMaterial(t *testing.T) {
	key := mustGenerateTestKey(t)
	for _, kind := range rawPairKinds {
		for _, suite := range []Suite{SuiteHMACSHA256, SuiteHMACSHA512} {
			t.Run(kind+"/"+suite.String(), func(t *testing.T) {
				session := func() (c, s *Conn) {
					c, s, serverErr := newAuthConnPair(t, kind,
						[]Option{WithKey(key), WithSuites(suite)}, []Option{WithKey(key), WithSuites(suite)})
					go c.Read(make([]byte, 1))
					require.NoError(t, <-serverErr)
					return c, s
				}
				c1, s1 := session()
				c2, s2 := session()

				for _, n := range []int{1, 16, 32, 100} {
					a, err := c1.ExportKeyingMaterial("label", []byte("ctx"), n)
					require.NoError(t, err)
					b, err := s1.ExportKeyingMaterial("label", []byte("ctx"), n)
					require.NoError(t, err)
					assert.Len(t, a, n)
					assert.Equal(t, a, b, "both sides derive the same bytes")
				}
				base, _ := c1.ExportKeyingMaterial("label", []byte("ctx"), 32)
				others := map[string]func() ([]byte, error){
					"other session":   func() ([]byte, error) { return c2.ExportKeyingMaterial("label", []byte("ctx"), 32) },
					"other label":     func() ([]byte, error) { return c1.ExportKeyingMaterial("label2", []byte("ctx"), 32) },
					"other context":   func() ([]byte, error) { return c1.ExportKeyingMaterial("label", []byte("ctx2"), 32) },
					"no context":      func() ([]byte, error) { return c1.ExportKeyingMaterial("label", nil, 32) },
					"label/ctx split": func() ([]byte, error) { return c1.ExportKeyingMaterial("labelc", []byte("tx"), 32) },
				}
				for name, f := range others {
					b, err := f()
					require.NoError(t, err, name)
					assert.NotEqual(t, base, b, name)
				}
				c2b, err := s2.ExportKeyingMaterial("label", []byte("ctx"), 32)
				require.NoError(t, err)
				c2a, _ := c2.ExportKeyingMaterial("label", []byte("ctx"), 32)
				assert.Equal(t, c2a, c2b)
				assert.NotEqual(t, key, base[:len(key)], "the exporter must not leak the key")
			})
		}
	}
	t.Run("before the handshake", func(t *testing.T) {
		rc, _ := newRawConnPair(t, "pipe")
		c, err := Client(rc, WithKey(key))
		require.NoError(t, err)
		_, err = c.ExportKeyingMaterial("label", nil, 32)
		assert.Error(t, err)
	})
	t.Run("after a failed handshake", func(t *testing.T) {
		rc, rs := newRawConnPair(t, "tcp")
		c, err := Client(rc, WithKey(key))
		require.NoError(t, err)
		rs.Close()
		require.Error(t, c.Handshake())
		_, err = c.ExportKeyingMaterial("label", nil, 32)
		assert.Error(t, err)
	})
}

// TestConnConcurrentReadWrite runs a client that reads and writes from two
// goroutines at once right after the handshake, over both transports.
func TestConnConcurrentReadWrite(t *testing.T) {
	key := mustGenerateTestKey(t)
	for _, kind := range rawPairKinds {
		t.Run(kind, func(t *testing.T) {
			client, server, _ := newAuthConnPair(t, kind, []Option{WithKey(key)}, []Option{WithKey(key)})
			go func() {
				io.Copy(server, server)
				server.Close()
			}()
			data := patternBytes(200_000)
			go func() {
				for off := 0; off < len(data); off += 1000 {
					if _, err := client.Write(data[off : off+1000]); err != nil {
						return
					}
				}
			}()
			client.SetReadDeadline(time.Now().Add(20 * time.Second))
			got := make([]byte, len(data))
			_, err := io.ReadFull(client, got)
			require.NoError(t, err)
			require.True(t, bytes.Equal(data, got))
		})
	}
}

// TestConnWriteThenCloseDeliversEverything is a client that writes and
// closes without ever reading: the server's unread verdict byte must not
// make the client's TCP stack reset the connection and drop the tail of
// the data, which plain TCP would deliver.
func TestConnWriteThenCloseDeliversEverything(t *testing.T) {
	key := mustGenerateTestKey(t)
	ln, err := Listen("tcp", "127.0.0.1:0", WithKey(key))
	require.NoError(t, err)
	defer ln.Close()
	for _, size := range []int{1, 1 << 16, 8 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			data := patternBytes(size)
			c, err := Dial("tcp", ln.Addr().String(), WithKey(key))
			require.NoError(t, err)
			type result struct {
				got []byte
				err error
			}
			res := make(chan result, 1)
			go func() {
				s, err := ln.Accept()
				if err != nil {
					res <- result{err: err}
					return
				}
				defer s.Close()
				s.SetReadDeadline(time.Now().Add(20 * time.Second))
				got, err := io.ReadAll(s)
				res <- result{got, err}
			}()
			_, err = c.Write(data)
			require.NoError(t, err)
			require.NoError(t, c.Close())
			r := <-res
			require.NoError(t, r.err, "the server must read a clean EOF, not a reset")
			require.Equal(t, len(data), len(r.got))
			require.True(t, bytes.Equal(data, r.got))
		})
	}
}

// TestConnCloseUnblocksRead closes a client while another goroutine waits
// in Read for the verdict and data: Close must not wait for that Read.
func TestConnCloseUnblocksRead(t *testing.T) {
	key := mustGenerateTestKey(t)
	for _, kind := range rawPairKinds {
		t.Run(kind, func(t *testing.T) {
			client, _, _ := newAuthConnPair(t, kind, []Option{WithKey(key)}, []Option{WithKey(key), WithHandshakeTimeout(time.Minute)})
			readErr := make(chan error, 1)
			go func() {
				_, err := io.ReadAll(client)
				readErr <- err
			}()
			time.Sleep(20 * time.Millisecond)
			closed := make(chan error, 1)
			go func() { closed <- client.Close() }()
			select {
			case err := <-closed:
				assert.NoError(t, err)
			case <-time.After(5 * time.Second):
				t.Fatal("Close blocked")
			}
			select {
			case <-readErr:
			case <-time.After(5 * time.Second):
				t.Fatal("Read not released by Close")
			}
		})
	}
}

// TestConnCloseDuringHandshake closes a Conn whose handshake waits for a
// silent peer: the handshake must end at once with an error.
func TestConnCloseDuringHandshake(t *testing.T) {
	key := mustGenerateTestKey(t)
	for _, kind := range rawPairKinds {
		for _, side := range []string{"client", "server"} {
			t.Run(kind+"/"+side, func(t *testing.T) {
				raw, _ := newRawConnPair(t, kind)
				newConn := Client
				if side == "server" {
					newConn = Server
				}
				c, err := newConn(raw, WithKey(key), WithHandshakeTimeout(time.Minute))
				require.NoError(t, err)
				hs := make(chan error, 1)
				go func() { hs <- c.Handshake() }()
				time.Sleep(20 * time.Millisecond)
				require.NoError(t, c.Close())
				select {
				case err := <-hs:
					require.Error(t, err)
					assert.ErrorIs(t, err, ErrProtocol)
				case <-time.After(10 * time.Second):
					t.Fatal("Close did not end the handshake")
				}
			})
		}
	}
}
