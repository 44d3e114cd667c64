package grpcauth

import (
	"time"

	"google.golang.org/grpc/credentials"
)

// SetSetupTimeout shortens, for tests, the bound on gRPC's setup after the
// hmacauth handshake (see setupTimeout).
func SetSetupTimeout(c credentials.TransportCredentials, d time.Duration) {
	c.(*creds).setup = d
}
