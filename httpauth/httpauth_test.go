package httpauth_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hmacauth/auth"
	"github.com/hmacauth/auth/httpauth"
)

var (
	keyAlice = bytes.Repeat([]byte{0xA1}, auth.DefaultKeyLen)
	keyBob   = bytes.Repeat([]byte{0xB0}, auth.DefaultKeyLen)
	keyWrong = bytes.Repeat([]byte{0xEE}, auth.DefaultKeyLen)
)

// whoami answers with the protocol, the TLS flag and the peer's key ID as
// seen through httpauth, or 401 if the request carries no identity.
func whoami(w http.ResponseWriter, r *http.Request) {
	st, ok := httpauth.FromRequest(r)
	if !ok {
		http.Error(w, "no hmacauth identity", http.StatusUnauthorized)
		return
	}
	fmt.Fprintf(w, "%s tls=%t key=%s remote=%s", r.Proto, r.TLS != nil, st.KeyID, r.RemoteAddr)
}

// testServer is a real http.Server on an auth.AuthListener on loopback.
type testServer struct {
	ln    *auth.AuthListener
	srv   *http.Server
	addr  string
	serve chan error // Serve's result
}

// startServer serves h on a fresh AuthListener holding alice's and bob's
// keys. wrap, if not nil, wraps the AuthListener (for TLS); configure, if
// not nil, adjusts the server before it starts.
func startServer(t *testing.T, h http.Handler, wrap func(net.Listener) net.Listener, configure func(*http.Server)) *testServer {
	t.Helper()
	ln, err := auth.Listen("tcp", "127.0.0.1:0",
		auth.WithKeys(map[string][]byte{"alice": keyAlice, "bob": keyBob}),
		auth.WithHandshakeTimeout(2*time.Second))
	require.NoError(t, err)
	var served net.Listener = ln
	if wrap != nil {
		served = wrap(ln)
	}
	ts := &testServer{
		ln:    ln,
		srv:   &http.Server{Handler: h, ConnContext: httpauth.ConnContext, ReadHeaderTimeout: 5 * time.Second},
		addr:  ln.Addr().String(),
		serve: make(chan error, 1),
	}
	if configure != nil {
		configure(ts.srv)
	}
	go func() { ts.serve <- ts.srv.Serve(served) }()
	t.Cleanup(func() {
		ts.srv.Close()
		select {
		case err := <-ts.serve:
			assert.ErrorIs(t, err, http.ErrServerClosed)
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after Close")
		}
	})
	return ts
}

// newClient returns an http.Client dialing as id with key, and closes its
// idle connections when the test ends.
func newClient(t *testing.T, id string, key []byte, configure func(*http.Transport)) *http.Client {
	t.Helper()
	d, err := auth.NewDialer(auth.WithKeyID(id), auth.WithKey(key))
	require.NoError(t, err)
	tr := httpauth.NewTransport(d)
	if configure != nil {
		configure(tr)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// get fetches url and returns the body of a 200 answer.
func get(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "body: %s", body)
	return string(body)
}

// TestKeepAliveSeveralKeyIDs sends many requests from two clients with
// different key IDs: each is identified correctly on every request, and
// each client's requests reuse one authenticated connection.
func TestKeepAliveSeveralKeyIDs(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(whoami), nil, nil)
	const requests = 25
	clients := map[string]*http.Client{
		"alice": newClient(t, "alice", keyAlice, nil),
		"bob":   newClient(t, "bob", keyBob, nil),
	}
	remotes := map[string]map[string]bool{"alice": {}, "bob": {}}
	for i := range requests {
		for _, id := range []string{"alice", "bob"} {
			body := get(t, clients[id], "http://"+ts.addr+"/")
			require.True(t, strings.HasPrefix(body, "HTTP/1.1 tls=false key="+id+" "), "request %d as %s: %s", i, id, body)
			remotes[id][body[strings.Index(body, "remote="):]] = true
		}
	}
	assert.Len(t, remotes["alice"], 1, "alice's requests share one connection")
	assert.Len(t, remotes["bob"], 1, "bob's requests share one connection")
	s := ts.ln.Stats()
	assert.Equal(t, uint64(2), s.Accepted, "one handshake per client for %d requests each", requests)
	assert.Zero(t, s.Refused())
}

