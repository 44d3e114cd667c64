package auth_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hmacauth/auth"
)

// statsKey returns a deterministic test key of n bytes built from seed.
func statsKey(seed byte) []byte {
	return bytes.Repeat([]byte{seed}, auth.DefaultKeyLen)
}

// syncBuffer is a bytes.Buffer safe for a logger used from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestReasonOf(t *testing.T) {
	tests := []struct {
		err  error
		want auth.Reason
	}{
		{nil, auth.ReasonNone},
		{auth.ErrBadClientProof, auth.ReasonAuthFailed},
		{auth.ErrUnknownKeyID, auth.ReasonAuthFailed},
		{auth.ErrClientRefusedServer, auth.ReasonAuthFailed},
		{auth.ErrRejected, auth.ReasonAuthFailed},
		{auth.ErrNotProtocol, auth.ReasonProtocol},
		{auth.ErrProtocol, auth.ReasonProtocol},
		{auth.ErrNegotiation, auth.ReasonNegotiation},
		{fmt.Errorf("wrapped: %w", os.ErrDeadlineExceeded), auth.ReasonTimeout},
		{context.DeadlineExceeded, auth.ReasonTimeout},
		// A timeout wins over the protocol error it may come with.
		{errors.Join(auth.ErrProtocol, os.ErrDeadlineExceeded), auth.ReasonTimeout},
		{context.Canceled, auth.ReasonOther},
		{io.EOF, auth.ReasonOther},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.err), func(t *testing.T) {
			assert.Equal(t, tt.want, auth.ReasonOf(tt.err))
			assert.Equal(t, tt.want, auth.HandshakeEvent{Err: tt.err}.Reason())
		})
	}
	names := map[string]bool{}
	for _, r := range append([]auth.Reason{auth.ReasonNone}, auth.RefusalReasons...) {
		names[r.String()] = true
	}
	assert.Len(t, names, len(auth.RefusalReasons)+1, "every reason has its own label")
}

func TestListenerStatsRefusedBy(t *testing.T) {
	s := auth.ListenerStats{RefusedTimeout: 1, RefusedAuthFailed: 2, RefusedNegotiation: 3, RefusedProtocol: 4, RefusedOther: 5}
	var sum uint64
	for _, r := range auth.RefusalReasons {
		sum += s.RefusedBy(r)
	}
	assert.Equal(t, uint64(15), sum)
	assert.Equal(t, uint64(15), s.Refused())
	assert.Equal(t, uint64(1), s.Timeouts())
	assert.Equal(t, uint64(2), s.RefusedBy(auth.ReasonAuthFailed))
	assert.Equal(t, uint64(0), s.RefusedBy(auth.ReasonNone))
}

