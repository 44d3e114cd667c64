package auth

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// FuzzParseKeyFile checks that the key file parser never panics, that
// every error names the file and matches ErrKeyFile, and that whatever it
// accepts survives a round trip through FormatKeyLine.
func FuzzParseKeyFile(f *testing.F) {
	k := testKeyB64(5, 32)
	for _, s := range []string{
		"",
		"a " + k + "\n",
		"# c\n\na\t" + k + " # t\r\nb " + testKeyB64(6, 16) + "\n",
		"a " + k + "\na " + k + "\n",
		"a " + testKeyB64(1, 15),
		"a#b " + k,
		"a\x00 " + k,
		"x y z",
		"lonely",
		strings.Repeat("i", 300) + " " + k,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		kf, err := ParseKeyFile("fuzz.keys", data)
		if err != nil {
			if kf != nil {
				t.Fatalf("non-nil KeyFile with error %v", err)
			}
			if !errors.Is(err, ErrKeyFile) || !strings.HasPrefix(err.Error(), "auth: fuzz.keys") {
				t.Fatalf("error %q does not name the file or match ErrKeyFile", err)
			}
			return
		}
		if len(kf.Entries) == 0 {
			t.Fatal("accepted a file with no key")
		}
		var out strings.Builder
		for _, e := range kf.Entries {
			if len(e.Key) < MinKeyLen || CheckKeyFileID(e.ID) != nil {
				t.Fatalf("accepted a bad entry %q (%d-byte key)", e.ID, len(e.Key))
			}
			line, err := FormatKeyLine(e.ID, e.Key)
			if err != nil {
				t.Fatalf("FormatKeyLine of an accepted entry: %v", err)
			}
			out.WriteString(line)
		}
		again, err := ParseKeyFile("fuzz.keys", []byte(out.String()))
		if err != nil {
			t.Fatalf("re-parsing the formatted file: %v", err)
		}
		if len(again.Entries) != len(kf.Entries) {
			t.Fatalf("round trip changed the entry count: %d, then %d", len(kf.Entries), len(again.Entries))
		}
		for i, e := range again.Entries {
			if e.ID != kf.Entries[i].ID || !bytes.Equal(e.Key, kf.Entries[i].Key) {
				t.Fatalf("round trip changed entry %d", i)
			}
		}
	})
}
