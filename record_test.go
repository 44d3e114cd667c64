package auth

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseRecordHeader(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		typ     byte
		bodyLen int
		ok      bool
	}{
		{"data, one byte", []byte{0x01, 0, 0, 17}, recordTypeData, 17, true},
		{"data, largest", []byte{0x01, 0x01, 0x00, 0x10}, recordTypeData, maxRecordBody, true},
		{"close-write", []byte{0x02, 0, 0, 16}, recordTypeCloseWrite, 16, true},
		{"close", []byte{0x03, 0, 0, 16}, recordTypeClose, 16, true},
		{"data, empty", []byte{0x01, 0, 0, 16}, 0, 0, false},
		{"data, shorter than a tag", []byte{0x01, 0, 0, 3}, 0, 0, false},
		{"data, too long", []byte{0x01, 0x01, 0x00, 0x11}, 0, 0, false},
		{"data, 16 MiB", []byte{0x01, 0xff, 0xff, 0xff}, 0, 0, false},
		{"close-write with data", []byte{0x02, 0, 0, 17}, 0, 0, false},
		{"close with data", []byte{0x03, 0, 0, 17}, 0, 0, false},
		{"close, short", []byte{0x03, 0, 0, 15}, 0, 0, false},
		{"unknown type", []byte{0x04, 0, 0, 17}, 0, 0, false},
		{"type zero", []byte{0x00, 0, 0, 16}, 0, 0, false},
		{"handshake type", []byte{0x16, 0x03, 0x01, 0}, 0, 0, false},
		{"short", []byte{0x01, 0, 0}, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := parseRecordHeader(tt.in)
			if !tt.ok {
				require.Error(t, err)
				assert.ErrorIs(t, err, ErrProtocol)
				assert.Contains(t, err.Error(), "auth: ")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.typ, h.typ)
			assert.Equal(t, tt.bodyLen, h.bodyLen)
		})
	}
}

// TestKDFMatchesStdlib checks the hand-written HMAC and HKDF-Expand of kdf
// against crypto/hmac and crypto/hkdf, for both suites, with keys shorter
// than, as long as and longer than a hash block, and a kdf reused from the
// pool.
func TestKDFMatchesStdlib(t *testing.T) {
	for _, s := range []Suite{SuiteHMACSHA256, SuiteHMACSHA512} {
		h := s.newHash()
		for _, keyLen := range []int{0, 1, 16, 32, 48, 64, 65, 128, 129, 200} {
			key := pattern(keyLen, byte(keyLen))
			k := getKDF(s)
			k.setKey(key)
			m := hmac.New(h, key)
			m.Write([]byte("abc"))
			m.Write([]byte("defgh"))
			assert.Equal(t, m.Sum(nil), k.mac([]byte("prefix"), []byte("abcdefgh"))[len("prefix"):], "%v, HMAC, key of %d bytes", s, keyLen)
			for _, n := range []int{1, 12, 32, 44, 64, 65, 100, 255 * s.size()} {
				want, err := hkdf.Expand(h, key, "info", n)
				require.NoError(t, err)
				got := make([]byte, n)
				k.expand(got, []byte("info"))
				assert.Equal(t, want, got, "%v, HKDF-Expand of %d bytes, key of %d bytes", s, n, keyLen)
			}
			putKDF(s, k)
		}
	}
}

// TestKDFCopyState checks that a kdf's hash takes over another hash's
// state, as presealServer needs to finish the transcript without cloning.
func TestKDFCopyState(t *testing.T) {
	for _, s := range []Suite{SuiteHMACSHA256, SuiteHMACSHA512} {
		h := s.newHash()()
		h.Write(pattern(300, 3))
		k := getKDF(s)
		require.True(t, k.copyState(h), "%v", s)
		h.Write([]byte("more"))
		k.h.Write([]byte("more"))
		assert.Equal(t, h.Sum(nil), k.h.Sum(nil), "%v", s)
		putKDF(s, k)
	}
}

// TestSessionSecretMatchesHKDF checks the hand-written session secret
// against crypto/hkdf, for both suites.
func TestSessionSecretMatchesHKDF(t *testing.T) {
	for _, s := range []Suite{SuiteHMACSHA256, SuiteHMACSHA512} {
		c := &Conn{key: sealedTestKey, th: bytes.Repeat([]byte{9}, s.size())}
		c.state.Suite = s
		prk, err := hkdf.Extract(s.newHash(), c.key, c.th)
		require.NoError(t, err)
		want, err := hkdf.Expand(s.newHash(), prk, labelSession, s.size())
		require.NoError(t, err)
		got, err := c.sessionSecret()
		require.NoError(t, err)
		assert.Equal(t, want, got, "%v", s)
	}
}

