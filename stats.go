package auth

import (
	"context"
	"errors"
	"net"
	"os"
	"sync/atomic"
)

// Reason classifies why a handshake failed, for counters and log fields.
// ReasonOf computes it from an error.
type Reason uint8

// The reasons a handshake can fail, from the most to the least specific.
const (
	// ReasonNone is the reason of a handshake that succeeded.
	ReasonNone Reason = iota
	// ReasonTimeout: the handshake ran out of time (the handshake timeout,
	// a deadline or a context deadline). A silent or very slow client.
	ReasonTimeout
	// ReasonAuthFailed: a wrong key, an unknown key ID or an impostor
	// (errors matching ErrAuthFailed).
	ReasonAuthFailed
	// ReasonNegotiation: the peers share no version, suite or mode
	// (errors matching ErrNegotiation).
	ReasonNegotiation
	// ReasonProtocol: the peer does not speak hmacauth, broke the protocol
	// or hung up mid-handshake (errors matching ErrProtocol).
	ReasonProtocol
	// ReasonOther: anything else, for example a handshake cut short
	// because the listener was closed.
	ReasonOther
)

// String returns the reason as a short snake_case word, suitable as a
// metric label or a log value: "none", "timeout", "auth_failed",
// "negotiation", "protocol" or "other".
func (r Reason) String() string {
	switch r {
	case ReasonNone:
		return "none"
	case ReasonTimeout:
		return "timeout"
	case ReasonAuthFailed:
		return "auth_failed"
	case ReasonNegotiation:
		return "negotiation"
	case ReasonProtocol:
		return "protocol"
	}
	return "other"
}

// ReasonOf classifies a handshake error with errors.Is. A nil error is
// ReasonNone. A timeout wins over everything else, so a client that stalls
// half-way through is counted as a timeout.
func ReasonOf(err error) Reason {
	switch {
	case err == nil:
		return ReasonNone
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return ReasonTimeout
	case errors.Is(err, ErrAuthFailed):
		return ReasonAuthFailed
	case errors.Is(err, ErrNegotiation):
		return ReasonNegotiation
	case errors.Is(err, ErrProtocol):
		return ReasonProtocol
	}
	return ReasonOther
}

// Reason classifies the event's error; it is ReasonNone for an
// authenticated connection.
func (ev HandshakeEvent) Reason() Reason { return ReasonOf(ev.Err) }

// ListenerStats is a snapshot of an AuthListener's counters since it was
// created. Counters only grow, except InFlight. Each field is read
// atomically, but the snapshot as a whole is not: under load, the sum of
// the fields may be off by the handshakes that ended while it was taken.
type ListenerStats struct {
	// Accepted counts handshakes that succeeded. Such a connection is then
	// handed to Accept (or closed, if the listener is closed first).
	Accepted uint64
	// RefusedTimeout, RefusedAuthFailed, RefusedNegotiation,
	// RefusedProtocol and RefusedOther count failed handshakes by Reason.
	// Every failed connection is closed and counted in exactly one of them.
	RefusedTimeout     uint64
	RefusedAuthFailed  uint64
	RefusedNegotiation uint64
	RefusedProtocol    uint64
	RefusedOther       uint64
	// InFlight is the number of handshakes running now.
	InFlight int64
}

// Refused returns the number of failed handshakes, whatever the reason.
func (s ListenerStats) Refused() uint64 {
	return s.RefusedTimeout + s.RefusedAuthFailed + s.RefusedNegotiation + s.RefusedProtocol + s.RefusedOther
}

// Timeouts returns the number of handshakes that ran out of time; it is
// RefusedTimeout.
func (s ListenerStats) Timeouts() uint64 { return s.RefusedTimeout }

// RefusedBy returns the count of failed handshakes for one reason, so an
// exporter can range over the reasons and use Reason.String as a label.
// RefusedBy(ReasonNone) is zero.
func (s ListenerStats) RefusedBy(r Reason) uint64 {
	switch r {
	case ReasonNone:
		return 0
	case ReasonTimeout:
		return s.RefusedTimeout
	case ReasonAuthFailed:
		return s.RefusedAuthFailed
	case ReasonNegotiation:
		return s.RefusedNegotiation
	case ReasonProtocol:
		return s.RefusedProtocol
	}
	return s.RefusedOther
}

// RefusalReasons lists every reason a handshake can fail, in a fixed
// order, for exporters that label counters by reason.
var RefusalReasons = []Reason{ReasonTimeout, ReasonAuthFailed, ReasonNegotiation, ReasonProtocol, ReasonOther}

// listenerStats holds an AuthListener's live counters.
type listenerStats struct {
	accepted atomic.Uint64
	refused  [ReasonOther + 1]atomic.Uint64 // indexed by Reason
	inFlight atomic.Int64
}

// start counts a handshake that begins.
func (s *listenerStats) start() { s.inFlight.Add(1) }

// finish counts a handshake that ended with err.
func (s *listenerStats) finish(err error) {
	if err == nil {
		s.accepted.Add(1)
	} else {
		s.refused[ReasonOf(err)].Add(1)
	}
	s.inFlight.Add(-1)
}

// Stats returns a snapshot of the listener's counters: handshakes
// accepted, refused by reason and running now. It is cheap and safe to call
// from any goroutine, also after Close.
func (l *AuthListener) Stats() ListenerStats {
	s := &l.stats
	return ListenerStats{
		Accepted:           s.accepted.Load(),
		RefusedTimeout:     s.refused[ReasonTimeout].Load(),
		RefusedAuthFailed:  s.refused[ReasonAuthFailed].Load(),
		RefusedNegotiation: s.refused[ReasonNegotiation].Load(),
		RefusedProtocol:    s.refused[ReasonProtocol].Load(),
		RefusedOther:       s.refused[ReasonOther].Load(),
		InFlight:           s.inFlight.Load(),
	}
}

// addrString formats an address for logs as "host:port", also with JSON
// handlers (which would otherwise print a *net.TCPAddr as an object).
func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