// TestConcurrentRequests runs requests from several goroutines through one
// transport: the pool opens a few connections, each authenticated once.
func TestConcurrentRequests(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(whoami), nil, nil)
	c := newClient(t, "bob", keyBob, func(tr *http.Transport) { tr.MaxIdleConnsPerHost = 4 })
	const workers, each = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				resp, err := c.Get("http://" + ts.addr + "/")
				if err != nil {
					errs <- err
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || !strings.Contains(string(body), "key=bob ") {
					errs <- fmt.Errorf("body %q, err %v", body, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s := ts.ln.Stats()
	assert.LessOrEqual(t, s.Accepted, uint64(workers*each/2), "connections are reused: %+v", s)
	assert.GreaterOrEqual(t, s.Accepted, uint64(1))
}

// TestRefusedClients checks that a wrong key, an unknown key ID and a
// plain HTTP client are refused, each with an error that says why, and that
// the server goes on serving good clients.
func TestRefusedClients(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(whoami), nil, nil)
	url := "http://" + ts.addr + "/"

	_, err := newClient(t, "alice", keyWrong, nil).Get(url)
	require.Error(t, err)
	assert.ErrorIs(t, err, auth.ErrAuthFailed)
	assert.ErrorIs(t, err, auth.ErrBadServerProof)
	assert.Contains(t, err.Error(), `could not prove it holds the key for key ID "alice"`)

	_, err = newClient(t, "mallory", keyAlice, nil).Get(url)
	assert.ErrorIs(t, err, auth.ErrAuthFailed)
	assert.Contains(t, err.Error(), `key ID "mallory"`)

	plainTr := &http.Transport{}
	defer plainTr.CloseIdleConnections()
	_, err = (&http.Client{Transport: plainTr, Timeout: 10 * time.Second}).Get(url)
	assert.Error(t, err, "a client without hmacauth gets no answer")

	// The server is unharmed.
	assert.Contains(t, get(t, newClient(t, "bob", keyBob, nil), url), "key=bob ")

	want := auth.ListenerStats{Accepted: 1, RefusedAuthFailed: 2, RefusedProtocol: 1}
	require.Eventually(t, func() bool { return ts.ln.Stats() == want }, 5*time.Second, 5*time.Millisecond,
		"got %+v, want %+v", ts.ln.Stats(), want)
}

// TestGracefulShutdown starts a slow request, shuts the server down while
// it runs, and checks that the request completes, Shutdown waits for it,
// and new connections are refused afterwards.
func TestGracefulShutdown(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		whoami(w, r)
	})
	ts := startServer(t, h, nil, nil)
	c := newClient(t, "alice", keyAlice, nil)

	type result struct {
		body string
		err  error
	}
	reqDone := make(chan result, 1)
	go func() {
		resp, err := c.Get("http://" + ts.addr + "/slow")
		if err != nil {
			reqDone <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		reqDone <- result{string(b), err}
	}()
	<-started

	shutDone := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shutDone <- ts.srv.Shutdown(ctx)
	}()
	// Shutdown closes the listener first: Serve returns at once.
	select {
	case err := <-ts.serve:
		require.ErrorIs(t, err, http.ErrServerClosed)
		ts.serve <- err // for the cleanup
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Shutdown")
	}
	select {
	case err := <-shutDone:
		t.Fatalf("Shutdown returned %v while a request was running", err)
	default:
	}
	_, err := auth.Dial("tcp", ts.addr, auth.WithKeyID("alice"), auth.WithKey(keyAlice))
	assert.Error(t, err, "the listener is closed")

	close(release)
	r := <-reqDone
	require.NoError(t, r.err)
	assert.Contains(t, r.body, "key=alice ")
	require.NoError(t, <-shutDone)
}

