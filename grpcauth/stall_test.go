package grpcauth_test

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hmacauth/auth"
	"github.com/hmacauth/auth/grpcauth"
)

// TestStallAfterHandshake authenticates and then never sends gRPC's HTTP/2
// preface. The server must still drop the connection in bounded time, as
// gRPC's ConnectionTimeout does for other credentials: the hmacauth
// handshake clears the deadline gRPC set on the raw connection, so the
// credentials set one of their own.
func TestStallAfterHandshake(t *testing.T) {
	creds := serverCreds(t)
	grpcauth.SetSetupTimeout(creds, 300*time.Millisecond)
	gs := startGRPC(t, creds, nil)

	c, err := auth.Dial("tcp", gs.addr, auth.WithKeyID("alice"), auth.WithKey(keyAlice), auth.WithWaitForVerdict())
	require.NoError(t, err)
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	_, err = io.Copy(io.Discard, c) // the server's SETTINGS, then EOF when it gives up
	took := time.Since(start)
	assert.NoError(t, err, "the server closed the stalled connection (after %v)", took)
	assert.Less(t, took, 4*time.Second)

	// A client that never completes the hmacauth handshake is bounded by
	// the handshake timeout, and the server keeps serving.
	raw, err := net.Dial("tcp", gs.addr)
	require.NoError(t, err)
	raw.Close()
	got, err := check(testCtx(t), dialGRPC(t, gs.addr, "bob", keyBob))
	require.NoError(t, err)
	assert.Equal(t, "bob", got)
}
