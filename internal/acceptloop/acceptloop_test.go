package acceptloop

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// temporaryOnly is an error whose only sign of being retryable is its
// deprecated Temporary method.
type temporaryOnly struct{}

func (temporaryOnly) Error() string   { return "temporary" }
func (temporaryOnly) Temporary() bool { return true }

func TestTemporary(t *testing.T) {
	for _, tc := range []struct {
		name         string
		err          error
		plain, withM bool
	}{
		{"timeout", &net.OpError{Op: "accept", Err: os.ErrDeadlineExceeded}, true, true},
		{"EMFILE", &net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.EMFILE)}, true, true},
		{"ECONNABORTED", fmt.Errorf("wrapped: %w", syscall.ECONNABORTED), true, true},
		{"Temporary method", temporaryOnly{}, false, true},
		{"closed", net.ErrClosed, false, false},
		{"other", errors.New("boom"), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.plain, Temporary(tc.err, false))
			assert.Equal(t, tc.withM, Temporary(tc.err, true))
		})
	}
}

// goid returns the calling goroutine's ID, from its stack trace header.
func goid() string {
	var buf [64]byte
	f := strings.Fields(string(buf[:runtime.Stack(buf[:], false)]))
	return f[1]
}

// startLoop runs a Loop on 127.0.0.1 whose handshake is hs.
func startLoop(t *testing.T, hs func(net.Conn) (net.Conn, error)) (*Loop[net.Conn, net.Conn], string) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l := New(inner, 64, Hooks[net.Conn, net.Conn]{
		Start:     func(raw net.Conn) net.Conn { return raw },
		Handshake: func(_ context.Context, c net.Conn) (net.Conn, error) { return hs(c) },
	})
	t.Cleanup(func() { l.Close() })
	return l, inner.Addr().String()
}

// TestWorkersAreReused checks that one connection after another is
// handshaken by the same two worker goroutines taking turns, that a burst
// of handshakes runs on as many workers at once, and that afterwards at
// most maxIdleWorkers of them wait.
func TestWorkersAreReused(t *testing.T) {
	var (
		mu   sync.Mutex
		gids = map[string]int{}
		gate chan struct{} // when set, handshakes wait for it
	)
	l, addr := startLoop(t, func(c net.Conn) (net.Conn, error) {
		mu.Lock()
		gids[goid()]++
		g := gate
		mu.Unlock()
		if g != nil {
			<-g
		}
		return c, nil
	})
	connect := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		return c
	}
	for range 10 {
		connect()
		s, err := l.Accept()
		require.NoError(t, err)
		s.Close()
		// The worker waits for the next connection once it has handed
		// this one over.
		require.Eventually(t, func() bool { return l.idle.Load() == 1 }, 10*time.Second, 100*time.Microsecond)
	}
	mu.Lock()
	// One connection at a time: two workers take turns, one leading (in
	// the inner Accept) while the other handshakes.
	assert.LessOrEqual(t, len(gids), 2, "one connection at a time needs no new goroutine per connection: %v", gids)
	clear(gids)
	gate = make(chan struct{})
	g := gate
	mu.Unlock()

	const burst = 12
	for range burst {
		connect()
	}
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(gids) == burst
	}, 10*time.Second, time.Millisecond, "every handshake of a burst runs at once, each on its own worker")
	close(g)
	for range burst {
		s, err := l.Accept()
		require.NoError(t, err)
		s.Close()
	}
	require.Eventually(t, func() bool { return l.idle.Load() == maxIdleWorkers }, 10*time.Second, time.Millisecond)
	time.Sleep(10 * time.Millisecond)
	assert.Equal(t, int32(maxIdleWorkers), l.idle.Load(), "workers beyond maxIdleWorkers end")
	// Close ends the idle workers too; TestMain's goleak checks it.
}
