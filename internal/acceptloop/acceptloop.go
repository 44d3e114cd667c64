// Package acceptloop holds the accept machinery that auth.AuthListener and
// mpcompat.Listener share: a background loop that accepts raw connections
// while a semaphore allows, backs off on temporary errors, stops on a
// permanent one, handshakes each connection on the goroutine that accepted
// it (the workers take turns at accepting, see worker) and hands the
// connections that passed to Accept through an unbuffered channel.
package acceptloop

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/semaphore"
)

// Hooks are what a listener plugs into a Loop. P is the state of a
// connection between Start and Handshake, C the connection Accept returns.
type Hooks[P any, C io.Closer] struct {
	// Acquire takes one handshake slot from sem, waiting while none is
	// free, and fails once ctx is done. Nil means sem.Acquire(ctx, 1).
	Acquire func(ctx context.Context, sem *semaphore.Weighted) error
	// Start runs for each raw connection on the goroutine that accepted
	// it, before that goroutine hands on the accepting and handshakes the
	// connection: the next Acquire sees every connection started.
	Start func(raw net.Conn) P
	// Handshake runs on the goroutine that accepted the connection, under
	// ctx, which Close cancels. On error it has closed and reported the
	// connection, and the Loop drops it.
	Handshake func(ctx context.Context, p P) (C, error)
	// Stop, if not nil, runs once in Close, after the context given to
	// Handshake is cancelled and before Close waits for the handshakes:
	// for listeners that interrupt handshakes their own way.
	Stop func()
	// Log, if not nil, reports accept errors. Messages start with Prefix.
	Log    func(level slog.Level, msg string, attrs ...slog.Attr)
	Prefix string
	// TemporaryMethod makes the loop also retry an Accept error whose
	// Temporary method reports true (see Temporary).
	TemporaryMethod bool
}

// Loop accepts and handshakes connections in the background; Accept
// returns those that passed. Make one with New.
type Loop[P any, C io.Closer] struct {
	inner net.Listener
	sem   *semaphore.Weighted
	h     Hooks[P, C]

	stopMsg, retryMsg string

	ready chan C        // handshaken connections, handed to Accept
	lead  chan struct{} // the leadership, handed to an idle worker
	idle  atomic.Int32  // workers waiting to lead
	done  chan struct{} // closed by Close
	ctx   context.Context
	stop  context.CancelFunc

	loopDone chan struct{} // closed when the accept loop has ended
	loopErr  error         // the permanent error that ended it, if any
	backoff  time.Duration // the leader's wait after a temporary error

	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup
}

// New starts a Loop that accepts from inner and runs at most maxHandshakes
// handshakes at a time (a connection waiting for Accept keeps its slot).
// The Loop owns inner and closes it on Close.
func New[P any, C io.Closer](inner net.Listener, maxHandshakes int, h Hooks[P, C]) *Loop[P, C] {
	ctx, stop := context.WithCancel(context.Background())
	l := &Loop[P, C]{
		inner:    inner,
		sem:      semaphore.NewWeighted(int64(maxHandshakes)),
		h:        h,
		stopMsg:  h.Prefix + "accept failed; the listener stops",
		retryMsg: h.Prefix + "accept failed; retrying",
		ready:    make(chan C),
		lead:     make(chan struct{}),
		done:     make(chan struct{}),
		ctx:      ctx,
		stop:     stop,
		loopDone: make(chan struct{}),
	}
	if l.h.Acquire == nil {
		l.h.Acquire = func(ctx context.Context, sem *semaphore.Weighted) error { return sem.Acquire(ctx, 1) }
	}
	l.wg.Add(1)
	go l.worker()
	return l
}

// Accept waits for the next connection that passed its handshake. After
// Close it returns an error matching net.ErrClosed; after a permanent error
// from the inner listener it returns that error, once the connections that
// finished their handshake before have been handed out.
func (l *Loop[P, C]) Accept() (C, error) {
	var zero C
	// Close ends the accept loop too, before it returns: waiting for
	// loopDone covers both, and a select over two channels costs less than
	// over three.
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.loopDone:
		// Hand out connections that finished before the loop ended.
		select {
		case c := <-l.ready:
			return c, nil
		case <-l.done:
			return zero, l.closedErr()
		default:
			return zero, l.loopErr
		}
	}
}

func (l *Loop[P, C]) closedErr() error {
	return &net.OpError{Op: "accept", Net: l.inner.Addr().Network(), Addr: l.inner.Addr(), Err: net.ErrClosed}
}

