package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startRedis runs a throwaway redis-server on a free loopback port, with
// persistence off, and returns its address.
func startRedis(t *testing.T) string {
	t.Helper()
	server := requireTool(t, "redis-server")
	requireTool(t, "redis-cli")
	dir := t.TempDir()
	for attempt := 0; attempt < 3; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		cmd := exec.Command(server, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no", "--protected-mode", "no")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		require.NoError(t, cmd.Start())
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case err := <-done:
				t.Logf("redis-server exited (%v), retrying: %s", err, out.String())
				goto next
			default:
			}
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				t.Cleanup(func() {
					cmd.Process.Signal(syscall.SIGTERM)
					select {
					case <-done:
					case <-time.After(5 * time.Second):
						cmd.Process.Kill()
						<-done
					}
				})
				return addr
			}
			time.Sleep(20 * time.Millisecond)
		}
		cmd.Process.Kill()
		<-done
		t.Fatalf("redis-server did not listen within 10s: %s", out.String())
	next:
	}
	t.Fatal("redis-server failed to start three times")
	return ""
}

// redisCLI runs redis-cli against a port, with stdin, and returns its
// output.
func redisCLI(t *testing.T, port string, stdin []byte, args ...string) string {
	t.Helper()
	cmd := exec.Command(requireTool(t, "redis-cli"), append([]string{"-h", "127.0.0.1", "-p", port}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.Output()
	require.NoError(t, err, "redis-cli %v", args)
	return string(out)
}

// resp is a minimal RESP client for values redis-cli cannot show
// byte-exactly.
type resp struct {
	c net.Conn
	r *bufio.Reader
}

func (r *resp) send(args ...[]byte) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n", len(a))
		b.Write(a)
		b.WriteString("\r\n")
	}
	r.c.Write(b.Bytes())
}

func (r *resp) reply() (string, []byte, error) {
	line, err := r.r.ReadString('\n')
	if err != nil {
		return "", nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", nil, fmt.Errorf("empty reply line")
	}
	if line[0] != '$' {
		return line, nil, nil
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil || n < 0 {
		return line, nil, err
	}
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(r.r, buf); err != nil {
		return "", nil, err
	}
	return line, buf[:n], nil
}

// TestE2ERedis runs a real Redis behind tunnel server, and redis-cli
// through tunnel client: commands and large values arrive intact.
func TestE2ERedis(t *testing.T) {
	redisAddr := startRedis(t)
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")

	code, out, errOut := runBin(t, nil, "keygen", "--id", "app-1", "--append", keys)
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, "app-1\n", out)
	fi, err := os.Stat(keys)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "keygen --append makes a private file")

	srv, srvAddr := start(t, "tunnel server", "tunnel", "server", "--listen", "127.0.0.1:0", "--to", redisAddr, "--keys", keys)
	cli, cliAddr := start(t, "tunnel client", "tunnel", "client", "--listen", "127.0.0.1:0", "--to", srvAddr, "--key-file", keys)
	_, port, err := net.SplitHostPort(cliAddr)
	require.NoError(t, err)

	assert.Equal(t, "PONG\n", redisCLI(t, port, nil, "PING"))
	assert.Equal(t, "OK\n", redisCLI(t, port, nil, "SET", "greeting", "hello, world"))
	assert.Equal(t, "hello, world\n", redisCLI(t, port, nil, "GET", "greeting"))

	// A 1 MiB value through redis-cli -x (stdin as the last argument).
	big := make([]byte, 3<<18)
	rand.Read(big)
	value := []byte(base64.StdEncoding.EncodeToString(big)) // 1 MiB of text
	require.Len(t, value, 1<<20)
	assert.Equal(t, "OK\n", redisCLI(t, port, value, "-x", "SET", "big"))
	assert.Equal(t, "1048576\n", redisCLI(t, port, nil, "STRLEN", "big"))
	assert.True(t, bytes.Equal(append(value, '\n'), []byte(redisCLI(t, port, nil, "GET", "big"))), "GET big returns the 1 MiB value intact")

	// 4 MiB of binary, and 1000 pipelined commands, over one connection.
	c, err := net.Dial("tcp", cliAddr)
	require.NoError(t, err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := &resp{c: c, r: bufio.NewReader(c)}
	bin := make([]byte, 4<<20)
	rand.Read(bin)
	r.send([]byte("SET"), []byte("bin"), bin)
	r.send([]byte("GET"), []byte("bin"))
	for range 1000 {
		r.send([]byte("INCR"), []byte("counter"))
	}
	line, _, err := r.reply()
	require.NoError(t, err)
	require.Equal(t, "+OK", line)
	_, got, err := r.reply()
	require.NoError(t, err)
	require.True(t, bytes.Equal(bin, got), "4 MiB binary value intact")
	for i := 1; i <= 1000; i++ {
		line, _, err := r.reply()
		require.NoError(t, err)
		require.Equal(t, ":"+strconv.Itoa(i), line)
	}
	// Half-close: the client's EOF reaches Redis, which closes, and that
	// EOF comes back through both tunnels.
	require.NoError(t, c.(*net.TCPConn).CloseWrite())
	rest, err := io.ReadAll(c)
	require.NoError(t, err)
	assert.Empty(t, rest)

	// probe reports the key ID, the suite, the mode and timings.
	code, out, errOut = runBin(t, nil, "probe", srvAddr, "--key-file", keys, "--json")
	require.Equal(t, 0, code, out+errOut)
	var rep probeReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	assert.Equal(t, "accepted", rep.Result)
	assert.Equal(t, "app-1", rep.KeyID)
	assert.Equal(t, "HMAC-SHA256", rep.Suite)
	assert.NotEmpty(t, rep.Mode)
	assert.Positive(t, rep.TotalMS)
	assert.GreaterOrEqual(t, rep.TotalMS, rep.HandshakeMS)

	assert.Positive(t, srv.logs.count(func(m map[string]any) bool {
		return m["msg"] == "connection closed" && m["key_id"] == "app-1" && m["bytes_down"].(float64) >= float64(len(bin))
	}), "the server logs each tunnel with its key ID and byte counts")

	cli.signal(syscall.SIGTERM)
	srv.signal(syscall.SIGTERM)
	assert.Equal(t, 0, cli.wait(10*time.Second))
	assert.Equal(t, 0, srv.wait(10*time.Second))
}
