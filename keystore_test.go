package auth

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeKeys replaces the key file at path atomically (write and rename),
// as an operator's tooling should.
func writeKeys(t testing.TB, path string, entries ...KeyEntry) {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("# test keys\n")
	for _, e := range entries {
		line, err := FormatKeyLine(e.ID, e.Key)
		require.NoError(t, err)
		b.WriteString(line)
	}
	writeFileAtomic(t, path, b.Bytes())
}

func writeFileAtomic(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, data, 0o600))
	require.NoError(t, os.Rename(tmp, path))
}

func entry(id string, b byte) KeyEntry {
	return KeyEntry{ID: id, Key: bytes.Repeat([]byte{b}, 32)}
}

func TestKeyStoreReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	old, neu := entry("old", 1), entry("new", 2)
	writeKeys(t, path, old)

	s, err := LoadKeyFile(path)
	require.NoError(t, err)
	assert.Equal(t, path, s.Path())
	assert.Equal(t, []string{"old"}, s.IDs())
	assert.Empty(t, s.Warnings())
	k, err := s.Lookup("old")
	require.NoError(t, err)
	assert.Equal(t, old.Key, k)
	k[0] ^= 0xff // a caller scribbling on its copy changes nothing
	k, err = s.Lookup("old")
	require.NoError(t, err)
	assert.Equal(t, old.Key, k)
	_, err = s.Lookup("new")
	require.ErrorIs(t, err, ErrUnknownKeyID)
	assert.False(t, s.Changed())

	writeKeys(t, path, old, neu)
	assert.True(t, s.Changed())
	require.NoError(t, s.Reload())
	assert.False(t, s.Changed())
	assert.Equal(t, []string{"old", "new"}, s.IDs())
	k, err = s.Lookup("new")
	require.NoError(t, err)
	assert.Equal(t, neu.Key, k)

	// A bad file keeps the keys that were loaded, and says why.
	writeFileAtomic(t, path, []byte("new "+testKeyB64(2, 32)+"\nbroken\n"))
	err = s.Reload()
	require.ErrorIs(t, err, ErrKeyFile)
	assert.Contains(t, err.Error(), path+":2: ")
	assert.Equal(t, []string{"old", "new"}, s.IDs())
	_, err = s.Lookup("old")
	require.NoError(t, err)
	assert.False(t, s.Changed(), "a failed load is remembered, so a watcher does not retry it in a loop")

	// So does a missing file.
	require.NoError(t, os.Remove(path))
	assert.True(t, s.Changed())
	require.ErrorIs(t, s.Reload(), os.ErrNotExist)
	assert.Equal(t, []string{"old", "new"}, s.IDs())

	writeKeys(t, path, neu)
	require.NoError(t, os.Chmod(path, 0o644))
	require.NoError(t, s.Reload())
	assert.Equal(t, []string{"new"}, s.IDs())
	require.Len(t, s.Warnings(), 1)
	_, err = s.Lookup("old")
	require.ErrorIs(t, err, ErrUnknownKeyID)

	_, err = LoadKeyFile(filepath.Join(t.TempDir(), "absent"))
	require.ErrorIs(t, err, ErrKeyFile)

	var zero KeyStore
	_, err = zero.Lookup("old")
	require.ErrorIs(t, err, ErrUnknownKeyID)
	assert.Empty(t, zero.IDs())
}

// dialKey authenticates to addr with one key ID and key, waiting for the
// verdict, and checks that bytes echo through.
func dialKey(addr string, e KeyEntry) error {
	c, err := Dial("tcp", addr, WithKey(e.Key), WithKeyID(e.ID), WithWaitForVerdict(), WithHandshakeTimeout(5*time.Second))
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		return err
	}
	var b [4]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return err
	}
	if string(b[:]) != "ping" {
		return fmt.Errorf("echo: got %q", b[:])
	}
	return nil
}

