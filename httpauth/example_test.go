package httpauth_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"

	"github.com/hmacauth/auth"
	"github.com/hmacauth/auth/httpauth"
)

// This example serves HTTP on an auth.AuthListener; the handler greets each
// client by the key ID it proved. A client with a wrong key is refused
// before any HTTP is spoken.
func Example() {
	alice := bytes.Repeat([]byte{1}, auth.DefaultKeyLen) // use auth.GenerateKey
	bob := bytes.Repeat([]byte{2}, auth.DefaultKeyLen)
	ln, err := auth.Listen("tcp", "127.0.0.1:0", auth.WithKeys(map[string][]byte{"alice": alice, "bob": bob}))
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			st, _ := httpauth.FromRequest(r)
			fmt.Fprintf(w, "hello, %s", st.KeyID)
		}),
		ConnContext: httpauth.ConnContext,
	}
	go srv.Serve(ln)
	defer srv.Close()

	get := func(id string, key []byte) {
		d, err := auth.NewDialer(auth.WithKeyID(id), auth.WithKey(key))
		if err != nil {
			log.Fatal(err)
		}
		tr := httpauth.NewTransport(d)
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get("http://" + ln.Addr().String() + "/")
		if errors.Is(err, auth.ErrAuthFailed) {
			fmt.Printf("%s: refused: wrong key\n", id)
			return
		} else if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Printf("%s: %s\n", id, body)
	}
	get("alice", alice)
	get("bob", bob)
	get("bob", alice)
	// Output:
	// alice: hello, alice
	// bob: hello, bob
	// bob: refused: wrong key
}