// TestListenerStatsAndLogging drives one real client of every kind at a
// listener and checks that each is counted under the right reason, reported
// to the hook, and logged with its address, key ID, duration and reason.
func TestListenerStatsAndLogging(t *testing.T) {
	keyA, keyB := statsKey(0xA1), statsKey(0xB2)
	var (
		mu     sync.Mutex
		events []auth.HandshakeEvent
	)
	logs := &syncBuffer{}
	ln, err := auth.Listen("tcp", "127.0.0.1:0",
		auth.WithKeys(map[string][]byte{"alice": keyA, "bob": keyB}),
		auth.WithSuites(auth.SuiteHMACSHA256),
		auth.WithHandshakeTimeout(time.Second),
		auth.WithLogger(slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		auth.WithHandshakeHook(func(ev auth.HandshakeEvent) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, ev)
		}))
	require.NoError(t, err)
	defer ln.Close()
	addr := ln.Addr().String()

	// The server side: accept and echo one byte per connection.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	defer wg.Wait()
	defer ln.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	good := func(id string, key []byte) {
		c, err := auth.DialContext(ctx, "tcp", addr, auth.WithKeyID(id), auth.WithKey(key))
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Write([]byte{42})
		require.NoError(t, err)
		var b [1]byte
		_, err = io.ReadFull(c, b[:])
		require.NoError(t, err)
	}
	good("alice", keyA)
	good("bob", keyB)

	// Wrong key for a known ID: the client catches the server's proof.
	_, err = auth.DialContext(ctx, "tcp", addr, auth.WithKeyID("alice"), auth.WithKey(keyB))
	require.ErrorIs(t, err, auth.ErrBadServerProof)
	// Unknown key ID.
	_, err = auth.DialContext(ctx, "tcp", addr, auth.WithKeyID("mallory"), auth.WithKey(keyA))
	require.ErrorIs(t, err, auth.ErrAuthFailed)
	// No common suite.
	_, err = auth.DialContext(ctx, "tcp", addr, auth.WithKeyID("alice"), auth.WithKey(keyA), auth.WithSuites(auth.SuiteHMACSHA512))
	require.ErrorIs(t, err, auth.ErrNegotiation)

	raw := func(send []byte) {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer c.Close()
		if send != nil {
			_, err = c.Write(send)
			require.NoError(t, err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.Copy(io.Discard, c) // until the server closes
	}
	raw([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")) // not hmacauth
	raw(nil)                                         // silent: times out

	want := auth.ListenerStats{Accepted: 2, RefusedAuthFailed: 2, RefusedNegotiation: 1, RefusedProtocol: 1, RefusedTimeout: 1}
	require.Eventually(t, func() bool { return ln.Stats() == want }, 5*time.Second, 5*time.Millisecond,
		"stats: got %+v, want %+v", ln.Stats(), want)
	assert.Equal(t, uint64(5), ln.Stats().Refused())
	assert.Equal(t, uint64(1), ln.Stats().Timeouts())

	mu.Lock()
	got := map[string]int{}
	for _, ev := range events {
		assert.False(t, ev.IsClient)
		assert.NotNil(t, ev.RemoteAddr)
		assert.Positive(t, ev.Duration)
		got[ev.Reason().String()+"/"+ev.KeyID]++
	}
	mu.Unlock()
	assert.Equal(t, map[string]int{
		"none/alice": 1, "none/bob": 1,
		"auth_failed/alice": 1, "auth_failed/mallory": 1,
		"negotiation/alice": 1, "protocol/": 1, "timeout/": 1,
	}, got)

	// Every outcome is logged, with the fields an operator needs and
	// without any key material.
	text := logs.String()
	for _, class := range []string{"auth_failed", "negotiation", "protocol", "timeout"} {
		assert.Contains(t, text, `"reason_class":"`+class+`"`)
	}
	assert.Equal(t, 2, strings.Count(text, `"msg":"auth: handshake accepted"`))
	assert.Equal(t, 5, strings.Count(text, `"msg":"auth: handshake refused"`))
	assert.Contains(t, text, `"key_id":"mallory"`)
	assert.Contains(t, text, `"remote":"127.0.0.1:`)
	assert.Contains(t, text, `"duration":`)
	assert.NotContains(t, text, fmt.Sprintf("%x", keyA[:8]))
}

// TestListenerStatsInFlight holds handshakes open with silent clients and
// watches InFlight rise, then fall when Close cuts them short.
func TestListenerStatsInFlight(t *testing.T) {
	ln, err := auth.Listen("tcp", "127.0.0.1:0", auth.WithKey(statsKey(1)), auth.WithHandshakeTimeout(time.Minute))
	require.NoError(t, err)
	const n = 3
	var conns []net.Conn
	for range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	require.Eventually(t, func() bool { return ln.Stats().InFlight == n }, 5*time.Second, 5*time.Millisecond)
	assert.Zero(t, ln.Stats().Refused())

	require.NoError(t, ln.Close())
	s := ln.Stats()
	assert.Zero(t, s.InFlight, "Close waits for every handshake")
	assert.Equal(t, uint64(n), s.RefusedOther, "handshakes cut by Close are neither timeouts nor auth failures: %+v", s)
}
