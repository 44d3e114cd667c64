package mpcompat

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"io"
	"math"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/hmacauth/auth"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAppendHeader(t *testing.T) {
	tests := []struct {
		n          int
		longFormAt int64
		want       string
	}{
		{0, maxShortForm, "00000000"},
		{5, maxShortForm, "00000005"},
		{16385, maxShortForm, "00004001"},
		{math.MaxInt32, maxShortForm, "7fffffff"},
		{math.MaxInt32 + 1, maxShortForm, "ffffffff0000000080000000"},
		{5, 0, "ffffffff0000000000000005"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, hex.EncodeToString(appendHeader(nil, tt.n, tt.longFormAt)), "n=%d", tt.n)
	}
}

// rawPair returns a Conn over one end of a TCP connection and the raw other
// end, so a test can write frames by hand.
func rawPair(t *testing.T, maxMsg int64) (*Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	raw, err := ln.Accept()
	require.NoError(t, err)
	c := &Conn{conn: raw, maxMsg: maxMsg, longFormAt: maxShortForm}
	t.Cleanup(func() { c.Close(); peer.Close() })
	return c, peer
}

func TestRecvBytes(t *testing.T) {
	tests := []struct {
		name    string
		wire    string
		want    []string
		wantErr error
	}{
		{"two messages", "00000002686900000000", []string{"hi", ""}, io.EOF},
		{"-1 form", "ffffffff0000000000000003616263", []string{"abc"}, io.EOF},
		{"negative length", "fffffffe", nil, auth.ErrProtocol},
		{"over the bound", "00000011", nil, ErrMessageTooLarge},
		{"-1 form over the bound", "ffffffff8000000000000000", nil, ErrMessageTooLarge},
		{"torn header", "0000", nil, io.ErrUnexpectedEOF},
		{"torn -1 header", "ffffffff0000", nil, io.ErrUnexpectedEOF},
		{"torn body", "0000000568", nil, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, peer := rawPair(t, 16)
			b, _ := hex.DecodeString(tt.wire)
			_, err := peer.Write(b)
			require.NoError(t, err)
			require.NoError(t, peer.Close())
			for _, w := range tt.want {
				got, err := c.RecvBytes()
				require.NoError(t, err)
				assert.Equal(t, w, string(got))
			}
			_, err = c.RecvBytes()
			require.ErrorIs(t, err, tt.wantErr)
			_, err2 := c.RecvBytes()
			assert.Equal(t, err, err2, "errors at the end of the stream are sticky")
		})
	}
}

func TestRecvBytesLarge(t *testing.T) {
	c, peer := rawPair(t, 8<<20)
	msg := bytes.Repeat([]byte("0123456789abcdef"), (3<<20)/16+1) // over readChunk: grown as it arrives
	go func() {
		peer.Write(binary.BigEndian.AppendUint32(nil, uint32(len(msg))))
		peer.Write(msg)
	}()
	got, err := c.RecvBytes()
	require.NoError(t, err)
	assert.Equal(t, msg, got)
}

func TestRecvBytesTimeout(t *testing.T) {
	c, peer := rawPair(t, 1024)
	// Before any byte of a message: a timeout can be retried.
	require.NoError(t, c.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
	_, err := c.RecvBytes()
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	require.NoError(t, c.SetReadDeadline(time.Time{}))
	_, err = peer.Write([]byte{0, 0, 0, 2, 'o', 'k'})
	require.NoError(t, err)
	got, err := c.RecvBytes()
	require.NoError(t, err)
	assert.Equal(t, "ok", string(got))

	// In the middle of a message: the stream is lost, the error sticks.
	_, err = peer.Write([]byte{0, 0, 0, 9, 'p'})
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	_, err = c.RecvBytes()
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	require.NoError(t, c.SetReadDeadline(time.Time{}))
	_, err2 := c.RecvBytes()
	assert.Equal(t, err, err2)
}

func TestSendBytesWire(t *testing.T) {
	c, peer := rawPair(t, 1024)
	require.NoError(t, c.SendBytes([]byte("hello")))
	require.NoError(t, c.SendBytes(nil))
	c.longFormAt = 0
	require.NoError(t, c.SendBytes([]byte("x")))
	require.NoError(t, c.Close())
	got, err := io.ReadAll(peer)
	require.NoError(t, err)
	assert.Equal(t, "0000000568656c6c6f00000000ffffffff000000000000000178", hex.EncodeToString(got))
	assert.Error(t, c.SendBytes([]byte("after close")))
}

// FuzzRecvBytes feeds arbitrary bytes to RecvBytes: it must never panic
// and never return more messages than the bytes could hold.
func FuzzRecvBytes(f *testing.F) {
	for _, s := range []string{"00000002686900000000", "ffffffff0000000000000003616263", "fffffffe", "ffffffff8000000000000000", "0000"} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, wire []byte) {
		a, b := net.Pipe()
		go func() {
			b.Write(wire)
			b.Close()
		}()
		c := &Conn{conn: a, maxMsg: 1 << 16, longFormAt: maxShortForm}
		defer c.Close()
		total := 0
		for range len(wire) + 1 {
			msg, err := c.RecvBytes()
			if err != nil {
				return
			}
			total += shortHeaderLen + len(msg)
			if total > len(wire) {
				t.Fatalf("decoded %d bytes of frames from %d bytes", total, len(wire))
			}
		}
		t.Fatalf("more messages than bytes")
	})
}

