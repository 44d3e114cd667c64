package auth

// Whole-handshake fuzz targets: the fuzzer plays the peer of a real server
// (FuzzServerHandshake) or a real client (FuzzClientHandshake) through a
// scripted connection that never blocks. Each input either is sent as it
// is, or is used as a mask over the correct message that an honest peer
// holding the key would send, so the fuzzer reaches every branch of the
// handshake, the successful one included. The oracles: never a panic or a
// hang, every error typed, success exactly when the peer's proof was the
// correct one, and no more bytes written than the protocol allows.

import (
	"bytes"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The fuzz peer's script flags.
const (
	fuzzComputed    = 1 << iota // mask the correct message instead of sending raw bytes
	fuzzEndTimeout              // end with a timeout instead of EOF
	fuzzDataWithEnd             // deliver the last bytes together with the end error
)

// fuzzConn is a scripted net.Conn: reads come from in, at most chunk bytes
// at a time, and end with end; writes are recorded and shown to onWrite,
// which may append the peer's answer to in. It never blocks.
type fuzzConn struct {
	in          []byte
	chunk       int
	end         error
	dataWithEnd bool
	out         []byte
	writes      int
	onWrite     func(c *fuzzConn, p []byte)
	closed      bool
}

type fuzzTimeout struct{}

func (fuzzTimeout) Error() string   { return "i/o timeout" }
func (fuzzTimeout) Timeout() bool   { return true }
func (fuzzTimeout) Temporary() bool { return true }
func (fuzzTimeout) Is(err error) bool {
	return err == os.ErrDeadlineExceeded
}

func (c *fuzzConn) Read(p []byte) (int, error) {
	if c.closed {
		return 0, net.ErrClosed
	}
	if len(c.in) == 0 {
		return 0, c.end
	}
	n := len(p)
	if c.chunk > 0 {
		n = min(n, c.chunk)
	}
	n = copy(p[:n], c.in)
	c.in = c.in[n:]
	if len(c.in) == 0 && c.dataWithEnd {
		return n, c.end
	}
	return n, nil
}

func (c *fuzzConn) Write(p []byte) (int, error) {
	if c.closed {
		return 0, net.ErrClosed
	}
	c.out = append(c.out, p...)
	c.writes++
	if c.onWrite != nil {
		c.onWrite(c, p)
	}
	return len(p), nil
}

func (c *fuzzConn) Close() error                     { c.closed = true; return nil }
func (c *fuzzConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (c *fuzzConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2} }
func (c *fuzzConn) SetDeadline(t time.Time) error    { return nil }
func (c *fuzzConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fuzzConn) SetWriteDeadline(time.Time) error { return nil }

func newFuzzConn(flags, chunk uint8) *fuzzConn {
	c := &fuzzConn{chunk: int(chunk), end: io.EOF, dataWithEnd: flags&fuzzDataWithEnd != 0}
	if flags&fuzzEndTimeout != 0 {
		c.end = fuzzTimeout{}
	}
	return c
}

// xorMask returns msg with mask XORed over its start, and whatever of mask
// is longer than msg appended.
func xorMask(msg, mask []byte) []byte {
	out := append([]byte(nil), msg...)
	for i, m := range mask {
		if i < len(out) {
			out[i] ^= m
		} else {
			out = append(out, m)
		}
	}
	return out
}

// fuzzRunHandshake runs c's handshake with a watchdog: a handshake over a
// connection that never blocks must end at once.
func fuzzRunHandshake(t *testing.T, c *Conn) error {
	done := make(chan error, 1)
	go func() { done <- c.Handshake() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("the handshake hangs on a connection that never blocks")
		return nil
	}
}

// requireTypedErr checks the error vocabulary: every handshake error starts
// with "auth: " and matches one of the package's errors or a timeout.
func requireTypedErr(t *testing.T, err error) {
	require.True(t, strings.HasPrefix(err.Error(), "auth: "), "error %q does not start with auth: ", err)
	require.True(t, errIsAny(err, ErrAuthFailed, ErrProtocol, ErrNegotiation, os.ErrDeadlineExceeded), "untyped error %q", err)
}

// fuzzServerKeys is what the fuzzed server knows: the empty key ID and
// "k1", each with its own key.
var fuzzServerKeys = map[string][]byte{"": atkKey, "k1": atkOtherKey}

// FuzzServerHandshake drives a whole server handshake from fuzz input: the
// client's hello, then its finished (raw, or the correct one under a mask),
// delivered in chunks.
func FuzzServerHandshake(f *testing.F) {
	nonce := bytes.Repeat([]byte{0xA5}, nonceLen)
	good := marshalClientHello(nil, ModeAuthOnly, []Suite{SuiteHMACSHA256}, "", nonce)
	good512 := marshalClientHello(nil, ModeAuthOnly, []Suite{SuiteHMACSHA512, SuiteHMACSHA256}, "k1", nonce)
	unknownID := marshalClientHello(nil, ModeAuthOnly, []Suite{SuiteHMACSHA256}, "nobody", nonce)
	// A correct handshake, whole and byte by byte.
	f.Add(good, []byte{}, uint8(fuzzComputed), uint8(0))
	f.Add(good512, []byte{}, uint8(fuzzComputed), uint8(1))
	// A finished with one bit flipped, one byte short, with data behind it.
	f.Add(good, []byte{0, 0, 0, 0, 1}, uint8(fuzzComputed), uint8(0))
	f.Add(good, append(make([]byte, 33), "data"...), uint8(fuzzComputed|fuzzDataWithEnd), uint8(7))
	f.Add(good, []byte{msgClientFinished}, uint8(0), uint8(0))
	// The finished type turned into the one that asks for the verdict now.
	f.Add(good, []byte{msgClientFinished ^ msgClientFinishedWait}, uint8(fuzzComputed), uint8(0))
	f.Add(unknownID, []byte{}, uint8(fuzzComputed), uint8(0))
	// An alert instead of a finished, a wrong message type, a timeout.
	f.Add(good, append([]byte{msgClientAlert, alertBadServerProof}, make([]byte, 31)...), uint8(0), uint8(0))
	f.Add(good, []byte{0x07}, uint8(fuzzComputed), uint8(0))
	f.Add(good[:20], []byte{}, uint8(fuzzEndTimeout), uint8(3))
	// Hellos of another version, with no mode, too many suites, unknown
	// suites, the longest key ID, bytes past the hello.
	f.Add([]byte{0x89, 'H', 'M', 'A', 1, 2, 1, 1, 1, 0}, []byte{}, uint8(0), uint8(0))
	f.Add([]byte{0x89, 'H', 'M', 'A', 1, 1, 0, 1, 1, 0}, []byte{}, uint8(0), uint8(0))
	f.Add([]byte{0x89, 'H', 'M', 'A', 1, 1, 1, 17}, []byte{}, uint8(0), uint8(0))
	f.Add(marshalClientHello(nil, ModeAuthOnly, []Suite{9, 200}, "", nonce), []byte{}, uint8(0), uint8(0))
	f.Add(marshalClientHello(nil, 0xFF, []Suite{SuiteHMACSHA256}, strings.Repeat("k", 255), nonce), []byte{}, uint8(fuzzComputed), uint8(64))
	f.Add(append(slices.Clone(good), good...), []byte{}, uint8(fuzzComputed), uint8(0))
	// Other protocols.
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"), []byte{}, uint8(0), uint8(0))
	f.Add([]byte{0x16, 0x03, 0x01, 0x00, 0xa5, 0x01}, []byte{}, uint8(0), uint8(0))
	f.Add([]byte("SSH-2.0-OpenSSH_9.6\r\n"), []byte{}, uint8(0), uint8(0))

	f.Fuzz(func(t *testing.T, hello, fin []byte, flags, chunk uint8) {
		conn := newFuzzConn(flags, chunk)
		conn.in = slices.Clone(hello)
		var want []byte // the correct finished, if the server answered
		if flags&fuzzComputed == 0 {
			conn.in = append(conn.in, fin...)
		} else {
			conn.onWrite = func(c *fuzzConn, p []byte) {
				if c.writes != 1 || len(p) < serverHdrLen+nonceLen+32 || p[6] != statusOK {
					return
				}
				ch, err := parseClientHello(hello)
				if err != nil {
					return
				}
				key, ok := fuzzServerKeys[ch.keyID]
				if !ok {
					key = atkKey // an attacker guessing: any key is wrong here
				}
				want = refFinished(Suite(p[7]), key, hello, p)
				c.in = append(c.in, xorMask(want, fin)...)
			}
		}
		s, err := Server(conn, WithKey(atkKey), WithKeys(map[string][]byte{"k1": atkOtherKey}),
			WithSuites(SuiteHMACSHA256, SuiteHMACSHA512), WithHandshakeTimeout(time.Second))
		require.NoError(t, err)
		err = fuzzRunHandshake(t, s)

		// What an honest client would have achieved with this input.
		ch, perr := parseClientHello(hello)
		known, common := false, false
		if perr == nil && ch.version == protocolVersion {
			_, known = fuzzServerKeys[ch.keyID]
			common = slices.ContainsFunc(ch.suites, Suite.known) && ch.modes&ModeAuthOnly != 0
		}
		// The mask may turn the finished message into the other valid
		// type (msgClientFinishedWait, which asks for the verdict at once);
		// anything else it changes spoils the proof.
		var sent []byte // the finished message as the server received it
		if len(want) > 0 {
			sent = xorMask(want, fin)[:len(want)]
		}
		proofIntact := len(want) > 0 && !slices.ContainsFunc(fin[min(len(fin), 1):min(len(fin), len(want))], func(b byte) bool { return b != 0 }) &&
			(sent[0] == msgClientFinished || sent[0] == msgClientFinishedWait)
		honest := flags&fuzzComputed != 0 && known && common && proofIntact

		require.LessOrEqual(t, len(conn.out), maxServerHello+1, "the server wrote more than a hello and a verdict")
		if err == nil {
			require.True(t, honest, "the server accepted a client that did not send the correct proof")
			require.Equal(t, want[1:], sent[1:])
			// The verdict goes out at once only when asked for; otherwise
			// it waits for the server's first write.
			if sent[0] == msgClientFinishedWait {
				require.Equal(t, []byte{verdictAccept}, conn.out[fuzzServerHelloLen(t, conn.out):])
			} else {
				require.Empty(t, conn.out[fuzzServerHelloLen(t, conn.out):])
				require.Equal(t, []byte{verdictAccept}, s.pending)
			}
			st := s.ConnectionState()
			require.True(t, st.HandshakeComplete)
			require.Equal(t, ch.keyID, st.KeyID)
			// Whatever followed the finished message, read with it or
			// not, is the application's, byte for byte.
			var got []byte
			buf := make([]byte, 1+int(chunk)%7)
			for {
				n, err := s.Read(buf)
				got = append(got, buf[:n]...)
				if err != nil {
					break
				}
			}
			require.Equal(t, string(xorMask(want, fin)[len(want):]), string(got), "the application's bytes behind the proof")
			return
		}
		requireTypedErr(t, err)
		require.False(t, honest, "the server refused an honest client: %v", err)
		require.True(t, conn.closed, "a failed handshake left the connection open")
		if n := fuzzServerHelloLen(t, conn.out); len(conn.out) > n {
			require.Equal(t, []byte{verdictReject}, conn.out[n:], "the server's verdict on a failed handshake")
		}
	})
}

// FuzzClientHandshake drives a whole client handshake from fuzz input: the
// server's hello (raw, or the correct one under a mask) and its verdict.
func FuzzClientHandshake(f *testing.F) {
	f.Add([]byte{}, uint8(verdictAccept), uint8(fuzzComputed), uint8(0), false)
	f.Add([]byte{}, uint8(verdictReject), uint8(fuzzComputed), uint8(1), false)
	f.Add([]byte{}, uint8('?'), uint8(fuzzComputed), uint8(5), true)
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 3}, uint8(verdictAccept), uint8(fuzzComputed), uint8(0), false) // suite 1 -> 2
	f.Add(append(make([]byte, 50), 1), uint8(verdictAccept), uint8(fuzzComputed), uint8(0), false)    // a flipped nonce bit
	f.Add(append(make([]byte, 72), 1), uint8(verdictAccept), uint8(fuzzComputed), uint8(0), true)     // a flipped proof bit
	f.Add([]byte{0, 0, 0, 0, 0, 0, 1}, uint8(0), uint8(fuzzComputed), uint8(0), false)                // status 1
	f.Add([]byte{0x89, 'H', 'M', 'A', 2, 1, statusNoCommonSuite, 0, 0}, uint8(0), uint8(0), uint8(0), false)
	f.Add([]byte{0x89, 'H', 'M', 'A', 2, 1, 9, 0, 0}, uint8(0), uint8(0), uint8(0), false)
	f.Add([]byte{0x89, 'H', 'M', 'A', 2, 1, 0, 1, 3}, uint8(0), uint8(0), uint8(2), false)
	f.Add([]byte{0x89, 'H', 'M', 'A', 2, 1, 0, 7, 1}, uint8(0), uint8(fuzzEndTimeout), uint8(0), false)
	f.Add([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"), uint8(0), uint8(0), uint8(0), false)
	f.Add([]byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28}, uint8(0), uint8(fuzzDataWithEnd), uint8(0), false)

	f.Fuzz(func(t *testing.T, sh []byte, verdict, flags, chunk uint8, wait bool) {
		conn := newFuzzConn(flags, chunk)
		var want []byte // the correct server hello, if computed
		if flags&fuzzComputed == 0 {
			conn.in = slices.Clone(sh)
		} else {
			conn.onWrite = func(c *fuzzConn, p []byte) {
				switch c.writes {
				case 1: // the client hello
					want = refServerHello(SuiteHMACSHA256, atkKey, p)
					c.in = xorMask(want, sh[:min(len(sh), len(want))])
				case 2: // the client's proof or alert: verdict and data follow
					c.in = append(append(c.in, verdict), sh[min(len(sh), len(want)):]...)
				}
			}
		}
		opts := []Option{WithKey(atkKey), WithSuites(SuiteHMACSHA256, SuiteHMACSHA512)}
		if wait {
			opts = append(opts, WithWaitForVerdict())
		}
		c, err := Client(conn, opts...)
		require.NoError(t, err)
		err = fuzzRunHandshake(t, c)

		honest := len(want) > 0 && !slices.ContainsFunc(sh[:min(len(sh), len(want))], func(b byte) bool { return b != 0 })
		if err != nil {
			requireTypedErr(t, err)
			require.True(t, conn.closed, "a failed handshake left the connection open")
			if honest {
				// Only the verdict may fail an honest server's handshake.
				require.True(t, wait && verdict != verdictAccept, "the client refused an honest server: %v", err)
				if verdict == verdictReject {
					require.ErrorIs(t, err, ErrRejected)
				} else {
					require.ErrorIs(t, err, ErrProtocol)
				}
				return
			}
			// The client never gives its proof to a server that did not
			// prove itself: after its hello comes an alert or nothing.
			hello := fuzzSentHello(t, conn.out)
			if rest := conn.out[len(hello):]; len(rest) > 0 {
				require.Equal(t, byte(msgClientAlert), rest[0], "the client sent %x after its hello to a server that failed", rest)
			}
			return
		}
		require.True(t, honest, "the client accepted a server that did not send the correct proof")
		require.True(t, !wait || verdict == verdictAccept, "WithWaitForVerdict handshake succeeded with verdict %#02x", verdict)

		// The first Read sends the proof and reads the verdict.
		buf := make([]byte, 64)
		n, rerr := c.Read(buf)
		switch {
		case verdict == verdictReject:
			require.ErrorIs(t, rerr, ErrRejected)
		case verdict != verdictAccept:
			require.ErrorIs(t, rerr, ErrProtocol)
		case rerr == nil:
			// Accepted: what the mask carried past the hello is data.
			require.Equal(t, sh[len(want):][:n], buf[:n])
		}
		hello := fuzzSentHello(t, conn.out)
		wantFin := refFinished(SuiteHMACSHA256, atkKey, hello, want)
		if wait {
			wantFin[0] = msgClientFinishedWait
		}
		require.Equal(t, wantFin, conn.out[len(hello):len(hello)+33])
		require.NoError(t, c.Close())
	})
}

// fuzzSentHello returns the client hello at the start of what a client wrote.
func fuzzSentHello(t *testing.T, out []byte) []byte {
	n, err := clientHelloSize(out)
	require.NoError(t, err)
	require.LessOrEqual(t, n, len(out))
	return out[:n]
}

// fuzzServerHelloLen returns the length of the server hello at the start
// of what a server wrote (zero if it wrote nothing).
func fuzzServerHelloLen(t *testing.T, out []byte) int {
	if len(out) == 0 {
		return 0
	}
	n, err := serverHelloSize(out)
	require.NoError(t, err)
	require.LessOrEqual(t, n, len(out))
	return n
}
