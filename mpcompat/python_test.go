package mpcompat

import (
	"encoding/hex"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hmacauth/auth"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	testKey  = []byte("a multiprocessing authkey, 32 b.")
	wrongKey = []byte("a multiprocessing authkey, 32 B.")
)

// bigFromPython is what mp_echo.big_message sends.
func bigFromPython() []byte {
	b := make([]byte, 0, 25600)
	for range 100 {
		for i := range 256 {
			b = append(b, byte(i))
		}
	}
	return b
}

func reversed(b []byte) []byte {
	r := make([]byte, len(b))
	for i, c := range b {
		r[len(b)-1-i] = c
	}
	return r
}

// exchange runs the Go half of mp_echo.exchange and checks every message
// both ways: Python's 25,600-byte message and version, then small, empty,
// over-16-KiB and -1-framed messages echoed back reversed.
func exchange(t *testing.T, c *Conn, py interpreter) {
	t.Helper()
	require.NoError(t, c.SetDeadline(time.Now().Add(20*time.Second)))
	got, err := c.RecvBytes()
	require.NoError(t, err)
	require.Equal(t, bigFromPython(), got, "Python's 25,600-byte message")
	got, err = c.RecvBytes()
	require.NoError(t, err)
	assert.Equal(t, "python "+py.version, string(got))

	big := make([]byte, 100<<10)
	for i := range big {
		big[i] = byte(i * 7 / 3)
	}
	for _, tc := range []struct {
		name     string
		msg      []byte
		longForm bool
	}{
		{"small", []byte("ping"), false},
		{"empty", []byte{}, false},
		{"100 KiB", big, false},
		{"-1 length form", []byte("sent with the 8-byte length"), true},
	} {
		if tc.longForm {
			c.longFormAt = 0
		}
		require.NoError(t, c.SendBytes(tc.msg), tc.name)
		c.longFormAt = maxShortForm
		got, err := c.RecvBytes()
		require.NoError(t, err, tc.name)
		require.Equal(t, append([]byte("echo:"), reversed(tc.msg)...), got, tc.name)
	}
	require.NoError(t, c.SendBytes([]byte("bye")))
	_, err = c.RecvBytes()
	assert.ErrorIs(t, err, io.EOF, "Python closes after bye")
}

// outcome is what a Go side of generation gen sees against py.
func outcome(gen Generation, py interpreter, wrong bool, goListens bool) (wantErr error, legacy bool, digest string) {
	switch {
	case gen == Modern && !py.modern:
		return ErrLegacyPeer, false, ""
	case wrong && goListens:
		return ErrBadAnswer, false, ""
	case wrong:
		return ErrAnswerRejected, false, ""
	case gen == Legacy || !py.modern:
		return nil, true, "md5"
	}
	return nil, false, "sha256"
}

// TestPythonClient runs CPython's multiprocessing.connection.Client against
// a Go Listener of each generation, with the right and a wrong authkey.
func TestPythonClient(t *testing.T) {
	for _, py := range interpreters(t) {
		for _, gen := range []Generation{Auto, Legacy, Modern} {
			for _, wrong := range []bool{false, true} {
				name := "python" + py.version + "/" + gen.String()
				if wrong {
					name += "/wrong-key"
				}
				t.Run(name, func(t *testing.T) {
					wantErr, legacy, digest := outcome(gen, py, wrong, true)
					events := make(chan HandshakeEvent, 1)
					cfg := &Config{Generation: gen, HandshakeHook: func(ev HandshakeEvent) { events <- ev }}
					ln, err := cfg.Listen("tcp", "127.0.0.1:0", testKey)
					require.NoError(t, err)
					defer ln.Close()
					accepted := make(chan *Conn, 1)
					go func() {
						c, _ := ln.Accept()
						accepted <- c
					}()

					key := testKey
					if wrong {
						key = wrongKey
					}
					p := startPython(t, py.path, "mp_client.py", strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), hex.EncodeToString(key))
					ev := <-events
					assert.False(t, ev.IsClient)
					if wantErr != nil {
						require.ErrorIs(t, ev.Err, wantErr)
						if wantErr == ErrBadAnswer {
							require.ErrorIs(t, ev.Err, auth.ErrAuthFailed)
						}
						assert.True(t, strings.HasPrefix(p.line(t), "AUTH FAILED"))
						assert.Equal(t, 3, p.wait(t))
						require.NoError(t, ln.Close())
						assert.Nil(t, <-accepted, "no unauthenticated peer may come out of Accept")
						return
					}
					require.NoError(t, ev.Err)
					c := <-accepted
					require.NotNil(t, c)
					defer c.Close()
					assert.Equal(t, ConnectionState{LocalAnswer: digest, PeerAnswer: digest, Legacy: legacy}, c.ConnectionState())
					assert.Equal(t, "AUTH OK", p.line(t))
					exchange(t, c, py)
					assert.Equal(t, 0, p.wait(t))
				})
			}
		}
	}
}

