package auth

import (
	"crypto/hmac"
	"hash"
	"sync"
)

// keyMACs hands out HMAC states keyed with one key. For the keys a
// configuration holds from the start (WithKey, WithKeys) the states are
// pooled per suite: a handshake then reuses the key's precomputed inner and
// outer pads, reset to their keyed starting point, instead of allocating
// two hashes and hashing the padded key again. Keys found at handshake time
// (WithKeyLookup, the throwaway key of an unknown key ID) get fresh states.
type keyMACs struct {
	key    []byte
	pooled bool
	pools  [SuiteHMACSHA512 + 1]sync.Pool // indexed by Suite
}

// get returns an HMAC state keyed with k.key for suite s, reset.
func (k *keyMACs) get(s Suite) hash.Hash {
	if k.pooled {
		if h, ok := k.pools[s].Get().(hash.Hash); ok {
			return h
		}
	}
	return hmac.New(s.newHash(), k.key)
}

// put returns a state from get. It is reset here, so no handshake's data
// outlives it.
func (k *keyMACs) put(s Suite, h hash.Hash) {
	if k.pooled {
		h.Reset()
		k.pools[s].Put(h)
	}
}

// initMACs builds the pooled HMAC states for the configuration's static
// keys. It runs once, when the configuration is built.
func (c *config) initMACs() {
	if c.key != nil {
		c.keyMACs = &keyMACs{key: c.key, pooled: true}
	}
	if len(c.keys) > 0 {
		c.staticMACs = make(map[string]*keyMACs, len(c.keys))
		for id, k := range c.keys {
			c.staticMACs[id] = &keyMACs{key: k, pooled: true}
		}
	}
}

// serverMACs returns the HMAC states of the key for id and whether the
// server knows it: WithKeys first, then WithKey for the empty ID, then
// WithKeyLookup.
func (c *config) serverMACs(id string) (*keyMACs, bool) {
	if m, ok := c.staticMACs[id]; ok {
		return m, true
	}
	if id == "" && c.keyMACs != nil {
		return c.keyMACs, true
	}
	if key, ok := c.lookupKey(id); ok {
		return &keyMACs{key: key}, true
	}
	return nil, false
}

// The proof labels as byte slices: converting a string constant to bytes
// for a hash.Hash's Write allocates every time, as the bytes escape through
// the interface. Nothing may modify them.
var (
	serverProofLabel = []byte(labelServerProof)
	clientProofLabel = []byte(labelClientProof)
)

// transcripts pools the transcript hashes, per suite.
var transcripts [SuiteHMACSHA512 + 1]sync.Pool

func getTranscript(s Suite) hash.Hash {
	if h, ok := transcripts[s].Get().(hash.Hash); ok {
		return h
	}
	return s.newHash()()
}

func putTranscript(s Suite, h hash.Hash) {
	h.Reset()
	transcripts[s].Put(h)
}
