package mpcompat

import (
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

	"github.com/hmacauth/auth/internal/testutil"
)

// requireTool returns the path of an external tool a test needs. Locally a
// missing tool skips the test; under CI=true it fails it.
var requireTool = testutil.RequireTool

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
type pyProc struct{ *testutil.Script }

// startPython runs a script in testdata with a 30-second bound.
func startPython(t *testing.T, py, script string, args ...string) *pyProc {
	t.Helper()
	return &pyProc{testutil.StartScript(t, "python", py, script, args...)}
}

// line waits for the next line of output.
func (p *pyProc) line(t *testing.T) string { t.Helper(); return p.Line(t) }

// wait waits for the process to end and returns its exit status.
func (p *pyProc) wait(t *testing.T) int { t.Helper(); return p.Wait(t) }
