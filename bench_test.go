package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The benchmarks compare this library with what users would otherwise
// pick, side by side in one run: plain TCP, TLS 1.3 with mutual
// certificate authentication, and TLS 1.3 with resumption. Every variant
// runs on loopback with both ends in this process, so CPU figures include
// both sides; that is the same for every variant.
//
// internal/benchreport runs them several times, takes medians and checks
// the goals, which are ratios between variants of one run. Each variant is
// a sub-benchmark named after it, so a variant added later (for example in
// another _test.go file's init, appending to benchVariants) shows up in
// every benchmark whose kind it supports and in the report without further
// change.

// Benchmark kinds a variant can take part in.
const (
	kindConnect   = 1 << iota // connect, authenticate, 1-byte echo, close
	kindBulk                  // 64 MiB one way over one connection
	kindProxy                 // io.Copy between two connections of the variant
	kindHandshake             // connect and authenticate only, then close the socket
)

// benchVariant is one way of connecting. setup builds what the variant
// needs once per benchmark (keys, certificates, session caches).
type benchVariant struct {
	name  string
	kinds int
	setup func(tb testing.TB) benchEndpoint
}

// benchEndpoint is a variant ready to use: listen wraps a TCP listener so
// that its Accept returns connections of the variant, and dial connects and
// authenticates. A server connection may finish its handshake on its first
// Read, as crypto/tls does.
type benchEndpoint struct {
	listen func(inner net.Listener) (net.Listener, error)
	dial   func(ctx context.Context, addr string) (net.Conn, error)
	// check, if set, inspects a client connection after its echo (for
	// example that TLS resumption really resumed).
	check func(c net.Conn) error
}

// benchVariants lists the variants in report order. Add a variant by
// appending to it from an init function in another _test.go file.
var benchVariants = []benchVariant{
	{name: "tcp", kinds: kindConnect | kindBulk | kindProxy | kindHandshake, setup: setupTCP},
	{name: "tcp-1rtt", kinds: kindConnect, setup: setupTCPRoundTrip},
	{name: "auth", kinds: kindConnect | kindBulk | kindProxy | kindHandshake, setup: setupAuth},
	{name: "sealed", kinds: kindConnect | kindBulk | kindProxy | kindHandshake, setup: func(tb testing.TB) benchEndpoint {
		return authEndpoint(tb, WithKey(benchKey), WithSealed())
	}},
	{name: "tls13", kinds: kindConnect | kindBulk, setup: func(tb testing.TB) benchEndpoint { return setupTLS(tb, false) }},
	{name: "tls13-resume", kinds: kindConnect, setup: func(tb testing.TB) benchEndpoint { return setupTLS(tb, true) }},
}

// benchKey is the shared key of the auth variants.
var benchKey = []byte("0123456789abcdef0123456789abcdef")

func setupTCP(tb testing.TB) benchEndpoint {
	var d net.Dialer
	return benchEndpoint{
		listen: func(inner net.Listener) (net.Listener, error) { return inner, nil },
		dial: func(ctx context.Context, addr string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		},
	}
}

// setupTCPRoundTrip is plain TCP with one extra 1-byte round trip after
// connecting, before the connection is used: the floor for any handshake
// that needs a round trip, as this library's does. It is a reference for
// the report, not something to use.
func setupTCPRoundTrip(tb testing.TB) benchEndpoint {
	var d net.Dialer
	return benchEndpoint{
		listen: func(inner net.Listener) (net.Listener, error) { return rttListener{inner}, nil },
		dial: func(ctx context.Context, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			b := [1]byte{'?'}
			if _, err := c.Write(b[:]); err != nil {
				c.Close()
				return nil, err
			}
			if _, err := io.ReadFull(c, b[:]); err != nil {
				c.Close()
				return nil, err
			}
			return c, nil
		},
	}
}

type rttListener struct{ net.Listener }

func (l rttListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &rttConn{Conn: c}, nil
}

