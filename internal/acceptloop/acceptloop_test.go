package acceptloop

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// temporaryOnly is an error whose only sign of being retryable is its
// deprecated Temporary method.
type temporaryOnly struct{}

func (temporaryOnly) Error() string   { return "temporary" }
func (temporaryOnly) Temporary() bool { return true }

func TestTemporary(t *testing.T) {
	for _, tc := range []struct {
		name         string
		err          error
		plain, withM bool
	}{
		{"timeout", &net.OpError{Op: "accept", Err: os.ErrDeadlineExceeded}, true, true},
		{"EMFILE", &net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.EMFILE)}, true, true},
		{"ECONNABORTED", fmt.Errorf("wrapped: %w", syscall.ECONNABORTED), true, true},
		{"Temporary method", temporaryOnly{}, false, true},
		{"closed", net.ErrClosed, false, false},
		{"other", errors.New("boom"), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.plain, Temporary(tc.err, false))
			assert.Equal(t, tc.withM, Temporary(tc.err, true))
		})
	}
}
