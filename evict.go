package auth

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// maxEvictAge is how long a handshake must have run before a full listener
// may evict it to make room. A good client's handshake takes a round trip
// or two; one that has not finished in a second is, under a flood, most
// likely a client that stalls on purpose.
const maxEvictAge = time.Second

// errEvicted is the cause of a handshake that a full listener cut short. It
// matches os.ErrDeadlineExceeded: to the client it is an early timeout.
var errEvicted = fmt.Errorf("evicted: the listener reached its handshake limit (WithMaxHandshakes) and this was its oldest handshake: %w", os.ErrDeadlineExceeded)

// evictAge is how long a handshake runs before a full listener may evict
// it: maxEvictAge, or a quarter of the handshake timeout if that is less.
func evictAge(timeout time.Duration) time.Duration {
	if timeout > 0 && timeout/4 < maxEvictAge {
		return timeout / 4
	}
	return maxEvictAge
}

// handshakeTracker lists a listener's handshakes in progress, oldest first,
// so that a full listener can evict the one that has run the longest
// instead of leaving good clients in the backlog until slow ones time out.
type handshakeTracker struct {
	mu sync.Mutex
	l  list.List // of *trackedHandshake
}

type trackedHandshake struct {
	start time.Time
	conn  *Conn         // interrupted directly: no context per handshake
	elem  *list.Element // nil once finished or evicted
}

// add starts tracking the handshake of c.
func (t *handshakeTracker) add(c *Conn) *trackedHandshake {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := &trackedHandshake{start: time.Now(), conn: c}
	h.elem = t.l.PushBack(h)
	return h
}

// done stops tracking a handshake that has ended.
func (t *handshakeTracker) done(h *trackedHandshake) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if h.elem != nil {
		t.l.Remove(h.elem)
		h.elem = nil
	}
}

// untilEvictable reports how long until the oldest handshake has run for
// age, and false if no handshake is in progress.
func (t *handshakeTracker) untilEvictable(age time.Duration) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.l.Front()
	if f == nil {
		return 0, false
	}
	return age - time.Since(f.Value.(*trackedHandshake).start), true
}

// evictOldest interrupts the oldest handshake in progress.
func (t *handshakeTracker) evictOldest() {
	t.mu.Lock()
	f := t.l.Front()
	if f == nil {
		t.mu.Unlock()
		return
	}
	h := t.l.Remove(f).(*trackedHandshake)
	h.elem = nil
	t.mu.Unlock()
	h.conn.interruptWith(errEvicted)
}

// acquire takes a handshake slot for the accept loop. When every slot is
// taken it waits for one; once the oldest handshake in progress has run
// for age, it evicts that handshake and takes its slot. Slots held by
// authenticated connections waiting for Accept are never evicted: a slow
// Accept still pushes back on the accept loop.
func (t *handshakeTracker) acquire(ctx context.Context, sem interface {
	TryAcquire(int64) bool
	Acquire(context.Context, int64) error
}, age time.Duration) error {
	for !sem.TryAcquire(1) {
		wait, ok := t.untilEvictable(age)
		if !ok {
			return sem.Acquire(ctx, 1)
		}
		if wait <= 0 {
			t.evictOldest()
			wait = age // the evicted handshake frees its slot at once
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		err := sem.Acquire(wctx, 1)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
	}
	return nil
}
