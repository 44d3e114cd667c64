package auth

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/semaphore"
)

// AuthListener is a net.Listener whose Accept returns only connections that
// passed the handshake. A background loop accepts raw connections and
// handshakes each on its own goroutine under the handshake timeout, so a
// slow or silent client never delays others. Failed handshakes are closed,
// reported to the hook and the logger, and never returned from Accept: a
// server such as net/http keeps serving.
type AuthListener struct {
	inner net.Listener
	cfg   *config
	sem   *semaphore.Weighted

	ready chan *Conn    // authenticated connections, handed to Accept
	done  chan struct{} // closed by Close
	ctx   context.Context
	stop  context.CancelFunc

	loopDone chan struct{} // closed when the accept loop has ended
	loopErr  error         // the permanent error that ended it, if any

	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup

	stats    listenerStats    // see Stats, in stats.go
	inflight handshakeTracker // handshakes in progress, for eviction
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
	ctx, stop := context.WithCancel(context.Background())
	l := &AuthListener{
		inner:    inner,
		cfg:      cfg,
		sem:      semaphore.NewWeighted(int64(cfg.maxHS)),
		ready:    make(chan *Conn),
		done:     make(chan struct{}),
		ctx:      ctx,
		stop:     stop,
		loopDone: make(chan struct{}),
	}
	l.wg.Add(1)
	go l.acceptLoop()
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
func (l *AuthListener) AcceptAuth() (*Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.done:
		return nil, l.closedErr()
	case <-l.loopDone:
		// Hand out connections that finished before the loop ended.
		select {
		case c := <-l.ready:
			return c, nil
		case <-l.done:
			return nil, l.closedErr()
		default:
			return nil, l.loopErr
		}
	}
}

func (l *AuthListener) closedErr() error {
	return &net.OpError{Op: "accept", Net: l.inner.Addr().Network(), Addr: l.inner.Addr(), Err: net.ErrClosed}
}

// Addr returns the inner listener's address.
func (l *AuthListener) Addr() net.Addr { return l.inner.Addr() }

// Close stops the listener: it closes the inner listener, makes every
// blocked and later Accept return an error matching net.ErrClosed, closes
// the connections still in their handshake or waiting for Accept, and
// returns once every goroutine of the listener has ended. Connections
// already returned by Accept are not affected. Calling it again does
// nothing and returns nil.
func (l *AuthListener) Close() error {
	first := false
	l.closeOnce.Do(func() {
		first = true
		close(l.done)
		l.stop()
		l.closeErr = l.inner.Close()
		l.wg.Wait()
	})
	if !first {
		return nil
	}
	return l.closeErr
}

// acceptLoop accepts raw connections while the semaphore allows, and
// starts a handshake for each.
func (l *AuthListener) acceptLoop() {
	defer l.wg.Done()
	defer close(l.loopDone)
	var backoff time.Duration
	for {
		if err := l.inflight.acquire(l.ctx, l.sem, evictAge(l.cfg.timeout)); err != nil {
			return // closed
		}
		raw, err := l.inner.Accept()
		if err != nil {
			l.sem.Release(1)
			select {
			case <-l.done:
				return
			default:
			}
			if !temporary(err) {
				l.loopErr = err
				l.log(slog.LevelError, "auth: accept failed; the listener stops", slog.String("error", err.Error()))
				return
			}
			backoff = max(5*time.Millisecond, min(2*backoff, time.Second))
			l.log(slog.LevelWarn, "auth: accept failed; retrying", slog.String("error", err.Error()), slog.Duration("retry_in", backoff))
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-l.done:
				t.Stop()
				return
			}
			continue
		}
		backoff = 0
		c := newConn(raw, l.cfg, false)
		h := l.inflight.add(c)
		l.wg.Add(1)
		go l.serve(c, h)
	}
}

// serve handshakes one raw connection and queues it for Accept.
func (l *AuthListener) serve(c *Conn, h *trackedHandshake) {
	defer l.wg.Done()
	defer l.sem.Release(1)
	l.stats.start()
	// The listener's context interrupts the handshake on Close; eviction
	// interrupts it directly (interruptWith), which costs no context of its
	// own per handshake.
	err := c.HandshakeContext(l.ctx)
	l.inflight.done(h)
	l.stats.finish(err)
	if err != nil {
		return // closed and reported by the handshake
	}
	select {
	case l.ready <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *AuthListener) log(level slog.Level, msg string, attrs ...slog.Attr) {
	if l.cfg.logger != nil {
		attrs = append(attrs, slog.String("listener", addrString(l.inner.Addr())))
		l.cfg.logger.LogAttrs(context.Background(), level, msg, attrs...)
	}
}

// temporary reports whether an Accept error is worth retrying: a timeout, a
// connection that died in the backlog, or running out of file descriptors
// or buffers.
func temporary(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []error{syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.EAGAIN, syscall.EINTR, syscall.EPROTO, syscall.EPERM} {
		if errors.Is(err, e) {
			return true
		}
	}
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}
