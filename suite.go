package auth

import (
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
)

// Suite identifies the hash function that keys the proofs, hashes the
// transcript and derives the session secret.
type Suite uint8

// The suites of protocol version 1.
const (
	SuiteHMACSHA256 Suite = 1 // HMAC-SHA256, 32-byte proofs
	SuiteHMACSHA512 Suite = 2 // HMAC-SHA512, 64-byte proofs
)

// defaultSuites is the preference order used when WithSuites is not given.
// SHA-256 comes first: most CPUs here accelerate it in hardware and its
// 32-byte proofs are already far beyond brute force.
var defaultSuites = []Suite{SuiteHMACSHA256, SuiteHMACSHA512}

// String returns the suite's name, for logs.
func (s Suite) String() string {
	switch s {
	case SuiteHMACSHA256:
		return "HMAC-SHA256"
	case SuiteHMACSHA512:
		return "HMAC-SHA512"
	}
	return fmt.Sprintf("Suite(%d)", uint8(s))
}

// known reports whether this implementation supports the suite.
func (s Suite) known() bool { return s == SuiteHMACSHA256 || s == SuiteHMACSHA512 }

// newHash returns the suite's hash constructor.
func (s Suite) newHash() func() hash.Hash {
	if s == SuiteHMACSHA512 {
		return sha512.New
	}
	return sha256.New
}

// size is the length of the suite's proofs and transcript hashes.
func (s Suite) size() int {
	if s == SuiteHMACSHA512 {
		return sha512.Size
	}
	return sha256.Size
}

// Mode is what protects the bytes after the handshake. The client offers a
// set of modes as a bit mask; the server picks exactly one.
type Mode uint8

// The modes of protocol version 1. Bits not listed are reserved and must be
// ignored by a server that does not know them.
const (
	// ModeAuthOnly authenticates the connection and then passes bytes
	// through unchanged: anyone on the path can read them.
	ModeAuthOnly Mode = 0x01

	// ModeSealedAES256GCM seals every byte after the handshake in records
	// encrypted and authenticated with AES-256-GCM. See WithSealed.
	ModeSealedAES256GCM Mode = 0x02

	// ModeSealedChaCha20Poly1305 is ModeSealedAES256GCM with
	// ChaCha20-Poly1305, for CPUs without AES instructions.
	ModeSealedChaCha20Poly1305 Mode = 0x04
)

// String returns the mode's name, for logs. A set of modes prints as the
// names joined by "|".
func (m Mode) String() string {
	switch m {
	case ModeAuthOnly:
		return "auth-only"
	case ModeRecipe:
		return "recipe"
	case ModeSealedAES256GCM:
		return "sealed-AES-256-GCM"
	case ModeSealedChaCha20Poly1305:
		return "sealed-ChaCha20-Poly1305"
	}
	return modeSetString(m)
}
