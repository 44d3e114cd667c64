package auth

// This file holds the harness of the attack, flood and fuzz tests: an
// independent reference of the proofs (written from PROTOCOL.md, not from
// handshake.go, so a mistake in one does not hide in the other), a scripted
// raw-TCP client and server that speak the protocol by hand, and a test
// server that records the outcome of every handshake by remote address.

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"hash"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Fixed test keys, 32 bytes each.
var (
	atkKey      = []byte("hardening: the shared test key!!")
	atkOtherKey = []byte("hardening: a different test key!")
)

// atkTimeout bounds every blocking step of the harness: generous enough for
// -race on a loaded 2-core machine, short enough that a hang fails fast.
const atkTimeout = 20 * time.Second

// refHash is the suite's hash, looked up independently of suite.go.
func refHash(s Suite) func() hash.Hash {
	switch s {
	case 1:
		return sha256.New
	case 2:
		return sha512.New
	}
	panic("refHash: unknown suite")
}

// refTranscript hashes the concatenation of parts with the suite's hash.
func refTranscript(s Suite, parts ...[]byte) []byte {
	h := refHash(s)()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

func refMAC(s Suite, key []byte, label string, th []byte) []byte {
	m := hmac.New(refHash(s), key)
	m.Write([]byte(label))
	m.Write(th)
	return m.Sum(nil)
}

// refServerProof is HMAC(K, "hmacauth v1 server proof" || H(CH || SH
// without its proof)).
func refServerProof(s Suite, key, ch, shNoProof []byte) []byte {
	return refMAC(s, key, "hmacauth v1 server proof", refTranscript(s, ch, shNoProof))
}

// refFinished is 0x03 || HMAC(K, "hmacauth v1 client proof" || H(CH || SH)).
func refFinished(s Suite, key, ch, sh []byte) []byte {
	return append([]byte{0x03}, refMAC(s, key, "hmacauth v1 client proof", refTranscript(s, ch, sh))...)
}

// refServerHello builds a complete, correctly proved server hello for ch.
func refServerHello(s Suite, key, ch []byte) []byte {
	nonce := make([]byte, 32)
	rand.Read(nonce)
	sh := []byte{0x89, 'H', 'M', 'A', 0x02, 1, 0, byte(s), byte(ModeAuthOnly)}
	sh = append(sh, nonce...)
	return append(sh, refServerProof(s, key, ch, sh)...)
}

// atkHello returns a client hello with a fresh nonce.
func atkHello(keyID string, suites ...Suite) []byte {
	if len(suites) == 0 {
		suites = []Suite{SuiteHMACSHA256}
	}
	nonce := make([]byte, nonceLen)
	rand.Read(nonce)
	return marshalClientHello(nil, ModeAuthOnly, suites, keyID, nonce)
}

// atkDial opens a raw TCP connection with a deadline, closed at cleanup.
func atkDial(t testing.TB, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, atkTimeout)
	require.NoError(t, err)
	c.SetDeadline(time.Now().Add(atkTimeout))
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// atkWrite writes b or fails the test.
func atkWrite(t testing.TB, c net.Conn, b []byte) {
	t.Helper()
	_, err := c.Write(b)
	require.NoError(t, err)
}

// atkReadServerHello reads one server hello as the real client would.
func atkReadServerHello(t testing.TB, c net.Conn) []byte {
	t.Helper()
	sh, err := readMessage(c, make([]byte, maxServerHello), serverHelloSize)
	require.NoError(t, err)
	return append([]byte(nil), sh...)
}

// atkReadClientHello reads one client hello as the real server would.
func atkReadClientHello(t testing.TB, c net.Conn) []byte {
	t.Helper()
	ch, err := readMessage(c, make([]byte, maxClientHello), clientHelloSize)
	require.NoError(t, err)
	return append([]byte(nil), ch...)
}

// atkReadRest reads until the peer closes (or the deadline passes) and
// returns what arrived: it shows what a refused peer got to see.
func atkReadRest(t testing.TB, c net.Conn) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(atkTimeout))
	b, err := io.ReadAll(c)
	if err != nil {
		var ne net.Error
		require.False(t, errors.As(err, &ne) && ne.Timeout(), "the server left a refused connection open: %v", err)
	}
	return b
}

