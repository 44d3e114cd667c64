package mpcompat

import (
	"context"
	"log/slog"
	"net"

	"github.com/hmacauth/auth/internal/acceptloop"
)

// Listener accepts connections from multiprocessing.connection Clients.
// Background goroutines take turns at accepting raw connections, and each
// runs the handshake of the one it accepted under the handshake timeout
// while another accepts the next, so a slow or silent peer never delays
// others. Only peers that passed both challenges come out of
// Accept; failed handshakes are closed and reported to the hook and the
// logger.
type Listener struct {
	inner net.Listener
	cfg   *Config
	key   []byte
	loop  *acceptloop.Loop[net.Conn, *Conn]
}

// Listen listens on the network address (see net.Listen) with cfg and
// returns a Listener that authenticates with authkey.
func (cfg *Config) Listen(network, address string, authkey []byte) (*Listener, error) {
	c, key, err := cfg.checkWithKey(authkey)
	if err != nil {
		return nil, err
	}
	inner, err := net.Listen(network, address)
	if err != nil {
		return nil, err
	}
	return newListener(inner, key, c), nil
}

// NewListener returns a Listener with cfg that authenticates every
// connection accepted from inner. On error inner still belongs to the
// caller; otherwise the Listener closes it on Close.
func (cfg *Config) NewListener(inner net.Listener, authkey []byte) (*Listener, error) {
	c, key, err := cfg.checkWithKey(authkey)
	if err != nil {
		return nil, err
	}
	return newListener(inner, key, c), nil
}

func newListener(inner net.Listener, key []byte, cfg *Config) *Listener {
	l := &Listener{inner: inner, cfg: cfg, key: key}
	l.loop = acceptloop.New(inner, cfg.MaxHandshakes, acceptloop.Hooks[net.Conn, *Conn]{
		Start:     func(raw net.Conn) net.Conn { return raw },
		Handshake: l.handshake,
		Log:       l.log,
		Prefix:    "mpcompat: ",
	})
	return l
}

// Accept waits for the next peer that passed both challenges. After Close
// it returns an error matching net.ErrClosed; after a permanent error of
// the inner listener, that error.
func (l *Listener) Accept() (*Conn, error) { return l.loop.Accept() }

// Addr returns the listener's address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// Close closes the inner listener, makes every blocked and later Accept
// return an error matching net.ErrClosed, closes the connections still in
// their handshake or waiting for Accept, and returns once every goroutine
// of the Listener has ended. Connections already returned by Accept are
// not affected. Calling it again does nothing and returns nil.
func (l *Listener) Close() error { return l.loop.Close() }

// handshake runs the server side of the handshake on one raw connection.
func (l *Listener) handshake(ctx context.Context, raw net.Conn) (*Conn, error) {
	return handshake(ctx, raw, l.key, l.cfg, false)
}

func (l *Listener) log(level slog.Level, msg string, attrs ...slog.Attr) {
	if l.cfg.Logger != nil {
		attrs = append(attrs, slog.Any("listener", l.inner.Addr()))
		l.cfg.Logger.LogAttrs(context.Background(), level, msg, attrs...)
	}
}