// rttConn answers the client's extra round trip on its first Read, on the
// handler's goroutine, as a server handshake would run.
type rttConn struct {
	net.Conn
	answered bool
}

func (c *rttConn) Read(p []byte) (int, error) {
	if !c.answered {
		c.answered = true
		var b [1]byte
		if _, err := io.ReadFull(c.Conn, b[:]); err != nil {
			return 0, err
		}
		if _, err := c.Conn.Write(b[:]); err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(p)
}

func setupAuth(tb testing.TB) benchEndpoint {
	return authEndpoint(tb, WithKey(benchKey))
}

// authEndpoint is the endpoint of this library with the given options on
// both sides. Variants with other options (a sealed mode) build on it.
func authEndpoint(tb testing.TB, opts ...Option) benchEndpoint {
	d, err := NewDialer(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return benchEndpoint{
		listen: func(inner net.Listener) (net.Listener, error) { return NewListener(inner, opts...) },
		dial: func(ctx context.Context, addr string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		},
	}
}

// benchPKI is a CA with a server and a client certificate, all ECDSA P-256,
// made in memory once per process.
type benchPKI struct {
	pool           *x509.CertPool
	server, client tls.Certificate
}

var getBenchPKI = sync.OnceValues(func() (*benchPKI, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "hmacauth bench CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	leaf := func(serial int64, name string, usage x509.ExtKeyUsage) (tls.Certificate, error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return tls.Certificate{}, err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: name},
			DNSNames:     []string{"localhost"},
			IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return tls.Certificate{}, err
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return tls.Certificate{}, err
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: c}, nil
	}
	p := &benchPKI{pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	if p.server, err = leaf(2, "server", x509.ExtKeyUsageServerAuth); err != nil {
		return nil, err
	}
	if p.client, err = leaf(3, "client", x509.ExtKeyUsageClientAuth); err != nil {
		return nil, err
	}
	return p, nil
})

// tlsConfigs returns the server and client configurations of TLS 1.3 with
// mutual certificate authentication and X25519 pinned. Session tickets are
// off unless resume is set, in which case the client keeps a session cache.
func tlsConfigs(tb testing.TB, resume bool) (server, client *tls.Config) {
	pki, err := getBenchPKI()
	if err != nil {
		tb.Fatal(err)
	}
	server = &tls.Config{
		MinVersion:             tls.VersionTLS13,
		Certificates:           []tls.Certificate{pki.server},
		ClientAuth:             tls.RequireAndVerifyClientCert,
		ClientCAs:              pki.pool,
		CurvePreferences:       []tls.CurveID{tls.X25519},
		SessionTicketsDisabled: !resume,
	}
	client = &tls.Config{
		MinVersion:       tls.VersionTLS13,
		Certificates:     []tls.Certificate{pki.client},
		RootCAs:          pki.pool,
		ServerName:       "localhost",
		CurvePreferences: []tls.CurveID{tls.X25519},
	}
	if resume {
		client.ClientSessionCache = tls.NewLRUClientSessionCache(16)
	}
	return server, client
}

func setupTLS(tb testing.TB, resume bool) benchEndpoint {
	scfg, ccfg := tlsConfigs(tb, resume)
	d := &tls.Dialer{Config: ccfg}
	ep := benchEndpoint{
		listen: func(inner net.Listener) (net.Listener, error) { return tls.NewListener(inner, scfg), nil },
		dial:   func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) },
	}
	if resume {
		// The first connection of a benchmark makes the ticket; every
		// later one must resume, or the variant measures the wrong thing.
		var conns atomic.Int64
		ep.check = func(c net.Conn) error {
			if conns.Add(1) > 1 && !c.(*tls.Conn).ConnectionState().DidResume {
				return errors.New("tls13-resume: connection did not resume")
			}
			return nil
		}
	}
	return ep
}

// benchServer runs a server for an endpoint on a fresh loopback listener.
type benchServer struct {
	ln   net.Listener
	addr string
	wg   sync.WaitGroup
}

