package auth_test

import (
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/hmacauth/auth"
)

// ExampleLoadKeyFile serves with the keys of a key file, and rotates them
// without a restart: the new key is added and reloaded, clients move to it,
// and the old key is removed.
func ExampleLoadKeyFile() {
	dir, err := os.MkdirTemp("", "keys")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "keys")

	oldKey, _ := auth.GenerateKey()
	newKey, _ := auth.GenerateKey()
	oldLine, _ := auth.FormatKeyLine("2026-old", oldKey)
	newLine, _ := auth.FormatKeyLine("2026-new", newKey)
	if err := os.WriteFile(path, []byte(oldLine), 0o600); err != nil {
		log.Fatal(err)
	}

	store, err := auth.LoadKeyFile(path)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := auth.Listen("tcp", "127.0.0.1:0", auth.WithKeyStore(store))
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "hello %s\n", c.(*auth.Conn).ConnectionState().KeyID)
			c.Close()
		}
	}()

	greet := func(id string, key []byte) {
		c, err := auth.Dial("tcp", ln.Addr().String(), auth.WithKey(key), auth.WithKeyID(id), auth.WithWaitForVerdict())
		if err != nil {
			fmt.Println(id, "refused")
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		fmt.Print(string(b))
	}

	greet("2026-old", oldKey)
	os.WriteFile(path, []byte(oldLine+newLine), 0o600) // step 1: add the new key
	store.Reload()
	greet("2026-old", oldKey)
	greet("2026-new", newKey)
	os.WriteFile(path, []byte(newLine), 0o600) // step 2: retire the old key
	store.Reload()
	greet("2026-old", oldKey)
	greet("2026-new", newKey)
	fmt.Println(store.IDs())
	// Output:
	// hello 2026-old
	// hello 2026-old
	// hello 2026-new
	// 2026-old refused
	// hello 2026-new
	// [2026-new]
}
