package httpauth_test

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hmacauth/auth"
	"github.com/hmacauth/auth/httpauth"
)

// BenchmarkGet measures one small GET over loopback, with keep-alive (the
// handshake amortised over the connection) and with a new connection per
// request (a handshake each time), over hmacauth and over plain TCP.
func BenchmarkGet(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	for _, bc := range []struct {
		name      string
		hmac      bool
		keepAlive bool
	}{
		{"hmacauth/keep-alive", true, true},
		{"hmacauth/new-conn", true, false},
		{"plain/keep-alive", false, true},
		{"plain/new-conn", false, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			inner, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(b, err)
			var ln net.Listener = inner
			tr := &http.Transport{}
			if bc.hmac {
				ln, err = auth.NewListener(inner, auth.WithKey(keyAlice))
				require.NoError(b, err)
				d, err := auth.NewDialer(auth.WithKey(keyAlice))
				require.NoError(b, err)
				tr = httpauth.NewTransport(d)
			}
			tr.DisableKeepAlives = !bc.keepAlive
			srv := &http.Server{Handler: h, ConnContext: httpauth.ConnContext, ReadHeaderTimeout: 5 * time.Second}
			done := make(chan struct{})
			go func() { defer close(done); srv.Serve(ln) }()
			defer func() { srv.Close(); <-done }()
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr}
			url := "http://" + ln.Addr().String() + "/"
			b.ResetTimer()
			for b.Loop() {
				resp, err := c.Get(url)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}
