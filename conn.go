package auth

import (
	"context"
	"crypto/hkdf"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ConnectionState describes an authenticated connection.
type ConnectionState struct {
	// HandshakeComplete is true once the handshake succeeded. The other
	// fields are meaningful only then.
	HandshakeComplete bool
	// IsClient is true on the dialing side.
	IsClient bool
	// Version is the protocol version spoken; 0 for WithRecipe.
	Version uint8
	// KeyID is the key ID the client presented and proved. On a server it
	// names the authenticated peer.
	KeyID string
	// Suite is the negotiated suite.
	Suite Suite
	// Mode is the negotiated mode; ModeRecipe for WithRecipe, where the
	// server is not authenticated and the client gets no verdict.
	Mode Mode
}

// Conn is a connection authenticated by the hmacauth handshake. It
// implements net.Conn. In the auth-only mode the bytes after the handshake
// pass through unchanged; in a sealed mode (WithSealed) they travel in
// encrypted, authenticated records.
//
// The handshake runs on the first Read or Write if it has not been run
// explicitly with Handshake or HandshakeContext; Dial and the listener run
// it before handing the Conn out. If it fails, the underlying connection is
// closed and every later Read and Write returns the same error.
type Conn struct {
	conn     net.Conn
	cfg      *config
	isClient bool

	hsMu   sync.Mutex
	hsDone atomic.Bool
	hsErr  error
	state  ConnectionState
	key    []byte // the authenticated key, for ExportKeyingMaterial
	th     []byte // the transcript hash over all three messages

	// Storage for th and the client's finished message, so a handshake
	// does not allocate them.
	thBuf  [64]byte
	finBuf [1 + 64]byte

	// intrMu and hsOver keep a context's interruption from touching the
	// deadline after the handshake has ended.
	intrMu    sync.Mutex
	hsOver    bool
	intrCause error // why interruptWith cut the handshake short
	dlMoved   bool  // an interruption moved the deadline

	// watched is set on a listener's connections: the listener bounds the
	// handshake (its watchdog interrupts it at the handshake timeout, its
	// Close interrupts it), so the handshake sets no deadline of its own
	// and needs no timer.
	watched bool
	track   trackNode // the listener's list of handshakes in progress

	// The handshake message not yet written: a client's finished message
	// (it goes out with the first Write, or before the first Read) or a
	// server's accepting verdict (with the first Write, or at CloseWrite or
	// Close). Client only: whether the server's one-byte verdict is still
	// to be read.
	pendMu      sync.Mutex
	pending     []byte
	hasPending  atomic.Bool
	verdMu      sync.Mutex
	needVerdict atomic.Bool
	fatal       atomic.Pointer[error] // set when the server rejected us

	// Server only: application bytes that arrived behind the client's
	// proof and were read with it, not yet handed to the application
	// (see early.go). verdMu guards them; a server has no verdict to read.
	early    []byte
	earlyBuf *[pooledReadBufLen]byte
	hasEarly atomic.Bool

	dlMu    sync.Mutex
	readDL  time.Time
	writeDL time.Time

	seal *sealState // the record layer, in a sealed mode; see sealed.go

	closeOnce sync.Once // Close's work runs once, even when Closes race
	closeErr  error
}

func newConn(raw net.Conn, cfg *config, isClient bool) *Conn {
	return &Conn{conn: raw, cfg: cfg, isClient: isClient}
}

// Handshake runs the handshake if it has not run yet. It is
// HandshakeContext with context.Background.
func (c *Conn) Handshake() error { return c.HandshakeContext(context.Background()) }

// HandshakeContext runs the handshake if it has not run yet and returns its
// result. The context bounds the handshake and cancels it, closing the
// connection; once the handshake is over the context no longer affects the
// connection. The handshake is also bounded by the handshake timeout and by
// any deadline already set on the Conn, and it restores those deadlines
// when it ends. A deadline set on the underlying connection before it was
// wrapped with Client or Server cannot be seen and is cleared by the
// handshake: set deadlines on the Conn instead.
//
// On a client, the handshake is complete once the server has proved it
// holds the key. The client's own proof goes out with its first Write (or
// before its first Read), and the server's verdict is read transparently by
// the first Read; WithWaitForVerdict makes the handshake wait for it.
func (c *Conn) HandshakeContext(ctx context.Context) error {
	if c.hsDone.Load() {
		return c.hsErr
	}
	c.hsMu.Lock()
	defer c.hsMu.Unlock()
	if c.hsDone.Load() {
		return c.hsErr
	}
	c.hsErr = c.handshake(ctx)
	c.hsDone.Store(true)
	return c.hsErr
}

// aLongTimeAgo is a deadline in the past: setting it unblocks any I/O.
var aLongTimeAgo = time.Unix(1, 0)

func (c *Conn) handshake(ctx context.Context) error {
	// The listener's watchdog counts the timeout from the accept (set
	// before the handshake's goroutine took the connection): so does the
	// reported duration.
	start := c.track.start
	if !c.watched || start.IsZero() {
		start = time.Now()
	}
	if err := ctx.Err(); err != nil {
		c.conn.Close()
		cause := []error{err}
		if errors.Is(err, context.DeadlineExceeded) {
			cause = append(cause, errDeadline)
		}
		err = errf(cause, "handshake not started: %v", err)
		c.report(start, err)
		return err
	}
	deadline, ours := c.handshakeDeadline(ctx, start)
	// A listener's connection comes straight from Accept with no deadline:
	// setting none costs no timer. Any other may carry one on the raw
	// connection, which the handshake's replaces.
	setDL := !deadline.IsZero() || !c.watched
	if setDL {
		c.conn.SetDeadline(deadline)
	}
	c.intrMu.Lock()
	if c.intrCause != nil {
		c.conn.SetDeadline(aLongTimeAgo) // interrupted before it started
		c.dlMoved = true
	}
	c.intrMu.Unlock()

	// A context that can be cancelled interrupts the handshake by moving
	// the deadline into the past. One that cannot (context.Background, as
	// Dial and Handshake use) costs nothing.
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, c.interruptHandshake)
	}
	var err error
	if c.cfg.recipe != nil {
		if c.isClient {
			err = c.recipeClientHandshake()
		} else {
			err = c.recipeServerHandshake()
		}
	} else if c.isClient {
		err = c.clientHandshake()
	} else {
		err = c.serverHandshake()
	}
	if err == nil {
		err = c.startSealed()
		c.sealEarly()
	}
	if stop != nil {
		stop()
	}
	// Wait for an interruption that has started, and stop any other from
	// touching the deadline now that the handshake is over.
	c.intrMu.Lock()
	c.hsOver = true
	setDL = setDL || c.dlMoved
	c.intrMu.Unlock()

	if err != nil {
		err = c.explain(ctx, err, ours, time.Since(start))
		c.conn.Close()
		c.seal = nil // keys a server derived ahead of a proof that failed
		c.dropEarly()
	} else {
		c.dlMu.Lock()
		switch {
		case !setDL && c.readDL.IsZero() && c.writeDL.IsZero():
			// Untouched: nothing to restore.
		case c.readDL.Equal(c.writeDL):
			c.conn.SetDeadline(c.readDL)
		default:
			c.conn.SetReadDeadline(c.readDL)
			c.conn.SetWriteDeadline(c.writeDL)
		}
		c.dlMu.Unlock()
		c.state.HandshakeComplete = true
	}
	c.report(start, err)
	return err
}

