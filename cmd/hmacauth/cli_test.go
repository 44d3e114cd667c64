package main

import (
	"bytes"
	"encoding/base64"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hmacauth/auth"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runIn runs the command in-process with the given environment variables.
func runIn(t *testing.T, vars map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	e := &env{stdout: &stdout, stderr: &stderr, getenv: func(k string) string { return vars[k] }}
	code := run(args, e)
	return code, stdout.String(), stderr.String()
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name    string
		vars    map[string]string
		args    []string
		code    int
		out     string // substring of stdout
		errText string // substring of stderr
	}{
		{"no command", nil, nil, exitUsage, "", "Usage:"},
		{"help", nil, []string{"help"}, exitOK, "Exit codes:", ""},
		{"--help", nil, []string{"--help"}, exitOK, "hmacauth tunnel server --listen ADDR", ""},
		{"unknown command", nil, []string{"serve"}, exitUsage, "", `unknown command "serve"`},
		{"tunnel alone", nil, []string{"tunnel"}, exitUsage, "", `want "server" or "client"`},
		{"tunnel side", nil, []string{"tunnel", "middle"}, exitUsage, "", `unknown side "middle"`},
		{"server help", nil, []string{"tunnel", "server", "--help"}, exitOK, "(env HMACAUTH_LISTEN)", ""},
		{"server help examples", nil, []string{"tunnel", "server", "-h"}, exitOK, "kill -HUP", ""},
		{"client help", nil, []string{"tunnel", "client", "--help"}, exitOK, "(env HMACAUTH_KEY_FILE)", ""},
		{"probe help", nil, []string{"probe", "--help"}, exitOK, "3 authentication refused", ""},
		{"keygen help", nil, []string{"keygen", "--help"}, exitOK, "--append", ""},
		{"server missing flags", nil, []string{"tunnel", "server"}, exitUsage, "", "--listen is required (or set HMACAUTH_LISTEN)"},
		{"server missing keys", nil, []string{"tunnel", "server", "--listen", ":0", "--to", "x:1"}, exitUsage, "", "--keys is required (or set HMACAUTH_KEYS)"},
		{"client missing key file", map[string]string{"HMACAUTH_LISTEN": ":0", "HMACAUTH_TO": "x:1"}, []string{"tunnel", "client"}, exitUsage, "", "--key-file is required (or set HMACAUTH_KEY_FILE)"},
		{"unknown flag", nil, []string{"tunnel", "server", "--port", "1"}, exitUsage, "", "flag provided but not defined: -port"},
		{"bad duration", nil, []string{"tunnel", "server", "--drain-timeout", "soon"}, exitUsage, "", "invalid value \"soon\" for flag -drain-timeout"},
		{"bad env duration", map[string]string{"HMACAUTH_DRAIN_TIMEOUT": "soon"}, []string{"tunnel", "server"}, exitUsage, "", `environment variable HMACAUTH_DRAIN_TIMEOUT="soon"`},
		{"bad log format", nil, []string{"keygen", "--log-format", "xml"}, exitUsage, "", `--log-format "xml": want text or json`},
		{"bad env log level", map[string]string{"HMACAUTH_LOG_LEVEL": "loud"}, []string{"keygen"}, exitUsage, "", `--log-level "loud"`},
		{"negative duration", nil, []string{"tunnel", "server", "--listen", ":0", "--to", "x:1", "--keys", "k", "--watch-interval", "-1s"}, exitUsage, "", "must not be negative"},
		{"extra argument", nil, []string{"tunnel", "server", "oops"}, exitUsage, "", `unexpected argument "oops"`},
		{"probe without address", nil, []string{"probe", "--key-file", "k"}, exitUsage, "", "missing ADDR"},
		{"probe two addresses", nil, []string{"probe", "a:1", "b:2", "--key-file", "k"}, exitUsage, "", `unexpected argument "b:2" after ADDR`},
		{"keygen bad ID", nil, []string{"keygen", "--id", "two words"}, exitUsage, "", "--id: auth: key ID"},
		{"server missing key file", map[string]string{"HMACAUTH_KEYS": "/nonexistent/env"}, []string{"tunnel", "server", "--listen", "127.0.0.1:0", "--to", "x:1", "--keys", "/nonexistent/flag"}, exitFailure, "", "/nonexistent/flag: cannot open"},
		{"server key file from env", map[string]string{"HMACAUTH_KEYS": "/nonexistent/env", "HMACAUTH_LISTEN": "127.0.0.1:0", "HMACAUTH_TO": "x:1"}, []string{"tunnel", "server"}, exitFailure, "", "/nonexistent/env: cannot open"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runIn(t, tt.vars, tt.args...)
			assert.Equal(t, tt.code, code, "stdout: %s\nstderr: %s", out, errOut)
			assert.Contains(t, out, tt.out)
			assert.Contains(t, errOut, tt.errText)
			if tt.code == exitUsage && tt.errText != "Usage:" && !strings.HasPrefix(tt.name, "tunnel") && tt.name != "unknown command" {
				assert.Contains(t, errOut, "--help' for usage.")
			}
		})
	}
}

