package testutil

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is a testing.TB that records Skipf and Fatalf and ends only the
// goroutine that called them, not the test.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Skipf(format string, a ...any) {
	r.skipped = fmt.Sprintf(format, a...)
	runtime.Goexit()
}

func (r *recorder) Fatalf(format string, a ...any) {
	r.failed = fmt.Sprintf(format, a...)
	runtime.Goexit()
}

func TestRequireTool(t *testing.T) {
	for _, tc := range []struct {
		name, tool, ci string
		found          bool
		skip, fail     bool
	}{
		{"present", "sh", "", true, false, false},
		{"present under CI", "sh", "true", true, false, false},
		{"missing skips locally", "hmacauth-no-such-tool", "", false, true, false},
		{"missing fails under CI", "hmacauth-no-such-tool", "true", false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			r := &recorder{TB: t}
			var p string
			done := make(chan struct{})
			go func() {
				defer close(done)
				p = RequireTool(r, tc.tool)
			}()
			<-done
			assert.Equal(t, tc.found, p != "", "path %q", p)
			assert.Equal(t, tc.skip, r.skipped != "", "skipped: %q", r.skipped)
			assert.Equal(t, tc.fail, r.failed != "", "failed: %q", r.failed)
		})
	}
}
