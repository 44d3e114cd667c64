//go:build unix

package auth

import (
	"syscall"
	"testing"
	"time"
)

// cpuTime is the CPU time, user and system, used so far by this process.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
