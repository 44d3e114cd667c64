package grpcauth_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/hmacauth/auth"
	"github.com/hmacauth/auth/grpcauth"
)

var (
	keyAlice = bytes.Repeat([]byte{0xA1}, auth.DefaultKeyLen)
	keyBob   = bytes.Repeat([]byte{0xB0}, auth.DefaultKeyLen)
	keyWrong = bytes.Repeat([]byte{0xEE}, auth.DefaultKeyLen)
	keys     = map[string][]byte{"alice": keyAlice, "bob": keyBob}
)

// eventLog collects the server side's handshake events.
type eventLog struct {
	mu     sync.Mutex
	events []auth.HandshakeEvent
}

func (l *eventLog) hook(ev auth.HandshakeEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, ev)
}

// count returns how many events had the reason.
func (l *eventLog) count(r auth.Reason) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, ev := range l.events {
		if ev.Reason() == r {
			n++
		}
	}
	return n
}

// grpcServer is a real grpc.Server with the health service on loopback. An
// interceptor checks that every RPC carries an hmacauth identity, echoes
// the key ID in the x-key-id response header and records the AuthInfo.
type grpcServer struct {
	addr  string
	srv   *grpc.Server
	mu    sync.Mutex
	infos []grpcauth.AuthInfo
}

func (s *grpcServer) lastInfo() grpcauth.AuthInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.infos[len(s.infos)-1]
}

// startGRPC serves on lis (a fresh TCP listener if nil) with creds.
func startGRPC(t *testing.T, creds credentials.TransportCredentials, lis net.Listener) *grpcServer {
	t.Helper()
	if lis == nil {
		var err error
		lis, err = net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
	}
	gs := &grpcServer{addr: lis.Addr().String()}
	interceptor := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		p, ok := peer.FromContext(ctx)
		if !ok {
			return nil, status.Error(codes.Internal, "no peer")
		}
		info, ok := p.AuthInfo.(grpcauth.AuthInfo)
		if !ok {
			return nil, status.Errorf(codes.Unauthenticated, "no hmacauth identity: %T", p.AuthInfo)
		}
		id, _ := grpcauth.KeyIDFromContext(ctx)
		gs.mu.Lock()
		gs.infos = append(gs.infos, info)
		gs.mu.Unlock()
		if err := grpc.SetHeader(ctx, metadata.Pairs("x-key-id", id)); err != nil {
			return nil, err
		}
		return h(ctx, req)
	}
	gs.srv = grpc.NewServer(grpc.Creds(creds), grpc.UnaryInterceptor(interceptor))
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs.srv, hs)
	done := make(chan error, 1)
	go func() { done <- gs.srv.Serve(lis) }()
	t.Cleanup(func() {
		gs.srv.Stop()
		assert.NoError(t, <-done)
	})
	return gs
}

// dialGRPC returns a client connection to addr with client credentials for
// id and key, closed when the test ends.
func dialGRPC(t *testing.T, addr, id string, key []byte) *grpc.ClientConn {
	t.Helper()
	creds, err := grpcauth.NewClientCredentials(auth.WithKeyID(id), auth.WithKey(key))
	require.NoError(t, err)
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds))
	require.NoError(t, err)
	t.Cleanup(func() { cc.Close() })
	return cc
}

// check calls the health service and returns the key ID the server saw.
func check(ctx context.Context, cc *grpc.ClientConn) (string, error) {
	var md metadata.MD
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&md))
	if err != nil {
		return "", err
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return "", errors.New("not serving: " + resp.GetStatus().String())
	}
	ids := md.Get("x-key-id")
	if len(ids) != 1 {
		return "", errors.New("no x-key-id header")
	}
	return ids[0], nil
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func serverCreds(t *testing.T, opts ...auth.Option) credentials.TransportCredentials {
	t.Helper()
	creds, err := grpcauth.NewServerCredentials(append([]auth.Option{auth.WithKeys(keys)}, opts...)...)
	require.NoError(t, err)
	return creds
}

