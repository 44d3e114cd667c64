package auth

import (
	"bufio"
	"context"
	"errors"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// pyProc is a python3 process started by a test: its stdout lines arrive
// on a channel, and it is killed and reaped when the test ends.
type pyProc struct {
	cmd    *exec.Cmd
	lines  chan string
	done   chan struct{}
	err    error // from Wait, valid after done is closed
	stderr strings.Builder
	mu     sync.Mutex
}

// startPython runs python3 on a script in testdata with a 30-second
// bound. Locally a missing python3 skips the test; under CI=true it fails.
func startPython(t *testing.T, script string, args ...string) *pyProc {
	t.Helper()
	py := requireTool(t, "python3")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	p := &pyProc{lines: make(chan string, 16), done: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, py, append([]string{"testdata/" + script}, args...)...)
	p.cmd.Stderr = pyStderrWriter{&p.mu, &p.stderr}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting python3 %s: %v", script, err)
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

// line waits for the next line of output.
func (p *pyProc) line(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			t.Fatalf("python3 ended without the expected output; stderr:\n%s", p.errText())
		}
		return l
	case <-time.After(20 * time.Second):
		t.Fatalf("python3 printed nothing for 20s; stderr:\n%s", p.errText())
	}
	return ""
}

// wait waits for the process to end and returns its exit status.
func (p *pyProc) wait(t *testing.T) int {
	t.Helper()
	for range p.lines {
	}
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("python3 did not exit within 20s")
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatalf("python3: %v; stderr:\n%s", p.err, p.errText())
	}
	return 0
}

func (p *pyProc) errText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

type pyStderrWriter struct {
	mu *sync.Mutex
	w  *strings.Builder
}

func (w pyStderrWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(b)
}
