package grpcauth

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// gRPC server, client connection and listener must be shut down.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
