package auth

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// listener, dialer and connection must clean up after itself on Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
