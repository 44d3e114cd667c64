// Command python shows a Go service and a Python process talking through
// multiprocessing.connection: Go listens with mpcompat, python3 connects
// with multiprocessing.connection.Client and the same authkey, and the two
// exchange byte messages with SendBytes/RecvBytes on the Go side and
// send_bytes/recv_bytes on the Python side.
//
//	go run ./examples/python
//
// It needs python3 on PATH and exits 0 once the exchange is done; the
// whole run is bounded to 30 seconds.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/hmacauth/auth/mpcompat"
)

//go:embed client.py
var clientPy string

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// multiprocessing makes its authkeys from 32 random bytes; so do we.
	authkey := make([]byte, 32)
	rand.Read(authkey)

	ln, err := mpcompat.Listen("tcp", "127.0.0.1:0", authkey)
	if err != nil {
		return err
	}
	defer ln.Close()

	py := exec.CommandContext(ctx, "python3", "-c", clientPy)
	py.Env = append(os.Environ(),
		"MP_PORT="+strconv.Itoa(ln.Addr().(*net.TCPAddr).Port),
		"MP_AUTHKEY="+hex.EncodeToString(authkey))
	py.Stdout, py.Stderr = os.Stdout, os.Stderr
	if err := py.Start(); err != nil {
		return fmt.Errorf("starting python3: %w", err)
	}
	waited := false
	defer func() {
		if !waited { // on an early return, stop python3 and reap it
			cancel()
			py.Wait()
		}
	}()

	// Accept returns only a peer that proved the authkey.
	accepted := make(chan *mpcompat.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	var c *mpcompat.Conn
	select {
	case c = <-accepted:
	case <-ctx.Done():
		return fmt.Errorf("no Python client authenticated: %w", ctx.Err())
	}
	if c == nil {
		return fmt.Errorf("the listener closed")
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	st := c.ConnectionState()
	fmt.Printf("Go: authenticated %s (our answer %s, theirs %s, legacy %v)\n", c.RemoteAddr(), st.LocalAnswer, st.PeerAnswer, st.Legacy)

	hello, err := c.RecvBytes()
	if err != nil {
		return err
	}
	fmt.Printf("Go: received %q\n", hello)

	for _, msg := range [][]byte{[]byte("hello from Go"), bytes.Repeat([]byte("x"), 64<<10)} {
		if err := c.SendBytes(msg); err != nil {
			return err
		}
		reply, err := c.RecvBytes()
		if err != nil {
			return err
		}
		if !bytes.Equal(reply, bytes.ToUpper(msg)) {
			return fmt.Errorf("python3 answered %d bytes, want the %d bytes sent, upper-cased", len(reply), len(msg))
		}
		fmt.Printf("Go: sent %d bytes, Python sent them back upper-cased\n", len(msg))
	}
	if err := c.SendBytes([]byte("bye")); err != nil {
		return err
	}
	waited = true
	if err := py.Wait(); err != nil {
		return fmt.Errorf("python3: %w", err)
	}
	fmt.Println("Go: done")
	return nil
}
