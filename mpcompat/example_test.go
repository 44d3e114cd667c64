package mpcompat_test

import (
	"fmt"
	"log"

	"github.com/hmacauth/auth/mpcompat"
)

// A Go Listener and a Go client speaking multiprocessing.connection, as a
// Python Listener and Client would: each proves the authkey, then they
// exchange byte messages. A Python peer would do the same with
// Client(("127.0.0.1", port), authkey=key) and send_bytes / recv_bytes.
func ExampleListen() {
	key := []byte("the authkey the Python side passes")
	ln, err := mpcompat.Listen("tcp", "127.0.0.1:0", key)
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()

	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		msg, err := c.RecvBytes()
		if err == nil {
			c.SendBytes(append([]byte("got "), msg...))
		}
	}()

	c, err := mpcompat.Dial("tcp", ln.Addr().String(), key)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.SendBytes([]byte("hello")); err != nil {
		log.Fatal(err)
	}
	reply, err := c.RecvBytes()
	if err != nil {
		log.Fatal(err)
	}
	st := c.ConnectionState()
	fmt.Printf("%s (answers: %s, %s)\n", reply, st.LocalAnswer, st.PeerAnswer)
	// Output: got hello (answers: sha256, sha256)
}

// A Config pins the handshake generation, the digest and the limits, in the
// manner of tls.Config.
func ExampleConfig() {
	cfg := &mpcompat.Config{
		Generation:     mpcompat.Modern, // refuse Python 3.11 and earlier
		Digest:         "sha384",
		MaxMessageSize: 1 << 20,
	}
	key := []byte("the authkey the Python side passes")
	ln, err := cfg.Listen("tcp", "127.0.0.1:0", key)
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := cfg.Dial("tcp", ln.Addr().String(), key)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println(c.ConnectionState().PeerAnswer)
	// Output: sha384
}