// TestSeveralKeyIDs calls the health service as alice and as bob: every
// RPC succeeds and the handler sees the caller's key ID with an honest
// security level.
func TestSeveralKeyIDs(t *testing.T) {
	events := &eventLog{}
	gs := startGRPC(t, serverCreds(t, auth.WithHandshakeHook(events.hook)), nil)
	ctx := testCtx(t)
	for _, id := range []string{"alice", "bob"} {
		cc := dialGRPC(t, gs.addr, id, keys[id])
		for i := range 5 {
			got, err := check(ctx, cc)
			require.NoError(t, err, "%s, RPC %d", id, i)
			assert.Equal(t, id, got)
		}
		info := gs.lastInfo()
		assert.Equal(t, id, info.KeyID())
		assert.Equal(t, "hmacauth", info.AuthType())
		assert.Equal(t, credentials.NoSecurity, info.SecurityLevel, "auth-only must not claim privacy")
		assert.Equal(t, auth.ModeAuthOnly, info.State.Mode)
		assert.True(t, info.State.HandshakeComplete)
		assert.False(t, info.State.IsClient)
	}
	assert.Equal(t, 2, events.count(auth.ReasonNone), "one handshake per client connection, reused for every RPC")
	assert.Zero(t, len(events.events)-2)
}

// TestWrongKey checks that a client with a wrong key or an unknown key ID
// fails its RPC with an error that says the handshake failed and why.
func TestWrongKey(t *testing.T) {
	events := &eventLog{}
	gs := startGRPC(t, serverCreds(t, auth.WithHandshakeHook(events.hook)), nil)
	for _, tt := range []struct {
		id   string
		key  []byte
		want string
	}{
		{"alice", keyWrong, `could not prove it holds the key for key ID \"alice\"`}, // grpc quotes the message
		{"mallory", keyAlice, `key ID \"mallory\"`},
	} {
		t.Run(tt.id, func(t *testing.T) {
			cc := dialGRPC(t, gs.addr, tt.id, tt.key)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := check(ctx, cc)
			require.Error(t, err)
			st, _ := status.FromError(err)
			assert.Equal(t, codes.Unavailable, st.Code(), "%v", err)
			assert.Contains(t, st.Message(), "authentication handshake failed")
			assert.Contains(t, st.Message(), tt.want)
		})
	}
	require.Eventually(t, func() bool { return events.count(auth.ReasonAuthFailed) >= 2 }, 5*time.Second, 5*time.Millisecond)
	assert.Zero(t, events.count(auth.ReasonNone))
}

