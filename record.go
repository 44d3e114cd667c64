package auth

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"

	"golang.org/x/crypto/chacha20poly1305"
)

// Record layer of the sealed modes. PROTOCOL.md ("Sealed mode") is the
// normative text; the constants here must match it byte for byte.
//
// A record is a 4-byte header followed by the sealed body:
//
//	type (1) | length (3, big-endian) | ciphertext | tag (16)
//
// length counts the ciphertext and the tag. The header is the AEAD's
// additional data; the nonce is the direction's IV XOR the record's 64-bit
// sequence number, right-aligned.
const (
	recordHeaderLen = 4
	recordTagLen    = 16
	recordNonceLen  = 12
	recordKeyLen    = 32

	// recordTypeData carries 1 to MaxRecordPlaintext bytes of application
	// data.
	recordTypeData = 0x01
	// recordTypeCloseWrite carries no data: the sender will send nothing
	// more, and may still read (CloseWrite).
	recordTypeCloseWrite = 0x02
	// recordTypeClose carries no data: the sender will send nothing more
	// and read nothing more (Close). Its receiver sends no close record of
	// its own.
	recordTypeClose = 0x03

	// MaxRecordPlaintext is the most application data one sealed record
	// carries. A receiver refuses longer records, so a peer cannot make it
	// buffer more than this before authenticating.
	MaxRecordPlaintext = 64 << 10

	// maxRecordBody bounds the length field of a valid record.
	maxRecordBody = MaxRecordPlaintext + recordTagLen
	// maxRecordWire bounds a whole record on the wire.
	maxRecordWire = recordHeaderLen + maxRecordBody

	labelSealedC2S = "hmacauth v1 sealed c2s"
	labelSealedS2C = "hmacauth v1 sealed s2c"
)

// rekeyInterval is how many records each direction seals under one key
// before both sides switch to the next generation: 2^20 records, at most
// 64 GiB, about 2^32 AES blocks per key. Tests lower it.
var rekeyInterval uint64 = 1 << 20

// recordHeader is a parsed record header.
type recordHeader struct {
	typ     byte
	bodyLen int // ciphertext and tag
}

// parseRecordHeader parses the 4-byte header at the start of b. It refuses
// unknown types and lengths a valid record cannot have, before any of the
// body has been read.
func parseRecordHeader(b []byte) (recordHeader, error) {
	if len(b) < recordHeaderLen {
		return recordHeader{}, errf([]error{ErrProtocol}, "sealed record header is %d bytes, want %d", len(b), recordHeaderLen)
	}
	h := recordHeader{typ: b[0], bodyLen: int(b[1])<<16 | int(b[2])<<8 | int(b[3])}
	switch h.typ {
	case recordTypeData:
		if h.bodyLen <= recordTagLen || h.bodyLen > maxRecordBody {
			return h, errf([]error{ErrProtocol}, "sealed data record of %d bytes, want %d to %d: the peer is not a sealed hmacauth peer or the stream was altered", h.bodyLen, recordTagLen+1, maxRecordBody)
		}
	case recordTypeCloseWrite, recordTypeClose:
		if h.bodyLen != recordTagLen {
			return h, errf([]error{ErrProtocol}, "sealed close record of %d bytes, want %d: the stream was altered", h.bodyLen, recordTagLen)
		}
	default:
		return h, errf([]error{ErrProtocol}, "sealed record of unknown type %#02x: the peer is not a sealed hmacauth peer or the stream was altered", h.typ)
	}
	return h, nil
}

// appendRecordHeader appends a header for a record of typ carrying n bytes
// of plaintext.
func appendRecordHeader(b []byte, typ byte, n int) []byte {
	l := n + recordTagLen
	return append(b, typ, byte(l>>16), byte(l>>8), byte(l))
}

// recordCipher is the protection of one direction: the AEAD of the current
// key generation, its IV, and the sequence number of the next record.
type recordCipher struct {
	mode    Mode
	suite   Suite
	session []byte // the session secret, for the next generations
	label   string // labelSealedC2S or labelSealedS2C
	aead    cipher.AEAD
	iv      [recordNonceLen]byte
	nonce   [recordNonceLen]byte
	seq     uint64
	gen     uint64 // key generation
	every   uint64 // rekeyInterval when the cipher was made
}

