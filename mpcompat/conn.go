package mpcompat

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/hmacauth/auth"
)

// Conn is an authenticated multiprocessing.connection peer. It exchanges
// byte messages with Connection.send_bytes and recv_bytes on the Python
// side. SendBytes and RecvBytes are each safe to call from several
// goroutines; messages are never interleaved.
type Conn struct {
	conn       net.Conn
	state      ConnectionState
	maxMsg     int64
	longFormAt int64 // messages longer than this use the -1 form

	wmu  sync.Mutex
	werr error // sticky: a message was partly written
	hdr  [longHeaderLen]byte

	rmu  sync.Mutex
	rerr error // sticky: the stream is no longer at a message boundary
}

// aLongTimeAgo is a deadline in the past: setting it unblocks any I/O.
var aLongTimeAgo = time.Unix(1, 0)

// handshake authenticates raw as the listening side (deliver, then answer)
// or the connecting side (answer, then deliver). On failure it closes raw.
func handshake(ctx context.Context, raw net.Conn, key []byte, cfg *Config, isClient bool) (*Conn, error) {
	start := time.Now()
	h := &handshaker{rw: raw, key: key, cfg: cfg, st: ConnectionState{IsClient: isClient}}
	var err error
	if err = ctx.Err(); err == nil {
		var deadline time.Time
		if cfg.HandshakeTimeout > 0 {
			deadline = start.Add(cfg.HandshakeTimeout)
		}
		if d, ok := ctx.Deadline(); ok && (deadline.IsZero() || d.Before(deadline)) {
			deadline = d
		}
		raw.SetDeadline(deadline)
		var (
			mu       sync.Mutex
			finished bool
		)
		stop := context.AfterFunc(ctx, func() {
			mu.Lock()
			defer mu.Unlock()
			if !finished {
				raw.SetDeadline(aLongTimeAgo)
			}
		})
		if isClient {
			if err = h.answerChallenge(); err == nil {
				err = h.deliverChallenge()
			}
		} else {
			if err = h.deliverChallenge(); err == nil {
				err = h.answerChallenge()
			}
		}
		stop()
		mu.Lock()
		finished = true
		mu.Unlock()
	}
	if err != nil {
		err = explain(ctx, raw, err, time.Since(start))
		raw.Close()
	} else {
		raw.SetDeadline(time.Time{})
	}
	report(cfg, raw, h.st, start, err)
	if err != nil {
		return nil, err
	}
	return &Conn{conn: raw, state: h.st, maxMsg: cfg.MaxMessageSize, longFormAt: maxShortForm}, nil
}

// explain turns a handshake failure into the error the caller sees.
func explain(ctx context.Context, raw net.Conn, err error, took time.Duration) error {
	var we *wrapError
	switch {
	case ctx.Err() != nil && !errors.As(err, &we):
		cause := []error{ctx.Err()}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			cause = append(cause, os.ErrDeadlineExceeded)
		}
		return errorf(cause, "handshake with %s interrupted after %v: %v", raw.RemoteAddr(), took.Round(time.Millisecond), ctx.Err())
	case errors.Is(err, os.ErrDeadlineExceeded):
		return errorf([]error{os.ErrDeadlineExceeded}, "handshake with %s timed out after %v (is the peer a multiprocessing.connection Listener or Client with an authkey?)", raw.RemoteAddr(), took.Round(time.Millisecond))
	case errors.As(err, &we):
		return errorf([]error{err}, "handshake with %s: %s", raw.RemoteAddr(), we.Msg[len("mpcompat: "):])
	}
	return errorf([]error{auth.ErrProtocol, err}, "handshake with %s failed: %v", raw.RemoteAddr(), err)
}

// report tells the hook and the logger how a handshake ended.
func report(cfg *Config, raw net.Conn, st ConnectionState, start time.Time, err error) {
	if cfg.HandshakeHook == nil && cfg.Logger == nil {
		return
	}
	ev := HandshakeEvent{IsClient: st.IsClient, LocalAddr: raw.LocalAddr(), RemoteAddr: raw.RemoteAddr(), State: st, Duration: time.Since(start), Err: err}
	if cfg.HandshakeHook != nil {
		cfg.HandshakeHook(ev)
	}
	if cfg.Logger == nil {
		return
	}
	attrs := []slog.Attr{
		slog.Bool("client", ev.IsClient),
		slog.Any("remote", ev.RemoteAddr),
		slog.Duration("duration", ev.Duration),
		slog.Bool("legacy", st.Legacy),
	}
	if err != nil {
		attrs = append(attrs, slog.String("reason", err.Error()))
		cfg.Logger.LogAttrs(context.Background(), slog.LevelWarn, "mpcompat: handshake refused", attrs...)
		return
	}
	attrs = append(attrs, slog.String("local_answer", st.LocalAnswer), slog.String("peer_answer", st.PeerAnswer))
	cfg.Logger.LogAttrs(context.Background(), slog.LevelDebug, "mpcompat: handshake accepted", attrs...)
}

