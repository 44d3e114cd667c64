package auth

import (
	"testing"

	"github.com/hmacauth/auth/internal/testutil"
)

// pyProc is a python3 process started by a test: its stdout lines arrive
// on a channel, and it is killed and reaped when the test ends.
type pyProc struct{ *testutil.Script }

// startPython runs python3 on a script in testdata with a 30-second
// bound. Locally a missing python3 skips the test; under CI=true it fails.
func startPython(t *testing.T, script string, args ...string) *pyProc {
	t.Helper()
	return &pyProc{testutil.StartScript(t, "python3", requireTool(t, "python3"), script, args...)}
}

// line waits for the next line of output.
func (p *pyProc) line(t *testing.T) string { t.Helper(); return p.Line(t) }

// wait waits for the process to end and returns its exit status.
func (p *pyProc) wait(t *testing.T) int { t.Helper(); return p.Wait(t) }
