package mpcompat

import (
	"context"
	"net"
)

// Listen listens on the network address and returns a Listener whose
// Accept returns only peers that passed both challenges with authkey, with
// the defaults of a zero Config (Generation Auto: Python 3.11 and 3.12+
// Clients alike). It is Config.Listen on a nil *Config.
func Listen(network, address string, authkey []byte) (*Listener, error) {
	return (*Config)(nil).Listen(network, address, authkey)
}

// NewListener returns a Listener that authenticates every connection
// accepted from inner with authkey, with the defaults of a zero Config.
func NewListener(inner net.Listener, authkey []byte) (*Listener, error) {
	return (*Config)(nil).NewListener(inner, authkey)
}

// Dial connects to a multiprocessing.connection Listener and runs the
// connecting side's handshake with authkey, with the defaults of a zero
// Config. An error wraps auth.ErrAuthFailed when either side's challenge
// failed.
func Dial(network, address string, authkey []byte) (*Conn, error) {
	return (*Config)(nil).DialContext(context.Background(), network, address, authkey)
}

// Dial is DialContext with context.Background.
func (cfg *Config) Dial(network, address string, authkey []byte) (*Conn, error) {
	return cfg.DialContext(context.Background(), network, address, authkey)
}

// DialContext connects to the address and runs the connecting side's
// handshake: it answers the Listener's challenge, then delivers its own.
// The context bounds the connect and the handshake and no longer affects
// the connection once DialContext returns.
func (cfg *Config) DialContext(ctx context.Context, network, address string, authkey []byte) (*Conn, error) {
	c, key, err := cfg.checkWithKey(authkey)
	if err != nil {
		return nil, err
	}
	nd := c.NetDialer
	if nd == nil {
		nd = &net.Dialer{}
	}
	raw, err := nd.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return handshake(ctx, raw, key, c, true)
}

// Client runs the connecting side's handshake on conn, which the caller
// has already connected. The handshake sets conn's deadline (the handshake
// timeout or the context's deadline) and clears it when it succeeds. On
// failure conn is closed.
func (cfg *Config) Client(ctx context.Context, conn net.Conn, authkey []byte) (*Conn, error) {
	return cfg.handshakeOn(ctx, conn, authkey, true)
}

// Server runs the listening side's handshake on conn: it delivers a
// challenge, then answers the peer's. Deadlines and failure are as for
// Client.
func (cfg *Config) Server(ctx context.Context, conn net.Conn, authkey []byte) (*Conn, error) {
	return cfg.handshakeOn(ctx, conn, authkey, false)
}

func (cfg *Config) handshakeOn(ctx context.Context, conn net.Conn, authkey []byte, isClient bool) (*Conn, error) {
	c, key, err := cfg.checkWithKey(authkey)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return handshake(ctx, conn, key, c, isClient)
}