// interruptHandshake unblocks a running handshake when its context is
// done.
func (c *Conn) interruptHandshake() {
	c.intrMu.Lock()
	defer c.intrMu.Unlock()
	if !c.hsOver {
		c.conn.SetDeadline(aLongTimeAgo)
		c.dlMoved = true
	}
}

// interruptWith cuts a handshake short for the given cause, which the
// handshake's error then wraps (a listener's eviction). It does nothing
// once the handshake is over.
func (c *Conn) interruptWith(cause error) {
	c.intrMu.Lock()
	defer c.intrMu.Unlock()
	if !c.hsOver {
		c.intrCause = cause
		c.conn.SetDeadline(aLongTimeAgo)
		c.dlMoved = true
	}
}

// handshakeDeadline is the earliest of the handshake timeout, the context's
// deadline and the deadlines set on the Conn. ours reports whether it is the
// handshake timeout.
func (c *Conn) handshakeDeadline(ctx context.Context, now time.Time) (d time.Time, ours bool) {
	if c.cfg.timeout > 0 && !c.watched {
		d, ours = now.Add(c.cfg.timeout), true
	}
	if cd, ok := ctx.Deadline(); ok && (d.IsZero() || cd.Before(d)) {
		d, ours = cd, false
	}
	c.dlMu.Lock()
	defer c.dlMu.Unlock()
	for _, u := range []time.Time{c.readDL, c.writeDL} {
		if !u.IsZero() && (d.IsZero() || u.Before(d)) {
			d, ours = u, false
		}
	}
	return d, ours
}

