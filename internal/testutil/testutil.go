// Package testutil holds helpers that the tests of several packages share:
// finding an external tool, and running a script in an interpreter while
// reading its output line by line. Only tests import it.
package testutil

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// RequireTool returns the path of an external tool a test needs. Locally a
// missing tool skips the test; under CI=true it fails it, so CI never
// passes by skipping.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required under CI=true but not found: %v", name, err)
		}
		t.Skipf("skip: %s not found: %v", name, err)
	}
	return p
}

// Script is an interpreter running a script for a test: its stdout lines
// arrive on a channel, and it is killed and reaped when the test ends.
type Script struct {
	name   string // the interpreter, as failure messages call it
	cmd    *exec.Cmd
	lines  chan string
	done   chan struct{}
	err    error // from Wait, valid after done is closed
	mu     sync.Mutex
	stderr strings.Builder
}

// StartScript runs interpreter on testdata/script with args, bounded by 30
// seconds. Failure messages call the interpreter name.
func StartScript(t *testing.T, name, interpreter, script string, args ...string) *Script {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	p := &Script{name: name, lines: make(chan string, 16), done: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, interpreter, append([]string{filepath.Join("testdata", script)}, args...)...)
	p.cmd.Stderr = lockedWriter{&p.mu, &p.stderr}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting %s %s: %v", interpreter, script, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		cancel()
		for range p.lines {
		}
		<-p.done
	})
	return p
}

// Line waits for the next line of output.
func (p *Script) Line(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			t.Fatalf("%s ended without the expected output; stderr:\n%s", p.name, p.Stderr())
		}
		return l
	case <-time.After(20 * time.Second):
		t.Fatalf("%s printed nothing for 20s; stderr:\n%s", p.name, p.Stderr())
	}
	return ""
}

// Wait waits for the process to end and returns its exit status.
func (p *Script) Wait(t *testing.T) int {
	t.Helper()
	for range p.lines {
	}
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not exit within 20s", p.name)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatalf("%s: %v; stderr:\n%s", p.name, p.err, p.Stderr())
	}
	return 0
}

// Stderr returns what the process wrote to its standard error so far.
func (p *Script) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *strings.Builder
}

func (w lockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(b)
}
