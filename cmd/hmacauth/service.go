package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/hmacauth/auth"
)

// service is what the two tunnels share: an accept loop, a key store that
// reloads on SIGHUP and on file change, and a shutdown that drains.
type service struct {
	e     *env
	log   *slog.Logger
	ln    net.Listener
	store *auth.KeyStore
	// handle runs one tunnel; ctx is cancelled when the drain timeout runs
	// out. It must call tc.finish.
	handle func(ctx context.Context, c net.Conn, tc *tracked)
	// reloaded, if not nil, runs after every successful reload.
	reloaded func()

	drainTimeout  time.Duration
	watchInterval time.Duration

	tunnels  tracker
	reloadMu sync.Mutex
}

// run serves until SIGINT or SIGTERM (exit 0 after draining) or a
// permanent accept error (exit 1).
func (s *service) run() int {
	sigs := s.e.signals
	if sigs == nil {
		sigs = make(chan os.Signal, 4)
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
		defer signal.Stop(sigs)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var bg sync.WaitGroup
	defer bg.Wait()
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	if s.watchInterval > 0 {
		bg.Add(1)
		go func() {
			defer bg.Done()
			s.store.Watch(watchCtx, s.watchInterval, func(err error) { s.afterReload("file changed", err) })
		}()
	}

	acceptDone := make(chan error, 1)
	go func() { acceptDone <- s.acceptLoop(ctx) }()

	code := exitOK
wait:
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				s.reload("SIGHUP")
				continue
			}
			s.log.Info("shutting down: no new connections, draining open ones",
				"signal", sig.String(), "open", s.tunnels.count(), "drain_timeout", s.drainTimeout)
			break wait
		case err := <-acceptDone:
			s.log.Error("cannot accept connections; shutting down", "error", err)
			code = exitFailure
			acceptDone <- nil // for the wait below
			break wait
		}
	}
	s.ln.Close()
	<-acceptDone
	s.drain(sigs, cancel)
	return code
}

// drain waits for open tunnels to finish, for at most the drain timeout or
// until a second SIGINT/SIGTERM, then closes what is left.
func (s *service) drain(sigs <-chan os.Signal, cancel context.CancelFunc) {
	drained := s.tunnels.wait()
	timer := time.NewTimer(s.drainTimeout)
	defer timer.Stop()
	start := time.Now()
	for {
		select {
		case <-drained:
			s.log.Info("drained; exiting", "took", time.Since(start).Round(time.Millisecond))
			return
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				s.reload("SIGHUP")
				continue
			}
			s.log.Warn("second signal: closing open connections now", "signal", sig.String(), "closed", s.tunnels.closeAll())
		case <-timer.C:
			s.log.Warn("drain timeout: closing open connections", "drain_timeout", s.drainTimeout, "closed", s.tunnels.closeAll())
		}
		cancel()
		<-drained
		s.log.Info("closed; exiting", "took", time.Since(start).Round(time.Millisecond))
		return
	}
}

// acceptLoop hands each accepted connection to handle until the listener
// is closed (nil) or fails for good.
func (s *service) acceptLoop(ctx context.Context) error {
	var backoff time.Duration
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			if !temporary(err) {
				return err
			}
			backoff = max(5*time.Millisecond, min(2*backoff, time.Second))
			s.log.Warn("accept failed; retrying", "error", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		tc := s.tunnels.start(c)
		go s.handle(ctx, c, tc)
	}
}

func temporary(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []error{syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.EAGAIN, syscall.EINTR, syscall.EPROTO, syscall.EPERM} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// reload reloads the key file on request.
func (s *service) reload(why string) {
	s.afterReload(why, s.store.Reload())
}

// afterReload logs a reload's outcome; never a key, only IDs.
func (s *service) afterReload(why string, err error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if err != nil {
		s.log.Error("key file reload failed; keeping the previous keys", "trigger", why, "file", s.store.Path(), "error", err, "key_ids", s.store.IDs())
		return
	}
	s.log.Info("keys reloaded", "trigger", why, "file", s.store.Path(), "key_ids", s.store.IDs())
	logKeyWarnings(s.log, s.store)
	if s.reloaded != nil {
		s.reloaded()
	}
}

// loadKeys loads the key file at path for a command, logging why it cannot
// and any warning about it (a file others can read). ok is false when the
// command should exit with exitFailure.
func loadKeys(log *slog.Logger, path string) (store *auth.KeyStore, ok bool) {
	store, err := auth.LoadKeyFile(path)
	if err != nil {
		log.Error("cannot load the key file", "error", err)
		return nil, false
	}
	logKeyWarnings(log, store)
	return store, true
}

func logKeyWarnings(log *slog.Logger, store *auth.KeyStore) {
	for _, w := range store.Warnings() {
		log.Warn(w)
	}
}