// Addr returns the inner listener's address.
func (l *Loop[P, C]) Addr() net.Addr { return l.inner.Addr() }

// Close closes the inner listener, makes every blocked and later Accept
// return an error matching net.ErrClosed, cancels the handshakes in
// progress, closes the connections waiting for Accept, and returns once
// every goroutine of the Loop has ended. Calling it again does nothing and
// returns nil.
func (l *Loop[P, C]) Close() error {
	first := false
	l.closeOnce.Do(func() {
		first = true
		close(l.done)
		l.stop()
		if l.h.Stop != nil {
			l.h.Stop()
		}
		l.closeErr = l.inner.Close()
		l.wg.Wait()
	})
	if !first {
		return nil
	}
	return l.closeErr
}

// The workers take turns at accepting: one of them, the leader, waits in
// the inner listener's Accept. Once it has a connection it hands the
// leadership to an idle worker (or starts one) and handshakes the
// connection itself, so a handshake starts on the goroutine that accepted
// it, without a hand-off. After handing its connection to Accept, a
// worker waits to lead again, unless maxIdleWorkers already do: a worker
// that waits keeps the stack its handshake grew, so the next handshake
// neither starts a goroutine nor copies its stack as it deepens.
const maxIdleWorkers = 4

// worker leads first: New starts the first one, and every later one
// starts as the new leader of a worker that has just accepted.
func (l *Loop[P, C]) worker() {
	defer l.wg.Done()
	for {
		p, ok := l.acceptOne()
		if !ok {
			close(l.loopDone)
			return
		}
		select {
		case l.lead <- struct{}{}:
		default:
			l.wg.Add(1)
			go l.worker()
		}
		l.serve(p)
		if l.idle.Add(1) > maxIdleWorkers {
			l.idle.Add(-1)
			return
		}
		select {
		case <-l.lead:
			l.idle.Add(-1)
		case <-l.done:
			l.idle.Add(-1)
			return
		}
	}
}

// acceptOne accepts the next raw connection while the semaphore allows,
// backing off on temporary errors, and starts its handshake (Hooks.Start).
// It reports false once the loop has ended: Close, or a permanent error
// in loopErr. Only the leader calls it.
func (l *Loop[P, C]) acceptOne() (p P, ok bool) {
	for {
		if err := l.h.Acquire(l.ctx, l.sem); err != nil {
			return p, false // closed
		}
		raw, err := l.inner.Accept()
		if err == nil {
			l.backoff = 0
			return l.h.Start(raw), true
		}
		l.sem.Release(1)
		select {
		case <-l.done:
			return p, false
		default:
		}
		if !Temporary(err, l.h.TemporaryMethod) {
			l.loopErr = err
			l.log(slog.LevelError, l.stopMsg, slog.String("error", err.Error()))
			return p, false
		}
		l.backoff = max(5*time.Millisecond, min(2*l.backoff, time.Second))
		l.log(slog.LevelWarn, l.retryMsg, slog.String("error", err.Error()), slog.Duration("retry_in", l.backoff))
		t := time.NewTimer(l.backoff)
		select {
		case <-t.C:
		case <-l.done:
			t.Stop()
			return p, false
		}
	}
}

// serve handshakes one connection and queues it for Accept.
func (l *Loop[P, C]) serve(p P) {
	defer l.sem.Release(1)
	c, err := l.h.Handshake(l.ctx, p)
	if err != nil {
		return // closed and reported by the handshake
	}
	select {
	case l.ready <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *Loop[P, C]) log(level slog.Level, msg string, attrs ...slog.Attr) {
	if l.h.Log != nil {
		l.h.Log(level, msg, attrs...)
	}
}

// temporaryErrnos are the Accept errors worth retrying: a connection that
// died in the backlog, or running out of file descriptors or buffers.
var temporaryErrnos = []error{syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.EAGAIN, syscall.EINTR, syscall.EPROTO, syscall.EPERM}

// Temporary reports whether an Accept error is worth retrying: a timeout, a
// connection that died in the backlog, or running out of file descriptors
// or buffers. With method, also an error whose Temporary method (the
// net.Error convention deprecated in Go 1.18) reports true.
func Temporary(err error, method bool) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range temporaryErrnos {
		if errors.Is(err, e) {
			return true
		}
	}
	if !method {
		return false
	}
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}
