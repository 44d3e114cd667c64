package auth

import (
	"bytes"
	"fmt"
	"io"
)

// Wire format of protocol version 1. PROTOCOL.md is the normative text; the
// constants here must match it byte for byte.
const (
	protocolVersion = 1

	msgClientHello    = 0x01
	msgServerHello    = 0x02
	msgClientFinished = 0x03
	msgClientAlert    = 0x04
	// msgClientFinishedWait is a finished message whose sender waits for
	// the verdict before sending anything more (WithWaitForVerdict), so the
	// server answers at once instead of with its first data.
	msgClientFinishedWait = 0x05

	verdictAccept = 0x06 // ASCII ACK
	verdictReject = 0x15 // ASCII NAK

	statusOK                 = 0
	statusUnsupportedVersion = 1
	statusNoCommonSuite      = 2
	statusNoCommonMode       = 3

	alertBadServerProof = 1

	nonceLen     = 32
	maxSuites    = 16
	helloHdrLen  = 8 // magic, type, version, modes, suite count
	serverHdrLen = 9 // magic, type, version, status, suite, mode

	// maxClientHello bounds a client hello: header, suites, key ID length,
	// key ID, nonce.
	maxClientHello = helloHdrLen + maxSuites + 1 + MaxKeyIDLen + nonceLen
	// maxServerHello bounds a server hello: header, nonce, proof.
	maxServerHello = serverHdrLen + nonceLen + 64
	// maxFinished bounds a client finished or alert: type and proof.
	maxFinished = 1 + 64

	labelServerProof = "hmacauth v1 server proof"
	labelClientProof = "hmacauth v1 client proof"
	labelSession     = "hmacauth v1 session secret"
	labelExporter    = "hmacauth v1 exporter"
)

// magic opens every hello. Its first byte has the high bit set so that no
// text protocol, TLS record or SSH banner starts with it.
var magic = [4]byte{0x89, 'H', 'M', 'A'}

// clientHello is a parsed client hello.
type clientHello struct {
	version uint8
	modes   Mode // bit mask of acceptable modes
	suites  []Suite
	keyID   string
	nonce   []byte
}

// marshalClientHello appends the wire form of a client hello to b.
func marshalClientHello(b []byte, modes Mode, suites []Suite, keyID string, nonce []byte) []byte {
	b = append(b, magic[:]...)
	b = append(b, msgClientHello, protocolVersion, byte(modes), byte(len(suites)))
	for _, s := range suites {
		b = append(b, byte(s))
	}
	b = append(b, byte(len(keyID)))
	b = append(b, keyID...)
	return append(b, nonce...)
}

// clientHelloSize reports how long the client hello that starts with b is:
// its full length once b holds enough of it to tell, otherwise a lower
// bound larger than len(b). It fails as soon as b cannot start a valid
// hello. A hello of another version is complete after its header: the
// server answers it without reading further.
func clientHelloSize(b []byte) (int, error) {
	if err := checkMagic(b, "client"); err != nil {
		return 0, err
	}
	// The version decides the length, so it is read first: a hello of
	// another version ends after it.
	const versionEnd = 6
	if len(b) < versionEnd {
		return versionEnd, nil
	}
	if b[4] != msgClientHello {
		return 0, errf([]error{ErrProtocol}, "expected a client hello, got message type %#02x", b[4])
	}
	if b[5] != protocolVersion {
		return versionEnd, nil
	}
	if len(b) < helloHdrLen {
		return helloHdrLen, nil
	}
	n := int(b[7])
	if n == 0 || n > maxSuites {
		return 0, errf([]error{ErrProtocol}, "client hello offers %d suites, want 1 to %d", n, maxSuites)
	}
	if b[6] == 0 {
		return 0, errf([]error{ErrProtocol}, "client hello offers no mode")
	}
	idLenAt := helloHdrLen + n
	if len(b) <= idLenAt {
		return idLenAt + 1, nil
	}
	return idLenAt + 1 + int(b[idLenAt]) + nonceLen, nil
}

// parseClientHello parses a complete client hello as measured by
// clientHelloSize. For a version other than protocolVersion only the version
// is filled in.
func parseClientHello(b []byte) (*clientHello, error) {
	ch := new(clientHello)
	if err := parseClientHelloInto(ch, b); err != nil {
		return nil, err
	}
	return ch, nil
}

// parseClientHelloInto is parseClientHello filling a hello the caller
// holds, which the handshake keeps on its stack.
func parseClientHelloInto(ch *clientHello, b []byte) error {
	size, err := clientHelloSize(b)
	if err != nil {
		return err
	}
	if len(b) != size {
		return errf([]error{ErrProtocol}, "client hello is %d bytes, want %d", len(b), size)
	}
	*ch = clientHello{version: b[5]}
	if ch.version != protocolVersion {
		return nil
	}
	ch.modes = Mode(b[6])
	n := int(b[7])
	ch.suites = make([]Suite, n)
	for i := range n {
		ch.suites[i] = Suite(b[helloHdrLen+i])
	}
	at := helloHdrLen + n
	idLen := int(b[at])
	ch.keyID = string(b[at+1 : at+1+idLen])
	ch.nonce = b[at+1+idLen:]
	return nil
}

// serverHello is a parsed server hello.
type serverHello struct {
	version uint8
	status  uint8
	suite   Suite
	mode    Mode
	nonce   []byte
	proof   []byte
}

// marshalServerHello appends a server hello to b. With a non-zero status,
// nonce and proof are omitted.
func marshalServerHello(b []byte, status uint8, suite Suite, mode Mode, nonce []byte) []byte {
	b = append(b, magic[:]...)
	b = append(b, msgServerHello, protocolVersion, status, byte(suite), byte(mode))
	if status == statusOK {
		b = append(b, nonce...)
	}
	return b
}

