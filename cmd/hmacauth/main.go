// Command hmacauth puts hmacauth authentication in front of any TCP
// service, without changing the service or its clients, and manages the
// keys it uses.
//
//	hmacauth keygen [--id ID] [--append FILE]
//	hmacauth tunnel server --listen ADDR --to BACKEND --keys FILE
//	hmacauth tunnel client --listen ADDR --to SERVER --key-file FILE [--key-id ID]
//	hmacauth probe ADDR --key-file FILE [--key-id ID]
//
// A tunnel server accepts authenticated connections and forwards each to
// an unchanged backend (Redis, an internal HTTP API, a database). A tunnel
// client offers a local plaintext port whose connections it authenticates
// towards the tunnel server, so existing clients (redis-cli -p PORT) work
// unchanged. Keys live in key files ("ID base64key" per line); the tunnel
// server reloads its file on SIGHUP and when the file changes, so keys
// rotate without dropping a connection. SIGINT and SIGTERM stop accepting
// and drain open connections for up to --drain-timeout.
//
// Exit codes: 0 success (including a requested shutdown), 1 runtime
// failure, 2 usage error, 3 authentication refused (probe).
//
// Run hmacauth help, or any command with --help, for flags and examples.
package main

import (
	"fmt"
	"io"
	"os"
)

// Exit codes, documented in --help and docs.
const (
	exitOK      = 0 // success, or a shutdown asked for by SIGINT/SIGTERM
	exitFailure = 1 // runtime failure: cannot listen, bad key file, probe network error
	exitUsage   = 2 // bad command line or environment variable
	exitAuth    = 3 // probe: the handshake was refused (wrong key or key ID)
)

// env is what a command runs against; tests build their own.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// signals, when not nil, replaces the process's SIGINT, SIGTERM and
	// SIGHUP notifications.
	signals chan os.Signal
}

func main() {
	os.Exit(run(os.Args[1:], &env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}))
}

const mainUsage = `hmacauth puts shared-key authentication in front of any TCP service.

Usage:
  hmacauth keygen [--id ID] [--append FILE]
  hmacauth tunnel server --listen ADDR --to BACKEND --keys FILE
  hmacauth tunnel client --listen ADDR --to SERVER --key-file FILE [--key-id ID]
  hmacauth probe ADDR --key-file FILE [--key-id ID]

Commands:
  keygen          make a random 32-byte key; print it or append it to a key file
  tunnel server   accept authenticated connections and forward them to BACKEND
  tunnel client   offer a local plaintext port, authenticate its connections to SERVER
  probe           dial SERVER, report the handshake and its timings

Examples:
  # On the Redis host: a key file, and the tunnel in front of Redis.
  hmacauth keygen --id app-2026 --append /etc/hmacauth/keys
  hmacauth tunnel server --listen :6380 --to 127.0.0.1:6379 --keys /etc/hmacauth/keys

  # On the client host: the same key line in a key file, and a local port.
  hmacauth tunnel client --listen 127.0.0.1:6379 --to redis-host:6380 --key-file ~/.hmacauth/keys
  redis-cli -p 6379 PING

  # Check a server and a key.
  hmacauth probe redis-host:6380 --key-file ~/.hmacauth/keys

Key files hold one key per line, "ID base64key", with # comments; keep them
mode 0600. The tunnel server reloads its key file on SIGHUP and when the file
changes, so keys rotate without downtime (see docs/keys.md).

Every flag can also be set by the environment variable shown in the
command's --help (HMACAUTH_LISTEN, HMACAUTH_TO, HMACAUTH_KEYS, ...); a flag on
the command line wins.

Exit codes:
  0  success, including a shutdown asked for by SIGINT or SIGTERM
  1  runtime failure (cannot listen, bad key file, network error)
  2  usage error (unknown command or flag, bad flag value)
  3  authentication refused (probe: wrong key or unknown key ID)
`

func run(args []string, e *env) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, mainUsage)
		return exitUsage
	}
	switch args[0] {
	case "keygen":
		return cmdKeygen(args[1:], e)
	case "tunnel":
		if len(args) < 2 {
			fmt.Fprintln(e.stderr, "hmacauth tunnel: want \"server\" or \"client\"; run 'hmacauth help' for usage")
			return exitUsage
		}
		switch args[1] {
		case "server":
			return cmdTunnelServer(args[2:], e)
		case "client":
			return cmdTunnelClient(args[2:], e)
		case "-h", "-help", "--help", "help":
			fmt.Fprint(e.stdout, mainUsage)
			return exitOK
		}
		fmt.Fprintf(e.stderr, "hmacauth tunnel: unknown side %q: want \"server\" or \"client\"\n", args[1])
		return exitUsage
	case "probe":
		return cmdProbe(args[1:], e)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(e.stdout, mainUsage)
		return exitOK
	}
	fmt.Fprintf(e.stderr, "hmacauth: unknown command %q; run 'hmacauth help' for usage\n", args[0])
	return exitUsage
}