// TestPythonListener runs a Go client of each generation against CPython's
// multiprocessing.connection.Listener, with the right and a wrong authkey.
func TestPythonListener(t *testing.T) {
	for _, py := range interpreters(t) {
		for _, gen := range []Generation{Auto, Legacy, Modern} {
			for _, wrong := range []bool{false, true} {
				name := "python" + py.version + "/" + gen.String()
				if wrong {
					name += "/wrong-key"
				}
				t.Run(name, func(t *testing.T) {
					wantErr, legacy, digest := outcome(gen, py, wrong, false)
					p := startPython(t, py.path, "mp_listener.py", hex.EncodeToString(testKey))
					port, ok := strings.CutPrefix(p.line(t), "PORT ")
					require.True(t, ok)

					key := testKey
					if wrong {
						key = wrongKey
					}
					cfg := &Config{Generation: gen}
					c, err := cfg.Dial("tcp", "127.0.0.1:"+port, key)
					if wantErr != nil {
						require.ErrorIs(t, err, wantErr)
						if wantErr == ErrAnswerRejected {
							require.ErrorIs(t, err, auth.ErrAuthFailed)
						}
						assert.Nil(t, c)
						assert.True(t, strings.HasPrefix(p.line(t), "AUTH FAILED"))
						assert.Equal(t, 3, p.wait(t))
						return
					}
					require.NoError(t, err)
					defer c.Close()
					assert.Equal(t, ConnectionState{IsClient: true, LocalAnswer: digest, PeerAnswer: digest, Legacy: legacy}, c.ConnectionState())
					assert.Equal(t, "AUTH OK", p.line(t))
					exchange(t, c, py)
					assert.Equal(t, 0, p.wait(t))
				})
			}
		}
	}
}

// TestPythonMaxMessageSize checks the bound on a message that really comes
// from Python: its first message is 25,600 bytes.
func TestPythonMaxMessageSize(t *testing.T) {
	py := interpreters(t)[0]
	cfg := &Config{MaxMessageSize: 16 << 10}
	ln, err := cfg.Listen("tcp", "127.0.0.1:0", testKey)
	require.NoError(t, err)
	defer ln.Close()
	p := startPython(t, py.path, "mp_client.py", strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), hex.EncodeToString(testKey))
	c, err := ln.Accept()
	require.NoError(t, err)
	defer c.Close()
	_, err = c.RecvBytes()
	require.ErrorIs(t, err, ErrMessageTooLarge)
	require.ErrorIs(t, err, auth.ErrProtocol)
	assert.Contains(t, err.Error(), "25600 bytes")
	_, err2 := c.RecvBytes()
	assert.Equal(t, err, err2, "the stream is not at a message boundary any more")
	require.NoError(t, c.Close())
	assert.Equal(t, "AUTH OK", p.line(t))
	assert.NotEqual(t, 0, p.wait(t), "Python sees the connection closed")
}

// TestPythonClientUnixSocket: a Python Client given a path connects over a
// Unix socket (AF_UNIX), and a Go Listener on "unix" serves it.
func TestPythonClientUnixSocket(t *testing.T) {
	py := interpreters(t)[0]
	path := filepath.Join(t.TempDir(), "mp.sock")
	ln, err := Listen("unix", path, testKey)
	require.NoError(t, err)
	defer ln.Close()
	p := startPython(t, py.path, "mp_client.py", path, hex.EncodeToString(testKey))
	c, err := ln.Accept()
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, "AUTH OK", p.line(t))
	exchange(t, c, py)
	assert.Equal(t, 0, p.wait(t))
}
