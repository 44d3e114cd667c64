package auth

import (
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReviewExportKeyingMaterialOddInput gives ExportKeyingMaterial input
// the exporter cannot honour: a negative length must be an error, not a
// panic, and a label or context too long for its u16 length prefix must be
// refused rather than silently encoded with a wrapped length (which would
// let two different label/context pairs export the same bytes).
func TestReviewExportKeyingMaterialOddInput(t *testing.T) {
	client, _ := pipePair(t, nil, nil)

	for _, n := range []int{-1, -1 << 40} {
		var err error
		require.NotPanics(t, func() { _, err = client.ExportKeyingMaterial("label", nil, n) }, "n=%d", n)
		require.Error(t, err, "n=%d", n)
		assert.True(t, strings.HasPrefix(err.Error(), "auth: "), err.Error())
	}

	long := strings.Repeat("x", 1<<16)
	_, err := client.ExportKeyingMaterial(long, nil, 32)
	assert.Error(t, err, "a label of 65536 bytes does not fit its u16 length")
	_, err = client.ExportKeyingMaterial("label", []byte(long), 32)
	assert.Error(t, err, "a context of 65536 bytes does not fit its u16 length")

	ok, err := client.ExportKeyingMaterial(long[:1<<16-1], []byte(long[:1<<16-1]), 32)
	require.NoError(t, err, "the longest label and context that fit")
	assert.Len(t, ok, 32)
}

// slowProofConn delays the write that carries the client's finished
// message, and says when that write has begun, so a test can make another
// goroutine's write race it.
type slowProofConn struct {
	net.Conn
	proofStarted chan struct{}
	once         sync.Once
}

func (c *slowProofConn) Write(p []byte) (int, error) {
	if len(p) > 0 && p[0] == msgClientFinished {
		c.once.Do(func() { close(c.proofStarted) })
		time.Sleep(200 * time.Millisecond)
	}
	return c.Conn.Write(p)
}

func (c *slowProofConn) CloseWrite() error { return c.Conn.(*net.TCPConn).CloseWrite() }

// TestReviewWriterWaitsForProofSentByRead makes a Read send the client's
// pending proof slowly while ReadFrom or CloseWrite runs on another
// goroutine, as a proxy that copies both ways does. Neither may put bytes
// (or a FIN) on the wire ahead of the proof: the server would see them
// where it expects the finished message and fail the handshake.
func TestReviewWriterWaitsForProofSentByRead(t *testing.T) {
	key := mustGenerateTestKey(t)
	for _, tc := range []struct {
		name  string
		write func(c *Conn) error
		want  string // what the server reads after the handshake
	}{
		{"ReadFrom", func(c *Conn) error {
			_, err := c.ReadFrom(strings.NewReader("hello"))
			if err == nil {
				err = c.CloseWrite()
			}
			return err
		}, "hello"},
		{"CloseWrite", func(c *Conn) error { return c.CloseWrite() }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc, rs := newRawConnPair(t, "tcp")
			slow := &slowProofConn{Conn: rc, proofStarted: make(chan struct{})}
			client, err := Client(slow, WithKey(key))
			require.NoError(t, err)
			server, err := Server(rs, WithKey(key))
			require.NoError(t, err)
			serverDone := make(chan error, 1)
			var got []byte
			go func() {
				defer server.Close()
				if err := server.Handshake(); err != nil {
					serverDone <- err
					return
				}
				server.SetReadDeadline(time.Now().Add(5 * time.Second))
				got, err = io.ReadAll(server)
				serverDone <- err
			}()
			require.NoError(t, client.Handshake())
			client.SetReadDeadline(time.Now().Add(5 * time.Second))
			readDone := make(chan error, 1)
			go func() {
				_, err := client.Read(make([]byte, 1)) // sends the proof
				readDone <- err
			}()
			select {
			case <-slow.proofStarted:
			case <-time.After(5 * time.Second):
				t.Fatal("the Read did not start sending the proof")
			}
			require.NoError(t, tc.write(client))
			select {
			case err := <-serverDone:
				require.NoError(t, err, "the server's handshake and read")
			case <-time.After(5 * time.Second):
				t.Fatal("server did not finish")
			}
			assert.Equal(t, tc.want, string(got))
			client.Close()
			<-readDone
		})
	}
}
