package auth

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"
)

// BenchmarkHandshake measures what establishing an authenticated
// connection costs, and nothing else: the client dials (its handshake
// done) and sends its proof, the server's Accept returns the
// authenticated connection, and both sides close the TCP connection
// underneath. No application data and no sealed close record are
// exchanged, so the sealed variant's difference from auth-only is its
// handshake: the whole key schedule and cipher set-up of both sides (the
// client's reading keys, which a real client derives on its first Read,
// are derived here too). BenchmarkConnect measures the whole exchange.
func BenchmarkHandshake(b *testing.B) {
	forEachVariant(b, kindHandshake, func(b *testing.B, ep benchEndpoint) {
		benchHandshake(b, ep)
	})
}

// rawConn returns the TCP connection under a variant's connection.
func rawConn(c net.Conn) net.Conn {
	if nc, ok := c.(interface{ NetConn() net.Conn }); ok {
		return nc.NetConn()
	}
	return c
}

func benchHandshake(b *testing.B, ep benchEndpoint) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ln, err := ep.listen(inner)
	if err != nil {
		inner.Close()
		b.Fatal(err)
	}
	// The server closes only the TCP connection under each accepted one:
	// a Conn's Close would send what closing costs (a pending verdict, a
	// sealed close record), which is not the handshake. It closes before
	// the client does, so that it holds the TIME_WAIT state (see
	// benchEchoOnce).
	accepted := make(chan struct{}, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				rawConn(c).Close()
				accepted <- struct{}{}
			})
		}
	})
	addr := inner.Addr().String()
	ctx := context.Background()
	once := func() error {
		c, err := ep.dial(ctx, addr)
		if err != nil {
			return err
		}
		defer rawConn(c).Close()
		if err := deriveReadingKeys(c); err != nil {
			return err
		}
		if _, err := c.Write(nil); err != nil { // sends a pending proof
			return err
		}
		select {
		case <-accepted:
			return nil
		case <-time.After(10 * time.Second):
			return context.DeadlineExceeded
		}
	}
	for range 2 {
		if err := once(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	for range b.N {
		if err := once(); err != nil {
			b.Fatal(err)
		}
	}
	cpu := cpuTime(b) - cpu0
	b.StopTimer()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/conn")
}

// deriveReadingKeys derives a sealed client's reading keys now, as its
// first Read would, so that BenchmarkHandshake counts them.
func deriveReadingKeys(c net.Conn) error {
	ac, ok := c.(*Conn)
	if !ok || ac.seal == nil {
		return nil
	}
	s := ac.seal
	s.rmu.Lock()
	defer s.rmu.Unlock()
	return s.deriveIn()
}
