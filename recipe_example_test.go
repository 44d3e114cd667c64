package auth_test

import (
	"crypto/sha256"
	"fmt"
	"io"
	"log"

	"github.com/hmacauth/auth"
)

// A Go server that Python clients of the Cookbook recipe can reach, and a
// Go client of the recipe. Both sides name the same digest; the key is the
// recipe's own short example key, which only WithRecipe accepts.
func ExampleWithRecipe() {
	key := []byte("peekaboo")
	ln, err := auth.Listen("tcp", "127.0.0.1:0", auth.WithKey(key), auth.WithRecipe(sha256.New))
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
		io.Copy(c, c) // the recipe's echo server
	}()

	c, err := auth.Dial("tcp", ln.Addr().String(), auth.WithKey(key), auth.WithRecipe(sha256.New))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("Hello World"))
	buf := make([]byte, 11)
	if _, err := io.ReadFull(c, buf); err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(buf), c.ConnectionState().Mode)
	// Output: Hello World recipe
}
