//go:build linux

package auth

// Memory benchmarks. The clients are raw sockets driven by system calls,
// so the only Go memory that changes is the server's: live heap plus
// goroutine stacks, after garbage collection, divided by the number of
// connections. Goals: under 8 KiB per in-flight handshake, under 1 KiB per
// idle authenticated connection beyond the raw TCP connection.

import (
	"io"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// memConns is how many connections each measurement holds.
const memConns = 500

// rawFD is a blocking client socket used through system calls only.
type rawFD int

func (fd rawFD) Read(p []byte) (int, error) {
	n, err := syscall.Read(int(fd), p)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

func (fd rawFD) Write(p []byte) (int, error) { return syscall.Write(int(fd), p) }

// rawConnect connects a blocking socket to addr.
func rawConnect(tb testing.TB, addr net.Addr) rawFD {
	tb.Helper()
	a := addr.(*net.TCPAddr)
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	require.NoError(tb, err)
	tv := syscall.NsecToTimeval(int64(atkTimeout))
	require.NoError(tb, syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv))
	sa := &syscall.SockaddrInet4{Port: a.Port}
	copy(sa.Addr[:], a.IP.To4())
	require.NoError(tb, syscall.Connect(fd, sa))
	return rawFD(fd)
}

// liveBytes is the live heap plus goroutine stacks after collection.
func liveBytes() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc + m.StackInuse
}

// measurePerConn opens memConns clients with open and returns the growth
// of live memory per connection once ready reports they are all in place.
func measurePerConn(tb testing.TB, addr net.Addr, open func(rawFD), ready func() bool) float64 {
	tb.Helper()
	fds := make([]rawFD, 0, memConns)
	defer func() {
		for _, fd := range fds {
			syscall.Close(int(fd))
		}
	}()
	before := liveBytes()
	for range memConns {
		fd := rawConnect(tb, addr)
		fds = append(fds, fd)
		open(fd)
	}
	deadline := time.Now().Add(atkTimeout)
	for !ready() {
		require.True(tb, time.Now().Before(deadline), "connections not in place")
		time.Sleep(5 * time.Millisecond)
	}
	after := liveBytes()
	return (float64(after) - float64(before)) / memConns
}

// memIdle measures connections held by an application after Accept, with
// the listener made by listen and each client opened by open.
func memIdle(tb testing.TB, listen func() net.Listener, open func(rawFD)) float64 {
	ln := listen()
	defer ln.Close()
	held := make(chan []net.Conn, 1)
	var accepted []net.Conn
	errc := make(chan error, 1)
	go func() {
		hs := make([]net.Conn, 0, memConns)
		for len(hs) < memConns {
			c, err := ln.Accept()
			if err != nil {
				errc <- err
				return
			}
			hs = append(hs, c)
		}
		held <- hs
	}()
	per := measurePerConn(tb, ln.Addr(), open, func() bool {
		select {
		case accepted = <-held:
			return true
		case err := <-errc:
			tb.Fatalf("accept: %v", err)
		default:
		}
		return false
	})
	for _, c := range accepted {
		c.Close()
	}
	return per
}

func memRawListener(tb testing.TB) func() net.Listener {
	return func() net.Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(tb, err)
		return ln
	}
}

func memAuthListener(tb testing.TB) func() net.Listener {
	return func() net.Listener {
		ln, err := Listen("tcp", "127.0.0.1:0", WithKey(atkKey))
		require.NoError(tb, err)
		return ln
	}
}

// memHandshake runs a correct client handshake on fd by hand and leaves
// the server's verdict unread in the socket.
func memHandshake(tb testing.TB) func(rawFD) {
	return func(fd rawFD) {
		ch := atkHello("")
		_, err := fd.Write(ch)
		require.NoError(tb, err)
		sh, err := readMessage(fd, make([]byte, maxServerHello), serverHelloSize)
		require.NoError(tb, err)
		_, err = fd.Write(refFinished(SuiteHMACSHA256, atkKey, ch, sh))
		require.NoError(tb, err)
	}
}

// BenchmarkMemoryIdleConn reports the server's memory per idle connection
// held after Accept: a raw TCP connection from net.Listen (B/raw-conn), an
// authenticated one from an AuthListener (B/auth-conn), and the difference
// (B/beyond-raw; goal under 1024).
func BenchmarkMemoryIdleConn(b *testing.B) {
	raiseFDLimit(b, 4*memConns+256)
	var raw, auth float64
	n := 0
	for b.Loop() {
		raw += memIdle(b, memRawListener(b), func(rawFD) {})
		auth += memIdle(b, memAuthListener(b), memHandshake(b))
		n++
	}
	b.ReportMetric(raw/float64(n), "B/raw-conn")
	b.ReportMetric(auth/float64(n), "B/auth-conn")
	b.ReportMetric((auth-raw)/float64(n), "B/beyond-raw")
}

// BenchmarkMemoryInFlightHandshake reports the server's memory per
// handshake in progress (goal under 8192): clients that sent the first
// bytes of a hello and wait, each holding a handshake goroutine, its
// buffer and its connection.
func BenchmarkMemoryInFlightHandshake(b *testing.B) {
	raiseFDLimit(b, 4*memConns+256)
	var total float64
	n := 0
	for b.Loop() {
		ln, err := Listen("tcp", "127.0.0.1:0", WithKey(atkKey), WithHandshakeTimeout(time.Minute))
		require.NoError(b, err)
		base := runtime.NumGoroutine()
		total += measurePerConn(b, ln.Addr(), func(fd rawFD) {
			_, err := fd.Write(magic[:2])
			require.NoError(b, err)
		}, func() bool { return runtime.NumGoroutine() >= base+memConns })
		ln.Close()
		n++
	}
	b.ReportMetric(total/float64(n), "B/handshake")
}
