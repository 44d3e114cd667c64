package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hmacauth/auth"
)

// tunnelFlags are the flags both tunnel sides share.
type tunnelFlags struct {
	listen, to       string
	drainTimeout     time.Duration
	handshakeTimeout time.Duration
	dialTimeout      time.Duration
	watchInterval    time.Duration
	sealed           bool
}

func (t *tunnelFlags) add(f *cmdFlags, listenUsage, toUsage string) {
	f.stringVar(&t.listen, "listen", "HMACAUTH_LISTEN", "", listenUsage)
	f.stringVar(&t.to, "to", "HMACAUTH_TO", "", toUsage)
	f.durationVar(&t.drainTimeout, "drain-timeout", "HMACAUTH_DRAIN_TIMEOUT", 30*time.Second, "on SIGINT/SIGTERM, how long open connections may take to finish before they are closed")
	f.durationVar(&t.handshakeTimeout, "handshake-timeout", "HMACAUTH_HANDSHAKE_TIMEOUT", auth.DefaultHandshakeTimeout, "bound on each authentication handshake")
	f.durationVar(&t.dialTimeout, "dial-timeout", "HMACAUTH_DIAL_TIMEOUT", 10*time.Second, "bound on each outgoing TCP connect")
	f.durationVar(&t.watchInterval, "watch-interval", "HMACAUTH_WATCH_INTERVAL", 2*time.Second, "how often to check the key file for changes (0 = only reload on SIGHUP)")
	f.boolVar(&t.sealed, "sealed", "HMACAUTH_SEALED", true, "use the sealed mode (encrypted and integrity-protected); both ends must agree")
	f.logFlags()
}

func (t *tunnelFlags) check() error {
	if t.drainTimeout < 0 || t.handshakeTimeout < 0 || t.dialTimeout < 0 || t.watchInterval < 0 {
		return errors.New("durations must not be negative")
	}
	return nil
}

const serverExamples = `  # Put Redis behind authentication; clients need a key from /etc/hmacauth/keys.
  hmacauth tunnel server --listen :6380 --to 127.0.0.1:6379 --keys /etc/hmacauth/keys

  # The same from the environment, with JSON logs.
  HMACAUTH_LISTEN=:6380 HMACAUTH_TO=127.0.0.1:6379 HMACAUTH_KEYS=/etc/hmacauth/keys \
    hmacauth tunnel server --log-format json

  # Rotate: add a key, reload (or wait for --watch-interval), retire the old one later.
  hmacauth keygen --id app-2027 --append /etc/hmacauth/keys
  kill -HUP $(pidof hmacauth)

Signals: SIGHUP reloads the key file (a bad file keeps the old keys and logs
why); SIGINT/SIGTERM stop accepting and drain open connections for up to
--drain-timeout (a second signal closes them at once).
`

func cmdTunnelServer(args []string, e *env) int {
	f := newCmdFlags(e, "hmacauth tunnel server", "hmacauth tunnel server --listen ADDR --to BACKEND --keys FILE [flags]", serverExamples)
	var tf tunnelFlags
	var keys string
	tf.add(f, "address to accept authenticated connections on, host:port", "backend address to forward each connection to, host:port")
	f.stringVar(&keys, "keys", "HMACAUTH_KEYS", "", "key file of the keys clients may use (\"ID base64key\" per line)")
	pos, err := f.parse(args)
	if err == nil && len(pos) > 0 {
		err = fmt.Errorf("unexpected argument %q", pos[0])
	}
	if err == nil {
		err = f.required("listen", "to", "keys")
	}
	if err == nil {
		err = tf.check()
	}
	if err != nil {
		return f.usageErr(err)
	}
	log := f.logger()

	store, ok := loadKeys(log, keys)
	if !ok {
		return exitFailure
	}
	inner, err := net.Listen("tcp", tf.listen)
	if err != nil {
		log.Error("cannot listen", "error", err)
		return exitFailure
	}
	opts := []auth.Option{
		auth.WithKeyStore(store),
		auth.WithLogger(log),
		auth.WithHandshakeTimeout(tf.handshakeTimeout),
	}
	ln, err := auth.NewListener(inner, append(opts, modeOptions(tf.sealed)...)...)
	if err != nil {
		inner.Close()
		log.Error("cannot start the listener", "error", err)
		return exitFailure
	}
	log.Info("listening", "side", "server", "addr", ln.Addr().String(), "to", tf.to, "keys", keys, "key_ids", store.IDs())

	s := &service{
		e: e, log: log, ln: ln, store: store,
		drainTimeout: tf.drainTimeout, watchInterval: tf.watchInterval,
	}
	s.handle = func(ctx context.Context, c net.Conn, tc *tracked) {
		defer tc.finish()
		ac := c.(*auth.Conn)
		st := ac.ConnectionState()
		attrs := []any{"remote", c.RemoteAddr().String(), "key_id", st.KeyID}
		d := net.Dialer{Timeout: tf.dialTimeout}
		backend, err := d.DialContext(ctx, "tcp", tf.to)
		if err != nil {
			log.Error("cannot reach the backend; closing the client's connection", append(attrs, "backend", tf.to, "error", err)...)
			c.Close()
			return
		}
		if !tc.attach(backend) {
			c.Close()
			return
		}
		start := time.Now()
		log.Info("connection opened", append(attrs, "suite", st.Suite.String(), "mode", st.Mode.String())...)
		up, down, err := pipe(c, backend)
		logClosed(log, attrs, start, up, down, err)
	}
	return s.run()
}

