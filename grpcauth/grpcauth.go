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
// credentials.PrivacyAndIntegrity. To protect the bytes today, layer TLS
// over hmacauth with WithOuter(hmacCreds, credentials.NewTLS(cfg)): the
// level is then TLS's, and the key ID is still reported.
//
// This package is a separate module so that users of package auth do not
// download gRPC.
package grpcauth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

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
	// Outer is the AuthInfo of the credentials layered over hmacauth with
	// WithOuter (credentials.TLSInfo for credentials.NewTLS), or nil.
	Outer credentials.AuthInfo
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
	case auth.ModeSealedAES256GCM, auth.ModeSealedChaCha20Poly1305:
		// Every byte after the handshake travels in AEAD records.
		return credentials.PrivacyAndIntegrity
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
	outer    credentials.TransportCredentials // run over the hmacauth conn, if set
	setup    time.Duration                    // server: bound on gRPC's setup after the handshake
}

// setupTimeout bounds, on a server, what gRPC does on a connection between
// the end of the hmacauth handshake and the end of its own HTTP/2 setup.
// gRPC bounds both with its ConnectionTimeout, set as a deadline on the raw
// connection before ServerHandshake; the hmacauth handshake cannot read that
// deadline and restores the connection's deadlines to none when it ends, so
// without this an authenticated client that stalls before its HTTP/2
// preface would hold a server goroutine forever. gRPC clears the deadline
// once its setup is done.
const setupTimeout = auth.DefaultHandshakeTimeout

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
	return &creds{opts: opts, info: credentials.ProtocolInfo{SecurityProtocol: SecurityProtocol}, setup: setupTimeout}, nil
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
func (c *creds) ClientHandshake(ctx context.Context, authority string, rawConn net.Conn) (net.Conn, credentials.AuthInfo, error) {
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
	if c.outer == nil {
		return conn, newAuthInfo(conn), nil
	}
	oc, oinfo, err := c.outer.ClientHandshake(ctx, authority, conn)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return oc, c.layered(conn, oinfo), nil
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
	conn, ok := rawConn.(*auth.Conn)
	if !ok || conn.ConnectionState().IsClient {
		var err error
		if conn, err = auth.Server(rawConn, c.opts...); err != nil {
			rawConn.Close()
			return nil, nil, err
		}
		if err := conn.Handshake(); err != nil {
			rawConn.Close()
			return nil, nil, err
		}
		conn.SetDeadline(time.Now().Add(c.setup)) // see setupTimeout
	} else if err := conn.Handshake(); err != nil {
		// From an auth.AuthListener: authenticated already, and gRPC's
		// deadline was set on conn itself.
		rawConn.Close()
		return nil, nil, err
	}
	if c.outer == nil {
		return conn, newAuthInfo(conn), nil
	}
	oc, oinfo, err := c.outer.ServerHandshake(conn)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return oc, c.layered(conn, oinfo), nil
}

// WithOuter returns credentials that run outer (typically
// credentials.NewTLS) over the connection hmacauth authenticated: TLS stays
// outside, as with tls.NewListener over an auth.AuthListener. Both
// handshakes must pass. The AuthInfo is still an AuthInfo, carrying the key
// ID, outer's AuthInfo in Outer (credentials.TLSInfo for TLS), and the
// higher of the two security levels, so per-RPC credentials that require
// privacy work over TLS. hm must come from NewServerCredentials or
// NewClientCredentials, and outer must be made for the same side.
func WithOuter(hm, outer credentials.TransportCredentials) (credentials.TransportCredentials, error) {
	c, ok := hm.(*creds)
	if !ok {
		return nil, fmt.Errorf("auth: grpcauth.WithOuter: %T is not from NewServerCredentials or NewClientCredentials", hm)
	}
	if outer == nil {
		return nil, errors.New("auth: grpcauth.WithOuter: outer credentials are nil")
	}
	cp := c.Clone().(*creds)
	cp.outer = outer.Clone()
	return cp, nil
}

// layered describes a connection with outer credentials over hmacauth.
func (c *creds) layered(conn *auth.Conn, oinfo credentials.AuthInfo) AuthInfo {
	info := newAuthInfo(conn)
	info.Outer = oinfo
	if ci, ok := oinfo.(interface {
		GetCommonAuthInfo() credentials.CommonAuthInfo
	}); ok {
		info.SecurityLevel = max(info.SecurityLevel, ci.GetCommonAuthInfo().SecurityLevel)
	}
	return info
}

// Info returns the protocol name, SecurityProtocol, or with WithOuter the
// outer credentials' information with the protocol named "hmacauth+"
// followed by outer's (for example "hmacauth+tls").
func (c *creds) Info() credentials.ProtocolInfo {
	if c.outer == nil {
		return c.info
	}
	info := c.outer.Info()
	info.SecurityProtocol = SecurityProtocol + "+" + info.SecurityProtocol
	return info
}

// Clone returns a copy of the credentials.
func (c *creds) Clone() credentials.TransportCredentials {
	cp := *c
	cp.opts = append([]auth.Option(nil), c.opts...)
	if c.outer != nil {
		cp.outer = c.outer.Clone()
	}
	return &cp
}

// OverrideServerName sets the server name reported by Info, and passes it
// to the outer credentials, if any. hmacauth does not use server names.
//
// Deprecated: gRPC deprecated this method; use grpc.WithAuthority instead.
func (c *creds) OverrideServerName(name string) error {
	c.info.ServerName = name
	if c.outer != nil {
		return c.outer.OverrideServerName(name) //nolint:staticcheck // forwarding the deprecated method
	}
	return nil
}