// TestServerKeepsServing sends bad clients of every kind, then checks that
// a good client is still served.
func TestServerKeepsServing(t *testing.T) {
	events := &eventLog{}
	gs := startGRPC(t, serverCreds(t, auth.WithHandshakeHook(events.hook), auth.WithHandshakeTimeout(time.Second)), nil)

	// A plain HTTP/2 client (gRPC without credentials).
	insecureCC, err := grpc.NewClient("passthrough:///"+gs.addr, grpc.WithTransportCredentials(insecureCreds{}))
	require.NoError(t, err)
	defer insecureCC.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, err = check(ctx, insecureCC)
	cancel()
	assert.Error(t, err)

	// Garbage, and a client that says nothing at all.
	for _, send := range [][]byte{[]byte("\x16\x03\x01 not a TLS hello either"), nil} {
		c, err := net.Dial("tcp", gs.addr)
		require.NoError(t, err)
		if send != nil {
			_, err = c.Write(send)
			require.NoError(t, err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = io.Copy(io.Discard, c)
		assert.NoError(t, err, "the server closes the connection")
		c.Close()
	}
	// A wrong key.
	_, err = check(testCtx(t), dialGRPC(t, gs.addr, "bob", keyWrong))
	assert.Error(t, err)

	require.Eventually(t, func() bool {
		return events.count(auth.ReasonProtocol) >= 2 && events.count(auth.ReasonTimeout) == 1 && events.count(auth.ReasonAuthFailed) >= 1
	}, 5*time.Second, 5*time.Millisecond)

	got, err := check(testCtx(t), dialGRPC(t, gs.addr, "alice", keyAlice))
	require.NoError(t, err)
	assert.Equal(t, "alice", got)
}

// insecureCreds is a minimal pass-through credential standing in for a
// client that does not speak hmacauth (grpc/credentials/insecure would do
// too).
type insecureCreds struct{}

func (insecureCreds) ClientHandshake(_ context.Context, _ string, c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return c, plainInfo{}, nil
}
func (insecureCreds) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return c, plainInfo{}, nil
}
func (insecureCreds) Info() credentials.ProtocolInfo            { return credentials.ProtocolInfo{} }
func (c insecureCreds) Clone() credentials.TransportCredentials { return c }
func (insecureCreds) OverrideServerName(string) error           { return nil }
func (plainInfo) AuthType() string                              { return "plain" }

type plainInfo struct{ credentials.CommonAuthInfo }

// TestServeAuthListener serves gRPC on an auth.AuthListener: connections
// arrive authenticated, the credentials pass them through and describe
// them, and the listener's counters see every client.
func TestServeAuthListener(t *testing.T) {
	ln, err := auth.Listen("tcp", "127.0.0.1:0", auth.WithKeys(keys))
	require.NoError(t, err)
	gs := startGRPC(t, serverCreds(t), ln)

	got, err := check(testCtx(t), dialGRPC(t, gs.addr, "bob", keyBob))
	require.NoError(t, err)
	assert.Equal(t, "bob", got)
	_, err = check(testCtx(t), dialGRPC(t, gs.addr, "bob", keyWrong))
	assert.Error(t, err)

	require.Eventually(t, func() bool {
		s := ln.Stats()
		return s.Accepted == 1 && s.RefusedAuthFailed >= 1
	}, 5*time.Second, 5*time.Millisecond, "%+v", ln.Stats())
}

// TestClientHandshakeHonoursContext runs ClientHandshake against a server
// that accepts and never answers: the handshake returns when the context
// ends, with the context's error, and closes the raw connection.
func TestClientHandshakeHonoursContext(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer lis.Close()
	creds, err := grpcauth.NewClientCredentials(auth.WithKey(keyAlice), auth.WithHandshakeTimeout(time.Minute))
	require.NoError(t, err)

	for _, tt := range []struct {
		name    string
		timeout time.Duration
		want    error
	}{
		{"deadline", 100 * time.Millisecond, context.DeadlineExceeded},
		{"already cancelled", 0, context.Canceled},
	} {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := net.Dial("tcp", lis.Addr().String())
			require.NoError(t, err)
			srvSide, err := lis.Accept()
			require.NoError(t, err)
			defer srvSide.Close()

			var ctx context.Context
			var cancel context.CancelFunc
			if tt.timeout > 0 {
				ctx, cancel = context.WithTimeout(context.Background(), tt.timeout)
			} else {
				ctx, cancel = context.WithCancel(context.Background())
				cancel()
			}
			defer cancel()
			start := time.Now()
			conn, info, err := creds.ClientHandshake(ctx, "ignored", raw)
			took := time.Since(start)
			require.ErrorIs(t, err, tt.want)
			assert.Nil(t, conn)
			assert.Nil(t, info)
			assert.Less(t, took, 5*time.Second, "the handshake stopped with the context")
			assert.True(t, strings.HasPrefix(err.Error(), "auth: "), err.Error())

			// The raw connection is closed: writing to it fails, and the
			// server side reads EOF after whatever was sent.
			_, werr := raw.Write([]byte("x"))
			assert.ErrorIs(t, werr, net.ErrClosed)
			srvSide.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, rerr := io.Copy(io.Discard, srvSide)
			assert.NoError(t, rerr)
		})
	}
}

// TestCredentialsAPI checks Info, Clone, configuration errors and
// credentials used on the wrong side.
func TestCredentialsAPI(t *testing.T) {
	_, err := grpcauth.NewServerCredentials()
	assert.ErrorIs(t, err, auth.ErrKeyTooShort)
	_, err = grpcauth.NewClientCredentials(auth.WithKeyID("alice"))
	assert.ErrorIs(t, err, auth.ErrKeyTooShort)

	srv := serverCreds(t)
	cli, err := grpcauth.NewClientCredentials(auth.WithKey(keyAlice))
	require.NoError(t, err)
	assert.Equal(t, "hmacauth", srv.Info().SecurityProtocol)
	assert.Equal(t, "hmacauth", cli.Info().SecurityProtocol)

	clone := cli.Clone()
	require.NoError(t, clone.OverrideServerName("elsewhere")) //nolint:staticcheck // part of the interface
	assert.Equal(t, "elsewhere", clone.Info().ServerName)
	assert.Empty(t, cli.Info().ServerName, "a clone is independent")

	for _, tt := range []struct {
		name string
		run  func(net.Conn) error
	}{
		{"client handshake on server creds", func(c net.Conn) error {
			_, _, err := srv.ClientHandshake(context.Background(), "", c)
			return err
		}},
		{"server handshake on client creds", func(c net.Conn) error {
			_, _, err := cli.ServerHandshake(c)
			return err
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, b := net.Pipe()
			defer b.Close()
			err := tt.run(a)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "wrong side")
			_, werr := a.Write([]byte("x"))
			assert.ErrorIs(t, werr, io.ErrClosedPipe, "the raw connection is closed")
		})
	}
}
