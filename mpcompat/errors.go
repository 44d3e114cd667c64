package mpcompat

import (
	"fmt"

	"github.com/hmacauth/auth"
	"github.com/hmacauth/auth/internal/errwrap"
)

// The errors below say why a handshake or a message failed. Each wraps one
// of the auth package's errors, so errors.Is(err, auth.ErrAuthFailed) holds
// whenever either side's challenge failed (a wrong key), and
// errors.Is(err, auth.ErrProtocol) for a peer that breaks the protocol.
var (
	// ErrBadAnswer is seen by the side that delivered a challenge when the
	// peer's answer does not verify under the key: the keys differ.
	ErrBadAnswer error = &sentinel{"mpcompat: the peer's answer to our challenge did not verify (the keys differ)", auth.ErrAuthFailed}

	// ErrAnswerRejected is seen by the side that answered a challenge when
	// the peer replied #FAILURE#: the keys differ, or the peer refused our
	// digest.
	ErrAnswerRejected error = &sentinel{"mpcompat: the peer rejected our answer to its challenge (the keys differ)", auth.ErrAuthFailed}

	// ErrLegacyPeer is seen with Generation Modern when the peer speaks
	// only the Python 3.11 format (a 20-byte challenge or a raw 16-byte
	// answer).
	ErrLegacyPeer error = &sentinel{"mpcompat: the peer speaks the legacy (Python 3.11 and earlier) handshake, which Generation Modern refuses", auth.ErrNegotiation}

	// ErrUnsupportedDigest is seen when a challenge or an answer names no
	// digest, or one outside md5, sha256, sha384, sha3_256 and sha3_384.
	ErrUnsupportedDigest error = &sentinel{"mpcompat: unsupported message length, missing digest prefix, or unsupported digest", auth.ErrNegotiation}

	// ErrNotMultiprocessing is seen when the peer's first message is not a
	// multiprocessing.connection challenge, or a reply is neither
	// #WELCOME# nor #FAILURE#.
	ErrNotMultiprocessing error = &sentinel{"mpcompat: the peer does not speak the multiprocessing.connection handshake", auth.ErrProtocol}

	// ErrMessageTooLarge is returned by RecvBytes for a message longer than
	// Config.MaxMessageSize, and during the handshake for a message longer
	// than 256 bytes. The message is left unread, so the connection can no
	// longer be read.
	ErrMessageTooLarge error = &sentinel{"mpcompat: message larger than the maximum size", auth.ErrProtocol}
)

// sentinel is an error value that wraps one of the auth package's errors.
type sentinel struct {
	msg    string
	parent error
}

func (e *sentinel) Error() string { return e.msg }
func (e *sentinel) Unwrap() error { return e.parent }

// errorf builds an error whose message starts with "mpcompat: " and that
// wraps every error in wrapped.
func errorf(wrapped []error, format string, args ...any) error {
	return &wrapError{errwrap.Multi{Msg: "mpcompat: " + fmt.Sprintf(format, args...), Errs: wrapped}}
}

// wrapError is the type of the errors errorf builds, this package's own so
// that errors.As tells them from the errors of other packages. It is a
// timeout, as net.Error says, when one of the wrapped errors is.
type wrapError struct{ errwrap.Multi }
