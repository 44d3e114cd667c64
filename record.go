package auth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"encoding/binary"
	"hash"

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
	// recordTypeClose carries no data: the sender will send nothing more.
	recordTypeClose = 0x02

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
	case recordTypeClose:
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
	hash    func() hash.Hash
	session []byte // the session secret, for the next generations
	label   string // labelSealedC2S or labelSealedS2C
	aead    cipher.AEAD
	iv      [recordNonceLen]byte
	nonce   [recordNonceLen]byte
	seq     uint64
	gen     uint64 // key generation
	every   uint64 // rekeyInterval when the cipher was made
}

// newRecordCipher derives generation 0 of one direction. mac is an HMAC
// keyed with the session secret, shared by both directions' first
// derivation so that setting up a sealed connection stays cheap.
func newRecordCipher(mode Mode, suite Suite, session []byte, mac hash.Hash, label string) (*recordCipher, error) {
	rc := &recordCipher{mode: mode, hash: suite.newHash(), session: session, label: label, every: rekeyInterval}
	if err := rc.setKeys(mac); err != nil {
		return nil, err
	}
	return rc, nil
}

// setKeys derives the key and IV of the current generation g:
//
//	key || iv = HKDF-Expand(session secret, label || uint64(g), 32 + 12)
//
// mac, if not nil, is an HMAC keyed with the session secret.
func (rc *recordCipher) setKeys(mac hash.Hash) error {
	if mac == nil {
		mac = hmac.New(rc.hash, rc.session)
	}
	// One buffer for the info, the output and hkdfExpand's scratch space.
	var buf [64 + recordKeyLen + recordNonceLen + hkdfScratch]byte
	info := binary.BigEndian.AppendUint64(append(buf[:0:64], rc.label...), rc.gen)
	kiv := buf[64 : 64+recordKeyLen+recordNonceLen]
	hkdfExpand(mac, info, kiv, buf[64+len(kiv):])
	defer clear(buf[:])
	key := kiv[:recordKeyLen]
	var err error
	switch rc.mode {
	case ModeSealedAES256GCM:
		var block cipher.Block
		if block, err = aes.NewCipher(key); err == nil {
			rc.aead, err = cipher.NewGCM(block)
		}
	case ModeSealedChaCha20Poly1305:
		rc.aead, err = chacha20poly1305.New(key)
	default:
		err = errf(nil, "mode %v has no record protection", rc.mode)
	}
	if err != nil {
		return err
	}
	copy(rc.iv[:], kiv[recordKeyLen:])
	return nil
}

// nextNonce returns the nonce of the current record.
func (rc *recordCipher) nextNonce() []byte {
	rc.nonce = rc.iv
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], rc.seq)
	for i := range s {
		rc.nonce[recordNonceLen-8+i] ^= s[i]
	}
	return rc.nonce[:]
}

// advance moves past the record just sealed or opened, and switches to the
// next key generation every rekeyInterval records. Both sides count the
// same records, so they switch at the same record without a message.
func (rc *recordCipher) advance() error {
	rc.seq++
	if rc.seq == 0 {
		return errf([]error{ErrProtocol}, "sealed record sequence number exhausted")
	}
	if rc.seq%rc.every != 0 {
		return nil
	}
	rc.gen++
	return rc.setKeys(nil)
}

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
		return dst, errf([]error{ErrRecordAuth}, "sealed record %d did not authenticate: it was altered, reordered, replayed or one before it was dropped", rc.seq)
	}
	return out, rc.advance()
}
