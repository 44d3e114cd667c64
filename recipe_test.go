package auth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recipeKey is the recipe's own example key: short, as real deployments'
// keys often are. WithRecipe must accept it.
var recipeKey = []byte("peekaboo")

var recipeDigests = []struct {
	name    string
	newHash func() hash.Hash
}{
	{"sha256", sha256.New},
	{"md5", md5.New},
	{"sha1", sha1.New},
}

type recipeAcceptResult struct {
	c   *Conn
	err error
}

func recipeAcceptAsync(ln *AuthListener) <-chan recipeAcceptResult {
	ch := make(chan recipeAcceptResult, 1)
	go func() {
		c, err := ln.AcceptAuth()
		ch <- recipeAcceptResult{c, err}
	}()
	return ch
}

// TestRecipeGoListenerPythonClient runs the recipe's own Python client
// against a Go AuthListener configured WithRecipe.
func TestRecipeGoListenerPythonClient(t *testing.T) {
	for _, d := range recipeDigests {
		for _, wrong := range []bool{false, true} {
			name := d.name
			if wrong {
				name += "/wrong-key"
			}
			t.Run(name, func(t *testing.T) {
				events := make(chan HandshakeEvent, 1)
				ln, err := Listen("tcp", "127.0.0.1:0", WithKey(recipeKey), WithRecipe(d.newHash),
					WithHandshakeHook(func(ev HandshakeEvent) { events <- ev }))
				require.NoError(t, err)
				defer ln.Close()
				accepted := recipeAcceptAsync(ln)

				key := recipeKey
				if wrong {
					key = []byte("peekabo0")
				}
				port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
				py := startPython(t, "recipe_client.py", port, hex.EncodeToString(key), d.name)

				ev := <-events
				assert.False(t, ev.IsClient)
				assert.Equal(t, ModeRecipe, ev.Mode)
				if wrong {
					require.ErrorIs(t, ev.Err, ErrBadClientProof)
					require.ErrorIs(t, ev.Err, ErrAuthFailed)
					assert.True(t, strings.HasPrefix(ev.Err.Error(), "auth: "), ev.Err.Error())
					assert.Equal(t, "CLOSED", py.line(t))
					assert.Equal(t, 3, py.wait(t))
					require.NoError(t, ln.Close())
					r := <-accepted
					require.ErrorIs(t, r.err, net.ErrClosed, "no unauthenticated connection may come out of Accept")
					return
				}
				require.NoError(t, ev.Err)
				r := <-accepted
				require.NoError(t, r.err)
				defer r.c.Close()
				st := r.c.ConnectionState()
				assert.True(t, st.HandshakeComplete)
				assert.Equal(t, ModeRecipe, st.Mode)
				assert.Zero(t, st.Version)
				buf := make([]byte, len("Hello World"))
				_, err = io.ReadFull(r.c, buf)
				require.NoError(t, err)
				assert.Equal(t, "Hello World", string(buf))
				_, err = r.c.Write([]byte("HELLO BACK"))
				require.NoError(t, err)
				assert.Equal(t, "REPLY "+hex.EncodeToString([]byte("HELLO BACK")), py.line(t))
				assert.Equal(t, 0, py.wait(t))
			})
		}
	}
}

// TestRecipeGoDialerPythonServer runs a Go client configured WithRecipe
// against the recipe's own Python server.
func TestRecipeGoDialerPythonServer(t *testing.T) {
	for _, d := range recipeDigests {
		for _, wrong := range []bool{false, true} {
			name := d.name
			if wrong {
				name += "/wrong-key"
			}
			t.Run(name, func(t *testing.T) {
				py := startPython(t, "recipe_server.py", hex.EncodeToString(recipeKey), d.name)
				port, ok := strings.CutPrefix(py.line(t), "PORT ")
				require.True(t, ok)

				key := recipeKey
				if wrong {
					key = []byte("peekabo0")
				}
				var ev HandshakeEvent
				c, err := Dial("tcp", "127.0.0.1:"+port, WithKey(key), WithRecipe(d.newHash),
					WithHandshakeHook(func(e HandshakeEvent) { ev = e }))
				// One-way: the client cannot tell a wrong key from a right
				// one until the server hangs up.
				require.NoError(t, err)
				defer c.Close()
				assert.True(t, ev.IsClient)
				assert.Equal(t, ModeRecipe, c.ConnectionState().Mode)
				require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))

				if wrong {
					assert.Equal(t, "AUTH FAILED", py.line(t))
					_, err := c.Read(make([]byte, 1))
					assert.ErrorIs(t, err, io.EOF)
					assert.Equal(t, 3, py.wait(t))
					return
				}
				assert.Equal(t, "AUTH OK", py.line(t))
				msg := []byte("Hello World")
				_, err = c.Write(msg)
				require.NoError(t, err)
				got := make([]byte, len(msg))
				_, err = io.ReadFull(c, got)
				require.NoError(t, err)
				assert.Equal(t, msg, got)
				require.NoError(t, c.Close())
				assert.Equal(t, 0, py.wait(t))
			})
		}
	}
}

