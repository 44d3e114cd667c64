// Package acceptloop holds the accept machinery that auth.AuthListener and
// mpcompat.Listener share: a background loop that accepts raw connections
// while a semaphore allows, backs off on temporary errors, stops on a
// permanent one, handshakes each connection on a goroutine of its own (a
// few of which wait for the next connection once done, see worker) and
// hands the connections that passed to Accept through an unbuffered
// channel.
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
	// Start runs on the accept loop's goroutine for each raw connection,
	// before the connection's handshake goroutine starts.
	Start func(raw net.Conn) P
	// Handshake runs on the connection's own goroutine under ctx, which
	// Close cancels. On error it has closed and reported the connection,
	// and the Loop drops it.
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
	work  chan P        // raw connections, handed to an idle worker
	idle  atomic.Int32  // workers waiting on work
	done  chan struct{} // closed by Close
	ctx   context.Context
	stop  context.CancelFunc

	loopDone chan struct{} // closed when the accept loop has ended
	loopErr  error         // the permanent error that ended it, if any

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
		work:     make(chan P),
		done:     make(chan struct{}),
		ctx:      ctx,
		stop:     stop,
		loopDone: make(chan struct{}),
	}
	if l.h.Acquire == nil {
		l.h.Acquire = func(ctx context.Context, sem *semaphore.Weighted) error { return sem.Acquire(ctx, 1) }
	}
	l.wg.Add(1)
	go l.acceptLoop()
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

// acceptLoop accepts raw connections while the semaphore allows, and
// starts a handshake for each.
func (l *Loop[P, C]) acceptLoop() {
	defer l.wg.Done()
	defer close(l.loopDone)
	var backoff time.Duration
	for {
		if err := l.h.Acquire(l.ctx, l.sem); err != nil {
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
			if !Temporary(err, l.h.TemporaryMethod) {
				l.loopErr = err
				l.log(slog.LevelError, l.stopMsg, slog.String("error", err.Error()))
				return
			}
			backoff = max(5*time.Millisecond, min(2*backoff, time.Second))
			l.log(slog.LevelWarn, l.retryMsg, slog.String("error", err.Error()), slog.Duration("retry_in", backoff))
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
		p := l.h.Start(raw)
		// An idle worker takes the connection if one is waiting; otherwise
		// a new one starts.
		select {
		case l.work <- p:
		default:
			l.wg.Add(1)
			go l.worker(p)
		}
	}
}

// maxIdleWorkers is how many handshake goroutines wait for the next
// connection once their own has been handed to Accept. A worker that
// waits keeps the stack its handshake grew, so the next handshake neither
// starts a goroutine nor copies its stack as it deepens; more than a few
// are only needed under bursts, and those workers end.
const maxIdleWorkers = 4

// worker handshakes connections and queues them for Accept: first p, then
// whatever the accept loop hands it while it is one of the idle workers.
func (l *Loop[P, C]) worker(p P) {
	defer l.wg.Done()
	for {
		l.serve(p)
		if l.idle.Add(1) > maxIdleWorkers {
			l.idle.Add(-1)
			return
		}
		select {
		case p = <-l.work:
			l.idle.Add(-1)
		case <-l.done:
			l.idle.Add(-1)
			return
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
