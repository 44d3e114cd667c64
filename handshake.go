package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"io"
	"log/slog"
	"math/bits"
	"os"
	"slices"
	"sync"
)

// errDeadline is what a handshake that ran out of time wraps.
var errDeadline = os.ErrDeadlineExceeded

// hsBufLen holds every handshake message of one side at once, with room
// for the transcript hashes and proofs computed along the way.
const hsBufLen = 1024

// The largest layout (the server's, with SHA-512): client hello, server
// hello and proof, hash, expected proof, finished, and room behind it for
// the first application bytes read with the finished message.
const _ = uint(hsBufLen - (maxClientHello + maxServerHello + 2*64 + maxFinished + minEarlyRoom))

// minEarlyRoom is the least room a server's handshake buffer leaves for
// application bytes read together with the client's proof: what the
// largest layout above leaves, the figure PROTOCOL.md gives.
const minEarlyRoom = 414

// hsBufs pools handshake buffers: a handshake needs no allocation for its
// messages.
var hsBufs = sync.Pool{New: func() any { return new([hsBufLen]byte) }}

// The server's verdicts as written, shared so that writing one does not
// allocate. Writers must not modify them.
var (
	acceptMsg = []byte{verdictAccept}
	rejectMsg = []byte{verdictReject}
)

// modePreference is the server's order of preference among the modes it
// accepts.
var modePreference = []Mode{ModeSealedAES256GCM, ModeSealedChaCha20Poly1305, ModeAuthOnly}

// clientHandshake runs the dialing side. On success the client's finished
// message is left pending (or sent, with WithWaitForVerdict).
func (c *Conn) clientHandshake() error {
	cfg := c.cfg
	buf := hsBufs.Get().(*[hsBufLen]byte)
	defer hsBufs.Put(buf)

	var nonce [nonceLen]byte
	rand.Read(nonce[:])
	c.state = ConnectionState{IsClient: true, KeyID: cfg.keyID}
	ch := marshalClientHello(buf[:0], cfg.modes, cfg.suites, cfg.keyID, nonce[:])
	if _, err := c.conn.Write(ch); err != nil {
		return err
	}
	shRaw, err := readMessage(c.conn, buf[len(ch):len(ch)+maxServerHello], serverHelloSize)
	if err != nil {
		return err
	}
	var sh serverHello
	if err := parseServerHelloInto(&sh, shRaw); err != nil {
		return err
	}
	switch sh.status {
	case statusOK:
	case statusUnsupportedVersion:
		return errf([]error{ErrNegotiation}, "%s speaks protocol version %d, this client version %d: upgrade the older side", c.conn.RemoteAddr(), sh.version, protocolVersion)
	case statusNoCommonSuite:
		return errf([]error{ErrNegotiation}, "%s accepts none of the suites this client offers (%v): check WithSuites on both sides", c.conn.RemoteAddr(), cfg.suites)
	case statusNoCommonMode:
		return errf([]error{ErrNegotiation}, "%s accepts none of the modes this client offers: %s", c.conn.RemoteAddr(), noCommonModeHint(cfg.modes, 0, true))
	default:
		return errf([]error{ErrProtocol}, "server hello has unknown status %d", sh.status)
	}
	if !slices.Contains(cfg.suites, sh.suite) {
		return errf([]error{ErrProtocol}, "server chose suite %v, which this client did not offer", sh.suite)
	}
	if bits.OnesCount8(uint8(sh.mode)) != 1 || sh.mode&cfg.modes == 0 {
		return errf([]error{ErrProtocol}, "server chose mode %v, which this client did not offer", sh.mode)
	}
	c.state.Version, c.state.Suite, c.state.Mode = sh.version, sh.suite, sh.mode

	size := sh.suite.size()
	th := getTranscript(sh.suite)
	defer putTranscript(sh.suite, th)
	th.Write(ch)
	th.Write(shRaw[:len(shRaw)-size])
	sum := th.Sum(buf[len(ch)+len(shRaw) : len(ch)+len(shRaw)])
	mac := cfg.keyMACs.get(sh.suite)
	defer cfg.keyMACs.put(sh.suite, mac)
	mac.Write(serverProofLabel)
	mac.Write(sum)
	want := mac.Sum(sum[len(sum):])
	if !hmac.Equal(want, sh.proof) {
		alert := make([]byte, 1+size)
		alert[0], alert[1] = msgClientAlert, alertBadServerProof
		c.conn.Write(alert)
		return errf([]error{ErrBadServerProof}, "%s could not prove it holds the key for key ID %q: the keys differ, the server does not know this key ID, or it is an impostor", c.conn.RemoteAddr(), cfg.keyID)
	}
	th.Write(sh.proof)
	sum = th.Sum(sum[:0])
	mac.Reset()
	mac.Write(clientProofLabel)
	mac.Write(sum)
	finType := byte(msgClientFinished)
	if cfg.waitVerd {
		finType = msgClientFinishedWait
	}
	fin := append(c.finBuf[:0], finType)
	fin = mac.Sum(fin)
	th.Write(fin)
	c.th = th.Sum(c.thBuf[:0])
	c.key = cfg.key

	if cfg.waitVerd {
		if _, err := c.conn.Write(fin); err != nil {
			return err
		}
		c.needVerdict.Store(true)
		return c.readVerdict()
	}
	c.pending = fin
	c.hasPending.Store(true)
	c.needVerdict.Store(true)
	return nil
}

