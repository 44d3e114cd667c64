package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// Fuzz targets for every parser of the package. Each checks invariants
// rather than known answers: no panic, sizes that agree with each other on
// every prefix of the input, typed errors, and marshal→parse round trips.
// Seeds live in testdata/fuzz/<FuzzName>/ and in the f.Add calls below.

// checkAuthErr fails unless err is one of the package's errors.
func checkAuthErr(t *testing.T, err error, wrapped error) {
	t.Helper()
	if !strings.HasPrefix(err.Error(), "auth: ") {
		t.Fatalf("error does not start with \"auth: \": %v", err)
	}
	if wrapped != nil && !errors.Is(err, wrapped) {
		t.Fatalf("error does not wrap %v: %v", wrapped, err)
	}
}

// checkSizeInvariants checks a size function (clientHelloSize or
// serverHelloSize) on b and every prefix of b: a prefix of an acceptable
// start is acceptable; while incomplete, the reported lower bound exceeds
// the length, never decreases and never exceeds the final size; once
// complete, the size is fixed. It returns the size of b, or -1 if b is
// refused.
func checkSizeInvariants(t *testing.T, b []byte, size func([]byte) (int, error), limit int) int {
	t.Helper()
	full, err := size(b)
	if err != nil {
		checkAuthErr(t, err, ErrProtocol)
		if full != 0 {
			t.Fatalf("size %d returned with an error", full)
		}
		// Prefixes may be acceptable; they must still not panic.
		for k := range len(b) {
			size(b[:k])
		}
		return -1
	}
	if full <= 0 || full > limit {
		t.Fatalf("size %d outside 1..%d", full, limit)
	}
	complete := full <= len(b)
	prevBound, completeAt := 0, -1
	for k := 0; k <= len(b); k++ {
		s, err := size(b[:k])
		if err != nil {
			t.Fatalf("prefix of %d bytes refused (%v) but %d bytes accepted", k, err, len(b))
		}
		switch {
		case s > k: // incomplete: a lower bound
			if completeAt >= 0 {
				t.Fatalf("complete at %d bytes with size %d, incomplete again at %d (bound %d)", completeAt, full, k, s)
			}
			if s < prevBound {
				t.Fatalf("lower bound went down from %d to %d at %d bytes", prevBound, s, k)
			}
			if complete && s > full {
				t.Fatalf("lower bound %d at %d bytes exceeds the final size %d", s, k, full)
			}
			prevBound = s
		default: // complete
			if completeAt < 0 {
				completeAt = k
			}
			if s != full {
				t.Fatalf("size %d at %d bytes, %d at %d bytes", s, k, full, len(b))
			}
		}
	}
	if complete && completeAt != full {
		t.Fatalf("message of %d bytes reported complete at %d bytes", full, completeAt)
	}
	return full
}

func FuzzClientHello(f *testing.F) {
	nonce := bytes.Repeat([]byte{0xAB}, nonceLen)
	f.Add(marshalClientHello(nil, ModeAuthOnly, defaultSuites, "", nonce))
	f.Add(marshalClientHello(nil, ModeAuthOnly, []Suite{SuiteHMACSHA512}, "svc-1", nonce))
	f.Add(marshalClientHello(nil, 0xFF, []Suite{1, 2, 3, 4}, strings.Repeat("k", MaxKeyIDLen), nonce))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add([]byte{0x89, 'H', 'M', 'A', msgClientHello, 2, 1, 1, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		size := checkSizeInvariants(t, b, clientHelloSize, maxClientHello)
		ch, err := parseClientHello(b)
		if err != nil {
			checkAuthErr(t, err, ErrProtocol)
			if ch != nil {
				t.Fatal("parseClientHello returned a hello with an error")
			}
			if size > 0 && size <= len(b) {
				// The complete message at the front must parse on its own.
				if _, err := parseClientHello(b[:size]); err != nil {
					t.Fatalf("complete %d-byte hello does not parse: %v", size, err)
				}
			}
			return
		}
		if size != len(b) {
			t.Fatalf("parsed a %d-byte input whose size is %d", len(b), size)
		}
		if ch.version != protocolVersion {
			return
		}
		if len(ch.nonce) != nonceLen || len(ch.suites) == 0 || len(ch.suites) > maxSuites || ch.modes == 0 || len(ch.keyID) > MaxKeyIDLen {
			t.Fatalf("parsed hello breaks the limits: %+v", ch)
		}
		again := marshalClientHello(nil, ch.modes, ch.suites, ch.keyID, ch.nonce)
		if !bytes.Equal(again, b) {
			t.Fatalf("round trip differs:\n in  %x\n out %x", b, again)
		}
	})
}

