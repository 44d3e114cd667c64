package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGenerateKey(t *testing.T) {
	a, err := GenerateKey()
	require.NoError(t, err)
	b, err := GenerateKey()
	require.NoError(t, err)
	assert.Len(t, a, DefaultKeyLen)
	assert.NotEqual(t, a, b)
	// It round-trips through the text form the docs suggest.
	parsed, err := ParseKey(base64.StdEncoding.EncodeToString(a))
	require.NoError(t, err)
	assert.Equal(t, a, parsed)
}

// TestKeyLengthValidation checks that every entry point refuses a missing
// or short key with ErrKeyTooShort, and accepts MinKeyLen bytes.
func TestKeyLengthValidation(t *testing.T) {
	entryPoints := map[string]func(opts ...Option) error{
		"NewListener": func(opts ...Option) error {
			inner, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			defer inner.Close()
			l, err := NewListener(inner, opts...)
			if err != nil {
				assert.Nil(t, l)
				// On error the inner listener still belongs to the caller,
				// open.
				assert.NotErrorIs(t, acceptErrAfterDial(t, inner), net.ErrClosed)
				return err
			}
			return l.Close()
		},
		"Listen": func(opts ...Option) error {
			l, err := Listen("tcp", "127.0.0.1:0", opts...)
			if err != nil {
				assert.Nil(t, l)
				return err
			}
			return l.Close()
		},
		"NewDialer": func(opts ...Option) error {
			d, err := NewDialer(opts...)
			if err != nil {
				assert.Nil(t, d)
			}
			return err
		},
		"Dial": func(opts ...Option) error {
			// An address nobody serves: a key error must come first.
			c, err := Dial("tcp", "127.0.0.1:1", opts...)
			if c != nil {
				c.Close()
			}
			return err
		},
		"Client": func(opts ...Option) error {
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			c, err := Client(a, opts...)
			if err != nil {
				assert.Nil(t, c)
			}
			return err
		},
		"Server": func(opts ...Option) error {
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			c, err := Server(a, opts...)
			if err != nil {
				assert.Nil(t, c)
			}
			return err
		},
	}
	short := bytes.Repeat([]byte{1}, MinKeyLen-1)
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"no key option", nil},
		{"nil key", []Option{WithKey(nil)}},
		{"empty key", []Option{WithKey([]byte{})}},
		{"one byte", []Option{WithKey([]byte{1})}},
		{"MinKeyLen-1 bytes", []Option{WithKey(short)}},
		{"short key in WithKeys", []Option{WithKeys(map[string][]byte{"a": short}), WithKeyID("a")}},
		{"only a key ID", []Option{WithKeyID("a")}},
	} {
		for name, entry := range entryPoints {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				err := entry(tc.opts...)
				require.Error(t, err)
				assert.ErrorIs(t, err, ErrKeyTooShort)
				assert.True(t, strings.HasPrefix(err.Error(), "auth: "), err.Error())
				assert.Contains(t, err.Error(), "16")
			})
		}
	}
	ok := bytes.Repeat([]byte{2}, MinKeyLen)
	for name, entry := range entryPoints {
		t.Run("MinKeyLen bytes/"+name, func(t *testing.T) {
			err := entry(WithKey(ok))
			assert.NotErrorIs(t, err, ErrKeyTooShort)
			if name != "Dial" {
				assert.NoError(t, err)
			}
		})
	}
	t.Run("lookup-only server", func(t *testing.T) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		_, err := Server(a, WithKeyLookup(func(string) ([]byte, error) { return ok, nil }))
		assert.NoError(t, err)
	})
}

// acceptErrAfterDial dials inner and returns the error of its Accept, to
// show whether inner is still open.
func acceptErrAfterDial(t *testing.T, inner net.Listener) error {
	c, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		return err
	}
	defer c.Close()
	s, err := inner.Accept()
	if err == nil {
		s.Close()
	}
	return err
}

func TestKeyIDLengthValidation(t *testing.T) {
	key := mustGenerateTestKey(t)
	_, err := NewDialer(WithKey(key), WithKeyID(strings.Repeat("k", MaxKeyIDLen)))
	assert.NoError(t, err)
	_, err = NewDialer(WithKey(key), WithKeyID(strings.Repeat("k", MaxKeyIDLen+1)))
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "auth: "))
	_, err = Listen("tcp", "127.0.0.1:0", WithKeys(map[string][]byte{strings.Repeat("k", MaxKeyIDLen+1): key}))
	assert.Error(t, err)
}

func TestParseKey(t *testing.T) {
	key16 := []byte("0123456789abcdef")
	key32 := bytes.Repeat([]byte{0xfb, 0xff, 0x3e}, 11)[:32] // has '+' '/' in std base64
	for _, tc := range []struct {
		name string
		in   string
		want []byte
		err  error // nil: success; ErrKeyTooShort; errAny: any error
	}{
		{"std base64", base64.StdEncoding.EncodeToString(key32), key32, nil},
		{"raw std base64", base64.RawStdEncoding.EncodeToString(key32), key32, nil},
		{"url base64", base64.URLEncoding.EncodeToString(key32), key32, nil},
		{"raw url base64", base64.RawURLEncoding.EncodeToString(key32), key32, nil},
		{"base64: prefix", "base64:" + base64.StdEncoding.EncodeToString(key32), key32, nil},
		{"hex lower", hex.EncodeToString(key32), key32, nil},
		{"hex upper", strings.ToUpper(hex.EncodeToString(key32)), key32, nil},
		{"hex: prefix", "hex:" + hex.EncodeToString(key16), key16, nil},
		{"surrounding white space", "  \t" + hex.EncodeToString(key16) + "\n", key16, nil},
		{"unprefixed hex wins over base64", hex.EncodeToString(key16), key16, nil},
		{"base64: prefix on hex-looking text", "base64:" + "00112233445566778899aabbccddeeff", mustB64("00112233445566778899aabbccddeeff"), nil},
		{"exactly MinKeyLen", base64.StdEncoding.EncodeToString(key16), key16, nil},
		{"one byte short", base64.StdEncoding.EncodeToString(key16[:15]), nil, ErrKeyTooShort},
		{"short hex", "hex:00112233", nil, ErrKeyTooShort},
		{"empty", "", nil, ErrKeyTooShort},
		{"only white space", " \n ", nil, ErrKeyTooShort},
		{"empty after prefix", "base64:", nil, ErrKeyTooShort},
		{"bad hex after prefix", "hex:zz112233445566778899aabbccddeeff", nil, errAny},
		{"odd hex after prefix", "hex:0011223344556677889", nil, errAny},
		{"not base64", "this is not a key!!", nil, errAny},
		{"mixed alphabets", "ab+c-d/e_f" + strings.Repeat("A", 20), nil, errAny},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseKey(tc.in)
			switch tc.err {
			case nil:
				require.NoError(t, err)
				assert.Equal(t, tc.want, got)
			default:
				require.Error(t, err)
				assert.Nil(t, got)
				assert.True(t, strings.HasPrefix(err.Error(), "auth: "), err.Error())
				if tc.err != errAny {
					assert.ErrorIs(t, err, tc.err)
				} else {
					assert.NotErrorIs(t, err, ErrKeyTooShort)
				}
			}
		})
	}
}

// errAny in a table means any error will do.
var errAny = &wrapError{msg: "any error"}