// SendBytes sends b as one message, which the Python side receives with
// Connection.recv_bytes. An empty message is allowed. A message of more
// than 2 GiB - 1 bytes goes in the -1 form, which Python 3.8 and later
// read. If a message could be written only in part, the connection can no
// longer be written and every later SendBytes returns the same error.
func (c *Conn) SendBytes(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return c.werr
	}
	bufs := net.Buffers{appendHeader(c.hdr[:0], len(b), c.longFormAt), b}
	want := int64(len(bufs[0]) + len(b))
	n, err := bufs.WriteTo(c.conn)
	if err == nil && n < want {
		err = io.ErrShortWrite
	}
	if err != nil {
		if n == 0 {
			return errorf([]error{err}, "sending a message of %d bytes: %v", len(b), err)
		}
		c.werr = errorf([]error{err}, "sending a message of %d bytes failed after %d bytes, so the connection can no longer be written: %v", len(b), n, err)
		return c.werr
	}
	return nil
}

// RecvBytes receives one message, which the Python side sent with
// Connection.send_bytes (or send, in which case it is a pickle). It
// returns io.EOF when the peer closed the connection between messages. A
// message longer than Config.MaxMessageSize fails with an error wrapping
// ErrMessageTooLarge. After an error in the middle of a message (a torn
// message, a timeout once part of it had arrived, an oversized message)
// every later RecvBytes returns the same error; a timeout before any byte
// of a message arrived can be retried.
func (c *Conn) RecvBytes() ([]byte, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.rerr != nil {
		return nil, c.rerr
	}
	size, got, err := readHeader(c.conn)
	if err != nil {
		switch {
		case got == 0 && err == io.EOF:
			c.rerr = io.EOF
			return nil, io.EOF
		case got == 0 && !isMpErr(err):
			return nil, errorf([]error{err}, "receiving a message: %v", err)
		}
		c.rerr = c.tornErr(err, "a message header")
		return nil, c.rerr
	}
	if size > uint64(c.maxMsg) {
		c.rerr = errorf([]error{ErrMessageTooLarge}, "the peer sent a message of %d bytes, more than MaxMessageSize (%d): raise Config.MaxMessageSize or send smaller messages; this connection can no longer be read", size, c.maxMsg)
		return nil, c.rerr
	}
	msg, err := readPayload(c.conn, size)
	if err != nil {
		c.rerr = c.tornErr(err, "a message of "+strconv.FormatUint(size, 10)+" bytes")
		return nil, c.rerr
	}
	return msg, nil
}

func isMpErr(err error) bool {
	var we *wrapError
	return errors.As(err, &we)
}

func (c *Conn) tornErr(err error, what string) error {
	if isMpErr(err) {
		return err
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return errorf([]error{auth.ErrProtocol, io.ErrUnexpectedEOF}, "the peer closed the connection in the middle of %s", what)
	}
	return errorf([]error{err}, "receiving %s failed part way, so the connection can no longer be read: %v", what, err)
}

// Close closes the connection.
func (c *Conn) Close() error { return c.conn.Close() }

// CloseWrite shuts down the writing side, if the connection supports it,
// so the peer's recv_bytes raises EOFError while this side can still read.
func (c *Conn) CloseWrite() error {
	cw, ok := c.conn.(interface{ CloseWrite() error })
	if !ok {
		return errorf([]error{errors.ErrUnsupported}, "CloseWrite: %T does not support half-close", c.conn)
	}
	return cw.CloseWrite()
}

// ConnectionState returns what the handshake established.
func (c *Conn) ConnectionState() ConnectionState { return c.state }

// LocalAddr returns the local network address.
func (c *Conn) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// RemoteAddr returns the remote network address.
func (c *Conn) RemoteAddr() net.Addr { return c.conn.RemoteAddr() }

// SetDeadline sets the deadline of SendBytes and RecvBytes.
func (c *Conn) SetDeadline(t time.Time) error { return c.conn.SetDeadline(t) }

// SetReadDeadline sets the deadline of RecvBytes.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.conn.SetReadDeadline(t) }

// SetWriteDeadline sets the deadline of SendBytes.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }

// NetConn returns the underlying connection. Reading or writing it
// directly breaks the message framing.
func (c *Conn) NetConn() net.Conn { return c.conn }
