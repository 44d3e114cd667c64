// Command echo shows hmacauth end to end on the loopback interface: an echo
// server behind auth.Listen, a client holding the key that gets its bytes
// back, and a client with a wrong key that is refused, on both sides, with
// an error that says why.
//
//	go run ./examples/echo
//
// It exits 0 when everything behaves as described and 1 otherwise, and
// gives up after 15 seconds.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/hmacauth/auth"
)

func main() {
	watchdog := time.AfterFunc(15*time.Second, func() {
		fmt.Fprintln(os.Stderr, "echo example: timed out")
		os.Exit(1)
	})
	defer watchdog.Stop()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "echo example:", err)
		os.Exit(1)
	}
	fmt.Println("ok")
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Both sides share this key. A real deployment reads it from a file or
	// the environment with auth.ParseKey.
	key, err := auth.GenerateKey()
	if err != nil {
		return err
	}

	// The hook sees every handshake the server finishes, refused or not.
	refused := make(chan error, 1)
	hook := auth.WithHandshakeHook(func(ev auth.HandshakeEvent) {
		if ev.Err != nil {
			select {
			case refused <- ev.Err:
			default:
			}
		}
	})
	ln, err := auth.Listen("tcp", "127.0.0.1:0", auth.WithKey(key), hook, auth.WithHandshakeTimeout(5*time.Second))
	if err != nil {
		return err
	}
	defer ln.Close()
	addr := ln.Addr().String()
	fmt.Println("server: listening on", addr)

	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept() // only authenticated clients come out
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				n, _ := io.Copy(c, c)
				fmt.Printf("server: echoed %d bytes\n", n)
			}()
		}
	}()

	// A client with the key: the handshake costs one round trip, and the
	// message travels right behind the client's proof.
	c, err := auth.DialContext(ctx, "tcp", addr, auth.WithKey(key))
	if err != nil {
		return fmt.Errorf("good client: %w", err)
	}
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	msg := "hello, authenticated world"
	if _, err := io.WriteString(c, msg); err != nil {
		return fmt.Errorf("good client: %w", err)
	}
	if err := c.CloseWrite(); err != nil { // the server's io.Copy ends
		return fmt.Errorf("good client: %w", err)
	}
	reply, err := io.ReadAll(c)
	c.Close()
	if err != nil {
		return fmt.Errorf("good client: %w", err)
	}
	if string(reply) != msg {
		return fmt.Errorf("good client: sent %q, got %q back", msg, reply)
	}
	fmt.Printf("good client: sent %q, got it back\n", msg)

	// A client with another key: Dial fails, and the server never hands
	// the connection to its application.
	wrong, err := auth.GenerateKey()
	if err != nil {
		return err
	}
	bad, err := auth.DialContext(ctx, "tcp", addr, auth.WithKey(wrong))
	if err == nil {
		bad.Close()
		return errors.New("a client with the wrong key was accepted")
	}
	if !errors.Is(err, auth.ErrAuthFailed) {
		return fmt.Errorf("wrong-key client: unexpected error: %w", err)
	}
	fmt.Println("wrong-key client: refused:", err)
	select {
	case err := <-refused:
		if !errors.Is(err, auth.ErrAuthFailed) {
			return fmt.Errorf("server: unexpected refusal: %w", err)
		}
		fmt.Println("server: refused a client:", err)
	case <-ctx.Done():
		return errors.New("server: the refusal was never reported")
	}

	// A client that does not speak hmacauth at all is refused too.
	raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	raw.Write([]byte("GET / HTTP/1.1\r\nHost: example\r\n\r\n"))
	select {
	case err := <-refused:
		if !errors.Is(err, auth.ErrProtocol) {
			return fmt.Errorf("server: unexpected refusal: %w", err)
		}
		fmt.Println("server: refused a client:", err)
	case <-ctx.Done():
		return errors.New("server: the plain HTTP client was never refused")
	}
	raw.Close()
	return nil
}
