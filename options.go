package auth

import (
	"hash"
	"log/slog"
	"maps"
	"net"
	"time"
)

// DefaultHandshakeTimeout bounds a handshake when WithHandshakeTimeout is
// not given.
const DefaultHandshakeTimeout = 10 * time.Second

// DefaultMaxHandshakes bounds the handshakes a listener runs at once when
// WithMaxHandshakes is not given.
const DefaultMaxHandshakes = 1024

// An Option configures a listener, a dialer, Client or Server. Options that
// only make sense on one side are ignored on the other; each says which.
type Option func(*config) error

// KeyLookup returns the key for a key ID, in the manner of
// ssh.ServerConfig.PasswordCallback. It is called once per handshake, from
// many goroutines at once. Returning an error (any error) treats the key ID
// as unknown; the client only learns that authentication failed.
type KeyLookup func(keyID string) ([]byte, error)

// HandshakeEvent describes one finished handshake, successful or not. It is
// what WithHandshakeHook receives. It never holds keys or proofs.
type HandshakeEvent struct {
	// IsClient is true on the dialing side.
	IsClient bool
	// LocalAddr and RemoteAddr are the connection's addresses.
	LocalAddr, RemoteAddr net.Addr
	// KeyID is the key ID the client presented, if the client hello got
	// that far. On a failed handshake it is what the peer claimed, not an
	// identity.
	KeyID string
	// Suite and Mode are what was negotiated, if anything was.
	Suite Suite
	Mode  Mode
	// Duration is the time from the start of the handshake to its end.
	Duration time.Duration
	// Err is nil for an authenticated connection and otherwise says why it
	// was refused; test it with errors.Is against the package's errors.
	Err error
}

// config is what the options build. It is read-only once built and shared
// by every connection of a listener or dialer.
type config struct {
	key       []byte // client: the key; server: the key for the empty ID
	keyID     string
	keys      map[string][]byte
	lookup    KeyLookup
	suites    []Suite
	modes     Mode // modes this side accepts, bit mask
	timeout   time.Duration
	maxHS     int
	netDialer *net.Dialer
	logger    *slog.Logger
	hook      func(HandshakeEvent)
	waitVerd  bool
	recipe    func() hash.Hash // set by WithRecipe: speak the recipe instead

	// Pooled HMAC states for the static keys (macs.go).
	keyMACs    *keyMACs            // for key
	staticMACs map[string]*keyMACs // for keys
}