// FuzzDigestNameAndPayload checks the digest parser against CPython's
// rules: a 16- or 20-byte message is legacy, anything else must name an
// allowed digest in braces within the first 10 bytes.
func FuzzDigestNameAndPayload(f *testing.F) {
	for _, s := range []string{"{sha256}0123", "{sha3_384}x", "{md5}", "{}", "{sha1}abc", "0123456789abcdef", "{sha256"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		name, payload, err := digestNameAndPayload(msg)
		switch {
		case err != nil:
			assert.ErrorIs(t, err, ErrUnsupportedDigest)
		case name == "":
			assert.Contains(t, []int{16, 20}, len(msg))
			assert.Equal(t, msg, payload)
		default:
			require.NotNil(t, digestFunc(name))
			assert.Equal(t, "{"+name+"}", string(msg[:len(name)+2]))
			assert.Equal(t, msg[len(name)+2:], payload)
		}
	})
}

// FuzzHandshake plays arbitrary bytes as the peer of both sides of the
// handshake: no panic, no hang, and success only with a real answer.
func FuzzHandshake(f *testing.F) {
	for _, v := range vectors {
		b, _ := hex.DecodeString(v.challenge + welcomeFrame + vectors["sha256"].answer)
		f.Add(b, true) // a whole successful handshake of the connecting side
		b, _ = hex.DecodeString(vectors["sha256"].answer + v.challenge + welcomeFrame)
		f.Add(b, false) // and of the listening side
	}
	f.Fuzz(func(t *testing.T, wire []byte, isClient bool) {
		cfg, err := (&Config{Rand: &counter{}}).check()
		require.NoError(t, err)
		conn := &scriptedConn{Reader: bytes.NewReader(wire)}
		c, err := handshake(t.Context(), conn, vectorKey, cfg, isClient)
		if err != nil {
			assert.True(t, conn.closed, "a failed handshake closes the connection")
			return
		}
		// Success needs a valid answer to our challenge somewhere in the
		// peer's bytes.
		msg, _ := hex.DecodeString(vectors["sha256"].challenge[30:])
		valid := [][]byte{mac(md5.New, vectorKey, msg)}
		for _, d := range Digests {
			valid = append(valid, append([]byte("{"+d+"}"), mac(digestFunc(d), vectorKey, msg)...))
		}
		assert.True(t, slices.ContainsFunc(valid, func(v []byte) bool { return bytes.Contains(wire, v) }), "handshake passed without a valid answer")
		c.Close()
	})
}

// scriptedConn is a net.Conn that reads a fixed script, discards what is
// written to it and ends with io.EOF.
type scriptedConn struct {
	*bytes.Reader
	closed bool
}

func (c *scriptedConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *scriptedConn) Close() error                     { c.closed = true; return nil }
func (c *scriptedConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *scriptedConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *scriptedConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptedConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptedConn) SetWriteDeadline(time.Time) error { return nil }

// TestFuzzSeedsSucceed makes sure FuzzHandshake's success branch is
// reached: its seeds are whole valid handshakes.
func TestFuzzSeedsSucceed(t *testing.T) {
	for _, isClient := range []bool{true, false} {
		wire := vectors["sha3_256"].challenge + welcomeFrame + vectors["sha256"].answer
		if !isClient {
			wire = vectors["sha256"].answer + vectors["sha3_256"].challenge + welcomeFrame
		}
		b, _ := hex.DecodeString(wire)
		cfg, err := (&Config{Rand: &counter{}}).check()
		require.NoError(t, err)
		c, err := handshake(t.Context(), &scriptedConn{Reader: bytes.NewReader(b)}, vectorKey, cfg, isClient)
		require.NoError(t, err)
		assert.Equal(t, "sha3_256", c.ConnectionState().LocalAnswer)
	}
}
