// Package grpcauth provides gRPC transport credentials that authenticate
// every connection with the hmacauth handshake, and tells handlers which key
// ID the caller proved.
//
// Server:
//
//	creds, err := grpcauth.NewServerCredentials(auth.WithKeys(keys))
//	srv := grpc.NewServer(grpc.Creds(creds))
//	srv.Serve(lis) // a plain net.Listener
//
// Client:
//
//	creds, err := grpcauth.NewClientCredentials(auth.WithKeyID("alice"), auth.WithKey(key))
//	cc, err := grpc.NewClient(target, grpc.WithTransportCredentials(creds))
//
// Handler:
//
//	p, _ := peer.FromContext(ctx)
//	info, ok := p.AuthInfo.(grpcauth.AuthInfo) // info.State.KeyID names the caller
//
// or simply grpcauth.KeyIDFromContext(ctx).
//
// The security level reported to gRPC is honest: the auth-only mode
// authenticates the peer but neither encrypts nor protects the bytes that
// follow, so it is credentials.NoSecurity, and per-RPC credentials that
// require transport security (OAuth tokens and the like) will refuse to
// travel over it. Only a mode that seals the stream is reported as
// credentials.PrivacyAndIntegrity.
//
// This package is a separate module so that users of package auth do not
// download gRPC.
package grpcauth

import (
	"context"
	"errors"
	"fmt"
	"net"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/hmacauth/auth"
)

// SecurityProtocol is the name these credentials give gRPC in
// credentials.ProtocolInfo and AuthInfo.AuthType.
const SecurityProtocol = "hmacauth"

// AuthInfo is the credentials.AuthInfo of a connection authenticated by
// hmacauth. A handler finds it in peer.FromContext(ctx).AuthInfo.
type AuthInfo struct {
	credentials.CommonAuthInfo
	// State is what the handshake established; State.KeyID is the key ID
	// the client proved.
	State auth.ConnectionState
}

// AuthType returns SecurityProtocol.
func (AuthInfo) AuthType() string { return SecurityProtocol }

// KeyID returns the key ID the client proved.
func (a AuthInfo) KeyID() string { return a.State.KeyID }

// FromContext returns the hmacauth AuthInfo of the connection an RPC came
// in on, from peer.FromContext. It reports false if the RPC did not come in
// on a connection authenticated by these credentials.
func FromContext(ctx context.Context) (AuthInfo, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return AuthInfo{}, false
	}
	info, ok := p.AuthInfo.(AuthInfo)
	return info, ok
}

// KeyIDFromContext returns the key ID the caller of an RPC proved, or
// false if the RPC did not come in on an hmacauth connection.
func KeyIDFromContext(ctx context.Context) (string, bool) {
	info, ok := FromContext(ctx)
	return info.State.KeyID, ok
}

// securityLevel is the level gRPC is told for a negotiated mode. Only a
// mode listed here as sealing the stream may claim privacy: a mode this
// table does not know claims nothing. Add each new sealed mode here.
func securityLevel(m auth.Mode) credentials.SecurityLevel {
	switch m {
	case auth.ModeAuthOnly:
		// Authenticated, but the bytes after the handshake are in the
		// clear and unprotected.
		return credentials.NoSecurity
	}
	return credentials.NoSecurity
}

// newAuthInfo describes an authenticated connection.
func newAuthInfo(c *auth.Conn) AuthInfo {
	st := c.ConnectionState()
	return AuthInfo{
		CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: securityLevel(st.Mode)},
		State:          st,
	}
}

// errWrongSide is returned when credentials made for one side are used
// for the other.
var errWrongSide = errors.New("auth: grpcauth credentials used on the wrong side")

// creds implements credentials.TransportCredentials.
type creds struct {
	opts     []auth.Option
	isClient bool
	info     credentials.ProtocolInfo
}