// init sets rc up for generation 0 of one direction, without keys: see
// setKeys.
func (rc *recordCipher) init(mode Mode, suite Suite, session []byte, label string) {
	rc.mode, rc.suite, rc.session, rc.label = mode, suite, session, label
	rc.seq, rc.gen, rc.every = 0, 0, rekeyInterval
}

// setKeys derives the key and IV of the current generation g:
//
//	key || iv = HKDF-Expand(session secret, label || uint64(g), 32 + 12)
//
// k is keyed with the session secret: both directions' first derivations
// share it, so that setting up a sealed connection stays cheap.
func (rc *recordCipher) setKeys(k *kdf) error {
	info := binary.BigEndian.AppendUint64(append(k.info[:0], rc.label...), rc.gen)
	k.expand(k.kiv[:], info)
	err := rc.setAEAD(k.kiv[:recordKeyLen])
	copy(rc.iv[:], k.kiv[recordKeyLen:])
	clear(k.kiv[:])
	return err
}

// deriveKeys is setKeys with a kdf of its own.
func (rc *recordCipher) deriveKeys() error {
	k := getKDF(rc.suite)
	k.setKey(rc.session)
	err := rc.setKeys(k)
	putKDF(rc.suite, k)
	return err
}

// setAEAD sets the AEAD of rc's mode up with key.
func (rc *recordCipher) setAEAD(key []byte) error {
	switch rc.mode {
	case ModeSealedAES256GCM:
		block, err := aes.NewCipher(key)
		if err != nil {
			return err
		}
		rc.aead, err = cipher.NewGCM(block)
		return err
	case ModeSealedChaCha20Poly1305:
		var err error
		rc.aead, err = chacha20poly1305.New(key)
		return err
	}
	return errf(nil, "mode %v has no record protection", rc.mode)
}

// nextNonce returns the nonce of the current record.
func (rc *recordCipher) nextNonce() []byte {
	rc.nonce = rc.iv
	seq := rc.nonce[recordNonceLen-8:]
	binary.BigEndian.PutUint64(seq, binary.BigEndian.Uint64(seq)^rc.seq)
	return rc.nonce[:]
}

// advance moves past the record just sealed or opened, and switches to the
// next key generation every rekeyInterval records. Both sides count the
// same records, so they switch at the same record without a message.
func (rc *recordCipher) advance() error {
	rc.seq++
	if rc.seq == 0 {
		return errSeqExhausted
	}
	if rc.seq%rc.every != 0 {
		return nil
	}
	rc.gen++
	return rc.deriveKeys()
}

// errSeqExhausted is the error of a direction that has sealed or opened
// 2^64 records.
var errSeqExhausted = errf([]error{ErrProtocol}, "sealed record sequence number exhausted")

// seal appends a record of typ carrying plaintext to dst.
func (rc *recordCipher) seal(dst []byte, typ byte, plaintext []byte) ([]byte, error) {
	at := len(dst)
	dst = appendRecordHeader(dst, typ, len(plaintext))
	dst = rc.aead.Seal(dst, rc.nextNonce(), plaintext, dst[at:at+recordHeaderLen])
	return dst, rc.advance()
}

// open authenticates and decrypts the body of a record whose header is hdr
// and appends the plaintext to dst, which must not overlap body unless it
// is body[:0]. On failure nothing is appended and the error wraps
// ErrRecordAuth.
func (rc *recordCipher) open(dst, hdr, body []byte) ([]byte, error) {
	out, err := rc.aead.Open(dst, rc.nextNonce(), body, hdr)
	if err != nil {
		return dst, rc.openErr()
	}
	return out, rc.advance()
}

// openErr is the error of a record that did not open. It is not part of
// open, whose frame is on the stack while the AEAD runs (see sealedFill).
func (rc *recordCipher) openErr() error {
	return errf([]error{ErrRecordAuth}, "sealed record %d did not authenticate: it was altered, reordered, replayed or one before it was dropped", rc.seq)
}