// TestRecipeWireFormat checks the bytes on the wire against a peer
// written from the recipe's text: 32 unframed bytes one way, the raw HMAC
// the other, nothing else.
func TestRecipeWireFormat(t *testing.T) {
	t.Run("server", func(t *testing.T) {
		a, b := net.Pipe()
		srv, err := Server(a, WithKey(recipeKey), WithRecipe(md5.New))
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() { done <- srv.Handshake() }()

		nonce := make([]byte, 32)
		_, err = io.ReadFull(b, nonce)
		require.NoError(t, err)
		m := hmac.New(md5.New, recipeKey)
		m.Write(nonce)
		wrote := make(chan error, 1)
		go func() { // net.Pipe is synchronous: the server reads the answer, then the application the rest
			_, err := b.Write(append(m.Sum(nil), "after"...))
			wrote <- err
		}()
		require.NoError(t, <-done)
		got := make([]byte, 5)
		_, err = io.ReadFull(srv, got)
		require.NoError(t, err)
		assert.Equal(t, "after", string(got), "bytes after the answer belong to the application")
		require.NoError(t, <-wrote)
		srv.Close()
		b.Close()
	})
	t.Run("client", func(t *testing.T) {
		a, b := net.Pipe()
		cli, err := Client(a, WithKey(recipeKey), WithRecipe(nil))
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() { done <- cli.Handshake() }()

		nonce := bytes.Repeat([]byte{0x5a}, 32)
		_, err = b.Write(nonce)
		require.NoError(t, err)
		answer := make([]byte, sha256.Size)
		_, err = io.ReadFull(b, answer)
		require.NoError(t, err)
		m := hmac.New(sha256.New, recipeKey)
		m.Write(nonce)
		assert.Equal(t, m.Sum(nil), answer, "WithRecipe(nil) answers with raw HMAC-SHA256")
		require.NoError(t, <-done)
		cli.Close()
		b.Close()
	})
}

func TestRecipeGoToGo(t *testing.T) {
	tests := []struct {
		name       string
		serverOpts []Option
		clientOpts []Option
		wantErr    error // on the server
	}{
		{"short key", []Option{WithKey(recipeKey), WithRecipe(sha1.New)}, []Option{WithKey(recipeKey), WithRecipe(sha1.New)}, nil},
		{"wrong key", []Option{WithKey(recipeKey), WithRecipe(nil)}, []Option{WithKey([]byte("other")), WithRecipe(nil)}, ErrBadClientProof},
		{"digests differ", []Option{WithKey(recipeKey), WithRecipe(sha256.New)}, []Option{WithKey(recipeKey), WithRecipe(md5.New)}, ErrProtocol},
		{"modern client", []Option{WithKey(recipeKey), WithRecipe(nil)}, []Option{WithKey(bytes.Repeat(recipeKey, 2))}, ErrBadClientProof},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events := make(chan HandshakeEvent, 1)
			ln, err := Listen("tcp", "127.0.0.1:0", append(tt.serverOpts, WithHandshakeTimeout(2*time.Second),
				WithHandshakeHook(func(ev HandshakeEvent) { events <- ev }))...)
			require.NoError(t, err)
			defer ln.Close()
			accepted := recipeAcceptAsync(ln)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, _ := DialContext(ctx, "tcp", ln.Addr().String(), append(tt.clientOpts, WithHandshakeTimeout(time.Second))...)
			if c != nil {
				c.Write([]byte("x"))
				c.Close()
			}
			ev := <-events
			if tt.wantErr != nil {
				require.ErrorIs(t, ev.Err, tt.wantErr)
				return
			}
			require.NoError(t, ev.Err)
			r := <-accepted
			require.NoError(t, r.err)
			r.c.Close()
		})
	}
}

