package auth

import (
	"crypto/sha512"
	"encoding"
	"hash"
	"sync"
)

// sessionSecret derives the session secret from the authenticated key and
// the transcript hash over all three handshake messages:
//
//	HKDF-Expand(HKDF-Extract(salt = transcript hash, key), "hmacauth v1 session secret", hash size)
//
// ExportKeyingMaterial and the sealed modes' traffic keys both derive from
// it, under distinct labels. The caller owns the result and may clear it.
func (c *Conn) sessionSecret() ([]byte, error) {
	k := getKDF(c.state.Suite)
	defer putKDF(c.state.Suite, k)
	return c.deriveSessionSecret(k, make([]byte, 0, k.size)), nil
}

// deriveSessionSecret appends the session secret (see sessionSecret) to
// dst, computed with k, and leaves k keyed with it.
func (c *Conn) deriveSessionSecret(k *kdf, dst []byte) []byte {
	// HKDF-Extract is HMAC(salt, IKM); an output of one hash size is the
	// first block of HKDF-Expand, HMAC(PRK, info || 0x01).
	k.setKey(c.th)
	prk := k.mac(k.prk[:0], c.key)
	k.setKey(prk)
	clear(k.prk[:])
	secret := k.mac(dst, append(append(k.msg[:0], labelSession...), 1))
	k.setKey(secret)
	return secret
}

// kdf computes HMAC (RFC 2104) and HKDF-Expand (RFC 5869) with one hash
// state, and holds all of its scratch space, so a key schedule allocates
// nothing (crypto/hmac and crypto/hkdf allocate two hashes, the pads and
// every output) and keeps the stack shallow (see sealedFill). The outputs
// are those of crypto/hmac and crypto/hkdf, byte for byte
// (TestKDFMatchesStdlib). kdfs are pooled per suite.
type kdf struct {
	h    hash.Hash
	size int // the hash's output size
	bs   int // the hash's block size
	ipad [sha512.BlockSize]byte
	opad [sha512.BlockSize]byte
	sum  [sha512.Size]byte // the inner hash, or a hashed long key
	prk  [sha512.Size]byte // a pseudorandom key being derived
	info [64]byte          // room for a traffic key label and generation
	msg  [sha512.Size + 64 + 1]byte
	kiv  [recordKeyLen + recordNonceLen]byte // traffic key and IV
	// state holds a marshaled hash state, 204 bytes for SHA-512.
	state [256]byte
}

// kdfs pools the kdf states, per suite.
var kdfs [SuiteHMACSHA512 + 1]sync.Pool

// getKDF returns a kdf for suite s, not yet keyed.
func getKDF(s Suite) *kdf {
	if k, ok := kdfs[s].Get().(*kdf); ok {
		return k
	}
	h := s.newHash()()
	return &kdf{h: h, size: h.Size(), bs: h.BlockSize()}
}

// putKDF clears k of every key and output and returns it to the pool.
func putKDF(s Suite, k *kdf) {
	k.h.Reset()
	clear(k.ipad[:])
	clear(k.opad[:])
	clear(k.sum[:])
	clear(k.prk[:])
	clear(k.msg[:])
	clear(k.kiv[:])
	clear(k.state[:])
	kdfs[s].Put(k)
}

// copyState sets k's hash to the state of h, a hash of the same kind, as
// hash.Cloner would without allocating a hash. It reports whether it could.
func (k *kdf) copyState(h hash.Hash) bool {
	from, ok := h.(encoding.BinaryAppender)
	to, ok2 := k.h.(encoding.BinaryUnmarshaler)
	if !ok || !ok2 {
		return false
	}
	state, err := from.AppendBinary(k.state[:0])
	return err == nil && to.UnmarshalBinary(state) == nil
}

// setKey keys k's HMAC with key. key may be one of k's own buffers.
func (k *kdf) setKey(key []byte) {
	if len(key) > k.bs {
		k.h.Reset()
		k.h.Write(key)
		key = k.h.Sum(k.sum[:0])
	}
	pad := k.ipad[:k.bs]
	clear(pad[copy(pad, key):])
	for i, b := range pad {
		k.ipad[i] = b ^ 0x36
		k.opad[i] = b ^ 0x5c
	}
}

// mac appends HMAC(key, msg) to dst.
func (k *kdf) mac(dst, msg []byte) []byte {
	k.h.Reset()
	k.h.Write(k.ipad[:k.bs])
	k.h.Write(msg)
	inner := k.h.Sum(k.sum[:0])
	k.h.Reset()
	k.h.Write(k.opad[:k.bs])
	k.h.Write(inner)
	return k.h.Sum(dst)
}

// expand fills out with HKDF-Expand of info under the pseudorandom key k
// is keyed with. out may be at most 255 hash sizes long, and info at most
// 64 bytes.
func (k *kdf) expand(out, info []byte) {
	// T(i) = HMAC(PRK, T(i-1) || info || i), in msg: T(i) overwrites
	// T(i-1) at its start once that has been hashed.
	msg := append(k.msg[:0], info...)
	for i, n := byte(1), 0; n < len(out); i++ {
		t := k.mac(k.msg[:0], append(msg, i))
		n += copy(out[n:], t)
		msg = append(t, info...)
	}
	clear(k.msg[:])
}