// atkSession is one handshake driven by the scripted client.
type atkSession struct {
	conn    *net.TCPConn
	suite   Suite
	ch, sh  []byte
	fin     []byte // the correct finished for this transcript under key
	verdict []byte // what the server sent after the finished
}

// atkGenuine runs a correct handshake by hand with key and keyID, so tests
// can record and replay real messages. It sends the finished, with one byte
// of data behind it for the echo application, and reads the verdict that
// comes in front of the echo.
func atkGenuine(t testing.TB, addr string, key []byte, keyID string, suites ...Suite) *atkSession {
	t.Helper()
	s := atkHandshakeUpTo(t, addr, key, keyID, suites...)
	s.verdict = atkFinishAndEcho(t, s.conn, s.fin)
	return s
}

// atkFinishAndEcho sends fin and one byte of data, reads the two bytes the
// echo server answers with and returns the first, the verdict, after
// checking that the second is the echo.
func atkFinishAndEcho(t testing.TB, c net.Conn, fin []byte) []byte {
	t.Helper()
	atkWrite(t, c, append(slices.Clone(fin), '!'))
	b := make([]byte, 2)
	c.SetReadDeadline(time.Now().Add(atkTimeout))
	_, err := io.ReadFull(c, b)
	require.NoError(t, err)
	require.Equal(t, byte('!'), b[1], "the echo behind the verdict")
	return b[:1]
}

// atkHandshakeUpTo sends a hello and reads the server hello; the correct
// finished is computed but not sent.
func atkHandshakeUpTo(t testing.TB, addr string, key []byte, keyID string, suites ...Suite) *atkSession {
	t.Helper()
	c := atkDial(t, addr)
	ch := atkHello(keyID, suites...)
	atkWrite(t, c, ch)
	sh := atkReadServerHello(t, c)
	require.Equal(t, byte(statusOK), sh[6], "server hello status")
	s := Suite(sh[7])
	return &atkSession{conn: c, suite: s, ch: ch, sh: sh, fin: refFinished(s, key, ch, sh)}
}

// atkServer is an AuthListener on 127.0.0.1 with an echo application
// behind it, recording every handshake outcome by remote address.
type atkServer struct {
	t    testing.TB
	ln   *AuthListener
	addr string
	good []Option // how a good client dials

	mu        sync.Mutex
	events    map[string][]atkEvent
	changed   chan struct{} // closed and replaced by each record
	accepted  map[string]bool
	refused   map[string]bool
	conns     []net.Conn
	acceptErr error
	wg        sync.WaitGroup
}

// atkStartServer starts a server with opts, which must include its keys. A
// good client dials with WithKey(atkKey) unless good says otherwise.
func atkStartServer(t testing.TB, good []Option, opts ...Option) *atkServer {
	t.Helper()
	if good == nil {
		good = []Option{WithKey(atkKey)}
	}
	s := &atkServer{
		t:        t,
		good:     good,
		events:   make(map[string][]atkEvent),
		changed:  make(chan struct{}),
		accepted: make(map[string]bool),
		refused:  make(map[string]bool),
	}
	opts = append(opts, WithHandshakeHook(s.record))
	ln, err := Listen("tcp", "127.0.0.1:0", opts...)
	require.NoError(t, err)
	s.ln, s.addr = ln, ln.Addr().String()
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.close)
	return s
}

func (s *atkServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.mu.Lock()
				s.acceptErr = err
				s.mu.Unlock()
			}
			return
		}
		s.mu.Lock()
		s.accepted[c.RemoteAddr().String()] = true
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			buf := make([]byte, 4096)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					if _, werr := c.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}

func (s *atkServer) close() {
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	require.NoError(s.t, s.acceptErr, "Accept returned an error other than net.ErrClosed")
	for a := range s.refused {
		require.False(s.t, s.accepted[a], "a refused connection from %s came out of Accept", a)
	}
}

// record keeps a handshake outcome for the test to claim. It never blocks:
// a flood leaves many outcomes nobody claims.
func (s *atkServer) record(ev HandshakeEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := ev.RemoteAddr.String()
	s.events[a] = append(s.events[a], atkEvent{ev, time.Now()})
	close(s.changed)
	s.changed = make(chan struct{})
}

// event waits for the outcome of the handshake with the client at addr.
func (s *atkServer) event(t testing.TB, addr net.Addr) HandshakeEvent {
	t.Helper()
	return s.eventSince(t, addr, time.Time{})
}

