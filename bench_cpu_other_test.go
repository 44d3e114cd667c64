//go:build !unix

package auth

import (
	"testing"
	"time"
)

// cpuTime is not measured on this platform: the CPU metrics read zero.
func cpuTime(tb testing.TB) time.Duration { return 0 }