// NewServerCredentials returns transport credentials for a grpc.Server
// (grpc.Creds) that run the hmacauth handshake as the accepting side on
// every connection, with the options of auth.Server: a key (auth.WithKey,
// auth.WithKeys or auth.WithKeyLookup), and optionally a handshake timeout,
// hook and logger. A connection that fails the handshake is closed, and the
// server keeps serving others.
//
// If the grpc.Server serves an auth.AuthListener, connections arrive
// already authenticated: the credentials then only describe them, and the
// listener's Stats count them.
func NewServerCredentials(opts ...auth.Option) (credentials.TransportCredentials, error) {
	// auth.Server checks the options and does not touch the connection.
	if _, err := auth.Server(nil, opts...); err != nil {
		return nil, err
	}
	return &creds{opts: opts, info: credentials.ProtocolInfo{SecurityProtocol: SecurityProtocol}}, nil
}

// NewClientCredentials returns transport credentials for a gRPC client
// (grpc.WithTransportCredentials) that run the hmacauth handshake as the
// dialing side, with the options of auth.Client: auth.WithKey and
// auth.WithKeyID, and optionally auth.WithWaitForVerdict and the like.
func NewClientCredentials(opts ...auth.Option) (credentials.TransportCredentials, error) {
	if _, err := auth.Client(nil, opts...); err != nil {
		return nil, err
	}
	return &creds{opts: opts, isClient: true, info: credentials.ProtocolInfo{SecurityProtocol: SecurityProtocol}}, nil
}

// ClientHandshake runs the hmacauth handshake on rawConn as the dialing
// side. The context bounds the handshake and cancels it; on failure rawConn
// is closed and the error says why (errors.Is matches auth's errors).
func (c *creds) ClientHandshake(ctx context.Context, _ string, rawConn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	if !c.isClient {
		rawConn.Close()
		return nil, nil, fmt.Errorf("%w: ClientHandshake on server credentials; make the client's with NewClientCredentials", errWrongSide)
	}
	conn, err := auth.Client(rawConn, c.opts...)
	if err != nil {
		rawConn.Close()
		return nil, nil, err
	}
	if err := conn.HandshakeContext(ctx); err != nil {
		rawConn.Close() // already closed by the failed handshake; made explicit
		return nil, nil, err
	}
	return conn, newAuthInfo(conn), nil
}

// ServerHandshake runs the hmacauth handshake on rawConn as the accepting
// side, bounded by the handshake timeout (and by the deadline gRPC sets on
// rawConn). A connection already authenticated by an auth.AuthListener is
// passed through. On failure rawConn is closed.
func (c *creds) ServerHandshake(rawConn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	if c.isClient {
		rawConn.Close()
		return nil, nil, fmt.Errorf("%w: ServerHandshake on client credentials; make the server's with NewServerCredentials", errWrongSide)
	}
	if ac, ok := rawConn.(*auth.Conn); ok && !ac.ConnectionState().IsClient {
		// From an auth.AuthListener: authenticated already.
		if err := ac.Handshake(); err != nil {
			return nil, nil, err
		}
		return ac, newAuthInfo(ac), nil
	}
	conn, err := auth.Server(rawConn, c.opts...)
	if err != nil {
		rawConn.Close()
		return nil, nil, err
	}
	if err := conn.Handshake(); err != nil {
		rawConn.Close()
		return nil, nil, err
	}
	return conn, newAuthInfo(conn), nil
}

// Info returns the protocol name, SecurityProtocol.
func (c *creds) Info() credentials.ProtocolInfo { return c.info }

// Clone returns a copy of the credentials.
func (c *creds) Clone() credentials.TransportCredentials {
	cp := *c
	cp.opts = append([]auth.Option(nil), c.opts...)
	return &cp
}

// OverrideServerName sets the server name reported by Info. hmacauth does
// not use server names.
//
// Deprecated: gRPC deprecated this method; use grpc.WithAuthority instead.
func (c *creds) OverrideServerName(name string) error {
	c.info.ServerName = name
	return nil
}
