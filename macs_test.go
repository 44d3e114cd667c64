package auth

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pipeHandshake runs one handshake over a loopback TCP pair and returns the
// client's and the server's errors, the client's after its first Read (so
// the verdict is in) and exported keying material from both sides.
func pipeHandshake(t *testing.T, client, server []Option) (cerr, serr error, ckm, skm []byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		raw, err := ln.Accept()
		if err != nil {
			serr = err
			return
		}
		defer raw.Close()
		sc, err := Server(raw, server...)
		if err != nil {
			serr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if serr = sc.HandshakeContext(ctx); serr != nil {
			return
		}
		skm, _ = sc.ExportKeyingMaterial("test", nil, 32)
		var b [1]byte
		if _, serr = io.ReadFull(sc, b[:]); serr == nil {
			_, serr = sc.Write(b[:])
		}
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer raw.Close()
	cc, err := Client(raw, client...)
	require.NoError(t, err)
	cc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, cerr = cc.Write([]byte{'x'}); cerr == nil {
		var b [1]byte
		if _, cerr = io.ReadFull(cc, b[:]); cerr == nil {
			ckm, _ = cc.ExportKeyingMaterial("test", nil, 32)
		}
	}
	cc.Close()
	wg.Wait()
	return cerr, serr, ckm, skm
}

// TestPooledMACs runs many handshakes in a row and at once over every key
// source and suite, mixing failures in, so that a pooled HMAC state that
// kept anything from an earlier handshake would show as a failure or as
// keying material that differs between the sides.
func TestPooledMACs(t *testing.T) {
	key := bytes.Repeat([]byte{1}, 32)
	other := bytes.Repeat([]byte{2}, 32)
	lookup := WithKeyLookup(func(id string) ([]byte, error) {
		if id == "looked-up" {
			return key, nil
		}
		return nil, errors.New("unknown")
	})
	servers := []Option{WithKey(key), WithKeys(map[string][]byte{"a": key, "b": other}), lookup}
	tests := []struct {
		name    string
		client  []Option
		wantErr error // on the server; nil means both sides succeed
	}{
		{"empty ID", []Option{WithKey(key)}, nil},
		{"static ID", []Option{WithKey(key), WithKeyID("a")}, nil},
		{"second static ID", []Option{WithKey(other), WithKeyID("b")}, nil},
		{"looked up", []Option{WithKey(key), WithKeyID("looked-up")}, nil},
		{"wrong key", []Option{WithKey(other), WithKeyID("a")}, ErrClientRefusedServer},
		{"unknown ID", []Option{WithKey(key), WithKeyID("nobody")}, ErrUnknownKeyID},
	}
	for _, suite := range []Suite{SuiteHMACSHA256, SuiteHMACSHA512} {
		srv := append([]Option{WithSuites(suite)}, servers...)
		for round := range 3 {
			for _, tt := range tests {
				t.Run(suite.String()+"/"+tt.name, func(t *testing.T) {
					cerr, serr, ckm, skm := pipeHandshake(t, append([]Option{WithSuites(suite)}, tt.client...), srv)
					if tt.wantErr != nil {
						assert.ErrorIs(t, serr, tt.wantErr, "round %d", round)
						assert.ErrorIs(t, cerr, ErrAuthFailed, "round %d", round)
						return
					}
					require.NoError(t, cerr, "round %d", round)
					require.NoError(t, serr, "round %d", round)
					assert.Len(t, ckm, 32)
					assert.Equal(t, ckm, skm, "both sides derive the same keying material")
				})
			}
		}
	}
	t.Run("concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tt := tests[i%len(tests)]
				cerr, serr, _, _ := pipeHandshake(t, tt.client, servers)
				if tt.wantErr == nil {
					assert.NoError(t, cerr)
					assert.NoError(t, serr)
				} else {
					assert.ErrorIs(t, serr, tt.wantErr)
				}
			}()
		}
		wg.Wait()
	})
}
