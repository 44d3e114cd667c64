// Package auth authenticates TCP connections with a shared key, in the
// manner of the Python Cookbook's HMAC challenge-response recipe but
// mutual, replay-proof and bound to the whole handshake transcript.
//
// A server wraps its listener and serves as before; only connections that
// proved they hold the key come out of Accept:
//
//	ln, err := auth.Listen("tcp", "127.0.0.1:8080", auth.WithKey(key))
//	...
//	http.Serve(ln, handler)
//
// A client dials through a Dialer, or plugs one into anything that takes a
// dial function:
//
//	d, err := auth.NewDialer(auth.WithKey(key))
//	...
//	client := &http.Client{Transport: httpauth.NewTransport(d)}
//
// (package httpauth also tells handlers which key ID called; package
// grpcauth, a nested module, does the same for gRPC; package mpcompat
// speaks Python's multiprocessing.connection).
// The handshake costs one round trip, and the client may send data right
// behind its proof. Both sides prove knowledge of the key with HMACs over a
// hash of the transcript, with fresh nonces from both sides and a distinct
// label per direction, so proofs cannot be replayed, reflected or spliced
// between sessions. A server can hold several keys under key IDs
// (WithKeys, WithKeyLookup) so keys can be rotated without downtime.
//
// In the auth-only mode the bytes after the handshake are neither encrypted
// nor integrity-protected: an attacker on the path can read them, and can
// take over the connection after the handshake. Use it where the network is
// trusted not to be actively hostile, or put TLS outside it.
//
// WithSealed, given to both sides, turns on the sealed mode instead: after
// the same handshake every byte travels in records encrypted and
// authenticated with AES-256-GCM (or ChaCha20-Poly1305, see WithModes) under
// per-direction keys derived from the session, and an altered, reordered,
// replayed, dropped or truncated stream ends the connection with an error
// wrapping ErrProtocol. PROTOCOL.md describes the wire format and the
// security argument.
package auth
