package auth

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// ErrKeyFile reports a key file that cannot be used: unreadable, with a
// line that is not "ID KEY", a key that is not base64 or too short, or a key
// ID that appears twice. The error names the file and the line.
var ErrKeyFile = errors.New("auth: bad key file")

// MaxKeyFileSize bounds the size of a key file, so that pointing the loader
// at the wrong file (a log, a device) fails fast instead of eating memory.
const MaxKeyFileSize = 1 << 20

// A KeyEntry is one key of a key file.
type KeyEntry struct {
	// ID is the key ID that clients present.
	ID string
	// Key is the decoded key, at least MinKeyLen bytes.
	Key []byte
	// Line is the line of the file the entry comes from, counting from 1.
	Line int
}

// A KeyFile is a parsed key file.
//
// The format is text, one key per line: the key ID, white space (spaces or
// tabs), and the key in base64 (standard or URL alphabet, padded or not).
// Blank lines are ignored, and so is everything from a '#' that starts a
// line or follows white space. A key ID is 1 to MaxKeyIDLen bytes of
// printable ASCII other than '#' (0x21 to 0x7E). A key is at least MinKeyLen
// bytes once decoded; DefaultKeyLen bytes from GenerateKey is the norm. Each
// key ID appears at most once. For example:
//
//	# web tier, rotated 2026-12-03
//	k20261203-9f3a  q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=
//	legacy          3q2+7wAAAAAAAAAAAAAAAA==   # remove after 2027-01-01
type KeyFile struct {
	// Path is the file's name as given, used in messages.
	Path string
	// Entries holds the keys in the order of the file.
	Entries []KeyEntry
	// Warnings holds problems that do not stop the file from being used,
	// such as permissions that let group or others read it.
	Warnings []string
}

// Key returns the key stored under id.
func (f *KeyFile) Key(id string) ([]byte, bool) {
	for _, e := range f.Entries {
		if e.ID == id {
			return e.Key, true
		}
	}
	return nil, false
}

// IDs returns the key IDs in the order of the file.
func (f *KeyFile) IDs() []string {
	ids := make([]string, len(f.Entries))
	for i, e := range f.Entries {
		ids[i] = e.ID
	}
	return ids
}

// A KeyFileError reports a problem in a key file, at a line when Line is
// not zero. It matches ErrKeyFile with errors.Is, and also the cause (for
// example ErrKeyTooShort).
type KeyFileError struct {
	Path string
	Line int
	Err  error
}

func (e *KeyFileError) Error() string {
	msg := e.Err.Error()
	msg = strings.TrimPrefix(msg, "auth: ")
	if e.Line > 0 {
		return fmt.Sprintf("auth: %s:%d: %s", e.Path, e.Line, msg)
	}
	return fmt.Sprintf("auth: %s: %s", e.Path, msg)
}

// Unwrap returns ErrKeyFile and the cause.
func (e *KeyFileError) Unwrap() []error { return []error{ErrKeyFile, e.Err} }

// ReadKeyFile reads and parses the key file at path (see KeyFile). A file
// that group or others may access is read, with a warning in Warnings.
func ReadKeyFile(path string) (*KeyFile, error) {
	f, _, err := readKeyFile(path)
	return f, err
}

// readKeyFile reads the key file and also returns the FileInfo of what it
// read, for change detection.
func readKeyFile(path string) (*KeyFile, fs.FileInfo, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, nil, &KeyFileError{Path: path, Err: fmt.Errorf("cannot open: %w", err)}
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, nil, &KeyFileError{Path: path, Err: fmt.Errorf("cannot stat: %w", err)}
	}
	if !fi.Mode().IsRegular() {
		return nil, fi, &KeyFileError{Path: path, Err: fmt.Errorf("not a regular file (%v)", fi.Mode().Type())}
	}
	if fi.Size() > MaxKeyFileSize {
		return nil, fi, &KeyFileError{Path: path, Err: fmt.Errorf("%d bytes, larger than the %d a key file may have: is this the right file?", fi.Size(), MaxKeyFileSize)}
	}
	data := make([]byte, 0, fi.Size()+1)
	buf := bytes.NewBuffer(data)
	if _, err := buf.ReadFrom(io.LimitReader(fh, MaxKeyFileSize+1)); err != nil {
		return nil, fi, &KeyFileError{Path: path, Err: fmt.Errorf("cannot read: %w", err)}
	}
	if buf.Len() > MaxKeyFileSize {
		return nil, fi, &KeyFileError{Path: path, Err: fmt.Errorf("larger than the %d bytes a key file may have: is this the right file?", MaxKeyFileSize)}
	}
	kf, err := ParseKeyFile(path, buf.Bytes())
	if err != nil {
		return nil, fi, err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		kf.Warnings = append(kf.Warnings, fmt.Sprintf("auth: %s is accessible by group or others (mode %#o): anyone who reads it can impersonate its clients; run chmod 600 %s", path, perm, path))
	}
	return kf, fi, nil
}