// explain turns a handshake failure into the error the caller sees.
func (c *Conn) explain(ctx context.Context, err error, ours bool, took time.Duration) error {
	var we *wrapError
	if c.intrCause == errTimedOut {
		ours = true // the listener's watchdog stood in for the deadline
	}
	ctxErr := ctx.Err()
	if cd, ok := ctx.Deadline(); ok && ctxErr == nil && !ours && !time.Now().Before(cd) {
		// The connection's deadline, set to the context's, fired a moment
		// before the context's own timer: it is the context that expired.
		ctxErr = context.DeadlineExceeded
	}
	switch {
	case c.intrCause != nil && c.intrCause != errTimedOut && !errors.As(err, &we):
		// hsOver is set: intrCause no longer changes.
		return errf([]error{context.Canceled, c.intrCause}, "handshake with %s interrupted after %v: %v", c.conn.RemoteAddr(), took.Round(time.Millisecond), c.intrCause)
	case ctxErr != nil && !errors.As(err, &we):
		cause := []error{ctxErr}
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			cause = append(cause, errDeadline)
		}
		why := ctxErr
		if cc := context.Cause(ctx); cc != nil && cc != ctx.Err() {
			why = cc
			cause = append(cause, cc)
		}
		return errf(cause, "handshake with %s interrupted after %v: %v", c.conn.RemoteAddr(), took.Round(time.Millisecond), why)
	case errors.Is(err, errDeadline):
		var sr *shortRead
		hint := ""
		switch {
		case !errors.As(err, &sr) || sr.got != 0:
		case c.cfg.recipe == nil && !c.isClient:
			hint = " (the client sent nothing: an hmacauth client speaks first, while the recipe's client waits for the server; see WithRecipe)"
		case c.cfg.recipe != nil && c.isClient:
			hint = " (the server sent nothing: a recipe server speaks first, while an hmacauth server waits for its client)"
		}
		if ours {
			return errf([]error{errDeadline}, "handshake with %s timed out after %v%s", c.conn.RemoteAddr(), c.cfg.timeout, hint)
		}
		return errf([]error{errDeadline}, "handshake with %s hit the deadline after %v%s", c.conn.RemoteAddr(), took.Round(time.Millisecond), hint)
	case errors.As(err, &we):
		return err
	}
	return errf([]error{ErrProtocol, err}, "handshake with %s failed: %v", c.conn.RemoteAddr(), err)
}

