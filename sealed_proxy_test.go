package auth

import (
	"io"
	"net"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// proxyAction is what the in-the-middle proxy does to one record.
type proxyAction int

const (
	actNone   proxyAction = iota
	actFlip               // flip the low bit of one byte of the record
	actDrop               // do not forward the record
	actReplay             // forward the record twice
	actSwap               // forward the next record before this one
	actCut                // end the stream before the record
	actCutMid             // end the stream in the middle of the record
	actStall              // forward half the record, wait for release, then the rest
)

// proxyPlan says which record of which direction the proxy alters, and how.
// Records are counted from 0 after the handshake messages, the close record
// included.
type proxyPlan struct {
	s2c          bool // alter the server-to-client direction
	record       int
	action       proxyAction
	offset       int           // actFlip: byte of the record, header included
	release      chan struct{} // actStall
	rewriteOffer Mode          // rewrite the modes the client hello offers
	flipFin      bool          // flip a bit of the client's finished message
	verdict      byte          // if not zero, replace the server's verdict
}

// sealedProxy sits between a client and a server on loopback, forwards the
// handshake, then parses the record stream of each direction and alters it
// as planned. It records every byte it forwards.
type sealedProxy struct {
	t    testing.TB
	ln   net.Listener
	plan proxyPlan
	wg   sync.WaitGroup
	mu   sync.Mutex
	wire [2][]byte // c2s, s2c as forwarded
	up   net.Conn
	down net.Conn
}

func startSealedProxy(t testing.TB, upstream string, plan proxyPlan) *sealedProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &sealedProxy{t: t, ln: ln, plan: plan}
	p.wg.Go(func() {
		down, err := ln.Accept()
		ln.Close()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", upstream)
		if err != nil {
			down.Close()
			return
		}
		p.mu.Lock()
		p.up, p.down = up, down
		p.mu.Unlock()
		var pumps sync.WaitGroup
		pumps.Go(func() { p.pump(down, up, 0) })
		pumps.Go(func() { p.pump(up, down, 1) })
		pumps.Wait()
		up.Close()
		down.Close()
	})
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		if p.up != nil {
			p.up.Close()
			p.down.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *sealedProxy) addr() string { return p.ln.Addr().String() }

// wait waits for both directions to end and returns what was forwarded.
func (p *sealedProxy) wait() [2][]byte {
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.wire
}

// readSized reads one self-delimiting handshake message without reading
// past it.
func readSized(r io.Reader, size func([]byte) (int, error)) ([]byte, error) {
	buf := make([]byte, 0, 512)
	for {
		want, err := size(buf)
		if err != nil {
			return nil, err
		}
		if len(buf) >= want {
			return buf, nil
		}
		n := len(buf)
		buf = buf[:want]
		if _, err := io.ReadFull(r, buf[n:]); err != nil {
			return nil, err
		}
	}
}

// pump forwards src to dst; dir is 0 for client to server.
func (p *sealedProxy) pump(src, dst net.Conn, dir int) {
	defer func() {
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		io.Copy(io.Discard, src) // let the writer finish
	}()
	send := func(b []byte) bool {
		p.mu.Lock()
		p.wire[dir] = append(p.wire[dir], b...)
		p.mu.Unlock()
		_, err := dst.Write(b)
		return err == nil
	}
	// The handshake: client hello and finished one way, server hello and
	// verdict the other.
	if dir == 0 {
		ch, err := readSized(src, clientHelloSize)
		if err != nil {
			return
		}
		if p.plan.rewriteOffer != 0 {
			ch[6] = byte(p.plan.rewriteOffer)
		}
		fin := make([]byte, 1+32)
		if !send(ch) {
			return
		}
		if _, err := io.ReadFull(src, fin); err != nil {
			return
		}
		if p.plan.flipFin {
			fin[10] ^= 1
		}
		if !send(fin) {
			return
		}
	} else {
		sh, err := readSized(src, serverHelloSize)
		if err != nil || !send(sh) {
			return
		}
		v := make([]byte, 1)
		if _, err := io.ReadFull(src, v); err != nil {
			return
		}
		if p.plan.verdict != 0 {
			v[0] = p.plan.verdict
		}
		if !send(v) {
			return
		}
	}
	alter := p.plan.s2c == (dir == 1)
	var held []byte
	for i := 0; ; i++ {
		rec := make([]byte, recordHeaderLen)
		if _, err := io.ReadFull(src, rec); err != nil {
			return
		}
		n := int(rec[1])<<16 | int(rec[2])<<8 | int(rec[3])
		rec = append(rec, make([]byte, n)...)
		if _, err := io.ReadFull(src, rec[recordHeaderLen:]); err != nil {
			return
		}
		if held != nil {
			ok := send(rec) && send(held)
			held = nil
			if !ok {
				return
			}
			continue
		}
		if !alter || i != p.plan.record {
			if !send(rec) {
				return
			}
			continue
		}
		switch p.plan.action {
		case actFlip:
			rec[p.plan.offset] ^= 0x01
			send(rec)
		case actDrop:
		case actReplay:
			send(rec)
			send(rec)
		case actSwap:
			held = rec
		case actCut:
			return
		case actCutMid:
			send(rec[:len(rec)/2])
			return
		case actStall:
			send(rec[:len(rec)/2])
			<-p.plan.release
			send(rec[len(rec)/2:])
		default:
			send(rec)
		}
	}
}

// wireRecordTypes returns the types of the records in one direction of
// the stream the proxy forwarded (dir 0 is client to server), after the
// handshake messages.
func wireRecordTypes(t testing.TB, wire []byte, dir int) []byte {
	t.Helper()
	size, skip := clientHelloSize, 1+32 // the client's finished message
	if dir == 1 {
		size, skip = serverHelloSize, 1 // the verdict
	}
	n, err := size(wire)
	require.NoError(t, err)
	wire = wire[n+skip:]
	var types []byte
	for len(wire) > 0 {
		require.GreaterOrEqual(t, len(wire), recordHeaderLen, "a partial record header at the end")
		h, err := parseRecordHeader(wire)
		require.NoError(t, err)
		types = append(types, h.typ)
		wire = wire[recordHeaderLen+h.bodyLen:]
	}
	return types
}
