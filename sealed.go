package auth

import (
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/bits"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Errors of the sealed modes. Each wraps ErrProtocol: the connection is
// ended, and no byte of the offending record reaches the reader.
var (
	// ErrRecordAuth reports a sealed record that did not authenticate: a
	// byte of it was altered, or records were reordered, replayed or
	// dropped on the way, or the peer does not hold the session's keys.
	ErrRecordAuth = fmt.Errorf("%w: a sealed record did not authenticate", ErrProtocol)

	// ErrTruncated reports a sealed stream that ended without the peer's
	// authenticated close record: someone on the path cut it short, or the
	// peer crashed. It also matches io.ErrUnexpectedEOF.
	ErrTruncated = fmt.Errorf("%w: the sealed stream ended without a close record", ErrProtocol)
)

// modesSealed is every sealed mode, in the server's order of preference.
const modesSealed = ModeSealedAES256GCM | ModeSealedChaCha20Poly1305

// modesKnown is every mode this implementation speaks.
const modesKnown = ModeAuthOnly | modesSealed

// Sealed reports whether m is a sealed mode: one that encrypts and
// authenticates every byte after the handshake.
func (m Mode) Sealed() bool {
	return bits.OnesCount8(uint8(m)) == 1 && m&modesSealed != 0
}

// modeSetString names a set of modes, for errors and logs.
func modeSetString(m Mode) string {
	var names []string
	for _, one := range []Mode{ModeAuthOnly, ModeSealedAES256GCM, ModeSealedChaCha20Poly1305} {
		if m&one != 0 {
			names = append(names, one.String())
			m &^= one
		}
	}
	if m != 0 || len(names) == 0 {
		names = append(names, fmt.Sprintf("Mode(%#02x)", uint8(m)))
	}
	return strings.Join(names, "|")
}

// WithSealed makes this side require a sealed mode: after the handshake
// every byte is encrypted and authenticated in records keyed from the
// session secret, and a truncated, altered, reordered or replayed stream
// ends the connection with an error. Give it to both the listener and the
// dialer; a peer without it fails the handshake with ErrNegotiation. The
// server prefers AES-256-GCM and uses ChaCha20-Poly1305 when the client
// offers only that (see WithModes).
func WithSealed() Option {
	return func(c *config) error {
		c.modes = modesSealed
		return nil
	}
}

// WithModes sets the modes this side accepts, replacing the default
// (ModeAuthOnly) or WithSealed. The server picks, among the modes both
// sides accept, the first of ModeSealedAES256GCM,
// ModeSealedChaCha20Poly1305 and ModeAuthOnly; the order of the arguments
// does not matter. For example, WithModes(ModeSealedChaCha20Poly1305)
// requires ChaCha20-Poly1305, and a server given
// WithModes(ModeSealedAES256GCM, ModeAuthOnly) seals connections from
// clients that offer it and still accepts auth-only clients.
func WithModes(modes ...Mode) Option {
	return func(c *config) error {
		var set Mode
		for _, m := range modes {
			if bits.OnesCount8(uint8(m)) != 1 || m&modesKnown == 0 {
				return errf(nil, "WithModes: unknown mode %v", m)
			}
			set |= m
		}
		if set == 0 {
			return errf(nil, "WithModes: want at least one mode")
		}
		c.modes = set
		return nil
	}
}

// noCommonModeHint says what to change when the two sides share no mode.
// local is what this side accepts, peer what the client offered (zero on a
// client, which does not learn what the server accepts).
func noCommonModeHint(local, peer Mode, isClient bool) string {
	switch {
	case isClient && local&ModeAuthOnly == 0:
		return fmt.Sprintf("this client requires the sealed mode (%v) and the server does not offer it, or not with these ciphers: give auth.WithSealed() to the server's listener too (or drop it from this dialer), and check WithModes on both sides", local)
	case isClient:
		return fmt.Sprintf("this client offers %v and the server probably requires the sealed mode: give auth.WithSealed() to this dialer too", local)
	case peer&ModeAuthOnly == 0 && peer&modesSealed != 0 && local&modesSealed == 0:
		return fmt.Sprintf("the client requires the sealed mode (%v) and this server does not offer it: give auth.WithSealed() to this listener too", peer)
	case peer&modesSealed == 0 && local&ModeAuthOnly == 0:
		return fmt.Sprintf("this server requires the sealed mode (%v) and the client offers only %v: give auth.WithSealed() to the client's dialer too", local, peer)
	}
	return fmt.Sprintf("the client offers %v and this server accepts %v: check WithSealed and WithModes on both sides", peer, local)
}

// Tuning of the record layer, chosen by BenchmarkSealedRecordSize (16, 32
// and 64 KiB records; read buffers of one record, 256 KiB and 1 MiB; 32 KiB
// and 256 KiB writes): a read buffer of one record was clearly slower, the
// rest within noise, so records are as large as allowed and reads batch up
// to 256 KiB. Tests may lower them.
var (
	// sealRecordSize is the most plaintext a writer puts in one record. A
	// Write of up to this size goes out as a single record.
	sealRecordSize = MaxRecordPlaintext
	// sealWriteBatch is the most plaintext sealed into one system call.
	sealWriteBatch = 256 << 10
	// sealReadBufMin and sealReadBufMax bound the read buffer, which grows
	// while reads fill it.
	sealReadBufMin = pooledReadBufLen
	sealReadBufMax = 256 << 10
)

// pooledReadBufLen is the size of the read buffers that are pooled: the
// first one of every connection, which is all a connection exchanging
// small messages ever uses.
const pooledReadBufLen = 1 << 10

// readBufs pools read buffers of pooledReadBufLen bytes.
var readBufs = sync.Pool{New: func() any { return new([pooledReadBufLen]byte) }}

// newReadBuf returns a read buffer of n bytes, from the pool if it has
// the pooled size.
func newReadBuf(n int) []byte {
	if n == pooledReadBufLen {
		return readBufs.Get().(*[pooledReadBufLen]byte)[:]
	}
	return make([]byte, n)
}

// putReadBuf clears b and returns it to the pool if it has the pooled
// size. Nothing may refer to b afterwards.
func putReadBuf(b []byte) {
	if cap(b) == pooledReadBufLen {
		p := (*[pooledReadBufLen]byte)(b[:pooledReadBufLen])
		clear(p[:])
		readBufs.Put(p)
	}
}

// sealCloseTimeout bounds how long Close waits to send the close record to
// a peer that does not read.
const sealCloseTimeout = time.Second

// errWriteClosed is what a Write after CloseWrite or Close returns.
var errWriteClosed = errf([]error{net.ErrClosed}, "write after CloseWrite: this side of the sealed connection is closed for writing")

// errReadClosed is what a Read after Close returns.
var errReadClosed = errf([]error{net.ErrClosed}, "read after Close: the sealed connection is closed")

// sealState is the record layer of a sealed Conn. Reading and writing have
// their own state and lock, so one goroutine may read while another writes.
type sealState struct {
	secret    []byte // the session secret, in secretBuf
	secretBuf [sha512.Size]byte

	// peerClosed is set once the peer's close record (not close-write)
	// has arrived: the peer reads nothing more, so this side sends no
	// close record of its own.
	peerClosed atomic.Bool

	rmu   sync.Mutex
	in    *recordCipher // &inC, or nil until the first Read on a client
	inC   recordCipher
	rbuf  []byte // rbuf[roff:rend] is received and not yet processed
	roff  int
	rend  int
	rfull bool   // the last read filled rbuf: grow it
	plain []byte // opened plaintext not yet returned, inside rbuf
	rerr  error  // sticky: io.EOF after a close record, or a fatal error

	wmu    sync.Mutex
	out    *recordCipher // &outC
	outC   recordCipher
	wbuf   []byte
	wsmall [128]byte // wbuf's first backing array: room for small writes
	werr   error     // sticky: a failed write, or errWriteClosed
	closed bool      // no more records: a close record has been sent
}

// startSealed sets up the record layer once the handshake has succeeded in
// a sealed mode. It runs before the handshake is marked done, so every
// Read and Write sees c.seal.
func (c *Conn) startSealed() error {
	if !c.state.Mode.Sealed() || c.seal != nil {
		return nil
	}
	k := getKDF(c.state.Suite)
	defer putKDF(c.state.Suite, k)
	return c.startSealedWith(k)
}

// startSealedWith is startSealed with the scratch space of k.
func (c *Conn) startSealedWith(k *kdf) error {
	mode, suite := c.state.Mode, c.state.Suite
	outLabel, inLabel := labelSealedS2C, labelSealedC2S
	if c.isClient {
		outLabel, inLabel = labelSealedC2S, labelSealedS2C
	}
	s := new(sealState)
	s.secret = c.deriveSessionSecret(k, s.secretBuf[:0])
	s.wbuf = s.wsmall[:0]
	s.outC.init(mode, suite, s.secret, outLabel)
	s.inC.init(mode, suite, s.secret, inLabel)
	s.out = &s.outC
	err := s.outC.setKeys(k)
	// A client derives its reading keys on its first Read, while the
	// server works on its first request; a server derives both here,
	// ahead of the client's proof (see presealServer).
	if err == nil && !c.isClient {
		err = s.inC.setKeys(k)
		s.in = &s.inC
	}
	if err != nil {
		return sealedKeysErr(err)
	}
	c.seal = s
	return nil
}

// deriveIn derives the reading keys if they are not yet: a client does on
// its first Read. Called with rmu held.
func (s *sealState) deriveIn() error {
	if s.in != nil {
		return nil
	}
	if err := s.inC.deriveKeys(); err != nil {
		return err
	}
	s.in = &s.inC
	return nil
}

// sealedKeysErr wraps an error of the sealed key schedule.
func sealedKeysErr(err error) error {
	return errf([]error{err}, "deriving sealed keys: %v", err)
}

// presealServer derives a server's record keys while the client's proof is
// still on its way, so the derivation overlaps the network round trip
// instead of delaying the first record. th holds the transcript up to the
// server hello with its proof, and proof is the client proof the server
// expects: the transcript hash, and so the keys, are exactly those of the
// handshake if it succeeds. If it fails, the handshake drops them.
func (c *Conn) presealServer(th hash.Hash, proof, key []byte) {
	if !c.state.Mode.Sealed() {
		return
	}
	k := getKDF(c.state.Suite)
	defer putKDF(c.state.Suite, k)
	if !k.copyState(th) {
		return // startSealed derives the keys after the handshake
	}
	k.h.Write(clientFinishedType)
	k.h.Write(proof)
	// The handshake puts the same transcript hash in thBuf if it succeeds.
	c.th, c.key = k.h.Sum(c.thBuf[:0]), key
	if c.startSealedWith(k) != nil {
		c.seal = nil
	}
}

// clientFinishedType is the type byte of the client's finished message,
// as a slice for hash.Hash.Write. Nothing may modify it.
var clientFinishedType = []byte{msgClientFinished}

// isSealed runs the handshake if needed and reports whether the connection
// is sealed.
func (c *Conn) isSealed() bool { return c.Handshake() == nil && c.seal != nil }

// sealedRead is Read in a sealed mode, after the handshake and the pending
// proof. It returns the plaintext of as many complete records as fit in p
// without blocking again, opening each straight into p when it fits.
func (c *Conn) sealedRead(p []byte) (int, error) {
	s := c.seal
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if len(s.plain) > 0 {
		n := copy(p, s.plain)
		s.plain = s.plain[n:]
		return n, nil
	}
	if s.rerr != nil {
		return 0, s.rerr
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := s.deriveIn(); err != nil {
		return 0, c.sealedReadFail(sealedKeysErr(err))
	}
	n := 0
	for {
		if s.rend-s.roff >= recordHeaderLen {
			hdr := s.rbuf[s.roff : s.roff+recordHeaderLen]
			h, err := parseRecordHeader(hdr)
			if err != nil {
				return n, c.sealedReadFail(err)
			}
			end := s.roff + recordHeaderLen + h.bodyLen
			if end <= s.rend {
				body := s.rbuf[s.roff+recordHeaderLen : end]
				if h.typ != recordTypeData {
					if _, err := s.in.open(nil, hdr, body); err != nil {
						return n, c.sealedReadFail(err)
					}
					if h.typ == recordTypeClose {
						s.peerClosed.Store(true)
					}
					s.roff = end
					s.rerr = io.EOF
					if n > 0 {
						return n, nil
					}
					return 0, io.EOF
				}
				plen := h.bodyLen - recordTagLen
				if plen <= len(p)-n {
					if _, err := s.in.open(p[n:n], hdr, body); err != nil {
						return n, c.sealedReadFail(err)
					}
					s.roff = end
					n += plen
					if n == len(p) {
						return n, nil
					}
					continue
				}
				if n > 0 {
					return n, nil
				}
				pt, err := s.in.open(body[:0], hdr, body)
				if err != nil {
					return 0, c.sealedReadFail(err)
				}
				s.roff = end
				n = copy(p, pt)
				s.plain = pt[n:]
				return n, nil
			}
		}
		if n > 0 {
			return n, nil
		}
		if err := c.sealedFill(); err != nil {
			return 0, err
		}
	}
}

// sealedFill reads more of the stream into rbuf, keeping the bytes of a
// partial record: a Read that times out loses nothing. On a client, the
// server's verdict byte comes first and is consumed here.
//
// Its frame and sealedRead's are kept small, as are the frames of the key
// schedule: they sit on the stack of a goroutine that is often new, and
// growing that stack costs more than the cryptography here.
func (c *Conn) sealedFill() error {
	s := c.seal
	s.makeRoom()
	free := len(s.rbuf) - s.rend
	n, err := c.conn.Read(s.rbuf[s.rend:])
	s.rfull = n == free
	if n > 0 && c.needVerdict.Load() {
		consumed, verr := c.sealedVerdict(s.rbuf[s.rend])
		if verr != nil {
			return verr
		}
		if consumed {
			s.roff++ // the verdict precedes every record: roff == rend here
		}
	}
	s.rend += n
	switch {
	case n > 0 || err == nil:
		return nil
	case c.needVerdict.Load():
		c.verdMu.Lock()
		defer c.verdMu.Unlock()
		return c.verdictReadErr(err)
	case errors.Is(err, io.EOF):
		return c.sealedTruncated()
	}
	return err // a deadline or a reset; a deadline keeps the partial record
}

// makeRoom makes room in rbuf for at least the rest of the record at roff,
// or a header if there is none, growing rbuf if it is too small or the
// last read filled it.
func (s *sealState) makeRoom() {
	if s.roff == s.rend {
		s.roff, s.rend = 0, 0
	}
	need := recordHeaderLen
	if s.rend-s.roff >= recordHeaderLen {
		h, _ := parseRecordHeader(s.rbuf[s.roff:s.rend]) // checked by sealedRead
		need += h.bodyLen
	}
	switch size := len(s.rbuf); {
	case size < need || s.rfull && size < sealReadBufMax:
		size = max(need, min(2*size, sealReadBufMax), sealReadBufMin)
		buf := newReadBuf(size)
		s.rend = copy(buf, s.rbuf[s.roff:s.rend])
		putReadBuf(s.rbuf) // s.plain is empty: nothing else refers to it
		s.roff, s.rbuf, s.plain = 0, buf, nil
	case s.roff+need > size:
		s.rend = copy(s.rbuf, s.rbuf[s.roff:s.rend])
		s.roff = 0
	}
}

// sealedTruncated ends the connection whose stream ended without a close
// record.
func (c *Conn) sealedTruncated() error {
	s := c.seal
	what := "between records"
	if s.rend > s.roff {
		what = fmt.Sprintf("%d bytes into a record", s.rend-s.roff)
	}
	return c.sealedReadFail(errf([]error{ErrTruncated, io.ErrUnexpectedEOF}, "%s closed the connection %s without a sealed close record, after %d records: the stream was cut short on the way or the peer crashed", c.conn.RemoteAddr(), what, s.in.seq))
}

// sealedVerdict consumes the server's verdict byte v, the first byte of a
// read, and reports whether it did: if the verdict was read already
// (readVerdict), v is a record's first byte and must stay.
func (c *Conn) sealedVerdict(v byte) (consumed bool, err error) {
	c.verdMu.Lock()
	defer c.verdMu.Unlock()
	if !c.needVerdict.Load() {
		return false, nil
	}
	return true, c.verdict(v)
}

// sealedReadFail ends the connection after a record-layer failure: the
// error sticks to every later Read and Write.
func (c *Conn) sealedReadFail(err error) error {
	c.seal.rerr = err
	err = c.fail(err)
	c.conn.Close()
	return err
}

// sealedWrite is Write in a sealed mode. It seals p into records and sends
// them with as few system calls as the batch size allows; a client's
// pending proof goes out in front, in the same system call. A failed write
// leaves the stream unusable, so the error sticks.
func (c *Conn) sealedWrite(p []byte) (int, error) {
	s := c.seal
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.werr != nil {
		return 0, s.werr
	}
	// Take the client's pending proof without holding pendMu while it is
	// written: a Read waiting in flush must be free to go on and read the
	// verdict, or an unbuffered connection such as net.Pipe deadlocks.
	var fin []byte
	if c.hasPending.Load() {
		c.pendMu.Lock()
		fin, c.pending = c.pending, nil
		c.hasPending.Store(false)
		c.pendMu.Unlock()
	}
	sent := 0
	for len(p) > 0 || fin != nil {
		chunk := min(len(p), sealWriteBatch)
		records := (chunk + sealRecordSize - 1) / sealRecordSize
		buf := s.writeBuf(len(fin) + chunk + records*(recordHeaderLen+recordTagLen))
		buf = append(buf, fin...)
		for off := 0; off < chunk; {
			m := min(chunk-off, sealRecordSize)
			var err error
			if buf, err = s.out.seal(buf, recordTypeData, p[off:off+m]); err != nil {
				s.werr = err
				return sent, err
			}
			off += m
		}
		if _, err := c.conn.Write(buf); err != nil {
			return sent, c.sealedWriteErr(err, fin != nil)
		}
		fin = nil
		sent += chunk
		p = p[chunk:]
	}
	return sent, nil
}

// sealedWriteErr makes err, from writing records behind the pending
// handshake message if pending is set, stick to the connection's writes,
// and returns it. A handshake message that was not sent fails the
// connection.
func (c *Conn) sealedWriteErr(err error, pending bool) error {
	s := c.seal
	if pending {
		s.werr = c.fail(c.pendingErr(err))
	} else {
		s.werr = errf([]error{err}, "sealed write to %s failed, the connection can no longer be written: %v", c.conn.RemoteAddr(), err)
	}
	return s.werr
}

// writeBuf returns the write buffer, empty, with room for n bytes.
func (s *sealState) writeBuf(n int) []byte {
	if cap(s.wbuf) < n {
		s.wbuf = make([]byte, 0, n)
	}
	return s.wbuf[:0]
}

// sendClose sends the authenticated close record of type typ
// (recordTypeCloseWrite or recordTypeClose), behind the pending handshake
// message (a client's proof, a server's verdict), and closes this side for
// writing. It sends nothing once the peer's close record has arrived: the
// peer reads nothing more, and bytes sent to a closed socket only provoke a
// reset. Called with wmu held.
//
// The close record of Close goes out with the FIN when it can (see
// sendBeforeFIN), and otherwise waits at most sealCloseTimeout for a peer
// that does not read.
func (c *Conn) sendClose(typ byte) error {
	s := c.seal
	if s.closed {
		return nil
	}
	s.closed = true
	if s.werr != nil {
		return s.werr
	}
	s.werr = errWriteClosed
	var fin []byte
	if c.hasPending.Load() && c.pendMu.TryLock() {
		defer c.pendMu.Unlock()
		fin, c.pending = c.pending, nil
		c.hasPending.Store(false)
	}
	if s.peerClosed.Load() {
		// Only a server can have a message pending here (a client's proof
		// precedes every record the server sends): its verdict, which a
		// client that has closed will not read either.
		return nil
	}
	buf := append(s.writeBuf(len(fin)+recordHeaderLen+recordTagLen), fin...)
	buf, err := s.out.seal(buf, typ, nil)
	if err != nil {
		return err
	}
	if typ == recordTypeClose {
		if buf = buf[sendBeforeFIN(c.conn, buf):]; len(buf) == 0 {
			return nil
		}
		c.conn.SetWriteDeadline(time.Now().Add(sealCloseTimeout))
	}
	if _, err := c.conn.Write(buf); err != nil {
		return errf([]error{err}, "sending the sealed close record to %s: %v", c.conn.RemoteAddr(), err)
	}
	return nil
}

// sealedCloseWrite is CloseWrite in a sealed mode: it sends the
// close-write record, so the peer reads io.EOF, and then shuts down the
// writing side of the underlying connection if it can. Half-close works
// even over connections that cannot shut down one side, such as net.Pipe.
func (c *Conn) sealedCloseWrite() error {
	s := c.seal
	s.wmu.Lock()
	err := c.sendClose(recordTypeCloseWrite)
	s.wmu.Unlock()
	if err != nil {
		return err
	}
	if cw, ok := c.conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// sealedClose sends the close record before Close closes the underlying
// connection, unless a Write is in progress: a Close that races a Write is
// taken as a way to abort it, as crypto/tls does. It also returns the read
// buffer to its pool, unless a Read is in progress.
func (c *Conn) sealedClose() {
	s := c.seal
	if s.rmu.TryLock() {
		// A later Read takes rmu and stops at rerr: nothing touches the
		// buffer after it is returned. An error other than io.EOF stays.
		if s.rerr == nil || s.rerr == io.EOF {
			s.rerr = errReadClosed
		}
		putReadBuf(s.rbuf)
		s.rbuf, s.plain, s.roff, s.rend = nil, nil, 0, 0
		s.rmu.Unlock()
	}
	if !s.wmu.TryLock() {
		return
	}
	defer s.wmu.Unlock()
	c.sendClose(recordTypeClose)
}

// sealedReadFrom is ReadFrom in a sealed mode: the bytes go through the
// record layer, never around it.
func (c *Conn) sealedReadFrom(r io.Reader) (int64, error) {
	var buf []byte
	if _, ok := r.(io.WriterTo); !ok {
		buf = make([]byte, sealRecordSize)
	}
	return io.CopyBuffer(writerOnly{c}, r, buf)
}

// sealedWriteTo is WriteTo in a sealed mode: it copies the opened
// plaintext to w until the peer's close record, through Read (readerOnly
// hides this method from io.Copy, so it does not come back here).
func (c *Conn) sealedWriteTo(w io.Writer) (int64, error) {
	return io.CopyBuffer(w, readerOnly{c}, make([]byte, MaxRecordPlaintext))
}
