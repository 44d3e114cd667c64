package auth

import (
	"context"
	"log/slog"
	"net"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/hmacauth/auth/internal/acceptloop"
)

// AuthListener is a net.Listener whose Accept returns only connections that
// passed the handshake. Background goroutines take turns at accepting raw
// connections, and each handshakes the one it accepted under the handshake
// timeout while another accepts the next, so a slow or silent client never
// delays others. Failed handshakes are closed,
// reported to the hook and the logger, and never returned from Accept: a
// server such as net/http keeps serving.
type AuthListener struct {
	inner net.Listener
	cfg   *config
	loop  *acceptloop.Loop[*Conn, *Conn]

	stats    listenerStats    // see Stats, in stats.go
	inflight handshakeTracker // handshakes in progress; see evict.go

	// The watchdog enforces the handshake timeout of every handshake with
	// one timer (see watch).
	stopWatch chan struct{}
	watchDone chan struct{}
}

// NewListener returns a listener that authenticates every connection
// accepted from inner. It needs a key: WithKey, WithKeys or WithKeyLookup.
// On error, inner is left open and still belongs to the caller; otherwise
// the AuthListener owns it and closes it on Close.
func NewListener(inner net.Listener, opts ...Option) (*AuthListener, error) {
	cfg, err := serverConfig(opts)
	if err != nil {
		return nil, err
	}
	l := &AuthListener{inner: inner, cfg: cfg, stopWatch: make(chan struct{}), watchDone: make(chan struct{})}
	if cfg.timeout > 0 {
		go l.watch()
	} else {
		close(l.watchDone)
	}
	l.loop = acceptloop.New(inner, cfg.maxHS, acceptloop.Hooks[*Conn, *Conn]{
		Acquire:         l.acquire,
		Start:           l.start,
		Handshake:       l.handshake,
		Stop:            l.stop,
		Log:             l.log,
		Prefix:          "auth: ",
		TemporaryMethod: true,
	})
	return l, nil
}

// Listen listens on the network address (see net.Listen) and returns an
// AuthListener on it.
func Listen(network, address string, opts ...Option) (*AuthListener, error) {
	if _, err := serverConfig(opts); err != nil {
		return nil, err
	}
	inner, err := net.Listen(network, address)
	if err != nil {
		return nil, err
	}
	l, err := NewListener(inner, opts...)
	if err != nil {
		inner.Close()
		return nil, err
	}
	return l, nil
}

// Accept waits for the next authenticated connection and returns it as a
// *Conn. After Close it returns an error matching net.ErrClosed; after a
// permanent error from the inner listener it returns that error.
func (l *AuthListener) Accept() (net.Conn, error) {
	c, err := l.AcceptAuth()
	if err != nil {
		return nil, err // never a typed nil
	}
	return c, nil
}

// AcceptAuth is Accept returning the concrete *Conn.
func (l *AuthListener) AcceptAuth() (*Conn, error) { return l.loop.Accept() }

// Addr returns the inner listener's address.
func (l *AuthListener) Addr() net.Addr { return l.inner.Addr() }

// Close stops the listener: it closes the inner listener, makes every
// blocked and later Accept return an error matching net.ErrClosed, closes
// the connections still in their handshake or waiting for Accept, and
// returns once every goroutine of the listener has ended. Connections
// already returned by Accept are not affected. Calling it again does
// nothing and returns nil.
func (l *AuthListener) Close() error {
	err := l.loop.Close()
	<-l.watchDone
	return err
}

// stop runs in Close, before it waits for the handshakes in progress: it
// interrupts them and stops the watchdog.
func (l *AuthListener) stop() {
	l.inflight.interruptAll()
	close(l.stopWatch)
}

// watch is the listener's watchdog. Rather than a deadline, and so a
// runtime timer, per handshake, one timer wakes when the oldest handshake
// in progress reaches the handshake timeout (or after a whole timeout when
// none is in progress) and interrupts every handshake that has.
func (l *AuthListener) watch() {
	defer close(l.watchDone)
	t := time.NewTimer(l.cfg.timeout)
	defer t.Stop()
	for {
		select {
		case <-l.stopWatch:
			return
		case <-t.C:
			t.Reset(l.inflight.expire(l.cfg.timeout))
		}
	}
}

// acquire takes a handshake slot for the accept loop, evicting the oldest
// handshake in progress when the listener is full (see evict.go).
func (l *AuthListener) acquire(ctx context.Context, sem *semaphore.Weighted) error {
	return l.inflight.acquire(ctx, sem, evictAge(l.cfg.timeout))
}

// start wraps a raw connection and tracks its handshake for eviction. It
// runs before the next connection is accepted, so a full listener always
// sees every handshake it may evict.
func (l *AuthListener) start(raw net.Conn) *Conn {
	c := newConn(raw, l.cfg, false)
	c.watched = true
	l.inflight.add(c)
	return c
}

// handshake runs the server handshake of one connection and counts it.
func (l *AuthListener) handshake(_ context.Context, c *Conn) (*Conn, error) {
	l.stats.start()
	// The tracker interrupts the handshake directly (interruptWith) at the
	// timeout, on eviction and on Close, so the handshake needs neither a
	// deadline nor a context watch of its own.
	err := c.HandshakeContext(context.Background())
	l.inflight.done(c)
	l.stats.finish(err)
	return c, err
}

func (l *AuthListener) log(level slog.Level, msg string, attrs ...slog.Attr) {
	if l.cfg.logger != nil {
		attrs = append(attrs, slog.String("listener", addrString(l.inner.Addr())))
		l.cfg.logger.LogAttrs(context.Background(), level, msg, attrs...)
	}
}
