package mpcompat

import (
	"crypto/rand"
	"io"
	"log/slog"
	"math"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/hmacauth/auth"
)

// Generation selects the handshake format.
type Generation uint8

const (
	// Auto behaves as CPython 3.12 and later: its challenges name their
	// digest ("{sha256}" and 40 random bytes), and it follows a legacy
	// peer, accepting a raw 16-byte HMAC-MD5 answer and answering a
	// 20-byte challenge with one. It talks to every Python 3 version, at
	// the price of accepting MD5 from any peer that chooses it, as CPython
	// does. It is the default.
	Auto Generation = iota

	// Legacy behaves exactly as CPython 3.11 and earlier: 20-byte
	// challenges, raw HMAC-MD5 answers. Python 3.12 and later accept it.
	Legacy

	// Modern speaks only the format of CPython 3.12 and later and refuses
	// legacy peers (a 20-byte challenge or a raw 16-byte answer) with
	// ErrLegacyPeer, so no HMAC-MD5 is used unless Digest asks for it.
	Modern
)

// String returns the generation's name.
func (g Generation) String() string {
	switch g {
	case Auto:
		return "auto"
	case Legacy:
		return "legacy"
	case Modern:
		return "modern"
	}
	return "Generation(" + strconv.Itoa(int(g)) + ")"
}

// Defaults of a zero Config.
const (
	// DefaultDigest is the digest a modern challenge names, as in CPython.
	DefaultDigest = "sha256"
	// DefaultMaxMessageSize bounds the messages RecvBytes accepts.
	DefaultMaxMessageSize = 64 << 20
	// DefaultHandshakeTimeout bounds each handshake.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultMaxHandshakes bounds the handshakes a Listener runs at once.
	DefaultMaxHandshakes = 256
)

// Config configures listeners and dialers, in the manner of tls.Config.
// The zero value (and a nil *Config) is valid and gives the defaults. A
// Config may be reused, but must not be changed once passed to a method;
// the methods take a copy.
type Config struct {
	// Generation selects the handshake format; the zero value is Auto.
	Generation Generation

	// Digest is the digest this side's modern challenges name: one of
	// Digests. Empty means DefaultDigest. Legacy ignores it (its
	// challenges are HMAC-MD5). Answers always use the digest the peer's
	// challenge names.
	Digest string

	// MaxMessageSize bounds the messages RecvBytes accepts; a longer one
	// fails with ErrMessageTooLarge. Zero means DefaultMaxMessageSize; a
	// negative value means no bound but the wire format's (CPython sets
	// none). Sending is not bounded.
	MaxMessageSize int64

	// HandshakeTimeout bounds each handshake. Zero means
	// DefaultHandshakeTimeout; negative means none but the context's.
	HandshakeTimeout time.Duration

	// MaxHandshakes bounds, on a Listener, the handshakes in progress
	// plus authenticated connections waiting for Accept; at the bound the
	// Listener stops accepting and the kernel's backlog holds the rest.
	// Zero means DefaultMaxHandshakes.
	MaxHandshakes int

	// NetDialer makes the connections of Dial. Nil means a zero
	// net.Dialer.
	NetDialer *net.Dialer

	// Rand is the source of challenges. Nil means crypto/rand.Reader;
	// set it only in tests.
	Rand io.Reader

	// HandshakeHook, if set, is called once at the end of every
	// handshake, successful or not. On a Listener it runs on the
	// handshake's goroutine: keep it quick and do not call Close from it.
	HandshakeHook func(HandshakeEvent)

	// Logger, if set, receives refused handshakes at Warn, accepted ones
	// at Debug and accept-loop trouble at Error. Keys and MACs are never
	// logged.
	Logger *slog.Logger
}

// HandshakeEvent describes one finished handshake. It never holds keys or
// MACs.
type HandshakeEvent struct {
	IsClient              bool
	LocalAddr, RemoteAddr net.Addr
	// State is what the handshake established, as far as it got.
	State    ConnectionState
	Duration time.Duration
	// Err is nil for an authenticated connection.
	Err error
}

// ConnectionState describes an authenticated connection.
type ConnectionState struct {
	// IsClient is true on the connecting side.
	IsClient bool
	// LocalAnswer is the digest this side answered the peer's challenge
	// with; "md5" for a legacy raw answer.
	LocalAnswer string
	// PeerAnswer is the digest the peer answered this side's challenge
	// with; "md5" for a legacy raw answer.
	PeerAnswer string
	// Legacy reports that either direction used the Python 3.11 format.
	Legacy bool
}

// check validates the configuration and returns a copy with the defaults
// filled in.
func (c *Config) check() (*Config, error) {
	var cfg Config
	if c != nil {
		cfg = *c
	}
	if cfg.Generation > Modern {
		return nil, errorf(nil, "unknown Generation %d: use Auto, Legacy or Modern", cfg.Generation)
	}
	if cfg.Digest == "" {
		cfg.Digest = DefaultDigest
	}
	if !slices.Contains(Digests, cfg.Digest) {
		return nil, errorf(nil, "Config.Digest %q is not one CPython allows: use one of %v", cfg.Digest, Digests)
	}
	switch {
	case cfg.MaxMessageSize == 0:
		cfg.MaxMessageSize = DefaultMaxMessageSize
	case cfg.MaxMessageSize < 0:
		cfg.MaxMessageSize = math.MaxInt
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.MaxHandshakes == 0 {
		cfg.MaxHandshakes = DefaultMaxHandshakes
	}
	if cfg.MaxHandshakes < 0 {
		return nil, errorf(nil, "Config.MaxHandshakes is %d, want at least 1", cfg.MaxHandshakes)
	}
	return &cfg, nil
}

func (c *Config) digest() string { return c.Digest }

func (c *Config) rand() io.Reader {
	if c.Rand != nil {
		return c.Rand
	}
	return rand.Reader
}

// checkWithKey checks cfg (see check), then authkey (see checkAuthkey).
func (cfg *Config) checkWithKey(authkey []byte) (*Config, []byte, error) {
	c, err := cfg.check()
	if err != nil {
		return nil, nil, err
	}
	key, err := checkAuthkey(authkey)
	if err != nil {
		return nil, nil, err
	}
	return c, key, nil
}

// checkAuthkey refuses an empty authkey. CPython's Listener treats an
// empty authkey as none and skips authentication; this package never runs
// unauthenticated.
func checkAuthkey(key []byte) ([]byte, error) {
	if len(key) == 0 {
		return nil, errorf([]error{auth.ErrKeyTooShort}, "no authkey given: pass the bytes the Python side passes as authkey= (this package never runs unauthenticated)")
	}
	return slices.Clone(key), nil
}
