package auth

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// acceptWithData dials ln, writes data with the client's first Write (so
// it travels with the client's proof) and returns both ends once the
// listener has accepted the connection.
func acceptWithData(t *testing.T, ln *AuthListener, data []byte, opts ...Option) (client, server *Conn) {
	t.Helper()
	client, err := Dial("tcp", ln.Addr().String(), opts...)
	require.NoError(t, err)
	t.Cleanup(func() { client.Close() })
	wrote := make(chan error, 1)
	go func() {
		_, err := client.Write(data)
		wrote <- err
	}()
	server, err = ln.AcceptAuth()
	require.NoError(t, err)
	t.Cleanup(func() { server.Close() })
	require.NoError(t, <-wrote)
	server.SetDeadline(time.Now().Add(20 * time.Second))
	return client, server
}

// TestServerEarlyData sends the first data with the client's proof, which
// the server reads in the same read, and checks that every way of reading
// the server's Conn gets exactly those bytes, then the rest of the stream:
// Read with small and large buffers, io.Copy into a plain writer
// (WriteTo) and io.Copy into another authenticated Conn (ReadFrom of a
// *Conn source), in auth-only and sealed mode.
func TestServerEarlyData(t *testing.T) {
	key := mustGenerateTestKey(t)
	// The sink behind the proxy case: it reports everything it reads.
	sink, err := Listen("tcp", "127.0.0.1:0", WithKey(key))
	require.NoError(t, err)
	sunk := make(chan []byte, 1)
	serveConns(t, sink, func(c net.Conn) {
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		got, _ := io.ReadAll(c)
		sunk <- got
	})
	readers := map[string]func(t *testing.T, s *Conn) []byte{
		"read1": func(t *testing.T, s *Conn) []byte { return readAllWith(t, s, 1) },
		"read7": func(t *testing.T, s *Conn) []byte { return readAllWith(t, s, 7) },
		"read64k": func(t *testing.T, s *Conn) []byte {
			return readAllWith(t, s, 64<<10)
		},
		"copy-to-writer": func(t *testing.T, s *Conn) []byte {
			var got bytes.Buffer
			_, err := io.Copy(plainWriter{&got}, s)
			require.NoError(t, err)
			return got.Bytes()
		},
		"copy-to-conn": func(t *testing.T, s *Conn) []byte {
			out, err := Dial("tcp", sink.Addr().String(), WithKey(key))
			require.NoError(t, err)
			defer out.Close()
			n, err := io.Copy(out, s)
			require.NoError(t, err)
			require.NoError(t, out.CloseWrite())
			select {
			case got := <-sunk:
				assert.Equal(t, int64(len(got)), n, "io.Copy's count")
				return got
			case <-time.After(20 * time.Second):
				t.Fatal("the sink did not finish")
				return nil
			}
		},
	}
	for _, mode := range []string{"auth", "sealed"} {
		opts := []Option{WithKey(key)}
		if mode == "sealed" {
			opts = append(opts, WithSealed())
		}
		ln, err := Listen("tcp", "127.0.0.1:0", opts...)
		require.NoError(t, err)
		t.Cleanup(func() { ln.Close() })
		for _, size := range []int{1, 500, 900, 5000, 300_000} {
			for name, read := range readers {
				if mode == "sealed" && name == "copy-to-conn" {
					continue // a sealed source is copied record by record, not spliced
				}
				t.Run(fmt.Sprintf("%s/%d/%s", mode, size, name), func(t *testing.T) {
					first, rest := patternBytes(size), patternBytes(3000)
					client, server := acceptWithData(t, ln, first, opts...)
					if size <= 900 {
						// One write of the proof and the data, one
						// segment on loopback: the server read it all
						// with the proof.
						assert.True(t, server.hasEarly.Load() || server.seal != nil && server.seal.rend > server.seal.roff,
							"the server should hold the first data read with the proof")
					}
					_, err := client.Write(rest)
					require.NoError(t, err)
					require.NoError(t, client.CloseWrite())
					got := read(t, server)
					want := append(first, rest...)
					require.True(t, bytes.Equal(want, got), "got %d bytes, want %d", len(got), len(want))
					assert.False(t, server.hasEarly.Load(), "the early buffer is released once read")
				})
			}
		}
	}
}

// readAllWith reads c to EOF with reads of n bytes.
func readAllWith(t *testing.T, c *Conn, n int) []byte {
	var got []byte
	buf := make([]byte, n)
	for {
		m, err := c.Read(buf)
		got = append(got, buf[:m]...)
		if err == io.EOF {
			return got
		}
		require.NoError(t, err)
	}
}

// TestServerEarlyDataClose closes a server Conn whose early bytes nobody
// read, and one whose Read races the Close: the buffer goes back to the
// pool once, and later Reads fail cleanly.
func TestServerEarlyDataClose(t *testing.T) {
	key := mustGenerateTestKey(t)
	ln, err := Listen("tcp", "127.0.0.1:0", WithKey(key))
	require.NoError(t, err)
	defer ln.Close()

	_, server := acceptWithData(t, ln, []byte("never read"), WithKey(key))
	require.True(t, server.hasEarly.Load())
	require.NoError(t, server.Close())
	assert.False(t, server.hasEarly.Load())
	assert.Nil(t, server.earlyBuf)
	_, err = server.Read(make([]byte, 4))
	assert.ErrorIs(t, err, net.ErrClosed)

	for range 20 {
		_, server := acceptWithData(t, ln, patternBytes(200), WithKey(key))
		done := make(chan struct{})
		go func() {
			defer close(done)
			buf := make([]byte, 3)
			for {
				if _, err := server.Read(buf); err != nil {
					return
				}
			}
		}()
		server.Close()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("Read did not end after Close")
		}
	}
}
