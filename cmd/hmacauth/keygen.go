package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/hmacauth/auth"
)

const keygenExamples = `  hmacauth keygen                                  # print "ID KEY" for a new key
  hmacauth keygen --id web-2026                    # choose the key ID
  hmacauth keygen --id web-2026 --append keys      # add it to a key file (made 0600 if new)
  hmacauth keygen --id web-2026 | ssh client-host 'cat >> .hmacauth/keys'
`

func cmdKeygen(args []string, e *env) int {
	f := newCmdFlags(e, "hmacauth keygen", "hmacauth keygen [--id ID] [--append FILE]", keygenExamples)
	var id, appendTo string
	f.stringVar(&id, "id", "", "", "key ID (printable ASCII, no spaces or '#', at most 255 bytes); default k<date>-<random>")
	f.stringVar(&appendTo, "append", "", "", "append the key line to this key file instead of printing it; prints the key ID")
	f.logFlags()
	pos, err := f.parse(args)
	if err == nil && len(pos) > 0 {
		err = fmt.Errorf("unexpected argument %q", pos[0])
	}
	if err != nil {
		return f.usageErr(err)
	}
	if id == "" {
		id = defaultKeyID(time.Now())
	}
	if err := auth.CheckKeyFileID(id); err != nil {
		return f.usageErr(fmt.Errorf("--id: %v", err))
	}
	key, err := auth.GenerateKey()
	if err != nil {
		fmt.Fprintf(e.stderr, "hmacauth keygen: %v\n", err)
		return exitFailure
	}
	line, err := auth.FormatKeyLine(id, key)
	if err != nil {
		fmt.Fprintf(e.stderr, "hmacauth keygen: %v\n", err)
		return exitFailure
	}
	if appendTo == "" {
		fmt.Fprint(e.stdout, line)
		return exitOK
	}
	log := f.logger()
	warnings, err := appendKeyLine(appendTo, line)
	for _, w := range warnings {
		log.Warn(w)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "hmacauth keygen: %v\n", err)
		return exitFailure
	}
	log.Info("key appended", "key_id", id, "file", appendTo)
	fmt.Fprintln(e.stdout, id)
	return exitOK
}

// defaultKeyID names a key by its creation date and a random suffix, so
// key files read in the order keys were made.
func defaultKeyID(now time.Time) string {
	var b [3]byte
	rand.Read(b[:])
	return "k" + now.UTC().Format("20060102") + "-" + hex.EncodeToString(b[:])
}

// appendKeyLine appends line to the key file at path, creating it with
// mode 0600 if it does not exist. It refuses if the file with the line
// added would not load (a duplicate key ID, a broken line already there),
// so it never leaves a file the server would reject.
func appendKeyLine(path, line string) (warnings []string, err error) {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading %s: %v", path, err)
	}
	sep := ""
	if len(old) > 0 && !bytes.HasSuffix(old, []byte("\n")) {
		sep = "\n"
	}
	if _, err := auth.ParseKeyFile(path, append(append(old, sep...), line...)); err != nil {
		return nil, fmt.Errorf("not appending: %v", err)
	}
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if fi, err := fh.Stat(); err == nil && fi.Mode().Perm()&0o077 != 0 {
		warnings = append(warnings, fmt.Sprintf("%s is accessible by group or others (mode %#o): run chmod 600 %s", path, fi.Mode().Perm(), path))
	}
	// One write, so a server watching the file sees the line whole.
	if _, err := fh.WriteString(sep + line); err != nil {
		fh.Close()
		return warnings, err
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		return warnings, err
	}
	return warnings, fh.Close()
}
