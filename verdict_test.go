package auth

import (
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestServerVerdictTiming drives the client side by hand and checks when
// the server's accepting verdict goes out: in front of the server's first
// write, in the same system call; at Close when the server never wrote; at
// once when the client's finished message asks for it.
func TestServerVerdictTiming(t *testing.T) {
	for _, tc := range []struct {
		name string
		// wait sends the finished message that asks for the verdict now.
		wait bool
		// serve is the application behind the listener.
		serve func(c net.Conn)
		// want is everything the client reads until the server closes.
		want string
		// firstRead, if set, is what the client's first read must return
		// whole: the verdict and the data of one write.
		firstRead string
	}{
		{
			name: "with the first write",
			serve: func(c net.Conn) {
				b := make([]byte, 4)
				if _, err := io.ReadFull(c, b); err == nil {
					c.Write([]byte("pong"))
				}
			},
			want:      "\x06pong",
			firstRead: "\x06pong",
		},
		{
			name: "at close, when the server never writes",
			serve: func(c net.Conn) {
				io.ReadFull(c, make([]byte, 4))
			},
			want: "\x06",
		},
		{
			name: "at half-close, when the server never writes",
			serve: func(c net.Conn) {
				if _, err := io.ReadFull(c, make([]byte, 4)); err == nil {
					c.(*Conn).CloseWrite()
					io.Copy(io.Discard, c) // until the client closes
				}
			},
			want: "\x06",
		},
		{
			name: "at once, when the client waits for it",
			wait: true,
			serve: func(c net.Conn) {
				time.Sleep(50 * time.Millisecond) // the verdict is out before this
				io.ReadFull(c, make([]byte, 4))
			},
			want:      "\x06",
			firstRead: "\x06",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := Listen("tcp", "127.0.0.1:0", WithKey(atkKey))
			require.NoError(t, err)
			serveConns(t, ln, func(c net.Conn) {
				defer c.Close()
				c.SetDeadline(time.Now().Add(atkTimeout))
				tc.serve(c)
			})
			a := atkHandshakeUpTo(t, ln.Addr().String(), atkKey, "")
			fin := slices.Clone(a.fin)
			if tc.wait {
				fin[0] = msgClientFinishedWait
				atkWrite(t, a.conn, fin)
			} else {
				atkWrite(t, a.conn, append(fin, "ping"...))
			}
			a.conn.SetReadDeadline(time.Now().Add(atkTimeout))
			if tc.firstRead != "" {
				b := make([]byte, 64)
				n, err := a.conn.Read(b)
				require.NoError(t, err)
				require.Equal(t, tc.firstRead, string(b[:n]), "the first read")
				if tc.wait {
					atkWrite(t, a.conn, []byte("ping"))
				}
				rest, err := io.ReadAll(a.conn)
				require.NoError(t, err)
				require.Equal(t, tc.want, string(b[:n])+string(rest))
				return
			}
			got, err := io.ReadAll(a.conn)
			require.NoError(t, err)
			require.Equal(t, tc.want, string(got))
			a.conn.Close()
		})
	}
}

// TestClientReadsCleanEOFFromSilentServer checks the client's view of a
// server that reads and closes without writing: the verdict it sends at
// Close makes the client's Read return a clean io.EOF, in both modes.
func TestClientReadsCleanEOFFromSilentServer(t *testing.T) {
	for _, mode := range []struct {
		name string
		opts []Option
	}{{"auth-only", nil}, {"sealed", []Option{WithSealed()}}} {
		t.Run(mode.name, func(t *testing.T) {
			opts := append([]Option{WithKey(atkKey)}, mode.opts...)
			ln, err := Listen("tcp", "127.0.0.1:0", opts...)
			require.NoError(t, err)
			serveConns(t, ln, func(c net.Conn) {
				defer c.Close()
				c.SetDeadline(time.Now().Add(atkTimeout))
				io.ReadFull(c, make([]byte, 4))
			})
			c, err := Dial("tcp", ln.Addr().String(), opts...)
			require.NoError(t, err)
			defer c.Close()
			_, err = c.Write([]byte("ping"))
			require.NoError(t, err)
			c.SetReadDeadline(time.Now().Add(atkTimeout))
			n, err := c.Read(make([]byte, 8))
			require.Zero(t, n)
			require.ErrorIs(t, err, io.EOF)
		})
	}
}
