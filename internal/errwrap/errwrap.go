// Package errwrap holds the error type that the auth and mpcompat packages
// build their errors on: a message of its own that wraps several errors and
// reports a timeout when any of them is one.
package errwrap

import "errors"

// Multi is an error with its own message that wraps every error in Errs,
// so errors.Is matches each of them. A package embeds it in a type of its
// own, so that errors.As can still tell that package's errors apart.
type Multi struct {
	Msg  string
	Errs []error
}

func (e *Multi) Error() string   { return e.Msg }
func (e *Multi) Unwrap() []error { return e.Errs }

// Timeout reports whether the error is a timeout, so the error satisfies
// the net.Error expectations of callers that test for timeouts.
func (e *Multi) Timeout() bool { return Timeout(e.Errs) }

// Timeout reports whether any of errs is, or wraps, an error whose Timeout
// method reports true.
func Timeout(errs []error) bool {
	for _, err := range errs {
		var t interface{ Timeout() bool }
		if errors.As(err, &t) && t.Timeout() {
			return true
		}
	}
	return false
}
