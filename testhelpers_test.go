package auth

import (
	"os"
	"os/exec"
	"testing"
)

// requireTool returns the path of an external tool a test needs. Locally a
// missing tool skips the test; under CI=true it fails it, so CI never
// passes by skipping.
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