func TestRecipeConfig(t *testing.T) {
	_, err := NewDialer(WithRecipe(nil))
	assert.ErrorIs(t, err, ErrKeyTooShort)
	_, err = NewDialer(WithKey(nil), WithRecipe(nil))
	assert.ErrorIs(t, err, ErrKeyTooShort)
	_, err = NewDialer(WithKey(recipeKey))
	assert.ErrorIs(t, err, ErrKeyTooShort, "short keys stay refused by the modern protocol")
	_, err = Listen("tcp", "127.0.0.1:0", WithKey(recipeKey))
	assert.ErrorIs(t, err, ErrKeyTooShort)
	_, err = Listen("tcp", "127.0.0.1:0", WithKeys(map[string][]byte{"a": bytes.Repeat(recipeKey, 2)}), WithRecipe(nil))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "WithKey")
	_, err = NewDialer(WithRecipe(md5.New), WithKey(recipeKey))
	assert.NoError(t, err, "option order does not matter")
}

func TestRecipeSilentServerHint(t *testing.T) {
	// A recipe client dialing an hmacauth server: both wait for the other.
	ln, err := Listen("tcp", "127.0.0.1:0", WithKey(bytes.Repeat(recipeKey, 2)), WithHandshakeTimeout(time.Second))
	require.NoError(t, err)
	defer ln.Close()
	_, err = Dial("tcp", ln.Addr().String(), WithKey(recipeKey), WithRecipe(nil), WithHandshakeTimeout(200*time.Millisecond))
	require.Error(t, err)
	assert.True(t, errors.Is(err, errDeadline))
	assert.Contains(t, err.Error(), "recipe server speaks first")
}

func TestRecipeNoKeyingMaterial(t *testing.T) {
	a, b := net.Pipe()
	srv, err := Server(a, WithKey(recipeKey), WithRecipe(nil))
	require.NoError(t, err)
	cli, err := Client(b, WithKey(recipeKey), WithRecipe(nil))
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Handshake() }()
	require.NoError(t, cli.Handshake())
	require.NoError(t, <-done)
	_, err = cli.ExportKeyingMaterial("x", nil, 16)
	assert.ErrorIs(t, err, errors.ErrUnsupported)
	cli.Close()
	srv.Close()
}

// TestRecipeListenerConcurrent: a recipe client that never answers does not
// hold up another, and runs into the handshake timeout.
func TestRecipeListenerConcurrent(t *testing.T) {
	events := make(chan HandshakeEvent, 2)
	ln, err := Listen("tcp", "127.0.0.1:0", WithKey(recipeKey), WithRecipe(nil),
		WithHandshakeTimeout(300*time.Millisecond), WithHandshakeHook(func(ev HandshakeEvent) { events <- ev }))
	require.NoError(t, err)
	defer ln.Close()
	silent, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer silent.Close()

	c, err := Dial("tcp", ln.Addr().String(), WithKey(recipeKey), WithRecipe(nil))
	require.NoError(t, err)
	defer c.Close()
	s, err := ln.AcceptAuth()
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, (<-events).Err, "the answering client finishes first")
	ev := <-events
	require.ErrorIs(t, ev.Err, errDeadline)
	assert.Equal(t, ModeRecipe, ev.Mode)
}

// TestRecipeRefusesSealed checks that asking for sealing on the recipe's
// protocol, which cannot provide it, fails at construction on both sides.
func TestRecipeRefusesSealed(t *testing.T) {
	key := []byte("peekaboo")
	_, err := NewDialer(WithKey(key), WithRecipe(nil), WithSealed())
	require.ErrorIs(t, err, ErrNegotiation)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	_, err = NewListener(ln, WithKey(key), WithRecipe(nil), WithSealed())
	require.ErrorIs(t, err, ErrNegotiation)
}
