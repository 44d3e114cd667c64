// Command http serves HTTP through an hmacauth listener and calls it with an
// http.Client whose Transport dials through an auth.Dialer. The handler
// names the peer by the key ID it proved, read in ConnContext from the
// connection's ConnectionState. A client with a wrong key is refused.
//
//	go run ./examples/http
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
	"net/http"
	"os"
	"time"

	"github.com/hmacauth/auth"
)

// peerKeyID is the context key for the key ID of the connection a request
// came on.
type peerKeyID struct{}

func main() {
	watchdog := time.AfterFunc(15*time.Second, func() {
		fmt.Fprintln(os.Stderr, "http example: timed out")
		os.Exit(1)
	})
	defer watchdog.Stop()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "http example:", err)
		os.Exit(1)
	}
	fmt.Println("ok")
}

func run() error {
	alice, err := auth.GenerateKey()
	if err != nil {
		return err
	}
	bob, err := auth.GenerateKey()
	if err != nil {
		return err
	}

	// The server knows two clients by key ID.
	ln, err := auth.Listen("tcp", "127.0.0.1:0",
		auth.WithKeys(map[string][]byte{"alice": alice, "bob": bob}),
		auth.WithHandshakeTimeout(5*time.Second))
	if err != nil {
		return err
	}
	srv := &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		// Accept returned an authenticated *auth.Conn: the key ID the
		// client proved is already on it.
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, peerKeyID{}, c.(*auth.Conn).ConnectionState().KeyID)
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := r.Context().Value(peerKeyID{}).(string)
			fmt.Printf("server: %s %s from key ID %q\n", r.Method, r.URL.Path, id)
			fmt.Fprintf(w, "hello, %s", id)
		}),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		srv.Close()
		<-served
	}()
	url := "http://" + ln.Addr().String() + "/report"

	for _, id := range []string{"alice", "bob"} {
		key := map[string][]byte{"alice": alice, "bob": bob}[id]
		body, err := get(url, auth.WithKey(key), auth.WithKeyID(id))
		if err != nil {
			return fmt.Errorf("client %s: %w", id, err)
		}
		if want := "hello, " + id; body != want {
			return fmt.Errorf("client %s: got %q, want %q", id, body, want)
		}
		fmt.Printf("client %s: got %q\n", id, body)
	}

	// Mallory claims to be alice but holds another key.
	mallory, err := auth.GenerateKey()
	if err != nil {
		return err
	}
	_, err = get(url, auth.WithKey(mallory), auth.WithKeyID("alice"))
	if err == nil {
		return errors.New("a client with the wrong key got a response")
	}
	if !errors.Is(err, auth.ErrAuthFailed) {
		return fmt.Errorf("wrong-key client: unexpected error: %w", err)
	}
	fmt.Println("wrong-key client: refused:", err)
	return nil
}

// get fetches url with an http.Client that dials through an auth.Dialer
// built from opts.
func get(url string, opts ...auth.Option) (string, error) {
	d, err := auth.NewDialer(opts...)
	if err != nil {
		return "", err
	}
	tr := &http.Transport{DialContext: d.DialContext}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s", resp.Status)
	}
	return string(body), nil
}
