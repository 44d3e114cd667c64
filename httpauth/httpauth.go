// Package httpauth plugs hmacauth into net/http: a server learns which key
// ID each request came in on, and a client's http.Transport dials
// authenticated connections.
//
// Server side: serve on an auth.AuthListener and set ConnContext, then read
// the peer's identity from any request:
//
//	ln, err := auth.Listen("tcp", ":8080", auth.WithKeys(keys))
//	srv := &http.Server{Handler: h, ConnContext: httpauth.ConnContext}
//	go srv.Serve(ln)
//	...
//	func h(w http.ResponseWriter, r *http.Request) {
//		st, ok := httpauth.FromRequest(r) // st.KeyID names the client
//	}
//
// Client side: an http.Transport whose connections come from an
// auth.Dialer. Keep-alive works as usual: a connection is authenticated
// once and then carries many requests.
//
//	d, err := auth.NewDialer(auth.WithKeyID("alice"), auth.WithKey(key))
//	client := &http.Client{Transport: httpauth.NewTransport(d)}
//	resp, err := client.Get("http://server:8080/")
//
// HTTP/2 without TLS (h2c) works over the authenticated connection with
// http.Protocols: SetUnencryptedHTTP2(true) on the server's Protocols, and
// on the transport's Protocols with HTTP1 left out, so the client speaks
// HTTP/2 from the start.
//
// TLS goes outside hmacauth: the server wraps the AuthListener,
// tls.NewListener(authListener, cfg), so net/http still sees a *tls.Conn
// (r.TLS is set, HTTP/2 is negotiated with ALPN), and ConnContext finds
// the *auth.Conn underneath. The client uses https:// URLs with the same
// transport: net/http runs TLS over the connection the Dialer returns. In
// the auth-only mode, TLS is what protects the bytes; hmacauth adds a
// second, independent proof that the client holds the key.
//
// This package is separate from package auth so that programs that do not
// use net/http do not link it.
package httpauth

import (
	"context"
	"net"
	"net/http"
	"slices"

	"github.com/hmacauth/auth"
)

// connKey is the context key under which ConnContext stores the *auth.Conn.
type connKey struct{}

// maxUnwrap bounds the chain of wrappers AuthConn looks through.
const maxUnwrap = 8

// ConnContext is an http.Server.ConnContext function: it records the
// authenticated connection under each connection's context, so that
// FromContext and FromRequest find it. It finds the *auth.Conn whether the
// server's listener is an auth.AuthListener or a TLS (or other) listener
// wrapping one. For any other connection it returns ctx unchanged.
//
// To combine it with a ConnContext of your own, call it from yours.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if ac, ok := AuthConn(c); ok {
		return context.WithValue(ctx, connKey{}, ac)
	}
	return ctx
}

// AuthConn returns the *auth.Conn that c is or wraps: c itself, or what
// NetConn returns for wrappers such as *tls.Conn, looked up a few levels
// deep.
func AuthConn(c net.Conn) (*auth.Conn, bool) {
	for range maxUnwrap {
		switch v := c.(type) {
		case *auth.Conn:
			return v, v != nil
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil, false
		}
	}
	return nil, false
}

// ConnFromContext returns the authenticated connection a request came in
// on, for example to call ExportKeyingMaterial for channel binding. It
// reports false unless the server's ConnContext is ConnContext (or calls
// it) and the connection is authenticated.
func ConnFromContext(ctx context.Context) (*auth.Conn, bool) {
	ac, ok := ctx.Value(connKey{}).(*auth.Conn)
	if !ok || !ac.ConnectionState().HandshakeComplete {
		return nil, false
	}
	return ac, true
}

// FromContext returns the state of the authenticated connection a request
// came in on: its KeyID names the client. It reports false for a request
// that did not come in on an authenticated connection, or when the
// server's ConnContext is not set to ConnContext.
func FromContext(ctx context.Context) (auth.ConnectionState, bool) {
	ac, ok := ConnFromContext(ctx)
	if !ok {
		return auth.ConnectionState{}, false
	}
	return ac.ConnectionState(), true
}

// FromRequest is FromContext(r.Context()).
func FromRequest(r *http.Request) (auth.ConnectionState, bool) {
	return FromContext(r.Context())
}

// Require returns a handler that serves a request with next only if it
// came in on an authenticated connection and, when keyIDs are given, the
// client's key ID is one of them; it answers any other request with 403
// Forbidden. It guards handlers that are also reachable through a plain
// listener, and makes a forgotten ConnContext fail loudly rather than treat
// every client as anonymous.
func Require(next http.Handler, keyIDs ...string) http.Handler {
	ids := slices.Clone(keyIDs)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, ok := FromRequest(r)
		switch {
		case !ok:
			http.Error(w, "forbidden: this request did not come in on an hmacauth connection (is http.Server.ConnContext set to httpauth.ConnContext?)", http.StatusForbidden)
		case len(ids) > 0 && !slices.Contains(ids, st.KeyID):
			http.Error(w, "forbidden: key ID "+st.KeyID+" may not use this resource", http.StatusForbidden)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// NewTransport returns a copy of http.DefaultTransport (its timeouts and
// connection pool settings) whose connections all come from d; see
// Configure.
func NewTransport(d *auth.Dialer) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	Configure(tr, d)
	return tr
}

// Configure makes tr dial every connection with d: it sets DialContext,
// clears DialTLSContext and DialTLS (for https:// URLs net/http then runs TLS over the
// authenticated connection) and clears Proxy, since a proxy from the
// environment would receive the hmacauth handshake meant for the server.
// Other settings are kept; keep-alive reuse works as for plain TCP.
func Configure(tr *http.Transport, d *auth.Dialer) {
	tr.DialContext = d.DialContext
	tr.DialTLSContext = nil
	//lint:ignore SA1019 cleared too, so https:// cannot bypass d
	tr.DialTLS = nil
	tr.Proxy = nil
}