// report tells the hook and the logger how the handshake ended.
func (c *Conn) report(start time.Time, err error) {
	cfg := c.cfg
	if cfg.hook == nil && cfg.logger == nil {
		return
	}
	ev := HandshakeEvent{
		IsClient:   c.isClient,
		LocalAddr:  c.conn.LocalAddr(),
		RemoteAddr: c.conn.RemoteAddr(),
		KeyID:      c.state.KeyID,
		Suite:      c.state.Suite,
		Mode:       c.state.Mode,
		Duration:   time.Since(start),
		Err:        err,
	}
	if cfg.hook != nil {
		cfg.hook(ev)
	}
	if cfg.logger != nil {
		logEvent(cfg.logger, ev)
	}
}

// Read reads application data, running the handshake first if needed. On a
// client, the first Read sends the pending proof and consumes the server's
// verdict; a rejection comes back as an error wrapping ErrRejected.
func (c *Conn) Read(p []byte) (int, error) {
	if err := c.readyToRead(); err != nil {
		return 0, err
	}
	if c.seal != nil {
		return c.sealedRead(p)
	}
	if c.needVerdict.Load() {
		return c.readWithVerdict(p)
	}
	if c.hasEarly.Load() {
		if n, ok := c.readEarly(p); ok {
			return n, nil
		}
	}
	return c.conn.Read(p)
}

// readyToWrite is readyToRead for the paths that write outside Write (ReadFrom,
// CloseWrite). Unlike a reader, a writer waits for a proof that another
// goroutine (a Read, a WriteTo) is sending: going ahead would put its bytes,
// or its FIN, on the wire in front of the proof, and the server would fail
// the handshake.
func (c *Conn) readyToWrite() error {
	if err := c.Handshake(); err != nil {
		return err
	}
	if c.hasPending.Load() {
		c.pendMu.Lock()
		err := c.flushLocked()
		c.pendMu.Unlock()
		if err != nil {
			return err
		}
	}
	if e := c.fatal.Load(); e != nil {
		return *e
	}
	return nil
}

// readyToRead runs the handshake if needed and sends the client's pending
// proof, for Read and the paths that read the raw connection. If a Write
// is sending the proof at this moment, it goes ahead instead of waiting for
// that Write (see flush).
func (c *Conn) readyToRead() error {
	if err := c.Handshake(); err != nil {
		return err
	}
	if e := c.fatal.Load(); e != nil {
		return *e
	}
	// A server's pending verdict waits for its first Write: reading
	// first is what servers usually do, and the client does not need the
	// verdict until data comes.
	if c.isClient && c.hasPending.Load() {
		return c.flush()
	}
	return nil
}

// flush writes the client's pending proof on its own.
func (c *Conn) flush() error {
	// A Write that holds pendMu is sending the proof in front of its data:
	// do not wait for it. Over an unbuffered connection such as net.Pipe
	// that Write finishes only once the server application has read the
	// data, which may first wait for this Read to take what it writes.
	if !c.pendMu.TryLock() {
		return nil
	}
	defer c.pendMu.Unlock()
	return c.flushLocked()
}

// flushLocked is flush with pendMu held.
func (c *Conn) flushLocked() error {
	if c.pending == nil {
		return nil
	}
	_, err := c.conn.Write(c.pending)
	c.pending = nil
	c.hasPending.Store(false)
	if err != nil {
		return c.fail(c.pendingErr(err))
	}
	return nil
}

// pendingErr is the error of a failed write of the pending handshake
// message.
func (c *Conn) pendingErr(err error) error {
	if c.isClient {
		return errf([]error{err}, "sending the client proof: %v", err)
	}
	return errf([]error{err}, "sending the verdict to %s: %v", c.conn.RemoteAddr(), err)
}

// fail records an error that ends the connection and returns it.
func (c *Conn) fail(err error) error {
	c.fatal.CompareAndSwap(nil, &err)
	return *c.fatal.Load()
}