// serverHandshake runs the accepting side. It returns nil only after the
// client's proof has verified. The accepting verdict is then left pending,
// to go out with the server's first Write (or at CloseWrite or Close),
// unless the client asked for it at once (msgClientFinishedWait).
func (c *Conn) serverHandshake() error {
	cfg := c.cfg
	buf := hsBufs.Get().(*[hsBufLen]byte)
	defer hsBufs.Put(buf)

	chRaw, err := readMessage(c.conn, buf[:maxClientHello], helloOfAnyVersionSize)
	if err != nil {
		return err
	}
	if n, _ := clientHelloSize(chRaw); n < len(chRaw) {
		chRaw = chRaw[:n] // the header of a hello of another version
	}
	var ch clientHello
	if err := parseClientHelloInto(&ch, chRaw); err != nil {
		return err
	}
	rest := buf[len(chRaw):len(chRaw)]
	if ch.version != protocolVersion {
		c.conn.Write(marshalServerHello(rest, statusUnsupportedVersion, 0, 0, nil))
		return errf([]error{ErrNegotiation}, "client %s speaks protocol version %d, this server version %d", c.conn.RemoteAddr(), ch.version, protocolVersion)
	}
	c.state = ConnectionState{Version: ch.version, KeyID: ch.keyID}

	suite := Suite(0)
	for _, s := range cfg.suites {
		if slices.Contains(ch.suites, s) {
			suite = s
			break
		}
	}
	if suite == 0 {
		c.conn.Write(marshalServerHello(rest, statusNoCommonSuite, 0, 0, nil))
		return errf([]error{ErrNegotiation}, "client %s offers suites %v, this server accepts %v", c.conn.RemoteAddr(), ch.suites, cfg.suites)
	}
	mode := Mode(0)
	for _, m := range modePreference {
		if m&cfg.modes != 0 && m&ch.modes != 0 {
			mode = m
			break
		}
	}
	if mode == 0 {
		c.conn.Write(marshalServerHello(rest, statusNoCommonMode, 0, 0, nil))
		return errf([]error{ErrNegotiation}, "client %s shares no mode with this server: %s", c.conn.RemoteAddr(), noCommonModeHint(cfg.modes, ch.modes, false))
	}
	c.state.Suite, c.state.Mode = suite, mode

	// An unknown key ID gets a proof under a throwaway key, so from the
	// outside it looks exactly like a wrong key: key IDs cannot be probed.
	macs, known := cfg.serverMACs(ch.keyID)
	if !known {
		throwaway := make([]byte, DefaultKeyLen)
		rand.Read(throwaway)
		macs = &keyMACs{key: throwaway}
	}
	key := macs.key
	var nonce [nonceLen]byte
	rand.Read(nonce[:])

	size := suite.size()
	sh := marshalServerHello(rest, statusOK, suite, mode, nonce[:])
	th := getTranscript(suite)
	defer putTranscript(suite, th)
	th.Write(chRaw)
	th.Write(sh)
	scratch := buf[len(chRaw)+len(sh)+size:]
	sum := th.Sum(scratch[:0])
	mac := macs.get(suite)
	defer macs.put(suite, mac)
	mac.Write(serverProofLabel)
	mac.Write(sum)
	sh = mac.Sum(sh)
	if _, err := c.conn.Write(sh); err != nil {
		return err
	}
	th.Write(sh[len(sh)-size:])
	sum = th.Sum(sum[:0])
	mac.Reset()
	mac.Write(clientProofLabel)
	mac.Write(sum)
	want := mac.Sum(sum[len(sum):])
	if known {
		c.presealServer(th, want, key)
	}

	// The proof is read together with whatever the client sent behind it
	// that has arrived and fits in the rest of buf (at least 414 bytes),
	// so a client's proof and a small first request cost one read. Those
	// early bytes are application data (or records) and reach the
	// application only if the proof verifies (keepEarly).
	in := want[len(want):cap(want)]
	got, err := io.ReadAtLeast(c.conn, in, 1+size)
	if err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return errf([]error{ErrProtocol, io.ErrUnexpectedEOF}, "client %s (key ID %q) closed the connection before sending its proof", c.conn.RemoteAddr(), ch.keyID)
		}
		return &shortRead{err: err, got: 1}
	}
	fin := in[: 1+size : 1+size]
	switch fin[0] {
	case msgClientFinished, msgClientFinishedWait:
	case msgClientAlert:
		if !known {
			return errf([]error{ErrUnknownKeyID}, "client %s presented unknown key ID %q", c.conn.RemoteAddr(), ch.keyID)
		}
		return errf([]error{ErrClientRefusedServer}, "client %s rejected this server's proof for key ID %q: the two sides hold different keys", c.conn.RemoteAddr(), ch.keyID)
	default:
		return errf([]error{ErrProtocol}, "client %s sent message type %#02x, want a finished message", c.conn.RemoteAddr(), fin[0])
	}
	if !hmac.Equal(fin[1:], want) || !known {
		c.conn.Write(rejectMsg)
		if !known {
			return errf([]error{ErrUnknownKeyID}, "client %s presented unknown key ID %q", c.conn.RemoteAddr(), ch.keyID)
		}
		return errf([]error{ErrBadClientProof}, "client %s sent a proof that does not verify under the key for key ID %q", c.conn.RemoteAddr(), ch.keyID)
	}
	if fin[0] == msgClientFinishedWait {
		// The client waits for the verdict: answer now. The keys derived
		// ahead of the proof assumed the usual finished message.
		if _, err := c.conn.Write(acceptMsg); err != nil {
			return err
		}
		c.seal = nil
	} else {
		// The verdict goes out in front of the first bytes this side
		// writes, or when it closes: one system call fewer, and the client
		// reads it together with the first data.
		c.pending = acceptMsg
		c.hasPending.Store(true)
	}
	th.Write(fin)
	c.th = th.Sum(c.thBuf[:0])
	c.key = key
	if got > len(fin) {
		c.keepEarly(in[len(fin):got])
	}
	return nil
}

