package auth

import (
	"context"
	"net"
)

// Dialer dials connections and authenticates them before returning them.
// Its DialContext fits http.Transport.DialContext, grpc.WithContextDialer
// and anything else that takes a dial function. A Dialer is safe for
// concurrent use.
type Dialer struct {
	cfg *config
}

// NewDialer returns a Dialer. It needs a key: WithKey, or WithKeys with
// WithKeyID.
func NewDialer(opts ...Option) (*Dialer, error) {
	cfg, err := clientConfig(opts)
	if err != nil {
		return nil, err
	}
	return &Dialer{cfg: cfg}, nil
}

// Dial connects to the address and authenticates; see DialContext.
func (d *Dialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

// DialContext connects to the address on the named network and runs the
// handshake. The context bounds both the connect and the handshake; once
// DialContext returns, it no longer affects the connection. On failure the
// raw connection is closed. The returned net.Conn is a *Conn.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	c, err := d.dial(ctx, network, address)
	if err != nil {
		return nil, err // never a typed nil
	}
	return c, nil
}

// defaultNetDialer dials for a Dialer without WithNetDialer. net.Dialer's
// methods do not modify it, so one serves every Dialer.
var defaultNetDialer net.Dialer

func (d *Dialer) dial(ctx context.Context, network, address string) (*Conn, error) {
	nd := d.cfg.netDialer
	if nd == nil {
		nd = &defaultNetDialer
	}
	raw, err := nd.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	c := newConn(raw, d.cfg, true)
	if err := c.HandshakeContext(ctx); err != nil {
		return nil, err // the handshake closed raw
	}
	return c, nil
}

// Dial connects to the address on the named network and authenticates
// with the options' key.
func Dial(network, address string, opts ...Option) (*Conn, error) {
	return DialContext(context.Background(), network, address, opts...)
}

// DialContext is Dial with a context that bounds the connect and the
// handshake.
func DialContext(ctx context.Context, network, address string, opts ...Option) (*Conn, error) {
	d, err := NewDialer(opts...)
	if err != nil {
		return nil, err
	}
	return d.dial(ctx, network, address)
}

// Client returns a Conn that authenticates conn as the dialing side. The
// handshake runs on the first Read or Write, or when Handshake or
// HandshakeContext is called. The error reports a bad configuration only.
func Client(conn net.Conn, opts ...Option) (*Conn, error) {
	cfg, err := clientConfig(opts)
	if err != nil {
		return nil, err
	}
	return newConn(conn, cfg, true), nil
}

// Server returns a Conn that authenticates conn as the accepting side; see
// Client. Until its handshake succeeds, a server Conn hands no byte to its
// reader.
func Server(conn net.Conn, opts ...Option) (*Conn, error) {
	cfg, err := serverConfig(opts)
	if err != nil {
		return nil, err
	}
	return newConn(conn, cfg, false), nil
}