// TestStartSealedKeysMatchSpec derives both directions' keys of a client
// and a server the way startSealed and a client's first Read do (one kdf
// shared by the session secret and the first keys, a pooled one later),
// and checks them against PROTOCOL.md's key schedule computed with
// crypto/hkdf, for both suites.
func TestStartSealedKeysMatchSpec(t *testing.T) {
	for _, s := range []Suite{SuiteHMACSHA256, SuiteHMACSHA512} {
		th := pattern(s.size(), 9)
		prk, err := hkdf.Extract(s.newHash(), sealedTestKey, th)
		require.NoError(t, err)
		secret, err := hkdf.Expand(s.newHash(), prk, labelSession, s.size())
		require.NoError(t, err)
		kiv := func(label string) []byte {
			info := binary.BigEndian.AppendUint64([]byte(label), 0)
			b, err := hkdf.Expand(s.newHash(), secret, string(info), 44)
			require.NoError(t, err)
			return b
		}
		for _, isClient := range []bool{false, true} {
			c := &Conn{key: sealedTestKey, th: th, isClient: isClient}
			c.state.Suite, c.state.Mode = s, ModeSealedAES256GCM
			require.NoError(t, c.startSealed())
			assert.Equal(t, secret, c.seal.secret, "%v", s)
			if c.seal.in == nil { // a client derives them on its first Read
				require.NoError(t, c.seal.inC.deriveKeys())
				c.seal.in = &c.seal.inC
			}
			out, in := labelSealedS2C, labelSealedC2S
			if isClient {
				out, in = in, out
			}
			for label, rc := range map[string]*recordCipher{out: c.seal.out, in: c.seal.in} {
				want := kiv(label)
				assert.Equal(t, want[32:], rc.iv[:], "%v, %s", s, label)
				block, err := aes.NewCipher(want[:32])
				require.NoError(t, err)
				gcm, err := cipher.NewGCM(block)
				require.NoError(t, err)
				hdr := []byte{recordTypeData, 0, 0, 1 + 16}
				got, err := rc.seal(nil, recordTypeData, []byte("x"))
				require.NoError(t, err)
				assert.Equal(t, gcm.Seal(bytes.Clone(hdr), rc.iv[:], []byte("x"), hdr), got, "%v, %s", s, label)
			}
		}
	}
}

// testCiphers returns a writer and a reader for one direction, keyed from
// a fixed session secret.
func testCiphers(t testing.TB, mode Mode, label string) (w, r *recordCipher) {
	session := bytes.Repeat([]byte{0x42}, 32)
	w, r = new(recordCipher), new(recordCipher)
	w.init(mode, SuiteHMACSHA256, session, label)
	r.init(mode, SuiteHMACSHA256, session, label)
	require.NoError(t, w.deriveKeys())
	require.NoError(t, r.deriveKeys())
	return w, r
}

// TestRecordKnownAnswer recomputes a sealed record from the specification
// in PROTOCOL.md ("Sealed mode") with crypto/hkdf and crypto/aes directly, independently
// of the record layer's code.
func TestRecordKnownAnswer(t *testing.T) {
	session := bytes.Repeat([]byte{0x42}, 32)
	w, _ := testCiphers(t, ModeSealedAES256GCM, labelSealedC2S)
	w.seq = 0x0102030405060708
	got, err := w.seal(nil, recordTypeData, []byte("hello"))
	require.NoError(t, err)

	info := binary.BigEndian.AppendUint64([]byte("hmacauth v1 sealed c2s"), 0)
	kiv, err := hkdf.Expand(sha256.New, session, string(info), 44)
	require.NoError(t, err)
	block, err := aes.NewCipher(kiv[:32])
	require.NoError(t, err)
	gcm, err := cipher.NewGCM(block)
	require.NoError(t, err)
	nonce := bytes.Clone(kiv[32:])
	for i, b := range []byte{1, 2, 3, 4, 5, 6, 7, 8} {
		nonce[4+i] ^= b
	}
	hdr := []byte{0x01, 0x00, 0x00, 5 + 16}
	want := gcm.Seal(bytes.Clone(hdr), nonce, []byte("hello"), hdr)
	assert.Equal(t, want, got)
}

func TestRecordRoundTrip(t *testing.T) {
	for _, mode := range []Mode{ModeSealedAES256GCM, ModeSealedChaCha20Poly1305} {
		t.Run(mode.String(), func(t *testing.T) {
			w, r := testCiphers(t, mode, labelSealedS2C)
			for i, msg := range [][]byte{[]byte("a"), pattern(1000, 1), pattern(MaxRecordPlaintext, 2)} {
				rec, err := w.seal(nil, recordTypeData, msg)
				require.NoError(t, err)
				assert.Len(t, rec, recordHeaderLen+len(msg)+recordTagLen)
				h, err := parseRecordHeader(rec)
				require.NoError(t, err)
				pt, err := r.open(nil, rec[:recordHeaderLen], rec[recordHeaderLen:])
				require.NoError(t, err, "record %d", i)
				assert.Equal(t, msg, pt)
				assert.Equal(t, len(msg)+recordTagLen, h.bodyLen)
			}
		})
	}
}

