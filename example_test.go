package auth_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"

	"github.com/hmacauth/auth"
)

// echoOnLoopback serves an echo service on 127.0.0.1 through an auth
// listener and returns its address and a function that stops it.
func echoOnLoopback(key []byte) (addr string, stop func()) {
	ln, err := auth.Listen("tcp", "127.0.0.1:0", auth.WithKey(key))
	if err != nil {
		log.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed
			}
			io.Copy(c, c)
			c.Close()
		}
	}()
	return ln.Addr().String(), func() { ln.Close(); <-done }
}

// A server listens with auth.Listen and serves as with net.Listen: only
// clients that proved they hold the key come out of Accept.
func ExampleListen() {
	key, err := auth.GenerateKey()
	if err != nil {
		log.Fatal(err)
	}
	ln, err := auth.Listen("tcp", "127.0.0.1:0", auth.WithKeys(map[string][]byte{"worker-1": key}))
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()

	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		defer c.Close()
		// The peer's key ID names who connected.
		fmt.Println("accepted", c.(*auth.Conn).ConnectionState().KeyID)
		io.Copy(c, c)
	}()

	c, err := auth.Dial("tcp", ln.Addr().String(), auth.WithKey(key), auth.WithKeyID("worker-1"))
	if err != nil {
		log.Fatal(err)
	}
	c.Write([]byte("hello"))
	reply := make([]byte, 5)
	if _, err := io.ReadFull(c, reply); err != nil {
		log.Fatal(err)
	}
	fmt.Println("echoed", string(reply))
	c.Close()
	<-done
	// Output:
	// accepted worker-1
	// echoed hello
}

// A client dials with auth.Dial; a client with the wrong key is refused by
// Dial itself, with an error that says what went wrong.
func ExampleDial() {
	key, _ := auth.GenerateKey()
	addr, stop := echoOnLoopback(key)
	defer stop()

	c, err := auth.Dial("tcp", addr, auth.WithKey(key))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprint(c, "ping")
	reply := make([]byte, 4)
	io.ReadFull(c, reply)
	fmt.Println(string(reply))
	c.Close()

	wrong, _ := auth.GenerateKey()
	_, err = auth.Dial("tcp", addr, auth.WithKey(wrong))
	fmt.Println(errors.Is(err, auth.ErrAuthFailed))
	// Output:
	// ping
	// true
}

// A Dialer plugs into http.Transport, so an http.Client talks to a server
// that serves on an auth listener.
func ExampleNewDialer() {
	key, _ := auth.GenerateKey()
	ln, err := auth.Listen("tcp", "127.0.0.1:0", auth.WithKeys(map[string][]byte{"reporting": key}))
	if err != nil {
		log.Fatal(err)
	}
	type keyIDKey struct{}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello, %s", r.Context().Value(keyIDKey{}))
		}),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, keyIDKey{}, c.(*auth.Conn).ConnectionState().KeyID)
		},
	}
	served := make(chan struct{})
	go func() { defer close(served); srv.Serve(ln) }()

	d, err := auth.NewDialer(auth.WithKey(key), auth.WithKeyID("reporting"))
	if err != nil {
		log.Fatal(err)
	}
	tr := &http.Transport{DialContext: d.DialContext}
	client := &http.Client{Transport: tr}
	resp, err := client.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.Status, string(body))

	tr.CloseIdleConnections()
	srv.Close()
	<-served
	// Output:
	// 200 OK hello, reporting
}

func ExampleGenerateKey() {
	key, err := auth.GenerateKey()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(key), "random bytes")
	// Output:
	// 32 random bytes
}

func ExampleParseKey() {
	for _, text := range []string{
		"hex:000102030405060708090a0b0c0d0e0f",
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", // base64
		"c2hvcnQ=", // base64 of "short"
	} {
		key, err := auth.ParseKey(text)
		switch {
		case errors.Is(err, auth.ErrKeyTooShort):
			fmt.Println("refused: too short")
		case err != nil:
			fmt.Println(err)
		default:
			fmt.Println(len(key), "bytes")
		}
	}
	// Output:
	// 16 bytes
	// 32 bytes
	// refused: too short
}

// ConnectionState tells a server which key ID its peer proved, and both
// sides what they negotiated.
func ExampleConn_ConnectionState() {
	key, _ := auth.GenerateKey()
	ln, err := auth.Listen("tcp", "127.0.0.1:0", auth.WithKeys(map[string][]byte{"billing": key}))
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	dialed := make(chan struct{})
	go func() {
		defer close(dialed)
		c, err := auth.Dial("tcp", ln.Addr().String(), auth.WithKey(key), auth.WithKeyID("billing"), auth.WithWaitForVerdict())
		if err != nil {
			log.Fatal(err)
		}
		c.Close()
	}()

	c, err := ln.AcceptAuth()
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	st := c.ConnectionState()
	fmt.Println("complete:", st.HandshakeComplete)
	fmt.Println("client:", st.IsClient)
	fmt.Println("key ID:", st.KeyID)
	fmt.Println("suite:", st.Suite)
	fmt.Println("mode:", st.Mode)
	<-dialed
	// Output:
	// complete: true
	// client: false
	// key ID: billing
	// suite: HMAC-SHA256
	// mode: auth-only
}
