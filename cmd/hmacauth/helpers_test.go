package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hmacauth/auth/internal/testutil"
)

// requireTool returns the path of an external tool a test needs. Locally a
// missing tool skips the test; under CI=true it fails it.
var requireTool = testutil.RequireTool

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

// binary builds cmd/hmacauth once per test run (with -race when the tests
// run with it) and returns its path.
func binary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "hmacauth-e2e-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "hmacauth")
		args := []string{"build", "-o", binPath}
		if raceEnabled {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, binErr)
	return binPath
}

// runBin runs the binary to completion and returns its exit code, stdout
// and stderr.
func runBin(t testing.TB, env []string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		require.True(t, ok, "running %v: %v", args, err)
		code = ee.ExitCode()
	}
	return code, stdout.String(), stderr.String()
}

// proc is a running hmacauth with JSON logs, whose log lines the test can
// wait for.
type proc struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd
	logs *logLines
	done chan struct{}
	err  error
}

// start runs the binary with --log-format json and returns once it has
// logged "listening".
func start(t testing.TB, name string, args ...string) (*proc, string) {
	t.Helper()
	p := &proc{t: t, name: name, logs: &logLines{}, done: make(chan struct{})}
	p.cmd = exec.Command(binary(t), append(args, "--log-format", "json", "--log-level", "debug")...)
	p.cmd.Stderr = p.logs
	p.cmd.Stdout = p.logs
	require.NoError(t, p.cmd.Start())
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", p.name, p.logs.text())
		}
	})
	m := p.waitLog(10*time.Second, func(m map[string]any) bool { return m["msg"] == "listening" })
	return p, m["addr"].(string)
}

func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	require.NoError(p.t, p.cmd.Process.Signal(sig))
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("%s did not exit within %v", p.name, timeout)
	}
	if p.err == nil {
		return 0
	}
	ee, ok := p.err.(*exec.ExitError)
	require.True(p.t, ok, "%s: %v", p.name, p.err)
	return ee.ExitCode()
}

// waitLog waits for a log line that matches and returns it.
func (p *proc) waitLog(timeout time.Duration, match func(map[string]any) bool) map[string]any {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if m := p.logs.find(match); m != nil {
			return m
		}
		select {
		case <-p.done:
			if m := p.logs.find(match); m != nil {
				return m
			}
			p.t.Fatalf("%s exited (%v) before the expected log line; log:\n%s", p.name, p.err, p.logs.text())
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: no matching log line within %v; log:\n%s", p.name, timeout, p.logs.text())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// logLines collects a process's output and parses its JSON log lines.
type logLines struct {
	mu      sync.Mutex
	partial []byte
	lines   []string
	parsed  []map[string]any
}

func (l *logLines) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, b...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			return len(b), nil
		}
		line := string(l.partial[:i])
		l.partial = l.partial[i+1:]
		l.lines = append(l.lines, line)
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			l.parsed = append(l.parsed, m)
		}
	}
}

func (l *logLines) find(match func(map[string]any) bool) map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.parsed {
		if match(m) {
			return m
		}
	}
	return nil
}

func (l *logLines) count(match func(map[string]any) bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.parsed {
		if match(m) {
			n++
		}
	}
	return n
}

func (l *logLines) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n") + "\n" + string(l.partial)
}

// msgIs matches log lines by message.
func msgIs(msg string) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["msg"] == msg }
}

// keyIDs returns a log line's key_ids attribute as strings.
func keyIDs(m map[string]any) []string {
	raw, _ := m["key_ids"].([]any)
	ids := make([]string, len(raw))
	for i, v := range raw {
		ids[i], _ = v.(string)
	}
	return ids
}

// echoBackend serves an echo on loopback until the test ends.
func echoBackend(t testing.TB) string {
	t.Helper()
	return backend(t, func(c net.Conn) { io.Copy(c, c) })
}

// backend serves fn for every connection on loopback until the test ends,
// then closes the listener and every connection and waits for them.
func backend(t testing.TB, fn func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				fn(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// writeFileAtomic replaces a file by writing a temporary one and renaming
// it, as operators' tools do.
func writeFileAtomic(t testing.TB, path, data string) {
	t.Helper()
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(data), 0o600))
	require.NoError(t, os.Rename(tmp, path))
}

// keygenLine runs hmacauth keygen and returns the key line.
func keygenLine(t testing.TB, id string) string {
	t.Helper()
	code, out, errOut := runBin(t, nil, "keygen", "--id", id)
	require.Equal(t, 0, code, errOut)
	return out
}

// echoOnce connects to addr, sends a payload and checks it comes back.
func echoOnce(addr string, payload []byte) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(payload); err != nil {
		return err
	}
	got := make([]byte, len(payload))
	if _, err := io.ReadFull(bufio.NewReader(c), got); err != nil {
		return fmt.Errorf("reading the echo: %w", err)
	}
	if !bytes.Equal(got, payload) {
		return fmt.Errorf("echo differs")
	}
	return nil
}
