package main

import (
	"io"
	"net"
	"sync"
)

// pipe copies between a and b in both directions until both are done, and
// then closes both. When one side finishes sending (EOF), the other side's
// writing half is shut down (CloseWrite), so half-closed protocols work and
// the bytes still in flight the other way are delivered. An error in either
// direction closes both connections at once. It returns the bytes copied
// each way and the first error, which is what ended the tunnel early.
func pipe(a, b net.Conn) (aToB, bToA int64, err error) {
	var (
		once  sync.Once
		first error
	)
	fail := func(e error) {
		once.Do(func() {
			first = e
			a.Close()
			b.Close()
		})
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		n, e := io.Copy(b, a)
		aToB = n
		if e == nil {
			e = closeWrite(b)
		}
		if e != nil {
			fail(e)
		}
	}()
	n, e := io.Copy(a, b)
	bToA = n
	if e == nil {
		e = closeWrite(a)
	}
	if e != nil {
		fail(e)
	}
	<-done
	once.Do(func() {})
	a.Close()
	b.Close()
	return aToB, bToA, first
}

// closeWrite shuts down the writing half of c if it can; a connection that
// cannot is left as it is, to be closed when the other direction ends.
func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
