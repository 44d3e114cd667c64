package auth

import "io"

// A server reads the client's proof together with whatever the client sent
// behind it that has already arrived, usually its first request: one read
// instead of two. The read goes into the handshake's own buffer, so a
// handshake waiting for a proof holds no more memory than before; the
// bytes behind the proof are then copied into a pooled buffer where they
// wait for the application's first Read (or io.Copy), and the buffer goes
// back to the pool once they have been read or the Conn is closed. In a
// sealed mode they are the first records and start the record layer's
// read buffer instead (sealEarly). Nothing reaches the application before
// the proof has verified: a failed handshake drops them with the
// connection.

// The early bytes come out of a handshake buffer, so a read buffer holds
// them all.
const _ = uint(pooledReadBufLen - hsBufLen)

// keepEarly keeps a copy of b, the bytes read behind the client's proof,
// for the application.
func (c *Conn) keepEarly(b []byte) {
	buf := readBufs.Get().(*[pooledReadBufLen]byte)
	c.earlyBuf, c.early = buf, buf[:copy(buf[:], b)]
	c.hasEarly.Store(true)
}

// sealEarly hands early bytes to the record layer of a sealed Conn as the
// start of its read buffer. It runs in the handshake, before the Conn is
// handed out.
func (c *Conn) sealEarly() {
	if c.earlyBuf == nil || c.seal == nil {
		return
	}
	s := c.seal
	s.rbuf, s.roff, s.rend = c.earlyBuf[:], 0, len(c.early)
	c.earlyBuf, c.early = nil, nil
	c.hasEarly.Store(false)
}

// readEarly copies early bytes into p. It reports false, reading nothing,
// if there were none left.
func (c *Conn) readEarly(p []byte) (int, bool) {
	c.verdMu.Lock()
	defer c.verdMu.Unlock()
	if len(c.early) == 0 {
		return 0, false
	}
	n := copy(p, c.early)
	c.early = c.early[n:]
	if len(c.early) == 0 {
		c.releaseEarlyLocked()
	}
	return n, true
}

// writeEarly writes the early bytes to w, for io.Copy out of the Conn,
// before the copy moves on to the underlying connection.
func (c *Conn) writeEarly(w io.Writer) (int64, error) {
	if !c.hasEarly.Load() {
		return 0, nil
	}
	c.verdMu.Lock()
	defer c.verdMu.Unlock()
	if len(c.early) == 0 {
		return 0, nil
	}
	n, err := w.Write(c.early)
	c.early = c.early[n:]
	if err == nil && len(c.early) > 0 {
		err = io.ErrShortWrite
	}
	if len(c.early) == 0 {
		c.releaseEarlyLocked()
	}
	return int64(n), err
}

// dropEarly releases early bytes nobody read, on Close.
func (c *Conn) dropEarly() {
	if !c.hasEarly.Load() {
		return
	}
	c.verdMu.Lock()
	c.releaseEarlyLocked()
	c.verdMu.Unlock()
}

// releaseEarlyLocked returns the early buffer to the pool. Called with
// verdMu held.
func (c *Conn) releaseEarlyLocked() {
	if c.earlyBuf != nil {
		putReadBuf(c.earlyBuf[:])
	}
	c.earlyBuf, c.early = nil, nil
	c.hasEarly.Store(false)
}
