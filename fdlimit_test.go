//go:build linux

package auth

// File-descriptor exhaustion: the test re-executes its own binary as a
// child server whose RLIMIT_NOFILE is a few descriptors above what it has
// open, floods it until accept fails with EMFILE, and checks that the
// listener backs off, logs, never returns an error from Accept, and serves
// good clients once descriptors are free again.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const fdChildEnv = "HMACAUTH_FDLIMIT_CHILD"

// fdChildHeadroom is how many descriptors the child may open beyond those
// it holds when it sets its limit.
const fdChildHeadroom = 16

func TestFDExhaustionRecovers(t *testing.T) {
	if os.Getenv(fdChildEnv) == "1" {
		fdChild(t)
		return
	}
	exe, err := os.Executable()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.run=^TestFDExhaustionRecovers$", "-test.v", "-test.count=1", "-test.timeout=90s")
	cmd.Env = append(os.Environ(), fdChildEnv+"=1")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())

	// The child's log lines, and a signal when it starts backing off.
	var (
		logMu   sync.Mutex
		logs    []string
		backoff = make(chan struct{})
		once    sync.Once
		readers sync.WaitGroup
	)
	readers.Add(1)
	go func() {
		defer readers.Done()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logMu.Lock()
			logs = append(logs, sc.Text())
			logMu.Unlock()
			if strings.Contains(sc.Text(), "accept failed; retrying") && strings.Contains(sc.Text(), "too many open files") {
				once.Do(func() { close(backoff) })
			}
		}
	}()
	lines := make(chan string, 16)
	readers.Add(1)
	go func() {
		defer readers.Done()
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	next := func() string {
		select {
		case l, ok := <-lines:
			if ok {
				return l
			}
		case <-time.After(atkTimeout):
		}
		return ""
	}
	defer func() {
		stdin.Close()
		cancel()
		readers.Wait()
		cmd.Wait()
		if t.Failed() {
			logMu.Lock()
			t.Logf("child log:\n%s", strings.Join(logs, "\n"))
			logMu.Unlock()
		}
	}()

	var addr string
	for l := next(); l != ""; l = next() {
		if a, ok := strings.CutPrefix(l, "ADDR "); ok {
			addr = a
			break
		}
	}
	require.NotEmpty(t, addr, "the child did not start its listener")

	// Exhaust the child's descriptors with connections that send nothing.
	var flood []*net.TCPConn
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	for range 4 * fdChildHeadroom {
		c, err := net.DialTimeout("tcp", addr, atkTimeout)
		require.NoError(t, err)
		flood = append(flood, c.(*net.TCPConn))
	}
	select {
	case <-backoff:
	case <-time.After(atkTimeout):
		t.Fatal("the child never ran out of descriptors")
	}

	// Good clients queue up in the kernel's backlog while the child is out
	// of descriptors; then the flood ends and they must all get through.
	results := make(chan error, 8)
	for range cap(results) {
		go func() { results <- fdGoodClient(addr) }()
	}
	time.Sleep(200 * time.Millisecond)
	for _, c := range flood {
		c.SetLinger(0)
		c.Close()
	}
	flood = nil
	for range cap(results) {
		select {
		case err := <-results:
			require.NoError(t, err, "a good client failed after the descriptors came back")
		case <-time.After(2 * atkTimeout):
			t.Fatal("a good client hangs")
		}
	}

	stdin.Close() // tells the child to stop
	var done string
	for l := next(); l != ""; l = next() {
		require.False(t, strings.HasPrefix(l, "ACCEPT-ERROR"), "Accept returned an error in the child: %s", l)
		if strings.HasPrefix(l, "DONE") {
			done = l
			break
		}
	}
	require.NotEmpty(t, done, "the child did not finish")
	require.NoError(t, cmd.Wait(), "the child failed")
	t.Logf("child: %s", done)
	logMu.Lock()
	defer logMu.Unlock()
	retries := 0
	for _, l := range logs {
		require.NotContains(t, l, "the listener stops", "the listener gave up on EMFILE")
		if strings.Contains(l, "accept failed; retrying") {
			retries++
		}
	}
	t.Logf("the listener backed off %d times; first: %s", retries, logs[0])
}

func fdGoodClient(addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*atkTimeout)
	defer cancel()
	c, err := DialContext(ctx, "tcp", addr, WithKey(atkKey))
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(atkTimeout))
	msg := []byte("after the flood")
	if _, err := c.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if string(got) != string(msg) {
		return fmt.Errorf("echo %q, want %q", got, msg)
	}
	return nil
}

// fdChild is the child server: it lowers its own descriptor limit, serves
// an echo application until its stdin closes, and reports on stdout.
func fdChild(t *testing.T) {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ln, err := Listen("tcp", "127.0.0.1:0", WithKey(atkKey), WithLogger(logger), WithHandshakeTimeout(5*time.Second))
	require.NoError(t, err)

	open, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	var rl syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl))
	rl.Cur = uint64(len(open) + fdChildHeadroom)
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl))
	fmt.Printf("ADDR %s\n", ln.Addr())

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		conns    []net.Conn
		accepted int
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					fmt.Printf("ACCEPT-ERROR %v\n", err)
				}
				return
			}
			mu.Lock()
			conns = append(conns, c)
			accepted++
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				io.Copy(c, readerOnly{c})
			}()
		}
	}()
	io.Copy(io.Discard, os.Stdin)
	ln.Close()
	mu.Lock()
	for _, c := range conns {
		c.Close()
	}
	mu.Unlock()
	wg.Wait()
	fmt.Printf("DONE accepted=%d\n", accepted)
}