// TestRecordDirectionsDiffer checks that a record sealed for one direction
// does not open in the other, so a reflected record is refused.
func TestRecordDirectionsDiffer(t *testing.T) {
	c2s, _ := testCiphers(t, ModeSealedAES256GCM, labelSealedC2S)
	_, s2c := testCiphers(t, ModeSealedAES256GCM, labelSealedS2C)
	rec, err := c2s.seal(nil, recordTypeData, []byte("reflect me"))
	require.NoError(t, err)
	_, err = s2c.open(nil, rec[:recordHeaderLen], rec[recordHeaderLen:])
	assert.ErrorIs(t, err, ErrRecordAuth)
	assert.ErrorIs(t, err, ErrProtocol)
}

// TestRecordRekeyInStep checks that both sides switch keys at the same
// record, and that a side that does not switch fails there.
func TestRecordRekeyInStep(t *testing.T) {
	w, r := testCiphers(t, ModeSealedAES256GCM, labelSealedC2S)
	_, stale := testCiphers(t, ModeSealedAES256GCM, labelSealedC2S)
	w.every, r.every, stale.every = 3, 3, 1000
	for i := range 10 {
		rec, err := w.seal(nil, recordTypeData, []byte{byte(i)})
		require.NoError(t, err)
		pt, err := r.open(nil, rec[:recordHeaderLen], rec[recordHeaderLen:])
		require.NoError(t, err, "record %d", i)
		assert.Equal(t, []byte{byte(i)}, pt)
		_, err = stale.open(nil, rec[:recordHeaderLen], rec[recordHeaderLen:])
		if i < 3 {
			require.NoError(t, err, "record %d", i)
		} else {
			require.ErrorIs(t, err, ErrRecordAuth, "record %d", i)
			stale.seq++ // keep counting, as if it went on
		}
	}
	assert.Equal(t, uint64(3), w.gen)
	assert.Equal(t, uint64(3), r.gen)
}

func TestRecordSequenceExhausted(t *testing.T) {
	w, _ := testCiphers(t, ModeSealedAES256GCM, labelSealedC2S)
	w.seq = ^uint64(0)
	_, err := w.seal(nil, recordTypeData, []byte("x"))
	assert.ErrorIs(t, err, ErrProtocol)
}

func TestRecordNonce(t *testing.T) {
	w, _ := testCiphers(t, ModeSealedAES256GCM, labelSealedC2S)
	assert.Equal(t, w.iv[:], w.nextNonce())
	w.seq = 0xff
	n := bytes.Clone(w.nextNonce())
	assert.Equal(t, w.iv[:11], n[:11])
	assert.Equal(t, w.iv[11]^0xff, n[11])
}

// streamConn is a net.Conn that reads a fixed byte stream, for feeding the
// record layer directly.
type streamConn struct {
	r *bytes.Reader
}

func (s *streamConn) Read(p []byte) (int, error)       { return s.r.Read(p) }
func (s *streamConn) Write(p []byte) (int, error)      { return len(p), nil }
func (s *streamConn) Close() error                     { return nil }
func (s *streamConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (s *streamConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (s *streamConn) SetDeadline(time.Time) error      { return nil }
func (s *streamConn) SetReadDeadline(time.Time) error  { return nil }
func (s *streamConn) SetWriteDeadline(time.Time) error { return nil }

// recordReaderConn returns a server Conn, past its handshake, whose record
// layer reads stream with the reader cipher r.
func recordReaderConn(stream []byte, r *recordCipher) *Conn {
	c := newConn(&streamConn{r: bytes.NewReader(stream)}, &config{}, false)
	c.state = ConnectionState{HandshakeComplete: true, Suite: SuiteHMACSHA256, Mode: r.mode}
	c.seal = &sealState{in: r}
	c.hsDone.Store(true)
	return c
}

// TestRecordLayerReadSizes reads a stream of records with every read size
// from 1 byte up, so records are split across Reads and several records
// are joined in one.
func TestRecordLayerReadSizes(t *testing.T) {
	w, _ := testCiphers(t, ModeSealedAES256GCM, labelSealedC2S)
	var stream, want []byte
	for i, n := range []int{1, 7, 300, 5000, 17} {
		msg := pattern(n, byte(i))
		want = append(want, msg...)
		var err error
		stream, err = w.seal(stream, recordTypeData, msg)
		require.NoError(t, err)
	}
	stream, err := w.seal(stream, recordTypeClose, nil)
	require.NoError(t, err)
	for _, size := range []int{1, 2, 5, 16, 100, 4096, 6000, 1 << 16} {
		_, r := testCiphers(t, ModeSealedAES256GCM, labelSealedC2S)
		c := recordReaderConn(stream, r)
		got, err := io.ReadAll(io.LimitReader(readerSize{c, size}, 1<<20))
		require.NoError(t, err, "read size %d", size)
		assert.Equal(t, want, got, "read size %d", size)
	}
}

// readerSize reads at most size bytes per Read.
type readerSize struct {
	r    io.Reader
	size int
}

func (r readerSize) Read(p []byte) (int, error) { return r.r.Read(p[:min(len(p), r.size)]) }