// readWithVerdict reads into p and strips the verdict byte in front of the
// first application data, so the verdict costs no extra read.
func (c *Conn) readWithVerdict(p []byte) (int, error) {
	c.verdMu.Lock()
	defer c.verdMu.Unlock()
	if !c.needVerdict.Load() {
		return c.conn.Read(p)
	}
	if len(p) == 0 {
		return 0, nil
	}
	// A small read goes through a buffer one byte longer than p, so that
	// it takes the verdict and up to len(p) bytes behind it in one system
	// call: a 1-byte read would otherwise take the verdict alone.
	buf := p
	if len(p) < smallFirstRead {
		hb := hsBufs.Get().(*[hsBufLen]byte)
		defer hsBufs.Put(hb)
		buf = hb[:len(p)+1]
	}
	for {
		n, err := c.conn.Read(buf)
		if n > 0 {
			if verr := c.verdict(buf[0]); verr != nil {
				return 0, verr
			}
			n = copy(p, buf[1:n])
			if n > 0 || err != nil {
				return n, err
			}
			return c.conn.Read(p)
		}
		if err != nil {
			return 0, c.verdictReadErr(err)
		}
	}
}

// smallFirstRead is the size under which the first Read goes through a
// pooled buffer, one byte longer than the caller's.
const smallFirstRead = 64

// readVerdict reads exactly the verdict byte, for paths that hand the raw
// connection to someone else.
func (c *Conn) readVerdict() error {
	c.verdMu.Lock()
	defer c.verdMu.Unlock()
	if !c.needVerdict.Load() {
		return nil
	}
	var b [1]byte
	if _, err := io.ReadFull(c.conn, b[:]); err != nil {
		return c.verdictReadErr(err)
	}
	return c.verdict(b[0])
}

// verdict records the server's verdict byte. Called with verdMu held.
func (c *Conn) verdict(v byte) error {
	c.needVerdict.Store(false)
	switch v {
	case verdictAccept:
		return nil
	case verdictReject:
		c.conn.Close()
		return c.fail(errf([]error{ErrRejected}, "%s rejected this client's proof for key ID %q: the server holds a different key", c.conn.RemoteAddr(), c.state.KeyID))
	}
	c.conn.Close()
	return c.fail(errf([]error{ErrProtocol}, "server sent verdict byte %#02x, want %#02x or %#02x", v, verdictAccept, verdictReject))
}

func (c *Conn) verdictReadErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return c.fail(errf([]error{ErrProtocol, io.ErrUnexpectedEOF}, "%s closed the connection before its verdict on this client's proof", c.conn.RemoteAddr()))
	}
	return err // a deadline or a reset: not final, the caller may retry after a timeout
}

// Write writes application data, running the handshake first if needed.
// The first Write carries the pending handshake message in the same system
// call (and usually the same packet) as p: on a client its proof, on a
// server its verdict.
func (c *Conn) Write(p []byte) (int, error) {
	if err := c.Handshake(); err != nil {
		return 0, err
	}
	if e := c.fatal.Load(); e != nil {
		return 0, *e
	}
	if c.seal != nil {
		return c.sealedWrite(p)
	}
	if c.hasPending.Load() {
		c.pendMu.Lock()
		if c.pending != nil {
			defer c.pendMu.Unlock()
			proof := len(c.pending)
			var (
				n   int64
				err error
			)
			if len(p) <= hsBufLen-proof {
				// A small first write goes out with the proof as one
				// message assembled in a pooled buffer: one write, no
				// allocation. A larger one uses writev.
				buf := hsBufs.Get().(*[hsBufLen]byte)
				msg := append(append(buf[:0], c.pending...), p...)
				var m int
				m, err = c.conn.Write(msg)
				n = int64(m)
				hsBufs.Put(buf)
			} else {
				bufs := net.Buffers{c.pending, p}
				n, err = bufs.WriteTo(c.conn)
			}
			c.pending = nil
			c.hasPending.Store(false)
			if n < int64(proof) {
				if err == nil {
					err = io.ErrShortWrite
				}
				return 0, c.fail(c.pendingErr(err))
			}
			return int(n) - proof, err
		}
		c.pendMu.Unlock()
	}
	return c.conn.Write(p)
}