// eventSince is event for a connection made at or after since: outcomes
// of earlier connections from the same address and port (reused after a
// flood) are dropped.
func (s *atkServer) eventSince(t testing.TB, addr net.Addr, since time.Time) HandshakeEvent {
	t.Helper()
	timeout := time.After(atkTimeout)
	for {
		s.mu.Lock()
		q := s.events[addr.String()]
		for len(q) > 0 && q[0].at.Before(since) {
			q = q[1:]
		}
		s.events[addr.String()] = q
		if len(q) > 0 {
			s.events[addr.String()] = q[1:]
			s.mu.Unlock()
			return q[0].HandshakeEvent
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("no handshake outcome for %s within %v", addr, atkTimeout)
		}
	}
}

// countErrors counts the unclaimed outcomes whose error mentions substr.
func (s *atkServer) countErrors(substr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, q := range s.events {
		for _, ev := range q {
			if ev.Err != nil && strings.Contains(ev.Err.Error(), substr) {
				n++
			}
		}
	}
	return n
}

type atkEvent struct {
	HandshakeEvent
	at time.Time
}

// requireRefused checks that the server refused the client at addr with an
// error wrapping each of targets, and returns the event. The server's
// cleanup checks that the connection never came out of Accept.
func (s *atkServer) requireRefused(t testing.TB, addr net.Addr, targets ...error) HandshakeEvent {
	t.Helper()
	ev := s.event(t, addr)
	require.Error(t, ev.Err, "the server accepted an attack from %s", addr)
	require.True(t, strings.HasPrefix(ev.Err.Error(), "auth: "), "error %q does not start with auth: ", ev.Err)
	for _, target := range targets {
		require.ErrorIs(t, ev.Err, target)
	}
	s.mu.Lock()
	s.refused[addr.String()] = true
	s.mu.Unlock()
	return ev
}

// requireServes dials a good client, checks that it authenticates and that
// its data comes back through the echo application unharmed.
func (s *atkServer) requireServes(t testing.TB) {
	t.Helper()
	d, err := NewDialer(s.good...)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), atkTimeout)
	defer cancel()
	start := time.Now()
	c, err := d.DialContext(ctx, "tcp", s.addr)
	require.NoError(t, err, "a good client was refused")
	defer c.Close()
	c.SetDeadline(time.Now().Add(atkTimeout))
	msg := []byte("good client " + c.LocalAddr().String())
	_, err = c.Write(msg)
	require.NoError(t, err)
	got := make([]byte, len(msg))
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	require.Equal(t, msg, got)
	ev := s.eventSince(t, c.LocalAddr(), start)
	require.NoError(t, ev.Err)
}

// atkRawServer is a plain TCP listener on 127.0.0.1 whose connections are
// handled by a script: an impostor server or a man in the middle.
type atkRawServer struct {
	ln   net.Listener
	addr string
	wg   sync.WaitGroup
}

// atkStartRaw runs handle for each of the next n connections, each on its
// own goroutine. Cleanup closes the listener and waits for the handlers.
func atkStartRaw(t testing.TB, n int, handle func(c *net.TCPConn)) *atkRawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	r := &atkRawServer{ln: ln, addr: ln.Addr().String()}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for range n {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(atkTimeout))
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				defer c.Close()
				handle(c.(*net.TCPConn))
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		r.wg.Wait()
	})
	return r
}

// atkClient returns a real client Conn (not yet handshaken) on a raw TCP
// connection to addr, so the test knows its local address even when the
// handshake fails.
func atkClient(t testing.TB, addr string, opts ...Option) *Conn {
	t.Helper()
	raw := atkDial(t, addr)
	c, err := Client(raw, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// atkPair returns the two ends of a loopback TCP connection, so a test can
// sit in the middle of a real client's handshake.
func atkPair(t testing.TB) (client, mitm *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	client = atkDial(t, ln.Addr().String())
	m, err := ln.Accept()
	require.NoError(t, err)
	m.SetDeadline(time.Now().Add(atkTimeout))
	t.Cleanup(func() { m.Close() })
	return client, m.(*net.TCPConn)
}

// atkAsync runs fn on a goroutine and returns a channel with its error.
func atkAsync(fn func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- fn() }()
	return ch
}

// atkWait waits for an atkAsync result.
func atkWait(t testing.TB, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(atkTimeout):
		t.Fatalf("no result within %v", atkTimeout)
		return nil
	}
}