// TestUnencryptedHTTP2 speaks HTTP/2 without TLS (h2c, prior knowledge)
// over the authenticated connection, with http.Protocols: many concurrent
// requests share a single connection and see the client's key ID.
func TestUnencryptedHTTP2(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(whoami), nil, func(s *http.Server) {
		s.Protocols = new(http.Protocols)
		s.Protocols.SetHTTP1(true)
		s.Protocols.SetUnencryptedHTTP2(true)
	})
	c := newClient(t, "alice", keyAlice, func(tr *http.Transport) {
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetUnencryptedHTTP2(true) // and no HTTP1: h2 from the start
	})
	// The first request opens the connection; the others, concurrent,
	// share it.
	assert.True(t, strings.HasPrefix(get(t, c, "http://"+ts.addr+"/"), "HTTP/2.0 tls=false key=alice "))
	var wg sync.WaitGroup
	bodies := make(chan string, 20)
	for range cap(bodies) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.Get("http://" + ts.addr + "/")
			if !assert.NoError(t, err) {
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			bodies <- string(b)
		}()
	}
	wg.Wait()
	close(bodies)
	n := 0
	for b := range bodies {
		n++
		assert.True(t, strings.HasPrefix(b, "HTTP/2.0 tls=false key=alice "), b)
	}
	assert.Equal(t, 20, n)
	assert.Equal(t, uint64(1), ts.ln.Stats().Accepted, "HTTP/2 multiplexes every request over one connection")

	// An HTTP/1.1 client of the same server still works.
	assert.Contains(t, get(t, newClient(t, "bob", keyBob, nil), "http://"+ts.addr+"/"), "HTTP/1.1 tls=false key=bob ")
}

// TestTLSOutside serves TLS on top of the AuthListener: net/http sees a
// *tls.Conn (r.TLS is set, ALPN picks the protocol), ConnContext still
// finds the hmacauth identity underneath, and the client runs TLS over the
// authenticated connection by asking for https:// URLs.
func TestTLSOutside(t *testing.T) {
	cert, pool := selfSigned(t)
	for _, tt := range []struct {
		name  string
		alpn  []string
		proto string
	}{
		{"HTTP/1.1", []string{"http/1.1"}, "HTTP/1.1"},
		{"HTTP/2", []string{"h2", "http/1.1"}, "HTTP/2.0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srvCfg := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: tt.alpn, MinVersion: tls.VersionTLS13}
			ts := startServer(t, http.HandlerFunc(whoami), func(ln net.Listener) net.Listener {
				return tls.NewListener(ln, srvCfg)
			}, nil)
			for _, id := range []string{"alice", "bob"} {
				key := map[string][]byte{"alice": keyAlice, "bob": keyBob}[id]
				c := newClient(t, id, key, func(tr *http.Transport) {
					tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}
				})
				for range 3 {
					body := get(t, c, "https://"+ts.addr+"/")
					assert.True(t, strings.HasPrefix(body, tt.proto+" tls=true key="+id+" "), body)
				}
			}
			assert.Equal(t, uint64(2), ts.ln.Stats().Accepted)

			// A client with the right certificate but the wrong key never
			// reaches TLS.
			c := newClient(t, "alice", keyWrong, func(tr *http.Transport) {
				tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}
			})
			_, err := c.Get("https://" + ts.addr + "/")
			assert.ErrorIs(t, err, auth.ErrAuthFailed)
		})
	}
}

// TestTLSOutsideDialTLSContext builds the client's TLS layer by hand with
// DialTLSContext, for programs that need control over it: dial hmacauth,
// then tls.Client over the *auth.Conn.
func TestTLSOutsideDialTLSContext(t *testing.T) {
	cert, pool := selfSigned(t)
	srvCfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	ts := startServer(t, http.HandlerFunc(whoami), func(ln net.Listener) net.Listener {
		return tls.NewListener(ln, srvCfg)
	}, nil)
	d, err := auth.NewDialer(auth.WithKeyID("bob"), auth.WithKey(keyBob))
	require.NoError(t, err)
	tr := &http.Transport{
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			tc := tls.Client(c, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13})
			if err := tc.HandshakeContext(ctx); err != nil {
				c.Close()
				return nil, err
			}
			return tc, nil
		},
	}
	defer tr.CloseIdleConnections()
	body := get(t, &http.Client{Transport: tr, Timeout: 10 * time.Second}, "https://"+ts.addr+"/")
	assert.True(t, strings.HasPrefix(body, "HTTP/1.1 tls=true key=bob "), body)
}

// TestRequire checks the guard: 403 without an hmacauth identity or with a
// key ID not on the list, the handler otherwise.
func TestRequire(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux := http.NewServeMux()
	mux.Handle("/any", httpauth.Require(ok))
	mux.Handle("/alice", httpauth.Require(ok, "alice"))
	ts := startServer(t, mux, nil, nil)
	alice, bob := newClient(t, "alice", keyAlice, nil), newClient(t, "bob", keyBob, nil)
	status := func(c *http.Client, path string) int {
		resp, err := c.Get("http://" + ts.addr + path)
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusOK, status(alice, "/any"))
	assert.Equal(t, http.StatusOK, status(bob, "/any"))
	assert.Equal(t, http.StatusOK, status(alice, "/alice"))
	assert.Equal(t, http.StatusForbidden, status(bob, "/alice"))

	// The same handler behind a plain listener (or with ConnContext
	// forgotten) refuses everything.
	plainLn, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	plain := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); plain.Serve(plainLn) }()
	defer func() { plain.Close(); <-done }()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("http://" + plainLn.Addr().String() + "/any")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Contains(t, string(body), "httpauth.ConnContext")
}