// helloOfAnyVersionSize is clientHelloSize for the server's read of the
// hello: a hello of another version is complete with whatever of it has
// arrived, so the server answers it with statusUnsupportedVersion instead
// of refusing the rest of a longer hello as bytes sent past its end.
func helloOfAnyVersionSize(b []byte) (int, error) {
	n, err := clientHelloSize(b)
	if err == nil && n < len(b) && b[5] != protocolVersion {
		return len(b), nil
	}
	return n, err
}

// logEvent writes one handshake outcome to a logger. It never logs keys or
// proofs.
func logEvent(l *slog.Logger, ev HandshakeEvent) {
	side := "server"
	if ev.IsClient {
		side = "client"
	}
	attrs := []slog.Attr{
		slog.String("side", side),
		slog.String("remote", addrString(ev.RemoteAddr)),
		slog.String("key_id", ev.KeyID),
		slog.Duration("duration", ev.Duration),
	}
	if ev.Err != nil {
		attrs = append(attrs, slog.String("reason", ev.Err.Error()), slog.String("reason_class", ReasonOf(ev.Err).String()))
		l.LogAttrs(context.Background(), slog.LevelWarn, "auth: handshake refused", attrs...)
		return
	}
	attrs = append(attrs, slog.String("suite", ev.Suite.String()), slog.String("mode", ev.Mode.String()))
	l.LogAttrs(context.Background(), slog.LevelDebug, "auth: handshake accepted", attrs...)
}