// ParseKeyFile parses the text of a key file (see KeyFile). The name is
// used in error messages, which have the form "auth: NAME:LINE: problem".
// A file with no key at all is an error: a server with an empty key file
// would refuse every client.
func ParseKeyFile(name string, data []byte) (*KeyFile, error) {
	kf := &KeyFile{Path: name}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark some editors add
	seen := make(map[string]int)
	lineNo := 0
	for len(data) > 0 {
		lineNo++
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		fields, err := keyLineFields(line)
		if err != nil {
			return nil, &KeyFileError{Path: name, Line: lineNo, Err: err}
		}
		if fields == nil {
			continue
		}
		id, enc := fields[0], fields[1]
		if err := CheckKeyFileID(id); err != nil {
			return nil, &KeyFileError{Path: name, Line: lineNo, Err: err}
		}
		if first, dup := seen[id]; dup {
			return nil, &KeyFileError{Path: name, Line: lineNo, Err: fmt.Errorf("key ID %q appears again (first on line %d): each key ID names one key; rename or remove one of them", id, first)}
		}
		key, err := decodeBase64(enc)
		if err != nil {
			return nil, &KeyFileError{Path: name, Line: lineNo, Err: fmt.Errorf("the key for key ID %q is not base64 (%v): write it as `hmacauth keygen` prints it", id, err)}
		}
		if len(key) < MinKeyLen {
			return nil, &KeyFileError{Path: name, Line: lineNo, Err: fmt.Errorf("%w: the key for key ID %q is %d bytes, want at least %d random bytes: make one with `hmacauth keygen`", ErrKeyTooShort, id, len(key), MinKeyLen)}
		}
		seen[id] = lineNo
		kf.Entries = append(kf.Entries, KeyEntry{ID: id, Key: key, Line: lineNo})
	}
	if len(kf.Entries) == 0 {
		return nil, &KeyFileError{Path: name, Err: errors.New("holds no key: add a line \"ID KEY\" (`hmacauth keygen --append FILE` does)")}
	}
	return kf, nil
}

// keyLineFields splits one line into its key ID and key. It returns nil,
// nil for a blank or comment line.
func keyLineFields(line []byte) ([]string, error) {
	var fields []string
	for i := 0; i < len(line); {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			i++
			continue
		case c == '#':
			if len(fields) == 1 {
				return nil, fmt.Errorf("key ID %q has no key: want \"ID KEY\"", fields[0])
			}
			i = len(line) // a comment runs to the end of the line
			continue
		}
		j := i
		for j < len(line) && line[j] != ' ' && line[j] != '\t' {
			if line[j] < 0x20 || line[j] == 0x7f {
				return nil, fmt.Errorf("control character %#02x at column %d: a key file is plain text", line[j], j+1)
			}
			j++
		}
		if len(fields) == 2 {
			return nil, fmt.Errorf("unexpected text %q after the key: want \"ID KEY\", with comments starting with '#'", truncate(string(line[i:j]), 20))
		}
		fields = append(fields, string(line[i:j]))
		i = j
	}
	switch len(fields) {
	case 0:
		return nil, nil
	case 1:
		return nil, fmt.Errorf("%q alone: want \"ID KEY\", the key ID and the key in base64", truncate(fields[0], 20))
	}
	return fields, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// CheckKeyFileID reports whether id can name a key in a key file: 1 to
// MaxKeyIDLen bytes of printable ASCII other than space and '#'.
func CheckKeyFileID(id string) error {
	if id == "" {
		return errors.New("auth: empty key ID: a key file names every key")
	}
	if len(id) > MaxKeyIDLen {
		return fmt.Errorf("auth: key ID is %d bytes, the protocol allows at most %d", len(id), MaxKeyIDLen)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' || c == '#' {
			return fmt.Errorf("auth: key ID %q has byte %#02x at %d: use printable ASCII other than space and '#'", id, c, i)
		}
	}
	return nil
}

// FormatKeyLine returns the key file line for a key ID and a key, ending in
// a newline, in the form ParseKeyFile reads. It checks both.
func FormatKeyLine(id string, key []byte) (string, error) {
	if err := CheckKeyFileID(id); err != nil {
		return "", err
	}
	if err := checkKey(key); err != nil {
		return "", err
	}
	return id + " " + base64.StdEncoding.EncodeToString(key) + "\n", nil
}
