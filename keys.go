package auth

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// MinKeyLen is the shortest key, in bytes, that the hmacauth protocol
// accepts. Keys should be random; GenerateKey makes one.
const MinKeyLen = 16

// DefaultKeyLen is the length of the keys GenerateKey makes.
const DefaultKeyLen = 32

// MaxKeyIDLen is the longest key ID, in bytes, that fits in a client hello.
const MaxKeyIDLen = 255

// GenerateKey returns a new random key of DefaultKeyLen bytes from
// crypto/rand. Store it with base64.StdEncoding and read it back with
// ParseKey.
func GenerateKey() ([]byte, error) {
	key := make([]byte, DefaultKeyLen)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("auth: generating key: %w", err)
	}
	return key, nil
}

// ParseKey decodes a key written as text and checks its length.
//
// The text may carry an explicit "base64:" or "hex:" prefix. Without one, a
// string of an even number of hexadecimal digits is read as hex and anything
// else as base64 (standard or URL alphabet, padded or not). Surrounding
// white space is ignored. A key shorter than MinKeyLen bytes is refused with
// an error wrapping ErrKeyTooShort.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	var (
		key []byte
		err error
	)
	switch {
	case strings.HasPrefix(s, "hex:"):
		key, err = hex.DecodeString(s[len("hex:"):])
	case strings.HasPrefix(s, "base64:"):
		key, err = decodeBase64(s[len("base64:"):])
	case isHex(s):
		key, err = hex.DecodeString(s)
	default:
		key, err = decodeBase64(s)
	}
	if err != nil {
		return nil, errf([]error{err}, "key is neither base64 nor hex: %v", err)
	}
	if err := checkKey(key); err != nil {
		return nil, err
	}
	return key, nil
}

func isHex(s string) bool {
	if s == "" || len(s)%2 != 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func decodeBase64(s string) ([]byte, error) {
	var firstErr error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		b, err := enc.DecodeString(s)
		if err == nil {
			return b, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

// checkKey returns an error wrapping ErrKeyTooShort for a key the modern
// protocol must not use.
func checkKey(key []byte) error {
	switch {
	case len(key) == 0:
		return errf([]error{ErrKeyTooShort}, "no key given: pass auth.WithKey with at least %d random bytes (auth.GenerateKey makes one; `hmacauth keygen` prints one)", MinKeyLen)
	case len(key) < MinKeyLen:
		return errf([]error{ErrKeyTooShort}, "key is %d bytes, want at least %d random bytes: make one with auth.GenerateKey or `head -c 32 /dev/urandom | base64`", len(key), MinKeyLen)
	}
	return nil
}

func checkKeyID(id string) error {
	if len(id) > MaxKeyIDLen {
		return errf(nil, "key ID is %d bytes, the protocol allows at most %d", len(id), MaxKeyIDLen)
	}
	return nil
}
