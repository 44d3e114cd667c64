package grpcauth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/hmacauth/auth"
	"github.com/hmacauth/auth/grpcauth"
)

// TestWithOuterTLS layers gRPC's TLS credentials over hmacauth: both
// handshakes must pass, the handler still sees the key ID, the TLS state
// and the PrivacyAndIntegrity level TLS provides.
func TestWithOuterTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	srvCreds, err := grpcauth.WithOuter(serverCreds(t),
		credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}))
	require.NoError(t, err)
	assert.Equal(t, "hmacauth+tls", srvCreds.Info().SecurityProtocol)
	gs := startGRPC(t, srvCreds, nil)

	dial := func(id string, key []byte, withTLS bool) *grpc.ClientConn {
		creds, err := grpcauth.NewClientCredentials(auth.WithKeyID(id), auth.WithKey(key))
		require.NoError(t, err)
		if withTLS {
			creds, err = grpcauth.WithOuter(creds, credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}))
			require.NoError(t, err)
		}
		cc, err := grpc.NewClient("passthrough:///"+gs.addr, grpc.WithTransportCredentials(creds))
		require.NoError(t, err)
		t.Cleanup(func() { cc.Close() })
		return cc
	}

	got, err := check(testCtx(t), dial("alice", keyAlice, true))
	require.NoError(t, err)
	assert.Equal(t, "alice", got)
	info := gs.lastInfo()
	assert.Equal(t, "alice", info.KeyID())
	assert.Equal(t, credentials.PrivacyAndIntegrity, info.SecurityLevel)
	tlsInfo, ok := info.Outer.(credentials.TLSInfo)
	require.True(t, ok, "Outer is %T", info.Outer)
	assert.Equal(t, uint16(tls.VersionTLS13), tlsInfo.State.Version)

	// A wrong hmacauth key is refused before TLS starts.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = check(ctx, dial("alice", keyWrong, true))
	assert.Equal(t, codes.Unavailable, status.Code(err))
	assert.Contains(t, status.Convert(err).Message(), "could not prove it holds the key")

	// The right key without TLS fails the server's TLS handshake.
	_, err = check(ctx, dial("bob", keyBob, false))
	assert.Error(t, err)

	// The server is unharmed.
	got, err = check(testCtx(t), dial("bob", keyBob, true))
	require.NoError(t, err)
	assert.Equal(t, "bob", got)

	_, err = grpcauth.WithOuter(insecureCreds{}, credentials.NewTLS(nil))
	assert.Error(t, err, "only grpcauth credentials can be layered")
	_, err = grpcauth.WithOuter(srvCreds, nil)
	assert.Error(t, err)
}

// selfSigned makes a throwaway certificate for 127.0.0.1 and a pool that
// trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "hmacauth test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv, Leaf: leaf}, pool
}
