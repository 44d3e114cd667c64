package auth

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testKeyB64 returns a distinct valid key (n bytes, all equal to b) in
// base64.
func testKeyB64(b byte, n int) string {
	return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, n))
}

func mustB64(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func TestParseKeyFile(t *testing.T) {
	k1, k2 := testKeyB64(1, 32), testKeyB64(2, 16)
	raw := strings.TrimRight(base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 20)), "=")
	tests := []struct {
		name string
		text string
		ids  []string
		keys [][]byte
	}{
		{"one key", "a " + k1 + "\n", []string{"a"}, [][]byte{bytes.Repeat([]byte{1}, 32)}},
		{"byte order mark", "\xef\xbb\xbfa " + k1 + "\n", []string{"a"}, [][]byte{bytes.Repeat([]byte{1}, 32)}},
		{"no final newline", "a " + k1, []string{"a"}, [][]byte{bytes.Repeat([]byte{1}, 32)}},
		{"comments blanks tabs CRLF", "# head\r\n\r\n  \t\na\t" + k1 + "   # trailing\r\n  b   " + k2 + "\n#end",
			[]string{"a", "b"}, [][]byte{bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 16)}},
		{"URL alphabet unpadded", "web-1:2026/12 " + raw + "\n", []string{"web-1:2026/12"}, [][]byte{bytes.Repeat([]byte{0xfb}, 20)}},
		{"documented example", "# web tier, rotated 2026-12-03\nk20261203-9f3a2b  q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=\nlegacy            3q2+7wAAAAAAAAAAAAAAAA==   # remove after 2027-01-01\n",
			[]string{"k20261203-9f3a2b", "legacy"}, [][]byte{mustB64("q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA="), mustB64("3q2+7wAAAAAAAAAAAAAAAA==")}},
		{"longest ID", strings.Repeat("x", MaxKeyIDLen) + " " + k1, []string{strings.Repeat("x", MaxKeyIDLen)}, [][]byte{bytes.Repeat([]byte{1}, 32)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kf, err := ParseKeyFile("keys.txt", []byte(tt.text))
			require.NoError(t, err)
			assert.Equal(t, tt.ids, kf.IDs())
			for i, id := range tt.ids {
				k, ok := kf.Key(id)
				require.True(t, ok)
				assert.Equal(t, tt.keys[i], k)
			}
			_, ok := kf.Key("nope")
			assert.False(t, ok)
		})
	}
}

func TestParseKeyFileErrors(t *testing.T) {
	k := testKeyB64(7, 32)
	tests := []struct {
		name  string
		text  string
		want  string // the message, after "auth: "
		short bool   // wraps ErrKeyTooShort
	}{
		{"empty", "", "keys.txt: holds no key", false},
		{"only comments", "# nothing\n\n", "keys.txt: holds no key", false},
		{"ID alone", "# c\nlonely\n", "keys.txt:2: \"lonely\" alone", false},
		{"ID then comment", "a # " + k + "\n", "keys.txt:1: key ID \"a\" has no key", false},
		{"three fields", "a " + k + " extra\n", "keys.txt:1: unexpected text \"extra\" after the key", false},
		{"not base64", "\n\na not*base64!\n", "keys.txt:3: the key for key ID \"a\" is not base64", false},
		{"short key", "a " + testKeyB64(1, 15) + "\n", "keys.txt:1: key too short: the key for key ID \"a\" is 15 bytes, want at least 16", true},
		{"duplicate", "b " + k + "\na " + k + "\n\na " + k + "\n", "keys.txt:4: key ID \"a\" appears again (first on line 2)", false},
		{"non-ASCII ID", "clé " + k + "\n", "keys.txt:1: key ID \"clé\" has byte 0xc3 at 2", false},
		{"hash in ID", "a#b " + k + "\n", "keys.txt:1: key ID \"a#b\" has byte 0x23 at 1", false},
		{"control char", "a\x00 " + k + "\n", "keys.txt:1: control character 0x00 at column 2", false},
		{"lone CR inside", "a\r" + k + "\n", "keys.txt:1: control character 0x0d at column 2", false},
		{"ID too long", strings.Repeat("x", MaxKeyIDLen+1) + " " + k + "\n", "keys.txt:1: key ID is 256 bytes, the protocol allows at most 255", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kf, err := ParseKeyFile("keys.txt", []byte(tt.text))
			require.Error(t, err)
			assert.Nil(t, kf)
			assert.True(t, strings.HasPrefix(err.Error(), "auth: "+tt.want), "got %q, want prefix %q", err, "auth: "+tt.want)
			assert.ErrorIs(t, err, ErrKeyFile)
			assert.Equal(t, tt.short, errors.Is(err, ErrKeyTooShort))
			var kfe *KeyFileError
			require.ErrorAs(t, err, &kfe)
			assert.Equal(t, "keys.txt", kfe.Path)
		})
	}
}

func TestReadKeyFile(t *testing.T) {
	dir := t.TempDir()
	line, err := FormatKeyLine("k1", bytes.Repeat([]byte{3}, 32))
	require.NoError(t, err)

	private := filepath.Join(dir, "private")
	require.NoError(t, os.WriteFile(private, []byte(line), 0o600))
	kf, err := ReadKeyFile(private)
	require.NoError(t, err)
	assert.Empty(t, kf.Warnings)
	assert.Equal(t, []string{"k1"}, kf.IDs())

	open := filepath.Join(dir, "open")
	require.NoError(t, os.WriteFile(open, []byte(line), 0o600))
	require.NoError(t, os.Chmod(open, 0o640))
	kf, err = ReadKeyFile(open)
	require.NoError(t, err, "loose permissions warn, they do not fail")
	require.Len(t, kf.Warnings, 1)
	assert.Contains(t, kf.Warnings[0], "accessible by group or others (mode 0640)")
	assert.Contains(t, kf.Warnings[0], "chmod 600 "+open)

	_, err = ReadKeyFile(filepath.Join(dir, "missing"))
	require.ErrorIs(t, err, ErrKeyFile)
	require.ErrorIs(t, err, os.ErrNotExist)
	assert.Contains(t, err.Error(), "missing: cannot open")

	_, err = ReadKeyFile(dir)
	require.ErrorIs(t, err, ErrKeyFile)
	assert.Contains(t, err.Error(), "not a regular file")

	big := filepath.Join(dir, "big")
	require.NoError(t, os.WriteFile(big, bytes.Repeat([]byte("#\n"), MaxKeyFileSize/2+1), 0o600))
	_, err = ReadKeyFile(big)
	require.ErrorIs(t, err, ErrKeyFile)
	assert.Contains(t, err.Error(), "is this the right file?")
}

func TestFormatKeyLine(t *testing.T) {
	key := bytes.Repeat([]byte{9}, 32)
	line, err := FormatKeyLine("id-1", key)
	require.NoError(t, err)
	assert.Equal(t, "id-1 "+base64.StdEncoding.EncodeToString(key)+"\n", line)
	kf, err := ParseKeyFile("x", []byte(line))
	require.NoError(t, err)
	got, ok := kf.Key("id-1")
	require.True(t, ok)
	assert.Equal(t, key, got)

	_, err = FormatKeyLine("has space", key)
	require.Error(t, err)
	_, err = FormatKeyLine("", key)
	require.Error(t, err)
	_, err = FormatKeyLine("ok", key[:15])
	require.ErrorIs(t, err, ErrKeyTooShort)
}
