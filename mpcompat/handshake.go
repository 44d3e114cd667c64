package mpcompat

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"errors"
	"hash"
	"io"
	"slices"

	"github.com/hmacauth/auth"
)

// Constants of CPython's Lib/multiprocessing/connection.py. PROTOCOL.md
// ("multiprocessing.connection") states the rules they implement.
const (
	challengePrefix = "#CHALLENGE#"
	welcomeMsg      = "#WELCOME#"
	failureMsg      = "#FAILURE#"

	// legacyNonceLen is MESSAGE_LENGTH of Python 3.11 and earlier, and
	// _MD5ONLY_MESSAGE_LENGTH of 3.12: a challenge this long is legacy.
	legacyNonceLen = 20
	// modernNonceLen is MESSAGE_LENGTH of Python 3.12 and later.
	modernNonceLen = 40
	// md5AnswerLen is _MD5_DIGEST_LEN: a raw answer this long is legacy.
	md5AnswerLen = 16
	// maxHandshakeMsg is the recv_bytes(256) bound on every handshake
	// message.
	maxHandshakeMsg = 256
	// maxDigestNameLen is _MAX_DIGEST_LEN, the longest allowed name.
	maxDigestNameLen = len("sha3_256")
)

// Digests lists the digests a modern challenge or answer may name, as
// CPython's _ALLOWED_DIGESTS does. Config.Digest must be one of them.
var Digests = []string{"md5", "sha256", "sha384", "sha3_256", "sha3_384"}

// digestFunc returns the hash for an allowed digest name, or nil.
func digestFunc(name string) func() hash.Hash {
	switch name {
	case "md5":
		return md5.New
	case "sha256":
		return sha256.New
	case "sha384":
		return sha512.New384
	case "sha3_256":
		return func() hash.Hash { return sha3.New256() }
	case "sha3_384":
		return func() hash.Hash { return sha3.New384() }
	}
	return nil
}

func mac(newHash func() hash.Hash, key, msg []byte) []byte {
	m := hmac.New(newHash, key)
	m.Write(msg)
	return m.Sum(nil)
}

// digestNameAndPayload is CPython 3.12's _get_digest_name_and_payload: a
// message of 16 or 20 bytes is legacy (empty name); otherwise it must start
// with "{name}" naming an allowed digest.
func digestNameAndPayload(msg []byte) (name string, payload []byte, err error) {
	if len(msg) == legacyNonceLen || len(msg) == md5AnswerLen {
		return "", msg, nil
	}
	if len(msg) > 0 && msg[0] == '{' {
		end := min(len(msg), maxDigestNameLen+2)
		if i := bytes.IndexByte(msg[1:end], '}'); i > 0 {
			name := string(msg[1 : 1+i])
			if digestFunc(name) != nil {
				return name, msg[2+i:], nil
			}
		}
	}
	return "", nil, ErrUnsupportedDigest
}

// handshaker runs one side's two steps over a raw connection.
type handshaker struct {
	rw   io.ReadWriter
	key  []byte
	cfg  *Config
	st   ConnectionState
	hbuf []byte
}

func (h *handshaker) send(msg []byte) error {
	h.hbuf = appendHeader(h.hbuf[:0], len(msg), maxShortForm)
	h.hbuf = append(h.hbuf, msg...)
	_, err := h.rw.Write(h.hbuf)
	return err
}

// recv reads one handshake message of at most 256 bytes.
func (h *handshaker) recv(what string) ([]byte, error) {
	size, _, err := readHeader(h.rw)
	if err != nil {
		return nil, h.readErr(err, what)
	}
	if size > maxHandshakeMsg {
		return nil, errorf([]error{ErrMessageTooLarge, ErrNotMultiprocessing}, "the peer sent %d bytes as %s, CPython allows at most %d: it does not speak multiprocessing.connection", size, what, maxHandshakeMsg)
	}
	msg, err := readPayload(h.rw, size)
	if err != nil {
		return nil, h.readErr(err, what)
	}
	return msg, nil
}

func (h *handshaker) readErr(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errorf([]error{auth.ErrProtocol, io.ErrUnexpectedEOF}, "the peer closed the connection before sending %s (a wrong authkey on a peer that refuses silently, or not a multiprocessing peer)", what)
	}
	return err
}

// deliverChallenge is CPython's deliver_challenge: send a challenge, check
// the answer, reply #WELCOME# or #FAILURE#.
func (h *handshaker) deliverChallenge() error {
	var msg []byte
	if h.cfg.Generation == Legacy {
		msg = make([]byte, legacyNonceLen)
	} else {
		msg = append([]byte("{"+h.cfg.digest()+"}"), make([]byte, modernNonceLen)...)
	}
	if _, err := io.ReadFull(h.cfg.rand(), msg[len(msg)-nonceLen(h.cfg):]); err != nil {
		return errorf([]error{err}, "reading random bytes for the challenge: %v", err)
	}
	if err := h.send(slices.Concat([]byte(challengePrefix), msg)); err != nil {
		return err
	}
	answer, err := h.recv("its answer to our challenge")
	if err != nil {
		return err
	}
	if err := h.verify(msg, answer); err != nil {
		h.send([]byte(failureMsg))
		return err
	}
	return h.send([]byte(welcomeMsg))
}

