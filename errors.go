package auth

import (
	"errors"
	"fmt"

	"github.com/hmacauth/auth/internal/errwrap"
)

// The errors below are the stable vocabulary of failures. Every error this
// package returns starts with "auth: " and wraps one or more of them, so
// callers can test with errors.Is. Timeouts additionally match
// os.ErrDeadlineExceeded, and a cancelled or expired context matches the
// context's error.
var (
	// ErrAuthFailed reports that a peer did not prove knowledge of the key:
	// a wrong key, an unknown key ID or an impostor, on either side.
	ErrAuthFailed = errors.New("auth: authentication failed")

	// ErrKeyTooShort reports a key shorter than MinKeyLen bytes, or no key
	// at all. Make a good key with GenerateKey.
	ErrKeyTooShort = errors.New("auth: key too short")

	// ErrProtocol reports a peer that does not speak this protocol or breaks
	// it: wrong magic, malformed or oversized fields, an unexpected close.
	ErrProtocol = errors.New("auth: protocol error")

	// ErrNegotiation reports two correctly configured peers that share no
	// protocol version, suite or mode, for example a client that requires the
	// sealed mode talking to a server that does not offer it.
	ErrNegotiation = errors.New("auth: negotiation failed")
)

// Specific failures. Each wraps one of the errors above.
var (
	// ErrBadServerProof is seen by a client whose server could not prove it
	// holds the client's key: the keys differ, the server does not know the
	// client's key ID, or the server is an impostor.
	ErrBadServerProof = fmt.Errorf("%w: the server's proof did not verify (the keys differ, the server does not know this key ID, or it is an impostor)", ErrAuthFailed)

	// ErrRejected is seen by a client whose server refused its proof.
	ErrRejected = fmt.Errorf("%w: the server rejected this client's proof (wrong key or key ID)", ErrAuthFailed)

	// ErrBadClientProof is seen by a server whose client sent a proof that
	// does not verify under the key for its key ID.
	ErrBadClientProof = fmt.Errorf("%w: the client's proof did not verify (wrong key)", ErrAuthFailed)

	// ErrClientRefusedServer is seen by a server whose client found the
	// server's proof wrong and said so: the two sides hold different keys.
	ErrClientRefusedServer = fmt.Errorf("%w: the client rejected the server's proof (the two sides hold different keys for this key ID)", ErrAuthFailed)

	// ErrUnknownKeyID is seen by a server whose client presented a key ID it
	// has no key for. The client only learns that authentication failed.
	ErrUnknownKeyID = fmt.Errorf("%w: unknown key ID", ErrAuthFailed)

	// ErrNotProtocol is seen by a server whose client sent bytes that are
	// not an hmacauth hello (a TLS ClientHello, an HTTP request, garbage), or
	// by a client whose server answered with such bytes.
	ErrNotProtocol = fmt.Errorf("%w: the peer does not speak hmacauth", ErrProtocol)
)

// errf builds an error whose message starts with "auth: " and that wraps
// every error in wrapped, so errors.Is matches each of them.
func errf(wrapped []error, format string, args ...any) error {
	return &wrapError{msg: "auth: " + fmt.Sprintf(format, args...), errs: wrapped}
}

type wrapError struct {
	msg  string
	errs []error
}

func (e *wrapError) Error() string   { return e.msg }
func (e *wrapError) Unwrap() []error { return e.errs }

// Timeout reports whether the error is a timeout, so the error satisfies the
// net.Error expectations of callers that test for timeouts.
func (e *wrapError) Timeout() bool { return errwrap.Timeout(e.errs) }
