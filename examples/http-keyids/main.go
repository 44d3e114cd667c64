// Command http-keyids runs an HTTP server that knows its clients by key ID,
// then talks to it as two good clients and two refused ones, and exits 0 if
// everything behaved as it should.
//
//	go run ./examples/http-keyids
//
// The server serves net/http on an auth.AuthListener with
// httpauth.ConnContext, so handlers read the caller's key ID from the
// request; /admin is reserved for one key ID with httpauth.Require. The
// clients use httpauth.NewTransport, so keep-alive connections are
// authenticated once and reused. Handshake outcomes are logged with slog
// and counted by the listener.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/hmacauth/auth"
	"github.com/hmacauth/auth/httpauth"
)

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	// Each client has its own key under its own key ID; in production the
	// keys come from a secret store (auth.ParseKey reads them as text).
	keys := map[string][]byte{}
	for _, id := range []string{"alice", "bob"} {
		k, err := auth.GenerateKey()
		if err != nil {
			return err
		}
		keys[id] = k
	}

	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		Level: slog.LevelWarn, // Debug shows accepted handshakes too
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // shorter lines
			}
			return a
		},
	}))
	ln, err := auth.Listen("tcp", "127.0.0.1:0", auth.WithKeys(keys), auth.WithLogger(logger))
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		st, _ := httpauth.FromRequest(r)
		fmt.Fprintf(w, "hello, %s", st.KeyID)
	})
	mux.Handle("/admin", httpauth.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "welcome to the admin page")
	}), "alice"))
	srv := &http.Server{Handler: mux, ConnContext: httpauth.ConnContext, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	base := "http://" + ln.Addr().String()

	// Good clients: three requests each over one kept-alive connection.
	for _, id := range []string{"alice", "bob"} {
		c, closeIdle, err := client(id, keys[id])
		if err != nil {
			return err
		}
		for _, path := range []string{"/", "/", "/admin"} {
			status, body, err := get(c, base+path)
			if err != nil {
				return fmt.Errorf("%s %s: %w", id, path, err)
			}
			fmt.Printf("%-5s GET %-6s -> %d %s\n", id, path, status, body)
		}
		closeIdle()
	}

	// Refused clients: a wrong key, and an unknown key ID.
	for _, bad := range []struct{ id, what string }{{"bob", "wrong key"}, {"mallory", "unknown key ID"}} {
		wrong, _ := auth.GenerateKey()
		c, closeIdle, err := client(bad.id, wrong)
		if err != nil {
			return err
		}
		_, _, err = get(c, base+"/")
		closeIdle()
		if !errors.Is(err, auth.ErrAuthFailed) {
			return fmt.Errorf("%s (%s) was not refused: %v", bad.id, bad.what, err)
		}
		fmt.Printf("%-7s (%s) refused: errors.Is(err, auth.ErrAuthFailed) = true\n", bad.id, bad.what)
	}

	// A refused client can give up before the server has finished with
	// it; let the listener finish its handshakes before closing it, or
	// they are cut short and counted under reason "other".
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if s := ln.Stats(); s.Accepted+s.Refused() == 4 {
			break
		}
	}

	// Graceful shutdown: the listener closes, running requests finish.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		return err
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	s := ln.Stats()
	fmt.Printf("listener: accepted=%d refused=%d (auth_failed=%d) in_flight=%d\n", s.Accepted, s.Refused(), s.RefusedAuthFailed, s.InFlight)
	if s.Accepted != 2 || s.RefusedAuthFailed != 2 {
		return fmt.Errorf("unexpected counters %+v", s)
	}
	return nil
}

// client returns an HTTP client that authenticates as id, and a function
// that closes its idle connections.
func client(id string, key []byte) (*http.Client, func(), error) {
	d, err := auth.NewDialer(auth.WithKeyID(id), auth.WithKey(key))
	if err != nil {
		return nil, nil, err
	}
	tr := httpauth.NewTransport(d)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}, tr.CloseIdleConnections, nil
}

func get(c *http.Client, url string) (int, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), err
}
