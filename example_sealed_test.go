package auth_test

import (
	"fmt"
	"io"

	auth "github.com/hmacauth/auth"
)

// ExampleWithSealed seals a connection: both sides give WithSealed, and
// every byte after the handshake is encrypted and authenticated.
func ExampleWithSealed() {
	key := []byte("an example key of 32 bytes......")
	ln, err := auth.Listen("tcp", "127.0.0.1:0", auth.WithKey(key), auth.WithSealed())
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		msg, _ := io.ReadAll(c) // until the client's CloseWrite
		fmt.Fprintf(c, "got %q", msg)
	}()

	c, err := auth.Dial("tcp", ln.Addr().String(), auth.WithKey(key), auth.WithSealed())
	if err != nil {
		panic(err)
	}
	defer c.Close()
	fmt.Println(c.ConnectionState().Mode, c.ConnectionState().Mode.Sealed())
	c.Write([]byte("hello"))
	c.CloseWrite() // an authenticated close: the server reads io.EOF
	reply, err := io.ReadAll(c)
	fmt.Println(string(reply), err)
	// Output:
	// sealed-AES-256-GCM true
	// got "hello" <nil>
}
