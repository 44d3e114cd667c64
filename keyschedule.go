package auth

import (
	"crypto/hkdf"
	"hash"
)

// sessionSecret derives the session secret from the authenticated key and
// the transcript hash over all three handshake messages:
//
//	HKDF-Expand(HKDF-Extract(salt = transcript hash, key), "hmacauth v1 session secret", hash size)
//
// ExportKeyingMaterial and the sealed modes' traffic keys both derive from
// it, under distinct labels. The caller owns the result and may clear it.
func (c *Conn) sessionSecret() ([]byte, error) {
	h := c.state.Suite.newHash()
	prk, err := hkdf.Extract(h, c.key, c.th)
	if err != nil {
		return nil, errf([]error{err}, "deriving session secret: %v", err)
	}
	secret, err := hkdf.Expand(h, prk, labelSession, c.state.Suite.size())
	clear(prk)
	if err != nil {
		return nil, errf([]error{err}, "deriving session secret: %v", err)
	}
	return secret, nil
}

// hkdfScratch is the scratch space hkdfExpand needs: one output block of
// the largest hash and the block counter.
const hkdfScratch = 64 + 1

// hkdfExpand fills out with HKDF-Expand (RFC 5869) of info under the
// pseudorandom key that mac is keyed with. It is crypto/hkdf.Expand with
// the HMAC made once by the caller, so several expansions share it.
func hkdfExpand(mac hash.Hash, info, out, scratch []byte) {
	var t []byte
	for i, n := byte(1), 0; n < len(out); i++ {
		mac.Reset()
		mac.Write(t)
		mac.Write(info)
		scratch[len(scratch)-1] = i
		mac.Write(scratch[len(scratch)-1:])
		t = mac.Sum(scratch[:0])
		n += copy(out[n:], t)
	}
	clear(scratch)
}
