package main

import (
	"crypto/rand"
	"crypto/sha256"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hmacauth/auth"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// refusedWith matches the core's log line for a refused handshake whose
// reason contains want.
func refusedWith(keyID, want string) func(map[string]any) bool {
	return func(m map[string]any) bool {
		r, _ := m["reason"].(string)
		return m["msg"] == "auth: handshake refused" && m["key_id"] == keyID && strings.Contains(r, want)
	}
}

// TestE2EWrongKey: a client with an unknown key ID, and one with the right
// ID but the wrong key, are refused; the server's log says why; probe exits
// 3 for a refusal and 1 when nothing listens.
func TestE2EWrongKey(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	writeFileAtomic(t, good, keygenLine(t, "good"))
	intruder := filepath.Join(dir, "intruder")
	writeFileAtomic(t, intruder, keygenLine(t, "intruder"))
	forged := filepath.Join(dir, "forged")
	writeFileAtomic(t, forged, keygenLine(t, "good")) // same ID, other key

	srv, srvAddr := start(t, "tunnel server", "tunnel", "server", "--listen", "127.0.0.1:0", "--to", echoBackend(t), "--keys", good)
	okCli, okAddr := start(t, "good client", "tunnel", "client", "--listen", "127.0.0.1:0", "--to", srvAddr, "--key-file", good)
	require.NoError(t, echoOnce(okAddr, []byte("hello")))

	for _, tc := range []struct {
		name, file, id, serverSays string
	}{
		{"unknown key ID", intruder, "intruder", `presented unknown key ID "intruder"`},
		{"wrong key", forged, "good", "the two sides hold different keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cli, cliAddr := start(t, "bad client", "tunnel", "client", "--listen", "127.0.0.1:0", "--to", srvAddr, "--key-file", tc.file)
			err := echoOnce(cliAddr, []byte("let me in"))
			require.Error(t, err, "no byte may reach the backend")
			srv.waitLog(5*time.Second, refusedWith(tc.id, tc.serverSays))
			m := cli.waitLog(5*time.Second, msgIs("authentication refused: the server does not hold this key"))
			assert.Contains(t, m["error"], "could not prove it holds the key")

			code, out, _ := runBin(t, nil, "probe", srvAddr, "--key-file", tc.file)
			assert.Equal(t, exitAuth, code, out)
			assert.Contains(t, out, "result:    refused")
			assert.Contains(t, out, "key_id:    "+tc.id)
			assert.Contains(t, out, "error:     auth: ")

			cli.signal(syscall.SIGINT)
			assert.Equal(t, 0, cli.wait(10*time.Second))
		})
	}
	assert.Zero(t, srv.logs.count(func(m map[string]any) bool {
		return m["msg"] == "connection opened" && m["key_id"] == "intruder"
	}), "a refused client never gets a backend connection")

	// Nothing listening: a network failure, exit 1.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	deadAddr := ln.Addr().String()
	ln.Close()
	code, out, _ := runBin(t, nil, "probe", deadAddr, "--key-file", good)
	assert.Equal(t, exitFailure, code, out)
	assert.Contains(t, out, "result:    failed")

	okCli.signal(syscall.SIGTERM)
	srv.signal(syscall.SIGTERM)
	assert.Equal(t, 0, okCli.wait(10*time.Second))
	assert.Equal(t, 0, srv.wait(10*time.Second))
}

// loadKey reads one key line's key, for clients in the test process.
func loadKey(t testing.TB, path string) (string, []byte) {
	t.Helper()
	kf, err := auth.ReadKeyFile(path)
	require.NoError(t, err)
	require.Len(t, kf.Entries, 1)
	return kf.Entries[0].ID, kf.Entries[0].Key
}

// worker connects through a tunnel client in a loop, bounded in count and
// time, and counts successes and failures.
type worker struct {
	addr     string
	ok, fail atomic.Int64
	firstErr atomic.Pointer[error]
	stop     chan struct{}
	done     chan struct{}
}

