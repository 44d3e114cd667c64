package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hmacauth/auth"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// inProc runs a command in this process with injected signals, so goleak
// sees every goroutine the service starts.
type inProc struct {
	logs    *logLines
	signals chan os.Signal
	code    chan int
}

func startInProc(t *testing.T, args ...string) (*inProc, string) {
	t.Helper()
	p := &inProc{logs: &logLines{}, signals: make(chan os.Signal, 4), code: make(chan int, 1)}
	e := &env{stdout: p.logs, stderr: p.logs, getenv: func(string) string { return "" }, signals: p.signals}
	go func() { p.code <- run(append(args, "--log-format", "json"), e) }()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if m := p.logs.find(msgIs("listening")); m != nil {
			return p, m["addr"].(string)
		}
		select {
		case code := <-p.code:
			t.Fatalf("exited with %d: %s", code, p.logs.text())
		case <-time.After(5 * time.Millisecond):
		}
	}
	t.Fatalf("not listening after 5s: %s", p.logs.text())
	return nil, ""
}

func (p *inProc) waitLog(t *testing.T, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if m := p.logs.find(match); m != nil {
			return m
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no matching log line after 5s: %s", p.logs.text())
	return nil
}

func (p *inProc) exit(t *testing.T) int {
	t.Helper()
	select {
	case code := <-p.code:
		return code
	case <-time.After(10 * time.Second):
		t.Fatalf("did not exit: %s", p.logs.text())
		return -1
	}
}

// TestServiceInProcess runs both tunnels in this process: traffic flows,
// SIGHUP reloads (a bad file is kept out), SIGTERM drains, and nothing is
// left running afterwards.
func TestServiceInProcess(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	line, err := auth.FormatKeyLine("one", []byte(strings.Repeat("k", 32)))
	require.NoError(t, err)
	writeFileAtomic(t, keys, line)

	srv, srvAddr := startInProc(t, "tunnel", "server", "--listen", "127.0.0.1:0", "--to", echoBackend(t), "--keys", keys, "--watch-interval", "0")
	cli, cliAddr := startInProc(t, "tunnel", "client", "--listen", "127.0.0.1:0", "--to", srvAddr, "--key-file", keys, "--watch-interval", "10ms")
	require.NoError(t, echoOnce(cliAddr, []byte("in process")))

	writeFileAtomic(t, keys, "one\n")
	srv.signals <- syscall.SIGHUP
	m := srv.waitLog(t, msgIs("key file reload failed; keeping the previous keys"))
	assert.Equal(t, "SIGHUP", m["trigger"])
	m = cli.waitLog(t, msgIs("key file reload failed; keeping the previous keys"))
	assert.Equal(t, "file changed", m["trigger"])
	require.NoError(t, echoOnce(cliAddr, []byte("still fine")))

	line2, err := auth.FormatKeyLine("two", []byte(strings.Repeat("j", 32)))
	require.NoError(t, err)
	writeFileAtomic(t, keys, line+line2)
	srv.signals <- syscall.SIGHUP
	srv.waitLog(t, func(m map[string]any) bool { return m["msg"] == "keys reloaded" && len(keyIDs(m)) == 2 })
	m = cli.waitLog(t, msgIs("the reloaded key file has no usable key; new connections keep the previous key"))
	assert.Contains(t, m["error"], "choose one with --key-id")
	assert.Equal(t, "one", m["key_id"])
	require.NoError(t, echoOnce(cliAddr, []byte("previous key kept")))

	cli.signals <- syscall.SIGINT
	srv.signals <- syscall.SIGTERM
	assert.Equal(t, exitOK, cli.exit(t))
	assert.Equal(t, exitOK, srv.exit(t))
}
