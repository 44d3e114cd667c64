package mpcompat

import (
	"strconv"
	"testing"
)

// BenchmarkHandshake measures a whole handshake (both challenges) between
// a Go Listener and a Go client over loopback TCP.
func BenchmarkHandshake(b *testing.B) {
	for _, gen := range []Generation{Auto, Legacy} {
		b.Run(gen.String(), func(b *testing.B) {
			cfg := &Config{Generation: gen}
			ln, err := cfg.Listen("tcp", "127.0.0.1:0", testKey)
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			done := make(chan struct{})
			go func() {
				defer close(done)
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					c.Close()
				}
			}()
			for b.Loop() {
				c, err := cfg.Dial("tcp", ln.Addr().String(), testKey)
				if err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
			ln.Close()
			<-done
		})
	}
}

// BenchmarkRoundTrip measures SendBytes and RecvBytes: a message to an echo
// peer and back, over loopback TCP.
func BenchmarkRoundTrip(b *testing.B) {
	for _, size := range []int{64, 16 << 10, 1 << 20} {
		b.Run(byteSize(size), func(b *testing.B) {
			ln, err := Listen("tcp", "127.0.0.1:0", testKey)
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			done := make(chan struct{})
			go func() {
				defer close(done)
				s, err := ln.Accept()
				if err != nil {
					return
				}
				defer s.Close()
				for {
					m, err := s.RecvBytes()
					if err != nil || s.SendBytes(m) != nil {
						return
					}
				}
			}()
			c, err := Dial("tcp", ln.Addr().String(), testKey)
			if err != nil {
				b.Fatal(err)
			}
			msg := make([]byte, size)
			b.SetBytes(int64(2 * size))
			for b.Loop() {
				if err := c.SendBytes(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := c.RecvBytes(); err != nil {
					b.Fatal(err)
				}
			}
			c.Close()
			<-done
		})
	}
}

func byteSize(n int) string {
	switch {
	case n >= 1<<20:
		return strconv.Itoa(n>>20) + "MiB"
	case n >= 1<<10:
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}