// serverHelloSize is clientHelloSize for a server hello.
func serverHelloSize(b []byte) (int, error) {
	if err := checkMagic(b, "server"); err != nil {
		return 0, err
	}
	if len(b) < serverHdrLen {
		return serverHdrLen, nil
	}
	if b[4] != msgServerHello {
		return 0, errf([]error{ErrProtocol}, "expected a server hello, got message type %#02x", b[4])
	}
	if b[6] != statusOK {
		return serverHdrLen, nil
	}
	if b[5] != protocolVersion {
		return 0, errf([]error{ErrProtocol}, "server answered with protocol version %d to a version %d hello", b[5], protocolVersion)
	}
	s := Suite(b[7])
	if !s.known() {
		return 0, errf([]error{ErrProtocol}, "server chose unknown suite %d", b[7])
	}
	return serverHdrLen + nonceLen + s.size(), nil
}

// parseServerHello parses a complete server hello.
func parseServerHello(b []byte) (*serverHello, error) {
	sh := new(serverHello)
	if err := parseServerHelloInto(sh, b); err != nil {
		return nil, err
	}
	return sh, nil
}

// parseServerHelloInto is parseServerHello filling a hello the caller
// holds, which the handshake keeps on its stack.
func parseServerHelloInto(sh *serverHello, b []byte) error {
	size, err := serverHelloSize(b)
	if err != nil {
		return err
	}
	if len(b) != size {
		return errf([]error{ErrProtocol}, "server hello is %d bytes, want %d", len(b), size)
	}
	*sh = serverHello{version: b[5], status: b[6], suite: Suite(b[7]), mode: Mode(b[8])}
	if sh.status == statusOK {
		sh.nonce = b[serverHdrLen : serverHdrLen+nonceLen]
		sh.proof = b[serverHdrLen+nonceLen:]
	}
	return nil
}

// checkMagic fails as soon as b stops matching the magic, with an error
// that says what the peer seems to speak instead.
func checkMagic(b []byte, peer string) error {
	n := min(len(b), len(magic))
	if bytes.Equal(b[:n], magic[:n]) {
		return nil
	}
	return errf([]error{ErrNotProtocol}, "the %s does not speak hmacauth: its first bytes look like %s", peer, sniff(b))
}

// sniff names the protocol that a peer's first bytes belong to, for error
// messages that help an operator find a misconfigured client.
func sniff(b []byte) string {
	switch {
	case len(b) >= 2 && b[0] == 0x16 && b[1] == 0x03:
		return "a TLS ClientHello (put TLS outside: tls.NewListener(authListener, cfg), or dial with auth first)"
	case len(b) >= 2 && b[0] == 0x15 && b[1] == 0x03:
		return "a TLS alert"
	case bytes.HasPrefix(b, []byte("SSH-")):
		return "an SSH banner"
	case bytes.HasPrefix(b, []byte("#CHALLENGE#")) || len(b) >= 4 && b[0] == 0 && b[1] == 0 && b[2] == 0 && b[3] == 20:
		return "Python multiprocessing.connection (use package mpcompat)"
	}
	for _, m := range []string{"GET ", "POST ", "PUT ", "HEAD ", "DELETE ", "OPTIONS ", "PATCH ", "CONNECT ", "TRACE ", "PRI * HTTP/2"} {
		if bytes.HasPrefix(b, []byte(m)) || len(b) < len(m) && len(b) >= 3 && bytes.HasPrefix([]byte(m), b) {
			return "an HTTP request (is the client dialing without auth.Dialer?)"
		}
	}
	show := b[:min(len(b), 8)]
	return fmt.Sprintf("unrecognized bytes %x", show)
}

// readMessage reads one self-delimiting message into buf, as measured by
// size. It never returns bytes past the message: a peer that sends more
// before it has been answered breaks the protocol, and the error says so.
func readMessage(r io.Reader, buf []byte, size func([]byte) (int, error)) ([]byte, error) {
	n := 0
	for {
		want, err := size(buf[:n])
		if err != nil {
			return nil, err
		}
		if n >= want {
			if n > want {
				return nil, errf([]error{ErrProtocol}, "peer sent %d bytes past its %d-byte handshake message before being answered", n-want, want)
			}
			return buf[:n], nil
		}
		if want > len(buf) {
			return nil, errf([]error{ErrProtocol}, "handshake message of %d bytes exceeds the %d-byte limit", want, len(buf))
		}
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			if m > 0 {
				// Judge what arrived before the error first.
				if w, serr := size(buf[:n]); serr != nil || n >= w {
					continue
				}
			}
			return nil, readErr(err, n)
		}
	}
}

// readErr turns an I/O error during a handshake read into one that says
// how much had arrived. io.EOF becomes io.ErrUnexpectedEOF: the peer hung up
// mid-handshake.
func readErr(err error, got int) error {
	if err == io.EOF {
		if got == 0 {
			return errf([]error{ErrProtocol, io.ErrUnexpectedEOF}, "peer closed the connection before sending its handshake message")
		}
		return errf([]error{ErrProtocol, io.ErrUnexpectedEOF}, "peer closed the connection after %d bytes of its handshake message", got)
	}
	return &shortRead{err: err, got: got}
}

// shortRead carries a read error and how many bytes had arrived, so the
// handshake can word a timeout well (a silent peer is likely a client that
// waits for the server to speak, like the recipe's).
type shortRead struct {
	err error
	got int
}

func (e *shortRead) Error() string { return e.err.Error() }
func (e *shortRead) Unwrap() error { return e.err }
