package mpcompat

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// requireTool returns the path of an external tool a test needs. Locally a
// missing tool skips the test; under CI=true it fails it.
func requireTool(t testing.TB, name string) string {
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

// interpreter is a Python that a test runs.
type interpreter struct {
	path    string
	version string // "3.11.7"
	modern  bool   // 3.12 or later: speaks the {digest} handshake
}

// pythonVersion asks an interpreter for its version.
func pythonVersion(path string) (version string, modern bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3], sys.version_info >= (3, 12))").Output()
	if err != nil {
		return "", false, err
	}
	f := strings.Fields(string(out))
	if len(f) != 2 {
		return "", false, errors.New("unexpected output: " + string(out))
	}
	return f[0], f[1] == "True", nil
}

// interpreters returns python3 (required: skipped locally, failed under
// CI=true when missing) and, when the machine has one, a Python of the
// other generation (a pyenv install or a python3.N on PATH), so both
// handshake generations are tested against real processes where possible.
func interpreters(t *testing.T) []interpreter {
	t.Helper()
	py := requireTool(t, "python3")
	interpOnce.Do(func() { interpList, interpErr = findInterpreters(py) })
	if interpErr != nil {
		t.Fatalf("python3: %v", interpErr)
	}
	if len(interpList) == 1 {
		t.Logf("only Python %s found: the other handshake generation is covered by TestCPython312Vectors alone", interpList[0].version)
	}
	return interpList
}

var (
	interpOnce sync.Once
	interpList []interpreter
	interpErr  error
)

func findInterpreters(py string) ([]interpreter, error) {
	v, modern, err := pythonVersion(py)
	if err != nil {
		return nil, err
	}
	out := []interpreter{{py, v, modern}}
	var candidates []string
	for _, n := range []string{"python3.14", "python3.13", "python3.12", "python3.11", "python3.10", "python3.9"} {
		if p, err := exec.LookPath(n); err == nil {
			candidates = append(candidates, p)
		}
	}
	root := os.Getenv("PYENV_ROOT")
	if root == "" {
		if home, err := os.UserHomeDir(); err == nil {
			root = filepath.Join(home, ".pyenv")
		}
	}
	if matches, _ := filepath.Glob(filepath.Join(root, "versions", "3.*", "bin", "python3")); len(matches) > 0 {
		slices.Reverse(matches)
		candidates = append(candidates, matches...)
	}
	for _, p := range candidates {
		v, m, err := pythonVersion(p)
		if err == nil && m != modern {
			out = append(out, interpreter{p, v, m})
			break
		}
	}
	return out, nil
}

// pyProc is a Python process started by a test: its stdout lines arrive on
// a channel, and it is killed and reaped when the test ends.
type pyProc struct {
	cmd    *exec.Cmd
	lines  chan string
	done   chan struct{}
	err    error
	mu     sync.Mutex
	stderr strings.Builder
}

// startPython runs a script in testdata with a 30-second bound.
func startPython(t *testing.T, py, script string, args ...string) *pyProc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	p := &pyProc{lines: make(chan string, 16), done: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, py, append([]string{filepath.Join("testdata", script)}, args...)...)
	p.cmd.Stderr = lockedWriter{&p.mu, &p.stderr}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting %s %s: %v", py, script, err)
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
			t.Fatalf("python ended without the expected output; stderr:\n%s", p.errText())
		}
		return l
	case <-time.After(20 * time.Second):
		t.Fatalf("python printed nothing for 20s; stderr:\n%s", p.errText())
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
		t.Fatalf("python did not exit within 20s")
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatalf("python: %v; stderr:\n%s", p.err, p.errText())
	}
	return 0
}

func (p *pyProc) errText() string {
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