func newConfig(opts []Option) (*config, error) {
	c := &config{
		suites:  defaultSuites,
		modes:   ModeAuthOnly,
		timeout: DefaultHandshakeTimeout,
		maxHS:   DefaultMaxHandshakes,
	}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// clientConfig builds and checks the configuration of a dialing side.
func clientConfig(opts []Option) (*config, error) {
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if c.key == nil {
		if k, ok := c.keys[c.keyID]; ok {
			c.key = k
		}
	}
	if c.recipe != nil {
		if err := checkRecipeConfig(c); err != nil {
			return nil, err
		}
		return c, nil
	}
	if err := checkKey(c.key); err != nil {
		return nil, err
	}
	c.initMACs()
	return c, nil
}

// serverConfig builds and checks the configuration of an accepting side.
func serverConfig(opts []Option) (*config, error) {
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if c.recipe != nil {
		if len(c.keys) != 0 || c.lookup != nil {
			return nil, errf(nil, "WithRecipe has no key IDs: give the server its one key with WithKey, not WithKeys or WithKeyLookup")
		}
		if err := checkRecipeConfig(c); err != nil {
			return nil, err
		}
		return c, nil
	}
	if c.key == nil && len(c.keys) == 0 && c.lookup == nil {
		return nil, checkKey(nil)
	}
	if c.key != nil {
		if err := checkKey(c.key); err != nil {
			return nil, err
		}
	}
	c.initMACs()
	return c, nil
}

// lookupKey asks the WithKeyLookup function, if any, for the key of id.
// The static keys (WithKey, WithKeys) are found through their pooled HMAC
// states first; see serverMACs.
func (c *config) lookupKey(id string) ([]byte, bool) {
	if c.lookup == nil {
		return nil, false
	}
	k, err := c.lookup(id)
	if err != nil || checkKey(k) != nil {
		return nil, false
	}
	return k, true
}

// WithKey sets the shared key: on a client, the key it proves; on a server,
// the key for clients that present the empty key ID. The key must be at
// least MinKeyLen bytes (except WithRecipe, which takes any non-empty key);
// it is copied.
func WithKey(key []byte) Option {
	return func(c *config) error {
		if len(key) == 0 {
			return checkKey(key)
		}
		c.key = append([]byte(nil), key...)
		return nil
	}
}

// WithKeyID sets, on a client, the key ID it presents so the server can
// pick the matching key. The ID travels in the clear; it is a name, not a
// secret. A client that is given WithKeys instead of WithKey uses the key
// stored under this ID.
func WithKeyID(id string) Option {
	return func(c *config) error {
		if err := checkKeyID(id); err != nil {
			return err
		}
		c.keyID = id
		return nil
	}
}

// WithKeys sets, on a server, every accepted key ID and its key. Each key
// must be at least MinKeyLen bytes. The map is copied; to change keys while
// serving, use WithKeyLookup.
func WithKeys(keys map[string][]byte) Option {
	return func(c *config) error {
		m := make(map[string][]byte, len(c.keys)+len(keys))
		maps.Copy(m, c.keys)
		for id, k := range keys {
			if err := checkKeyID(id); err != nil {
				return err
			}
			if err := checkKey(k); err != nil {
				return errf([]error{err}, "key ID %q: %v", id, err)
			}
			m[id] = append([]byte(nil), k...)
		}
		c.keys = m
		return nil
	}
}

// WithKeyLookup sets, on a server, a function that finds the key for a key
// ID at handshake time. It is consulted after WithKeys and WithKey, so it
// suits key stores that change while serving. A returned key shorter than
// MinKeyLen is treated as unknown.
func WithKeyLookup(fn KeyLookup) Option {
	return func(c *config) error {
		c.lookup = fn
		return nil
	}
}

// WithHandshakeTimeout bounds each handshake; the default is
// DefaultHandshakeTimeout. A context deadline or a deadline set on the
// connection, if sooner, wins. Zero or less means no timeout other than
// those.
func WithHandshakeTimeout(d time.Duration) Option {
	return func(c *config) error {
		c.timeout = d
		return nil
	}
}

// WithMaxHandshakes bounds, on a listener, how many handshakes run at once,
// counting authenticated connections that wait for Accept. When the bound is
// reached the listener evicts the oldest handshake in progress once it has
// run for a second (or a quarter of the handshake timeout, if less), so a
// flood of clients that stall cannot lock good clients out until the
// stallers time out; until then, and when every slot holds a connection
// waiting for Accept, the kernel's backlog holds new connections. The
// default is DefaultMaxHandshakes.
func WithMaxHandshakes(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return errf(nil, "WithMaxHandshakes(%d): want at least 1", n)
		}
		c.maxHS = n
		return nil
	}
}

// WithSuites sets the suites this side accepts, in order of preference.
// The client offers them; the server picks its most preferred one that the
// client offers. The default is SHA-256 then SHA-512.
func WithSuites(suites ...Suite) Option {
	return func(c *config) error {
		if len(suites) == 0 || len(suites) > maxSuites {
			return errf(nil, "WithSuites: want 1 to %d suites, got %d", maxSuites, len(suites))
		}
		for _, s := range suites {
			if !s.known() {
				return errf(nil, "WithSuites: unknown suite %v", s)
			}
		}
		c.suites = append([]Suite(nil), suites...)
		return nil
	}
}

// WithNetDialer sets, on a dialer, the net.Dialer that makes the TCP
// connection (its Timeout bounds the connect, its KeepAlive applies). The
// default is a zero net.Dialer.
func WithNetDialer(d *net.Dialer) Option {
	return func(c *config) error {
		c.netDialer = d
		return nil
	}
}

// WithLogger sets a logger for handshake outcomes: refused connections at
// Warn with the reason, accepted ones at Debug, accept-loop trouble at
// Error. Nothing secret is ever logged.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		c.logger = l
		return nil
	}
}

// WithHandshakeHook sets a function called once at the end of every
// handshake, accepted or refused. On a listener it runs on the handshake's
// own goroutine before the connection is queued for Accept: keep it quick,
// and do not call the listener's Close from it.
func WithHandshakeHook(fn func(HandshakeEvent)) Option {
	return func(c *config) error {
		c.hook = fn
		return nil
	}
}

// WithWaitForVerdict makes a client's handshake (and so Dial) wait for the
// server's verdict on its proof, so a rejected client learns it from Dial
// rather than from its first Read. The client's proof asks the server to
// answer at once instead of with its first Write. It costs half a round trip
// and gives up sending the proof and the first data in one packet.
func WithWaitForVerdict() Option {
	return func(c *config) error {
		c.waitVerd = true
		return nil
	}
}

// checkRecipeConfig checks what the recipe's wire format can honour: a key
// of any non-empty length, and no sealing (the recipe has no session
// secret to derive record keys from).
func checkRecipeConfig(c *config) error {
	if c.modes&modesSealed != 0 {
		return errf([]error{ErrNegotiation}, "WithRecipe cannot be combined with WithSealed or a sealed mode: the recipe's protocol has no encryption")
	}
	return checkRecipeKey(c.key)
}