// Close closes the connection. A handshake message still pending is sent
// first (waiting at most 100ms for a peer that does not read): a client's
// proof, so a client that connects and closes at once is not counted as a
// failed handshake by the server; a server's verdict, so a client reads a
// clean io.EOF rather than an error.
//
// Close may be called concurrently and more than once: the first call does
// the work, later ones wait for it and then return the underlying
// connection's answer to a second Close.
func (c *Conn) Close() error {
	first := false
	c.closeOnce.Do(func() {
		first = true
		c.closeErr = c.close()
	})
	if first {
		return c.closeErr
	}
	return c.conn.Close()
}

// close is the work of the first Close.
func (c *Conn) close() error {
	if c.hsDone.Load() && c.seal != nil {
		c.sealedClose()
	}
	if c.hasPending.Load() && c.pendMu.TryLock() {
		if c.pending != nil {
			c.conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			c.flushLocked()
		}
		c.pendMu.Unlock()
	}
	// A client does not wait for a verdict it has not read. The server
	// sends it in front of its first data or when it closes, so an unread
	// verdict means unread data or a server that has gone: closing with it
	// unread resets the connection exactly when plain TCP would.
	err := c.conn.Close()
	c.dropEarly()
	return err
}

// CloseWrite shuts down the writing side of the underlying connection, if
// it supports that (TCP and Unix connections do), so the peer reads EOF
// while this side can still read. The handshake must be complete.
func (c *Conn) CloseWrite() error {
	if !c.hsDone.Load() {
		return errf(nil, "CloseWrite before the handshake completed")
	}
	if err := c.readyToWrite(); err != nil {
		return err
	}
	if c.seal != nil {
		return c.sealedCloseWrite()
	}
	cw, ok := c.conn.(interface{ CloseWrite() error })
	if !ok {
		return errf([]error{errors.ErrUnsupported}, "CloseWrite: %T does not support half-close", c.conn)
	}
	return cw.CloseWrite()
}

// CloseRead shuts down the reading side of the underlying connection, if it
// supports that.
func (c *Conn) CloseRead() error {
	cr, ok := c.conn.(interface{ CloseRead() error })
	if !ok {
		return errf([]error{errors.ErrUnsupported}, "CloseRead: %T does not support half-close", c.conn)
	}
	return cr.CloseRead()
}

// ReadFrom copies from r to the connection. It lets io.Copy reach the
// underlying connection's ReadFrom, so copies between TCP connections keep
// using splice and sendfile; when r is itself an auth-only *Conn, the copy
// runs between the two underlying connections.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	if err := c.readyToWrite(); err != nil {
		return 0, err
	}
	if c.seal != nil {
		return c.sealedReadFrom(r)
	}
	var early int64
	if src, ok := r.(*Conn); ok && !src.isSealed() {
		raw, err := src.rawReader()
		if err != nil {
			return 0, err
		}
		if early, err = src.writeEarly(c.conn); err != nil {
			return early, err
		}
		r = raw
	}
	var n int64
	var err error
	if rf, ok := c.conn.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(writerOnly{c.conn}, r)
	}
	return early + n, err
}

// WriteTo copies from the connection to w until EOF. It lets io.Copy reach
// the underlying connection's WriteTo (splice to Unix sockets and pipes).
func (c *Conn) WriteTo(w io.Writer) (int64, error) {
	if c.isSealed() {
		return c.sealedWriteTo(w)
	}
	raw, err := c.rawReader()
	if err != nil {
		return 0, err
	}
	early, err := c.writeEarly(w)
	if err != nil {
		return early, err
	}
	var n int64
	if dst, ok := w.(*Conn); ok {
		n, err = dst.ReadFrom(raw)
	} else if wt, ok := raw.(io.WriterTo); ok {
		n, err = wt.WriteTo(w)
	} else {
		n, err = io.Copy(w, readerOnly{raw})
	}
	return early + n, err
}