func TestKeygen(t *testing.T) {
	code, out, _ := runIn(t, nil, "keygen")
	require.Equal(t, exitOK, code)
	assert.Regexp(t, regexp.MustCompile(`^k\d{8}-[0-9a-f]{6} [A-Za-z0-9+/]{43}=\n$`), out)
	kf, err := auth.ParseKeyFile("out", []byte(out))
	require.NoError(t, err)
	require.Len(t, kf.Entries, 1)
	assert.Len(t, kf.Entries[0].Key, 32)

	_, out2, _ := runIn(t, nil, "keygen", "--id", "x")
	assert.True(t, strings.HasPrefix(out2, "x "))
	assert.NotEqual(t, out[strings.IndexByte(out, ' '):], out2[1:], "every key is fresh")

	dir := t.TempDir()
	path := filepath.Join(dir, "keys")
	code, out, errOut := runIn(t, nil, "keygen", "--id", "a", "--append", path)
	require.Equal(t, exitOK, code, errOut)
	assert.Equal(t, "a\n", out)
	assert.Contains(t, errOut, "key appended")
	written, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.NotContains(t, errOut+out, strings.Fields(string(written))[1], "the key itself is never printed or logged")
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	before, err := os.ReadFile(path)
	require.NoError(t, err)
	code, _, errOut = runIn(t, nil, "keygen", "--id", "a", "--append", path)
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, errOut, `key ID "a" appears again (first on line 1)`)
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, before, after, "a refused append leaves the file alone")

	// A file whose last line has no newline, and loose permissions.
	require.NoError(t, os.WriteFile(path, bytes.TrimSuffix(before, []byte("\n")), 0o600))
	require.NoError(t, os.Chmod(path, 0o644))
	code, _, errOut = runIn(t, nil, "keygen", "--id", "b", "--append", path)
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, errOut, "accessible by group or others (mode 0644)")
	kf, err = auth.ReadKeyFile(path)
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, kf.IDs())

	// A broken file is not appended to.
	require.NoError(t, os.WriteFile(path, []byte("broken\n"), 0o600))
	code, _, errOut = runIn(t, nil, "keygen", "--append", path)
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, errOut, path+":1: ")
}

func TestPickKey(t *testing.T) {
	dir := t.TempDir()
	k1 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	k2 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32))
	one := filepath.Join(dir, "one")
	two := filepath.Join(dir, "two")
	writeFileAtomic(t, one, "only "+k1+"\n")
	writeFileAtomic(t, two, "a "+k1+"\nb "+k2+"\n")
	s1, err := auth.LoadKeyFile(one)
	require.NoError(t, err)
	s2, err := auth.LoadKeyFile(two)
	require.NoError(t, err)

	ck, err := pickKey(s1, "")
	require.NoError(t, err)
	assert.Equal(t, "only", ck.id)
	assert.Equal(t, bytes.Repeat([]byte{1}, 32), ck.key)

	_, err = pickKey(s2, "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "holds 2 keys (a, b): choose one with --key-id")

	ck, err = pickKey(s2, "b")
	require.NoError(t, err)
	assert.Equal(t, bytes.Repeat([]byte{2}, 32), ck.key)

	_, err = pickKey(s2, "c")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `key ID "c" is not in `+two+" (it holds a, b)")

	code, _, errOut := runIn(t, nil, "probe", "127.0.0.1:1", "--key-file", two)
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, errOut, "choose one with --key-id")
}

// TestPipeHalfClose: each side's EOF reaches the other while bytes still
// flow the other way, and nothing is lost.
func TestPipeHalfClose(t *testing.T) {
	response := bytes.Repeat([]byte("r"), 1<<20)
	backendAddr := backend(t, func(c net.Conn) {
		req, err := io.ReadAll(c) // until the client's EOF
		if err != nil || string(req) != "request" {
			return
		}
		c.Write(response)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	type counts struct {
		up, down int64
		err      error
	}
	res := make(chan counts, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			res <- counts{err: err}
			return
		}
		b, err := net.Dial("tcp", backendAddr)
		if err != nil {
			c.Close()
			res <- counts{err: err}
			return
		}
		up, down, err := pipe(c, b)
		res <- counts{up, down, err}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = c.Write([]byte("request"))
	require.NoError(t, err)
	require.NoError(t, c.(*net.TCPConn).CloseWrite())
	got, err := io.ReadAll(c)
	require.NoError(t, err)
	assert.Equal(t, len(response), len(got))
	r := <-res
	require.NoError(t, r.err)
	assert.Equal(t, int64(len("request")), r.up)
	assert.Equal(t, int64(len(response)), r.down)
}

func TestParseInterspersed(t *testing.T) {
	for _, args := range [][]string{
		{"host:1", "--key-file", "k", "--json"},
		{"--key-file", "k", "host:1", "--json"},
		{"--json", "--key-file=k", "--", "host:1"},
	} {
		f := newCmdFlags(&env{stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}, "t", "t", "")
		var keyFile string
		var js bool
		f.stringVar(&keyFile, "key-file", "", "", "")
		f.boolVar(&js, "json", "", false, "")
		f.logFlags()
		pos, err := f.parse(args)
		require.NoError(t, err, "%v", args)
		assert.Equal(t, []string{"host:1"}, pos, "%v", args)
		assert.Equal(t, "k", keyFile)
		assert.True(t, js)
	}
}