func startWorker(addr string) *worker {
	w := &worker{addr: addr, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		payload := make([]byte, 1024)
		deadline := time.Now().Add(60 * time.Second)
		for i := 0; i < 5000 && time.Now().Before(deadline); i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			rand.Read(payload)
			if err := echoOnce(w.addr, payload); err != nil {
				w.fail.Add(1)
				w.firstErr.CompareAndSwap(nil, &err)
			} else {
				w.ok.Add(1)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return w
}

func (w *worker) halt() {
	close(w.stop)
	<-w.done
}

// waitOK waits until the worker has n more successes than now.
func (w *worker) waitOK(t *testing.T, n int64) {
	t.Helper()
	target := w.ok.Load() + n
	deadline := time.Now().Add(20 * time.Second)
	for w.ok.Load() < target {
		if time.Now().After(deadline) {
			t.Fatalf("worker for %s: %d successes, want %d (failures %d)", w.addr, w.ok.Load(), target, w.fail.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (w *worker) requireNoFailures(t *testing.T, name string) {
	t.Helper()
	if e := w.firstErr.Load(); e != nil {
		t.Fatalf("%s: %d failed connections (of %d); first: %v", name, w.fail.Load(), w.fail.Load()+w.ok.Load(), *e)
	}
}

// TestE2ERotation rotates keys in the server's key file, by SIGHUP and by
// file change, while clients with the old key and with the new key keep
// connecting: no connection fails during the overlap.
func TestE2ERotation(t *testing.T) {
	dir := t.TempDir()
	serverKeys := filepath.Join(dir, "server-keys")
	oldKeys := filepath.Join(dir, "old-key")
	newKeys := filepath.Join(dir, "new-key")
	oldLine, newLine := keygenLine(t, "2026-old"), keygenLine(t, "2026-new")
	writeFileAtomic(t, serverKeys, "# server\n"+oldLine)
	writeFileAtomic(t, oldKeys, oldLine)
	writeFileAtomic(t, filepath.Join(dir, "old-key.orig"), oldLine)
	writeFileAtomic(t, newKeys, newLine)

	srv, srvAddr := start(t, "tunnel server", "tunnel", "server", "--listen", "127.0.0.1:0", "--to", echoBackend(t),
		"--keys", serverKeys, "--watch-interval", "50ms")
	cliOld, oldAddr := start(t, "old client", "tunnel", "client", "--listen", "127.0.0.1:0", "--to", srvAddr, "--key-file", oldKeys, "--watch-interval", "50ms")
	cliNew, newAddr := start(t, "new client", "tunnel", "client", "--listen", "127.0.0.1:0", "--to", srvAddr, "--key-file", newKeys, "--watch-interval", "50ms")

	// A long-lived connection on the old key, open across every reload.
	long, err := net.Dial("tcp", oldAddr)
	require.NoError(t, err)
	defer long.Close()
	long.SetDeadline(time.Now().Add(60 * time.Second))
	roundTrip := func(msg string) {
		t.Helper()
		_, err := long.Write([]byte(msg))
		require.NoError(t, err)
		got := make([]byte, len(msg))
		_, err = io.ReadFull(long, got)
		require.NoError(t, err, "the long-lived connection survives reloads")
		require.Equal(t, msg, string(got))
	}
	roundTrip("before rotation")

	wOld := startWorker(oldAddr)
	defer func() {
		select {
		case <-wOld.stop:
		default:
			wOld.halt()
		}
	}()
	wOld.waitOK(t, 10)
	wOld.requireNoFailures(t, "old key before rotation")
	require.Error(t, echoOnce(newAddr, []byte("too early")), "the new key is not known yet")
	srv.waitLog(5*time.Second, refusedWith("2026-new", "unknown key ID"))

	// Step 1: add the new key; reload with SIGHUP.
	f, err := os.OpenFile(serverKeys, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(newLine)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	srv.signal(syscall.SIGHUP)
	srv.waitLog(5*time.Second, func(m map[string]any) bool {
		return m["msg"] == "keys reloaded" && m["trigger"] == "SIGHUP" && strings.Join(keyIDs(m), ",") == "2026-old,2026-new"
	})

	// Both keys work side by side.
	wNew := startWorker(newAddr)
	defer func() {
		select {
		case <-wNew.stop:
		default:
			wNew.halt()
		}
	}()
	wNew.waitOK(t, 20)
	wOld.waitOK(t, 20)

	// A broken file on SIGHUP keeps the keys and says why.
	writeFileAtomic(t, serverKeys, oldLine+"2026-new\n")
	srv.signal(syscall.SIGHUP)
	m := srv.waitLog(5*time.Second, msgIs("key file reload failed; keeping the previous keys"))
	assert.Contains(t, m["error"], serverKeys+":2: ")
	wNew.waitOK(t, 10)
	wOld.waitOK(t, 10)

	// The old client moves to the new key: its key file changes and the
	// tunnel client picks it up by itself.
	writeFileAtomic(t, oldKeys, newLine)
	cliOld.waitLog(5*time.Second, func(m map[string]any) bool { return m["msg"] == "using key" && m["key_id"] == "2026-new" })
	wOld.waitOK(t, 10)
	wOld.halt()

	// Step 2: retire the old key, this time by file change alone.
	writeFileAtomic(t, serverKeys, "# server\n"+newLine)
	srv.waitLog(5*time.Second, func(m map[string]any) bool {
		return m["msg"] == "keys reloaded" && m["trigger"] == "file changed" && strings.Join(keyIDs(m), ",") == "2026-new"
	})
	wNew.waitOK(t, 20)
	wNew.halt()

	wOld.requireNoFailures(t, "clients of the old client tunnel")
	wNew.requireNoFailures(t, "clients of the new client tunnel")
	t.Logf("connections: %d through the old-key tunnel, %d through the new-key tunnel, 0 failed", wOld.ok.Load(), wNew.ok.Load())

	// The connection opened with the old key is still up: reloads never
	// drop a connection, they only decide who may open new ones.
	roundTrip("after the old key was retired")
	require.NoError(t, long.Close())

	// The old key is refused now.
	id, key := loadKey(t, filepath.Join(dir, "old-key.orig"))
	_, err = auth.Dial("tcp", srvAddr, auth.WithKey(key), auth.WithKeyID(id), auth.WithWaitForVerdict(), auth.WithSealed())
	require.ErrorIs(t, err, auth.ErrAuthFailed)
	srv.waitLog(5*time.Second, refusedWith("2026-old", "unknown key ID"))

	for _, p := range []*proc{cliOld, cliNew, srv} {
		p.signal(syscall.SIGTERM)
		assert.Equal(t, 0, p.wait(10*time.Second), p.name)
	}
}

// streamBackend answers each connection's first byte with size bytes of
// a pattern, written in chunks with a pause between them, then closes.
func streamBackend(t testing.TB, size, chunk int, pause time.Duration) (string, []byte) {
	data := make([]byte, size)
	rand.Read(data)
	addr := backend(t, func(c net.Conn) {
		var b [1]byte
		if _, err := io.ReadFull(c, b[:]); err != nil {
			return
		}
		for off := 0; off < len(data); off += chunk {
			if _, err := c.Write(data[off:min(off+chunk, len(data))]); err != nil {
				return
			}
			time.Sleep(pause)
		}
	})
	return addr, data
}

// TestE2EDrain: SIGTERM stops new connections at once, lets an open one
// finish its transfer, then the process exits 0.
func TestE2EDrain(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	writeFileAtomic(t, keys, keygenLine(t, "drain"))
	id, key := loadKey(t, keys)
	backendAddr, data := streamBackend(t, 4<<20, 64<<10, 15*time.Millisecond) // about a second

	srv, srvAddr := start(t, "tunnel server", "tunnel", "server", "--listen", "127.0.0.1:0", "--to", backendAddr,
		"--keys", keys, "--drain-timeout", "30s")
	// The tunnel seals by default: an auth-only client is refused with a
	// negotiation error that names the option.
	_, err := auth.Dial("tcp", srvAddr, auth.WithKey(key), auth.WithKeyID(id))
	require.ErrorIs(t, err, auth.ErrNegotiation)
	require.ErrorContains(t, err, "WithSealed")
	c, err := auth.Dial("tcp", srvAddr, auth.WithKey(key), auth.WithKeyID(id), auth.WithSealed())
	require.NoError(t, err)
	defer c.Close()
	require.True(t, c.ConnectionState().Mode.Sealed(), "tunnel server mode %v", c.ConnectionState().Mode)
	c.SetDeadline(time.Now().Add(30 * time.Second))
	_, err = c.Write([]byte{'g'})
	require.NoError(t, err)
	first := make([]byte, 64<<10)
	_, err = io.ReadFull(c, first)
	require.NoError(t, err)

	srv.signal(syscall.SIGTERM)
	m := srv.waitLog(5*time.Second, msgIs("shutting down: no new connections, draining open ones"))
	assert.Equal(t, float64(1), m["open"])
	// New connections are refused while the open one drains.
	require.Eventually(t, func() bool {
		c2, err := net.DialTimeout("tcp", srvAddr, time.Second)
		if err != nil {
			return true
		}
		c2.Close()
		return false
	}, 5*time.Second, 10*time.Millisecond)

	rest, err := io.ReadAll(c)
	require.NoError(t, err, "the open connection finishes")
	got := append(first, rest...)
	require.Equal(t, len(data), len(got))
	require.Equal(t, sha256.Sum256(data), sha256.Sum256(got), "no byte lost or changed")
	// The backend has closed; the tunnel lasts until the client closes too
	// (it might still be sending: half-close), and then the process exits.
	c.Close()
	assert.Equal(t, 0, srv.wait(10*time.Second))
	srv.waitLog(time.Second, msgIs("drained; exiting"))
}

// TestE2EDrainTimeout: a connection that does not finish is closed when
// the drain timeout runs out, and the process still exits 0. The tunnel
// client drains the same way.
func TestE2EDrainTimeout(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	writeFileAtomic(t, keys, keygenLine(t, "stuck"))
	hold := make(chan struct{})
	backendAddr := backend(t, func(c net.Conn) {
		io.Copy(io.Discard, io.LimitReader(c, 1))
		<-hold // a backend that never answers
	})
	defer close(hold)

	srv, srvAddr := start(t, "tunnel server", "tunnel", "server", "--listen", "127.0.0.1:0", "--to", backendAddr,
		"--keys", keys, "--drain-timeout", "30s")
	cli, cliAddr := start(t, "tunnel client", "tunnel", "client", "--listen", "127.0.0.1:0", "--to", srvAddr,
		"--key-file", keys, "--drain-timeout", "300ms")
	c, err := net.Dial("tcp", cliAddr)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte("x"))
	require.NoError(t, err)
	srv.waitLog(5*time.Second, msgIs("connection opened"))

	start := time.Now()
	cli.signal(syscall.SIGTERM)
	assert.Equal(t, 0, cli.wait(10*time.Second))
	m := cli.waitLog(time.Second, msgIs("drain timeout: closing open connections"))
	assert.Equal(t, float64(1), m["closed"])
	took := time.Since(start)
	assert.Less(t, took, 5*time.Second)

	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF, "the local connection is closed, not left hanging")

	// The server's side of that tunnel is half-closed now (the client's EOF
	// went on to the backend, which may still answer), so the server would
	// wait out its 30s drain timeout: a second signal cuts it short.
	srv.signal(syscall.SIGTERM)
	assert.Equal(t, float64(1), srv.waitLog(5*time.Second, msgIs("shutting down: no new connections, draining open ones"))["open"])
	start = time.Now()
	srv.signal(syscall.SIGTERM)
	assert.Equal(t, 0, srv.wait(10*time.Second))
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Equal(t, float64(1), srv.waitLog(time.Second, msgIs("second signal: closing open connections now"))["closed"])
}