// rawReader readies the connection for reading straight from the
// underlying connection: handshake done, proof sent, verdict consumed.
func (c *Conn) rawReader() (net.Conn, error) {
	if err := c.readyToRead(); err != nil {
		return nil, err
	}
	if err := c.readVerdict(); err != nil {
		return nil, err
	}
	return c.conn, nil
}

type writerOnly struct{ io.Writer }
type readerOnly struct{ io.Reader }

// LocalAddr returns the local network address.
func (c *Conn) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// RemoteAddr returns the remote network address.
func (c *Conn) RemoteAddr() net.Addr { return c.conn.RemoteAddr() }

// SetDeadline sets the read and write deadlines. A deadline set before or
// during the handshake also bounds the handshake, and is restored after it.
func (c *Conn) SetDeadline(t time.Time) error {
	c.dlMu.Lock()
	defer c.dlMu.Unlock()
	c.readDL, c.writeDL = t, t
	return c.conn.SetDeadline(t)
}

// SetReadDeadline sets the read deadline; see SetDeadline.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.dlMu.Lock()
	defer c.dlMu.Unlock()
	c.readDL = t
	return c.conn.SetReadDeadline(t)
}

// SetWriteDeadline sets the write deadline; see SetDeadline.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.dlMu.Lock()
	defer c.dlMu.Unlock()
	c.writeDL = t
	return c.conn.SetWriteDeadline(t)
}

// NetConn returns the underlying connection. Reading or writing it directly
// bypasses the pending handshake message (a client's proof, a server's
// verdict), on a client the verdict still to be read, and on a server the
// first application bytes, which arrived with the client's proof and wait
// in the Conn for its first Read: use it for inspection and socket
// options, not for data.
func (c *Conn) NetConn() net.Conn { return c.conn }

// ConnectionState returns what the handshake established. It is cheap and
// safe to call at any time, for example from http.Server.ConnContext.
func (c *Conn) ConnectionState() ConnectionState {
	if !c.hsDone.Load() {
		return ConnectionState{IsClient: c.isClient}
	}
	return c.state
}

// ExportKeyingMaterial returns n bytes derived from the session secret, the
// label and the context, for channel binding. Both sides get the same bytes
// for the same label and context; no one without the key can compute them.
// It fails until the handshake has completed.
func (c *Conn) ExportKeyingMaterial(label string, context []byte, n int) ([]byte, error) {
	if !c.hsDone.Load() || c.hsErr != nil {
		return nil, errf(nil, "ExportKeyingMaterial before a successful handshake")
	}
	if c.cfg.recipe != nil {
		return nil, errf([]error{errors.ErrUnsupported}, "ExportKeyingMaterial: a WithRecipe connection has no session secret")
	}
	if n < 0 {
		return nil, errf(nil, "ExportKeyingMaterial(%d bytes): want a length of 0 or more", n)
	}
	if len(label) > 0xFFFF || len(context) > 0xFFFF {
		return nil, errf(nil, "ExportKeyingMaterial: label (%d bytes) and context (%d bytes) must each be at most 65535 bytes", len(label), len(context))
	}
	h := c.state.Suite.newHash()
	secret, err := c.sessionSecret()
	if err != nil {
		return nil, err
	}
	info := make([]byte, 0, len(labelExporter)+4+len(label)+len(context))
	info = append(info, labelExporter...)
	info = append(info, byte(len(label)>>8), byte(len(label)))
	info = append(info, label...)
	info = append(info, byte(len(context)>>8), byte(len(context)))
	info = append(info, context...)
	out, err := hkdf.Expand(h, secret, string(info), n)
	if err != nil {
		return nil, errf([]error{err}, "ExportKeyingMaterial(%d bytes): %v", n, err)
	}
	return out, nil
}