func FuzzServerHello(f *testing.F) {
	nonce := bytes.Repeat([]byte{0xCD}, nonceLen)
	sh256 := append(marshalServerHello(nil, statusOK, SuiteHMACSHA256, ModeAuthOnly, nonce), bytes.Repeat([]byte{1}, 32)...)
	sh512 := append(marshalServerHello(nil, statusOK, SuiteHMACSHA512, ModeAuthOnly, nonce), bytes.Repeat([]byte{2}, 64)...)
	f.Add(sh256)
	f.Add(sh512)
	f.Add(marshalServerHello(nil, statusUnsupportedVersion, 0, 0, nil))
	f.Add(marshalServerHello(nil, statusNoCommonSuite, 0, 0, nil))
	f.Add(sh256[:20])
	f.Add([]byte("SSH-2.0-OpenSSH_9.6\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		size := checkSizeInvariants(t, b, serverHelloSize, maxServerHello)
		sh, err := parseServerHello(b)
		if err != nil {
			checkAuthErr(t, err, ErrProtocol)
			if sh != nil {
				t.Fatal("parseServerHello returned a hello with an error")
			}
			if size > 0 && size <= len(b) {
				if _, err := parseServerHello(b[:size]); err != nil {
					t.Fatalf("complete %d-byte hello does not parse: %v", size, err)
				}
			}
			return
		}
		if size != len(b) {
			t.Fatalf("parsed a %d-byte input whose size is %d", len(b), size)
		}
		if sh.status != statusOK {
			if len(b) != serverHdrLen || sh.nonce != nil || sh.proof != nil {
				t.Fatalf("refusal carries more than its header: %x", b)
			}
			if sh.version == protocolVersion {
				if again := marshalServerHello(nil, sh.status, sh.suite, sh.mode, nil); !bytes.Equal(again, b) {
					t.Fatalf("round trip differs:\n in  %x\n out %x", b, again)
				}
			}
			return
		}
		if sh.version != protocolVersion || !sh.suite.known() || len(sh.nonce) != nonceLen || len(sh.proof) != sh.suite.size() {
			t.Fatalf("parsed hello breaks the limits: %+v", sh)
		}
		again := append(marshalServerHello(nil, statusOK, sh.suite, sh.mode, sh.nonce), sh.proof...)
		if !bytes.Equal(again, b) {
			t.Fatalf("round trip differs:\n in  %x\n out %x", b, again)
		}
	})
}

func FuzzParseKey(f *testing.F) {
	key := bytes.Repeat([]byte{0xfb, 0xff, 0x3e, 0x01}, 8)
	f.Add(base64.StdEncoding.EncodeToString(key))
	f.Add(base64.RawURLEncoding.EncodeToString(key))
	f.Add(hex.EncodeToString(key))
	f.Add("hex:" + hex.EncodeToString(key[:16]))
	f.Add("base64:" + base64.StdEncoding.EncodeToString(key[:15]))
	f.Add("  not a key  ")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKey(s)
		if err != nil {
			checkAuthErr(t, err, nil)
			if k != nil {
				t.Fatal("ParseKey returned a key with an error")
			}
			return
		}
		if len(k) < MinKeyLen {
			t.Fatalf("ParseKey accepted a %d-byte key", len(k))
		}
		for _, text := range []string{
			"base64:" + base64.StdEncoding.EncodeToString(k),
			"base64:" + base64.RawURLEncoding.EncodeToString(k),
			"hex:" + hex.EncodeToString(k),
			hex.EncodeToString(k),
			" \t" + s + "\r\n",
		} {
			again, err := ParseKey(text)
			if err != nil {
				t.Fatalf("ParseKey(%q) of a valid key: %v", text, err)
			}
			if !bytes.Equal(again, k) {
				t.Fatalf("ParseKey(%q) = %x, want %x", text, again, k)
			}
		}
	})
}
