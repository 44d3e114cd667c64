package mpcompat

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

// Listener accepts connections from multiprocessing.connection Clients.
// A background loop accepts raw connections and runs each handshake on its
// own goroutine under the handshake timeout, so a slow or silent peer never
// delays others. Only peers that passed both challenges come out of
// Accept; failed handshakes are closed and reported to the hook and the
// logger.
type Listener struct {
	inner net.Listener
	cfg   *Config
	key   []byte
	sem   *semaphore.Weighted

	ready chan *Conn
	done  chan struct{}
	ctx   context.Context
	stop  context.CancelFunc

	loopDone chan struct{}
	loopErr  error

	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup
}

// Listen listens on the network address (see net.Listen) with cfg and
// returns a Listener that authenticates with authkey.
func (cfg *Config) Listen(network, address string, authkey []byte) (*Listener, error) {
	c, err := cfg.check()
	if err != nil {
		return nil, err
	}
	key, err := checkAuthkey(authkey)
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
	c, err := cfg.check()
	if err != nil {
		return nil, err
	}
	key, err := checkAuthkey(authkey)
	if err != nil {
		return nil, err
	}
	return newListener(inner, key, c), nil
}

func newListener(inner net.Listener, key []byte, cfg *Config) *Listener {
	ctx, stop := context.WithCancel(context.Background())
	l := &Listener{
		inner:    inner,
		cfg:      cfg,
		key:      key,
		sem:      semaphore.NewWeighted(int64(cfg.MaxHandshakes)),
		ready:    make(chan *Conn),
		done:     make(chan struct{}),
		ctx:      ctx,
		stop:     stop,
		loopDone: make(chan struct{}),
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

// Accept waits for the next peer that passed both challenges. After Close
// it returns an error matching net.ErrClosed; after a permanent error of
// the inner listener, that error.
func (l *Listener) Accept() (*Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.done:
		return nil, l.closedErr()
	case <-l.loopDone:
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

func (l *Listener) closedErr() error {
	return &net.OpError{Op: "accept", Net: l.inner.Addr().Network(), Addr: l.inner.Addr(), Err: net.ErrClosed}
}

// Addr returns the listener's address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// Close closes the inner listener, makes every blocked and later Accept
// return an error matching net.ErrClosed, closes the connections still in
// their handshake or waiting for Accept, and returns once every goroutine
// of the Listener has ended. Connections already returned by Accept are
// not affected. Calling it again does nothing and returns nil.
func (l *Listener) Close() error {
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

func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	defer close(l.loopDone)
	var backoff time.Duration
	for {
		if err := l.sem.Acquire(l.ctx, 1); err != nil {
			return
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
				l.log(slog.LevelError, "mpcompat: accept failed; the listener stops", slog.String("error", err.Error()))
				return
			}
			backoff = max(5*time.Millisecond, min(2*backoff, time.Second))
			l.log(slog.LevelWarn, "mpcompat: accept failed; retrying", slog.String("error", err.Error()), slog.Duration("retry_in", backoff))
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
		l.wg.Add(1)
		go l.serve(raw)
	}
}

func (l *Listener) serve(raw net.Conn) {
	defer l.wg.Done()
	defer l.sem.Release(1)
	c, err := handshake(l.ctx, raw, l.key, l.cfg, false)
	if err != nil {
		return // closed and reported
	}
	select {
	case l.ready <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *Listener) log(level slog.Level, msg string, attrs ...slog.Attr) {
	if l.cfg.Logger != nil {
		attrs = append(attrs, slog.Any("listener", l.inner.Addr()))
		l.cfg.Logger.LogAttrs(context.Background(), level, msg, attrs...)
	}
}

// temporary reports whether an Accept error is worth retrying.
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
	return false
}
