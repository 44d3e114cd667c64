package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// peerKeyIDCtxKey is the context key under which ConnContext stores the
// authenticated key ID.
type peerKeyIDCtxKey struct{}

// startAuthHTTPServer serves handler over an AuthListener on 127.0.0.1
// with ConnContext storing each connection's key ID. The cleanup closes
// the server.
func startAuthHTTPServer(t *testing.T, handler http.Handler, opts ...Option) *AuthListener {
	t.Helper()
	ln, err := Listen("tcp", "127.0.0.1:0", opts...)
	require.NoError(t, err)
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			// Accept handed out an authenticated *Conn: the identity is
			// already there.
			return context.WithValue(ctx, peerKeyIDCtxKey{}, c.(*Conn).ConnectionState().KeyID)
		},
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		assert.ErrorIs(t, <-done, http.ErrServerClosed)
	})
	return ln
}

// newAuthHTTPClient returns an http.Client that dials through an auth
// Dialer; the cleanup closes its idle connections.
func newAuthHTTPClient(t *testing.T, opts ...Option) *http.Client {
	t.Helper()
	d, err := NewDialer(opts...)
	require.NoError(t, err)
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

func TestHTTPThroughListenerAndDialer(t *testing.T) {
	alice, bob := mustGenerateTestKey(t), mustGenerateTestKey(t)
	rec := newHandshakeRecorder()
	ln := startAuthHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%s %d", r.Context().Value(peerKeyIDCtxKey{}), len(body))
	}), WithKeys(map[string][]byte{"alice": alice, "bob": bob}), rec.option())
	url := "http://" + ln.Addr().String() + "/"

	for _, tc := range []struct {
		id  string
		key []byte
	}{{"alice", alice}, {"bob", bob}} {
		t.Run(tc.id, func(t *testing.T) {
			client := newAuthHTTPClient(t, WithKey(tc.key), WithKeyID(tc.id))
			for i, size := range []int{0, 10, 100_000, 0} {
				var resp *http.Response
				var err error
				if size == 0 {
					resp, err = client.Get(url)
				} else {
					resp, err = client.Post(url, "application/octet-stream", bytes.NewReader(patternBytes(size)))
				}
				require.NoError(t, err, "request %d", i)
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				require.NoError(t, err)
				assert.Equal(t, http.StatusOK, resp.StatusCode)
				assert.Equal(t, fmt.Sprintf("%s %d", tc.id, size), string(body))
			}
			// Keep-alive: all requests went over one authenticated
			// connection.
			ev := rec.next(t)
			require.NoError(t, ev.Err)
			assert.Equal(t, tc.id, ev.KeyID)
			rec.none(t)
		})
	}
}

func TestHTTPRefusedClients(t *testing.T) {
	key := mustGenerateTestKey(t)
	rec := newHandshakeRecorder()
	ln := startAuthHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "secret")
	}), WithKey(key), rec.option())
	url := "http://" + ln.Addr().String() + "/"

	t.Run("wrong key", func(t *testing.T) {
		client := newAuthHTTPClient(t, WithKey(mustGenerateTestKey(t)))
		resp, err := client.Get(url)
		require.Error(t, err)
		assert.Nil(t, resp)
		assert.ErrorIs(t, err, ErrBadServerProof)
		assert.ErrorIs(t, rec.next(t).Err, ErrClientRefusedServer)
	})
	t.Run("plain HTTP client", func(t *testing.T) {
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		resp, err := client.Get(url)
		require.Error(t, err, "a client without the key gets no response")
		assert.Nil(t, resp)
		ev := rec.next(t)
		assert.ErrorIs(t, ev.Err, ErrNotProtocol)
		assert.Contains(t, ev.Err.Error(), "HTTP request")
	})
	t.Run("the server keeps serving", func(t *testing.T) {
		client := newAuthHTTPClient(t, WithKey(key))
		resp, err := client.Get(url)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, "secret", string(body))
		require.NoError(t, rec.next(t).Err)
	})
}

// TestHTTPServerCloseEndsEverything checks that closing an http.Server on
// an AuthListener with connections at every stage leaves nothing behind
// (TestMain's goleak checks the goroutines).
func TestHTTPServerCloseEndsEverything(t *testing.T) {
	key := mustGenerateTestKey(t)
	ln, err := Listen("tcp", "127.0.0.1:0", WithKey(key))
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()

	client := newAuthHTTPClient(t, WithKey(key))
	resp, err := client.Get("http://" + ln.Addr().String())
	require.NoError(t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	silent := dialRawTCP(t, ln.Addr().String()) // mid-handshake at Close

	require.NoError(t, srv.Close())
	require.ErrorIs(t, <-done, http.ErrServerClosed)
	silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = silent.Read(make([]byte, 1))
	assert.True(t, errors.Is(err, io.EOF) || strings.Contains(err.Error(), "reset"), "silent client not closed: %v", err)
}