func TestKeyStoreRotationOverSockets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	old, neu := entry("old", 1), entry("new", 2)
	writeKeys(t, path, old)
	s, err := LoadKeyFile(path)
	require.NoError(t, err)
	ln, err := Listen("tcp", "127.0.0.1:0", WithKeyStore(s))
	require.NoError(t, err)
	serveAuthEcho(t, ln)
	addr := ln.Addr().String()

	require.NoError(t, dialKey(addr, old))
	require.ErrorIs(t, dialKey(addr, neu), ErrBadServerProof, "not yet known")

	writeKeys(t, path, old, neu)
	require.NoError(t, s.Reload())
	require.NoError(t, dialKey(addr, old))
	require.NoError(t, dialKey(addr, neu))

	writeKeys(t, path, neu)
	require.NoError(t, s.Reload())
	require.ErrorIs(t, dialKey(addr, old), ErrBadServerProof, "retired")
	require.NoError(t, dialKey(addr, neu))

	// Same ID, wrong key: the server proves under the right key, which the
	// client refuses.
	require.ErrorIs(t, dialKey(addr, entry("new", 3)), ErrBadServerProof)

	_, err = Listen("tcp", "127.0.0.1:0", WithKeyStore(nil))
	require.Error(t, err)
}

// TestKeyStoreReloadUnderLoad reloads the store in a loop while clients
// keep connecting with a key present in every version: none may fail.
func TestKeyStoreReloadUnderLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	stay := entry("stay", 1)
	writeKeys(t, path, stay)
	s, err := LoadKeyFile(path)
	require.NoError(t, err)
	ln, err := Listen("tcp", "127.0.0.1:0", WithKeyStore(s))
	require.NoError(t, err)
	serveAuthEcho(t, ln)

	var (
		wg       sync.WaitGroup
		ok, fail atomic.Int64
		firstErr atomic.Pointer[error]
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if err := dialKey(ln.Addr().String(), stay); err != nil {
					fail.Add(1)
					firstErr.CompareAndSwap(nil, &err)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	reloads := 0
	for i := 0; ; i++ {
		select {
		case <-done:
			require.Zero(t, fail.Load(), "first failure: %v", firstErr.Load())
			assert.Equal(t, int64(200), ok.Load())
			assert.Positive(t, reloads)
			return
		default:
		}
		if i%2 == 0 {
			writeKeys(t, path, stay, entry(fmt.Sprintf("extra%d", i), 2))
		} else {
			writeKeys(t, path, entry("other", 3), stay)
		}
		require.NoError(t, s.Reload())
		reloads++
	}
}

func TestKeyStoreWatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	old, neu := entry("old", 1), entry("new", 2)
	writeKeys(t, path, old)
	s, err := LoadKeyFile(path)
	require.NoError(t, err)

	reports := make(chan error, 10)
	ctx, cancel := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		s.Watch(ctx, 5*time.Millisecond, func(err error) { reports <- err })
	}()
	defer func() { cancel(); <-watched }()

	next := func() error {
		select {
		case err := <-reports:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("no reload within 5s of a change")
			return nil
		}
	}

	writeKeys(t, path, old, neu)
	require.NoError(t, next())
	assert.Equal(t, []string{"old", "new"}, s.IDs())

	writeFileAtomic(t, path, []byte("new\n"))
	err = next()
	require.ErrorIs(t, err, ErrKeyFile)
	assert.Equal(t, []string{"old", "new"}, s.IDs(), "a bad file keeps the old keys")

	// An in-place edit (no rename) is noticed too.
	line, err := FormatKeyLine(neu.ID, neu.Key)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, []byte(line), 0o600))
	require.NoError(t, next())
	assert.Equal(t, []string{"new"}, s.IDs())

	select {
	case err := <-reports:
		t.Fatalf("reload without a change: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
}

// BenchmarkKeyStoreLookup measures the per-handshake cost of finding a key
// in a store of 100 keys, while nothing reloads.
func BenchmarkKeyStoreLookup(b *testing.B) {
	path := filepath.Join(b.TempDir(), "keys")
	var entries []KeyEntry
	for i := range 100 {
		entries = append(entries, entry(fmt.Sprintf("key-%03d", i), byte(i)))
	}
	writeKeys(b, path, entries...)
	s, err := LoadKeyFile(path)
	require.NoError(b, err)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Lookup("key-042"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkKeyStoreReload measures reading, parsing and swapping in a file
// of 100 keys.
func BenchmarkKeyStoreReload(b *testing.B) {
	path := filepath.Join(b.TempDir(), "keys")
	var entries []KeyEntry
	for i := range 100 {
		entries = append(entries, entry(fmt.Sprintf("key-%03d", i), byte(i)))
	}
	writeKeys(b, path, entries...)
	s, err := LoadKeyFile(path)
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Reload(); err != nil {
			b.Fatal(err)
		}
	}
}
