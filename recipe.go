package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"hash"
	"io"
)

// RecipeNonceLen is the length of the challenge a recipe server sends: the
// 32 bytes of os.urandom(32) in the Python Cookbook recipe.
const RecipeNonceLen = 32

// ModeRecipe is what ConnectionState.Mode and HandshakeEvent.Mode report
// for a connection configured WithRecipe. It is never sent on the wire:
// modes negotiated by protocol v1 are single bits, so it cannot be mistaken
// for one. Such a connection also reports Version 0 (the recipe has no
// version), Suite 0 and an empty KeyID.
const ModeRecipe Mode = 0xFF

// WithRecipe makes a listener, dialer, Client or Server speak the wire
// protocol of the Python Cookbook recipe "Simple client authentication"
// (recipe 11.9) instead of hmacauth, so Go can sit on either side of
// existing Python processes. newHash is the recipe's HMAC digest; nil means
// SHA-256. Pass md5.New or sha1.New only to talk to deployments that
// already use them. The recipe as printed calls hmac.new(key, msg) with no
// digest, which meant MD5 and fails on Python 3.8 and later; every working
// deployment names one.
//
// WEAK, ONE-WAY, UNFRAMED: use it only to interoperate, never for new
// systems. The protocol is exactly this: the server sends 32 random bytes
// with no framing, the client answers with the raw HMAC of those bytes under
// the key, and the server compares in constant time and either closes the
// connection or carries on. Nothing else is sent. It follows that:
//
//   - The server is not authenticated: a client talks to whoever answers,
//     and an impostor server can harvest HMACs of nonces of its choosing.
//   - There is no verdict: a client learns that it was refused only when
//     the server closes the connection (its first Read returns io.EOF).
//   - Replay protection rests on the server's nonce alone, and nothing
//     binds the bytes that follow to the handshake: anyone on the path can
//     read them or take over the connection afterwards.
//   - There are no key IDs: a server needs WithKey, not WithKeys or
//     WithKeyLookup.
//   - Keys shorter than MinKeyLen are accepted, because existing
//     deployments use them (the recipe's own example key is b'peekaboo').
//     A short or guessable key falls to an offline dictionary attack from
//     a single recorded handshake, since the nonce and the HMAC both cross
//     the network in the clear. Use a random key of at least 16 bytes
//     wherever the Python side allows it.
//
// On a server, a wrong answer is an error wrapping ErrBadClientProof (and
// so ErrAuthFailed); a peer that closes or stalls mid-handshake is an error
// wrapping ErrProtocol or a timeout. Listener semantics are those of the
// modern protocol: concurrent handshakes, the handshake timeout, the hook
// and the logger, and no unauthenticated connection out of Accept.
func WithRecipe(newHash func() hash.Hash) Option {
	return func(c *config) error {
		if newHash == nil {
			newHash = sha256.New
		}
		if newHash().Size() == 0 {
			return errf(nil, "WithRecipe: the hash function has a zero-length digest")
		}
		c.recipe = newHash
		return nil
	}
}

// checkRecipeKey is checkKey for the recipe: any non-empty key will do.
func checkRecipeKey(key []byte) error {
	if len(key) == 0 {
		return errf([]error{ErrKeyTooShort}, "no key given: WithRecipe needs auth.WithKey with the key the Python side uses")
	}
	return nil
}

// recipeClientHandshake answers the recipe's challenge: it reads the
// server's 32 bytes and writes back their raw HMAC. It cannot learn whether
// the server accepted the answer.
func (c *Conn) recipeClientHandshake() error {
	c.state = ConnectionState{IsClient: true, Mode: ModeRecipe}
	var nonce [RecipeNonceLen]byte
	if n, err := io.ReadFull(c.conn, nonce[:]); err != nil {
		return recipeReadErr(c, err, n, "the server's challenge")
	}
	mac := hmac.New(c.cfg.recipe, c.cfg.key)
	mac.Write(nonce[:])
	_, err := c.conn.Write(mac.Sum(nil))
	return err
}

// recipeServerHandshake sends the recipe's challenge and checks the answer
// in constant time.
func (c *Conn) recipeServerHandshake() error {
	c.state = ConnectionState{Mode: ModeRecipe}
	var nonce [RecipeNonceLen]byte
	rand.Read(nonce[:])
	if _, err := c.conn.Write(nonce[:]); err != nil {
		return err
	}
	mac := hmac.New(c.cfg.recipe, c.cfg.key)
	mac.Write(nonce[:])
	want := mac.Sum(nil)
	got := make([]byte, len(want))
	if n, err := io.ReadFull(c.conn, got); err != nil {
		return recipeReadErr(c, err, n, "its answer")
	}
	if !hmac.Equal(got, want) {
		return errf([]error{ErrBadClientProof}, "recipe client %s answered the challenge with a wrong HMAC: the keys or the digests differ", c.conn.RemoteAddr())
	}
	return nil
}

// recipeReadErr explains a short read during the recipe's handshake.
func recipeReadErr(c *Conn, err error, n int, what string) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errf([]error{ErrProtocol, io.ErrUnexpectedEOF}, "%s closed the connection after %d bytes of %s (does it speak the recipe with the same digest?)", c.conn.RemoteAddr(), n, what)
	}
	return &shortRead{err: err, got: n}
}