func nonceLen(cfg *Config) int {
	if cfg.Generation == Legacy {
		return legacyNonceLen
	}
	return modernNonceLen
}

// verify is CPython 3.12's _verify_challenge (and, for Legacy, 3.11's
// plain comparison with the HMAC-MD5).
func (h *handshaker) verify(msg, answer []byte) error {
	if h.cfg.Generation == Legacy {
		h.st.PeerAnswer, h.st.Legacy = "md5", true
		if !hmac.Equal(answer, mac(md5.New, h.key, msg)) {
			return errorf([]error{ErrBadAnswer}, "the peer's answer to our legacy challenge is not the HMAC-MD5 of it under our authkey: the authkeys differ")
		}
		return nil
	}
	name, got, err := digestNameAndPayload(answer)
	if err != nil {
		return errorf([]error{err}, "the peer's answer (%d bytes) names no allowed digest (%v)", len(answer), Digests)
	}
	if name == "" {
		if h.cfg.Generation == Modern {
			return errorf([]error{ErrLegacyPeer}, "the peer answered with a raw %d-byte MAC, as Python 3.11 and earlier do; Generation Modern refuses legacy peers", len(answer))
		}
		name, h.st.Legacy = "md5", true
	}
	h.st.PeerAnswer = name
	want := mac(digestFunc(name), h.key, msg)
	if len(want) != len(got) {
		return errorf([]error{ErrBadAnswer}, "the peer's %s answer is %d bytes, want %d", name, len(got), len(want))
	}
	if !hmac.Equal(want, got) {
		return errorf([]error{ErrBadAnswer}, "the peer's HMAC-%s answer to our challenge does not verify under our authkey: the authkeys differ", name)
	}
	return nil
}

// answerChallenge is CPython's answer_challenge: read a challenge, send
// the answer, expect #WELCOME#.
func (h *handshaker) answerChallenge() error {
	msg, err := h.recv("a challenge")
	if err != nil {
		return err
	}
	rest, ok := bytes.CutPrefix(msg, []byte(challengePrefix))
	if !ok {
		return errorf([]error{ErrNotMultiprocessing}, "the peer's first message does not start with %s", challengePrefix)
	}
	answer, err := h.answer(rest)
	if err != nil {
		return err
	}
	if err := h.send(answer); err != nil {
		return err
	}
	reply, err := h.recv("its verdict on our answer")
	if err != nil {
		return err
	}
	switch string(reply) {
	case welcomeMsg:
		return nil
	case failureMsg:
		if h.st.LocalAnswer == "md5" && h.st.Legacy {
			return errorf([]error{ErrAnswerRejected}, "the peer replied %s to our legacy HMAC-MD5 answer: the authkeys differ, or the peer refuses legacy answers (Generation Modern)", failureMsg)
		}
		return errorf([]error{ErrAnswerRejected}, "the peer replied %s to our HMAC-%s answer: the authkeys differ", failureMsg, h.st.LocalAnswer)
	}
	return errorf([]error{ErrNotMultiprocessing}, "the peer replied %d bytes that are neither %s nor %s", len(reply), welcomeMsg, failureMsg)
}

// answer is CPython 3.12's _create_response (and, for Legacy, 3.11's raw
// HMAC-MD5 of whatever the challenge holds).
func (h *handshaker) answer(msg []byte) ([]byte, error) {
	if h.cfg.Generation == Legacy {
		h.st.LocalAnswer, h.st.Legacy = "md5", true
		return mac(md5.New, h.key, msg), nil
	}
	if len(msg) < legacyNonceLen {
		return nil, errorf([]error{ErrNotMultiprocessing}, "challenge too short: %d bytes, want at least %d", len(msg), legacyNonceLen)
	}
	name, _, err := digestNameAndPayload(msg)
	if err != nil {
		return nil, errorf([]error{err}, "the peer's challenge (%d bytes) names no allowed digest (%v)", len(msg), Digests)
	}
	if name == "" {
		if h.cfg.Generation == Modern {
			return nil, errorf([]error{ErrLegacyPeer}, "the peer sent a %d-byte challenge, as Python 3.11 and earlier do; Generation Modern refuses legacy peers", len(msg))
		}
		h.st.LocalAnswer, h.st.Legacy = "md5", true
		return mac(md5.New, h.key, msg), nil
	}
	h.st.LocalAnswer = name
	return append([]byte("{"+name+"}"), mac(digestFunc(name), h.key, msg)...), nil
}