// startBenchServer listens on loopback and hands every accepted connection
// to handle on its own goroutine. Close stops it and waits for every
// handler.
func startBenchServer(tb testing.TB, ep benchEndpoint, handle func(net.Conn)) *benchServer {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := ep.listen(inner)
	if err != nil {
		inner.Close()
		tb.Fatal(err)
	}
	s := &benchServer{ln: ln, addr: inner.Addr().String()}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return s
}

func (s *benchServer) Close() {
	s.ln.Close()
	s.wg.Wait()
}

// benchEchoOnce is the server side of the connect benchmarks: echo one byte
// and return, so the server closes first and holds the TIME_WAIT state.
// Were it the client's, every variant would run into the kernel's search
// for a free ephemeral port: with 2 cores a variant makes 20,000 to 40,000
// connections to one server address in a -benchtime of 500ms, and past
// about 14,000 (the even half of the port range that connect prefers)
// every connect scans ports whose TIME_WAIT is too young to reuse, which
// doubles the cost of a plain TCP connection and hits faster variants
// harder. A server's TIME_WAIT costs its accept nothing.
func benchEchoOnce(c net.Conn) {
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return
	}
	c.Write(b[:])
}

// connectOnce is one operation of the connect benchmarks: connect,
// authenticate, echo one byte, close.
func connectOnce(ctx context.Context, ep benchEndpoint, addr string) error {
	c, err := ep.dial(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	b := [1]byte{'x'}
	if _, err := c.Write(b[:]); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return err
	}
	if b[0] != 'x' {
		return fmt.Errorf("echo returned %q", b[0])
	}
	if ep.check != nil {
		return ep.check(c)
	}
	return nil
}

// forEachVariant runs fn as a sub-benchmark for every variant of the kind.
func forEachVariant(b *testing.B, kind int, fn func(b *testing.B, ep benchEndpoint)) {
	for _, v := range benchVariants {
		if v.kinds&kind == 0 {
			continue
		}
		b.Run(v.name, func(b *testing.B) { fn(b, v.setup(b)) })
	}
}

// BenchmarkConnect measures one client at a time connecting,
// authenticating, echoing one byte and closing. ns/op is the latency of
// the whole exchange; allocs/op and B/op count both sides.
func BenchmarkConnect(b *testing.B) {
	forEachVariant(b, kindConnect, func(b *testing.B, ep benchEndpoint) {
		benchConnect(b, ep, 1)
	})
}

// BenchmarkConnectParallel4 is BenchmarkConnect with 4 clients at once.
// cpu-ns/conn is the process's CPU time (user and system, both sides) per
// connection, which is what a busy server pays.
func BenchmarkConnectParallel4(b *testing.B) {
	forEachVariant(b, kindConnect, func(b *testing.B, ep benchEndpoint) {
		benchConnect(b, ep, 4)
	})
}

func benchConnect(b *testing.B, ep benchEndpoint, clients int) {
	srv := startBenchServer(b, ep, benchEchoOnce)
	defer srv.Close()
	ctx := context.Background()
	// Warm up: the first connection makes TLS's session ticket, and pools
	// fill.
	for range 2 {
		if err := connectOnce(ctx, ep, srv.addr); err != nil {
			b.Fatal(err)
		}
	}
	var (
		next     atomic.Int64
		firstErr atomic.Pointer[error]
		wg       sync.WaitGroup
	)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := connectOnce(ctx, ep, srv.addr); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
			}
		}()
	}
	wg.Wait()
	cpu := cpuTime(b) - cpu0
	b.StopTimer()
	if e := firstErr.Load(); e != nil {
		b.Fatal(*e)
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/conn")
}

// Bulk transfer parameters: 64 MiB one way in 32 KiB writes.
const (
	bulkSize  = 64 << 20
	bulkChunk = 32 << 10
)

// bulkSink reads bulkSize bytes at a time from c with 32 KiB reads and
// reports each completed transfer on done.
func bulkSink(c net.Conn, done chan<- error) {
	buf := make([]byte, bulkChunk)
	for {
		n := 0
		for n < bulkSize {
			m, err := c.Read(buf[:min(len(buf), bulkSize-n)])
			n += m
			if err != nil {
				if err == io.EOF && n == 0 {
					return
				}
				done <- err
				return
			}
		}
		done <- nil
	}
}