// TestAuthConnUnwrap checks the lookup ConnContext relies on, over
// net.Pipe: an *auth.Conn is found directly and under TLS, a plain conn is
// not, and state is only reported once the handshake is complete.
func TestAuthConnUnwrap(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	ac, err := auth.Client(a, auth.WithKey(keyAlice))
	require.NoError(t, err)
	tc := tls.Client(ac, &tls.Config{InsecureSkipVerify: true})

	for _, tt := range []struct {
		name  string
		conn  net.Conn
		found bool
	}{
		{"auth.Conn", ac, true},
		{"tls over auth", tc, true},
		{"plain", b, false},
		{"nil", nil, false},
		{"typed nil auth.Conn", (*auth.Conn)(nil), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := httpauth.AuthConn(tt.conn)
			assert.Equal(t, tt.found, ok)
			if tt.found {
				assert.Same(t, ac, got)
			}
			ctx := httpauth.ConnContext(context.Background(), tt.conn)
			// Not handshaken yet: no identity to report.
			_, ok = httpauth.FromContext(ctx)
			assert.False(t, ok)
			if !tt.found {
				assert.Equal(t, context.Background(), ctx, "other connections leave the context alone")
			}
		})
	}
	_, ok := httpauth.FromContext(context.Background())
	assert.False(t, ok)
}

// TestFromContextOverPipe completes a handshake over net.Pipe and reads the
// server side's identity through ConnContext, as http.Server would.
func TestFromContextOverPipe(t *testing.T) {
	a, b := net.Pipe()
	cli, err := auth.Client(a, auth.WithKeyID("bob"), auth.WithKey(keyBob))
	require.NoError(t, err)
	srv, err := auth.Server(b, auth.WithKeys(map[string][]byte{"bob": keyBob}))
	require.NoError(t, err)
	defer cli.Close()
	defer srv.Close()
	// net.Pipe does not buffer, so the client reads (which sends its
	// proof alone and then takes the verdict) while the server writes.
	errc := make(chan error, 1)
	go func() {
		var buf [1]byte
		_, err := io.ReadFull(cli, buf[:])
		errc <- err
	}()
	require.NoError(t, srv.Handshake())
	_, err = srv.Write([]byte("y"))
	require.NoError(t, err)
	require.NoError(t, <-errc)

	ctx := httpauth.ConnContext(context.Background(), srv)
	st, ok := httpauth.FromContext(ctx)
	require.True(t, ok)
	assert.Equal(t, "bob", st.KeyID)
	assert.False(t, st.IsClient)
	got, ok := httpauth.ConnFromContext(ctx)
	require.True(t, ok)
	assert.Same(t, srv, got)
}

// selfSigned makes a throwaway certificate for 127.0.0.1 and a pool that
// trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "hmacauth test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv, Leaf: leaf}, pool
}

// TestConfigureClearsProxy gives a transport a proxy, as the environment
// might, and checks that after Configure requests go straight to the
// server through the Dialer and the proxy never sees a connection.
func TestConfigureClearsProxy(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(whoami), nil, nil)
	proxy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	proxied := make(chan struct{}, 1)
	go func() {
		for {
			c, err := proxy.Accept()
			if err != nil {
				return
			}
			proxied <- struct{}{}
			c.Close()
		}
	}()
	defer proxy.Close()
	proxyURL, err := url.Parse("http://" + proxy.Addr().String())
	require.NoError(t, err)

	d, err := auth.NewDialer(auth.WithKeyID("alice"), auth.WithKey(keyAlice))
	require.NoError(t, err)
	tr := &http.Transport{Proxy: http.ProxyURL(proxyURL)}
	httpauth.Configure(tr, d)
	defer tr.CloseIdleConnections()
	assert.Contains(t, get(t, &http.Client{Transport: tr, Timeout: 10 * time.Second}, "http://"+ts.addr+"/"), "key=alice ")
	select {
	case <-proxied:
		t.Fatal("the request went through the proxy")
	default:
	}
}
