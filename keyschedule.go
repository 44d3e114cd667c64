package auth

import "crypto/hkdf"

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