// bulkSend writes bulkSize bytes to c in 32 KiB writes.
func bulkSend(c net.Conn, chunk []byte) error {
	for range bulkSize / bulkChunk {
		if _, err := c.Write(chunk); err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkBulk measures 64 MiB sent one way over one connection in 32
// KiB writes.
func BenchmarkBulk(b *testing.B) {
	forEachVariant(b, kindBulk, func(b *testing.B, ep benchEndpoint) {
		done := make(chan error, 1)
		srv := startBenchServer(b, ep, func(c net.Conn) { bulkSink(c, done) })
		defer srv.Close()
		c, err := ep.dial(context.Background(), srv.addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		benchRunBulk(b, c, done)
	})
}

func benchRunBulk(b *testing.B, c net.Conn, done <-chan error) {
	chunk := make([]byte, bulkChunk)
	rand.Read(chunk)
	b.SetBytes(bulkSize)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	for range b.N {
		if err := bulkSend(c, chunk); err != nil {
			b.Fatal(err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	cpu := cpuTime(b) - cpu0
	b.StopTimer()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// BenchmarkProxy measures 64 MiB through a proxy that joins two
// connections of the variant with io.Copy: client -> proxy -> sink. For
// plain TCP and the auth-only mode the copy should be a splice.
func BenchmarkProxy(b *testing.B) {
	forEachVariant(b, kindProxy, func(b *testing.B, ep benchEndpoint) {
		done := make(chan error, 1)
		sink := startBenchServer(b, ep, func(c net.Conn) { bulkSink(c, done) })
		defer sink.Close()
		proxy := startBenchServer(b, ep, func(down net.Conn) {
			up, err := ep.dial(context.Background(), sink.addr)
			if err != nil {
				done <- err
				return
			}
			defer up.Close()
			io.Copy(up, down)
		})
		defer proxy.Close()
		c, err := ep.dial(context.Background(), proxy.addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		benchRunBulk(b, c, done)
	})
}

// TestBenchVariants checks that every benchmark variant really connects,
// authenticates and echoes, so a broken variant fails the tests rather than
// skewing the benchmarks.
func TestBenchVariants(t *testing.T) {
	for _, v := range benchVariants {
		t.Run(v.name, func(t *testing.T) {
			ep := v.setup(t)
			srv := startBenchServer(t, ep, benchEchoOnce)
			defer srv.Close()
			for range 3 {
				if err := connectOnce(context.Background(), ep, srv.addr); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestBenchTLSIsMutual checks that the TLS variant is what the report says:
// TLS 1.3 over X25519, and a client without a certificate refused.
func TestBenchTLSIsMutual(t *testing.T) {
	ep := setupTLS(t, false)
	srv := startBenchServer(t, ep, benchEchoOnce)
	defer srv.Close()
	c, err := ep.dial(context.Background(), srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	st := c.(*tls.Conn).ConnectionState()
	c.Close()
	if st.Version != tls.VersionTLS13 || st.CurveID != tls.X25519 || st.DidResume {
		t.Fatalf("got version %#x, curve %v, resumed %v; want TLS 1.3, X25519, full handshake", st.Version, st.CurveID, st.DidResume)
	}
	t.Logf("cipher suite: %s", tls.CipherSuiteName(st.CipherSuite))

	_, ccfg := tlsConfigs(t, false)
	ccfg.Certificates = nil
	d := &tls.Dialer{Config: ccfg}
	nc, err := d.DialContext(context.Background(), "tcp", srv.addr)
	if err == nil {
		// TLS 1.3 clients learn of the refusal on their first read.
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		nc.Write([]byte{'x'})
		_, err = nc.Read(make([]byte, 1))
		nc.Close()
	}
	if err == nil {
		t.Fatal("a client without a certificate was served")
	}
}
