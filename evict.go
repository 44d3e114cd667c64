package auth

import (
	"context"
	"errors"
	"fmt"
	"net"
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

// errTimedOut is the cause of a handshake that the listener's watchdog cut
// short at the handshake timeout. The handshake reports it as a timeout,
// exactly as if a deadline had fired.
var errTimedOut = fmt.Errorf("handshake timeout: %w", os.ErrDeadlineExceeded)

// errListenerClosed is the cause of a handshake cut short by the
// listener's Close.
var errListenerClosed = fmt.Errorf("the listener was closed: %w", net.ErrClosed)

// handshakeTracker lists a listener's handshakes in progress, oldest first,
// so that a full listener can evict the one that has run the longest
// instead of leaving good clients in the backlog until slow ones time out,
// so that one watchdog enforces the handshake timeout for all of them (see
// expire), and so that Close can interrupt them without a context watch
// per handshake. The list runs through the Conns themselves (trackNode), so
// tracking a handshake allocates nothing.
type handshakeTracker struct {
	mu         sync.Mutex
	head, tail *Conn
	n          int
	closed     bool // interruptAll has run: later handshakes end at once
}

// trackNode is a Conn's place in its listener's handshakeTracker.
type trackNode struct {
	prev, next *Conn
	start      time.Time
	listed     bool
}

// add starts tracking the handshake of c. After interruptAll, it
// interrupts c at once instead.
func (t *handshakeTracker) add(c *Conn) {
	t.mu.Lock()
	c.track.start = time.Now()
	if t.closed {
		t.mu.Unlock()
		c.interruptWith(errListenerClosed)
		return
	}
	c.track.prev, c.track.listed = t.tail, true
	if t.tail != nil {
		t.tail.track.next = c
	} else {
		t.head = c
	}
	t.tail = c
	t.n++
	t.mu.Unlock()
}

// removeLocked takes c off the list. Called with mu held.
func (t *handshakeTracker) removeLocked(c *Conn) {
	if !c.track.listed {
		return
	}
	if c.track.prev != nil {
		c.track.prev.track.next = c.track.next
	} else {
		t.head = c.track.next
	}
	if c.track.next != nil {
		c.track.next.track.prev = c.track.prev
	} else {
		t.tail = c.track.prev
	}
	c.track.prev, c.track.next, c.track.listed = nil, nil, false
	t.n--
}

// done stops tracking a handshake that has ended.
func (t *handshakeTracker) done(c *Conn) {
	t.mu.Lock()
	t.removeLocked(c)
	t.mu.Unlock()
}

// len is the number of handshakes tracked.
func (t *handshakeTracker) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}

// expire interrupts every handshake that has run for timeout and returns
// how long until the next one will have. Handshakes share one timeout and
// the list is in order of start, so the expired ones are at its front.
func (t *handshakeTracker) expire(timeout time.Duration) time.Duration {
	var expired []*Conn
	t.mu.Lock()
	next := timeout
	now := time.Now()
	for c := t.head; c != nil; c = t.head {
		if left := timeout - now.Sub(c.track.start); left > 0 {
			next = left
			break
		}
		t.removeLocked(c)
		expired = append(expired, c)
	}
	t.mu.Unlock()
	for _, c := range expired {
		c.interruptWith(errTimedOut)
	}
	return next
}

// interruptAll interrupts every handshake in progress, and every one
// added later, for the listener's Close.
func (t *handshakeTracker) interruptAll() {
	t.mu.Lock()
	t.closed = true
	var conns []*Conn
	for c := t.head; c != nil; c = t.head {
		t.removeLocked(c)
		conns = append(conns, c)
	}
	t.mu.Unlock()
	for _, c := range conns {
		c.interruptWith(errListenerClosed)
	}
}

// untilEvictable reports how long until the oldest handshake has run for
// age, and false if no handshake is in progress.
func (t *handshakeTracker) untilEvictable(age time.Duration) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.head == nil {
		return 0, false
	}
	return age - time.Since(t.head.track.start), true
}

// evictOldest interrupts the oldest handshake in progress.
func (t *handshakeTracker) evictOldest() {
	t.mu.Lock()
	c := t.head
	if c == nil {
		t.mu.Unlock()
		return
	}
	t.removeLocked(c)
	t.mu.Unlock()
	c.interruptWith(errEvicted)
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