// logClosed logs the end of a tunnel: bytes each way, and the error that
// ended it early, if any.
func logClosed(log *slog.Logger, attrs []any, start time.Time, up, down int64, err error) {
	attrs = append(attrs, "bytes_up", up, "bytes_down", down, "duration", time.Since(start).Round(time.Microsecond))
	if err != nil && !errors.Is(err, net.ErrClosed) {
		level := slog.LevelInfo
		if errors.Is(err, auth.ErrAuthFailed) {
			level = slog.LevelWarn
		}
		log.Log(context.Background(), level, "connection closed", append(attrs, "error", err)...)
		return
	}
	log.Info("connection closed", attrs...)
}

const clientExamples = `  # A local Redis port that authenticates towards the tunnel server.
  hmacauth tunnel client --listen 127.0.0.1:6379 --to redis-host:6380 --key-file ~/.hmacauth/keys
  redis-cli -p 6379 PING

  # A key file with several keys: choose one.
  hmacauth tunnel client --listen 127.0.0.1:6379 --to redis-host:6380 \
    --key-file ~/.hmacauth/keys --key-id app-2027

Without --key-id the key file must hold exactly one key. The key file is
reloaded on SIGHUP and when it changes (the key with the same ID, or the
only key, is used for new connections); SIGINT/SIGTERM drain as the server
does.
`

// clientKey is the key a tunnel client or probe authenticates with.
type clientKey struct {
	id  string
	key []byte
}

// pickKey chooses the key: the one named by id, or else the only key of
// the file. Several keys and no --key-id is an error rather than a guess.
func pickKey(store *auth.KeyStore, id string) (clientKey, error) {
	ids := store.IDs()
	if id == "" {
		if len(ids) != 1 {
			return clientKey{}, fmt.Errorf("%s holds %d keys (%s): choose one with --key-id", store.Path(), len(ids), strings.Join(ids, ", "))
		}
		id = ids[0]
	}
	key, err := store.Lookup(id)
	if err != nil {
		return clientKey{}, fmt.Errorf("key ID %q is not in %s (it holds %s)", id, store.Path(), strings.Join(ids, ", "))
	}
	return clientKey{id: id, key: key}, nil
}

func cmdTunnelClient(args []string, e *env) int {
	f := newCmdFlags(e, "hmacauth tunnel client", "hmacauth tunnel client --listen ADDR --to SERVER --key-file FILE [--key-id ID] [flags]", clientExamples)
	var tf tunnelFlags
	var keyFile, keyID string
	tf.add(f, "local address to accept plaintext connections on, host:port (keep it on loopback)", "address of the tunnel server, host:port")
	f.stringVar(&keyFile, "key-file", "HMACAUTH_KEY_FILE", "", "key file holding this client's key")
	f.stringVar(&keyID, "key-id", "HMACAUTH_KEY_ID", "", "key ID to use from the key file (needed when it holds several)")
	pos, err := f.parse(args)
	if err == nil && len(pos) > 0 {
		err = fmt.Errorf("unexpected argument %q", pos[0])
	}
	if err == nil {
		err = f.required("listen", "to", "key-file")
	}
	if err == nil {
		err = tf.check()
	}
	if err != nil {
		return f.usageErr(err)
	}
	log := f.logger()

	store, ok := loadKeys(log, keyFile)
	if !ok {
		return exitFailure
	}
	var dialer atomic.Pointer[clientDialer]
	build := func() error {
		ck, err := pickKey(store, keyID)
		if err != nil {
			return err
		}
		opts := []auth.Option{
			auth.WithKey(ck.key),
			auth.WithKeyID(ck.id),
			auth.WithHandshakeTimeout(tf.handshakeTimeout),
			auth.WithNetDialer(&net.Dialer{Timeout: tf.dialTimeout}),
		}
		d, err := auth.NewDialer(append(opts, modeOptions(tf.sealed)...)...)
		if err != nil {
			return err
		}
		dialer.Store(&clientDialer{d: d, id: ck.id})
		return nil
	}
	if err := build(); err != nil {
		log.Error("cannot choose a key", "error", err)
		return exitFailure
	}
	ln, err := net.Listen("tcp", tf.listen)
	if err != nil {
		log.Error("cannot listen", "error", err)
		return exitFailure
	}
	log.Info("listening", "side", "client", "addr", ln.Addr().String(), "to", tf.to, "key_id", dialer.Load().id)

	s := &service{
		e: e, log: log, ln: ln, store: store,
		drainTimeout: tf.drainTimeout, watchInterval: tf.watchInterval,
	}
	s.reloaded = func() {
		if err := build(); err != nil {
			log.Error("the reloaded key file has no usable key; new connections keep the previous key", "error", err, "key_id", dialer.Load().id)
			return
		}
		log.Info("using key", "key_id", dialer.Load().id)
	}
	s.handle = func(ctx context.Context, c net.Conn, tc *tracked) {
		defer tc.finish()
		cd := dialer.Load()
		attrs := []any{"local", c.RemoteAddr().String(), "server", tf.to, "key_id", cd.id}
		up, err := cd.d.DialContext(ctx, "tcp", tf.to)
		if err != nil {
			if errors.Is(err, auth.ErrAuthFailed) {
				log.Warn("authentication refused: the server does not hold this key", append(attrs, "error", err)...)
			} else {
				log.Warn("cannot reach the server", append(attrs, "error", err)...)
			}
			c.Close()
			return
		}
		if !tc.attach(up) {
			c.Close()
			return
		}
		start := time.Now()
		st := up.(*auth.Conn).ConnectionState()
		log.Info("connection opened", append(attrs, "suite", st.Suite.String(), "mode", st.Mode.String())...)
		n1, n2, err := pipe(c, up)
		logClosed(log, attrs, start, n1, n2, err)
	}
	return s.run()
}

type clientDialer struct {
	d  *auth.Dialer
	id string
}
