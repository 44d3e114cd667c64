package auth_test

import (
	"context"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hmacauth/auth"
)

// TestHandshakeContextDeadlineIsContextError dials a server that accepts
// and never answers, with a context deadline sooner than the handshake
// timeout. The connection's deadline (set to the context's) and the
// context's own timer fire at nearly the same moment; whichever wins, the
// error must match context.DeadlineExceeded as documented, and
// os.ErrDeadlineExceeded too.
func TestHandshakeContextDeadlineIsContextError(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer lis.Close()
	accepted := make(chan net.Conn, 20)
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	defer func() {
		lis.Close()
		for c := range accepted {
			c.Close()
		}
	}()
	d, err := auth.NewDialer(auth.WithKey(make([]byte, auth.MinKeyLen)), auth.WithHandshakeTimeout(time.Minute))
	require.NoError(t, err)
	for i := range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_, err := d.DialContext(ctx, "tcp", lis.Addr().String())
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded, "attempt %d: %v", i, err)
		require.ErrorIs(t, err, os.ErrDeadlineExceeded, "attempt %d", i)
	}
}
