package mpcompat

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hmacauth/auth"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The byte vectors below are whole frames (4-byte length and payload) of
// the handshake of CPython 3.12's Lib/multiprocessing/connection.py. They
// were derived from that file's own functions, with the authkey vectorKey
// and challenge nonces of bytes 0, 1, 2, ... in place of os.urandom:
//
//	import multiprocessing.connection as m, struct, hmac
//	key = b"mpcompat test vector key"
//	frame = lambda b: struct.pack('!i', len(b)) + b
//	msg = b'{%s}' % d.encode() + bytes(range(40))        # deliver_challenge, digest_name=d
//	frame(b'#CHALLENGE#' + msg)                           # the challenge
//	frame(m._create_response(key, msg))                   # answer_challenge's answer
//	frame(m._create_response(key, bytes(range(20))))      # answer to a 3.11 challenge: raw HMAC-MD5
//	frame(hmac.new(key, msg, 'md5').digest())             # 3.11's answer_challenge to a 3.12 challenge
//
// run under Python 3.12.1. A Go side whose Config.Rand yields 0, 1, 2, ...
// must send exactly these challenges and answers, and accept these
// answers.
var vectorKey = []byte("mpcompat test vector key")

var vectors = map[string]struct{ challenge, answer string }{
	"md5": {
		"00000038234348414c4c454e4745237b6d64357d000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021222324252627",
		"000000157b6d64357dfdd33bc382ea41f21d8f21c232e787c0",
	},
	"sha256": {
		"0000003b234348414c4c454e4745237b7368613235367d000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021222324252627",
		"000000287b7368613235367d06f2612112ea7192422f16edd132e13bfe2e0b1b9d31b25a31f8fa609c29ea5d",
	},
	"sha384": {
		"0000003b234348414c4c454e4745237b7368613338347d000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021222324252627",
		"000000387b7368613338347d6d50b37b82629344d900253da30d0291c1c009baadc5e9021b7d9d8f5eca6aceb1d2fd40c3aad18c3e2253425ec2d135",
	},
	"sha3_256": {
		"0000003d234348414c4c454e4745237b736861335f3235367d000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021222324252627",
		"0000002a7b736861335f3235367da0f14a3d331104afe594e88e13a373e5142160d6e259200e96bf2e23a324351c",
	},
	"sha3_384": {
		"0000003d234348414c4c454e4745237b736861335f3338347d000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021222324252627",
		"0000003a7b736861335f3338347dcd2d1bdc6613f37d158e89c426a41d987ea3ab09ac10cc356a8c789747d76bc599ccbd04d18c54e7f3b6d4234d1f3cb0",
	},
	// A Python 3.11 challenge (20 bytes, no digest) and CPython 3.12's
	// answer to it: the raw HMAC-MD5.
	"legacy": {
		"0000001f234348414c4c454e474523000102030405060708090a0b0c0d0e0f10111213",
		"000000103879be0efd24ffd2d94f24d0a06134b2",
	},
}

const (
	// py311AnswerToSHA256 is Python 3.11's answer to the sha256 challenge:
	// the raw HMAC-MD5 of the whole message, "{sha256}" included.
	py311AnswerToSHA256 = "0000001001b0349a7c91f88d43b4a50602603228"
	welcomeFrame        = "000000092357454c434f4d4523"
	failureFrame        = "00000009234641494c55524523"
)

// counter is a Rand that yields 0, 1, 2, ...
type counter struct{ n byte }

func (c *counter) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = c.n
		c.n++
	}
	return len(p), nil
}

// step is one move of a scripted peer: send these bytes, or expect them.
type step struct {
	send, expect string
}

// runScript plays steps as the peer on conn and reports the first
// mismatch. It closes conn when done.
func runScript(conn net.Conn, steps []step) <-chan error {
	done := make(chan error, 1)
	go func() {
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		for i, s := range steps {
			if s.send != "" {
				b, _ := hex.DecodeString(s.send)
				if _, err := conn.Write(b); err != nil {
					done <- fmt.Errorf("step %d: write: %w", i, err)
					return
				}
				continue
			}
			want, _ := hex.DecodeString(s.expect)
			got := make([]byte, len(want))
			if n, err := io.ReadFull(conn, got); err != nil {
				done <- fmt.Errorf("step %d: read %x then %w, want %x", i, got[:n], err, want)
				return
			}
			if !bytes.Equal(got, want) {
				done <- fmt.Errorf("step %d: got %x, want %x", i, got, want)
				return
			}
		}
		done <- nil
	}()
	return done
}

func vectorConfig(gen Generation, digest string) *Config {
	return &Config{Generation: gen, Digest: digest, Rand: &counter{}, HandshakeTimeout: 5 * time.Second}
}

// TestCPython312Vectors checks the 3.12+ handshake byte for byte against
// the vectors, with Go as the listening side (deliver, then answer) and as
// the connecting side (answer, then deliver), for every allowed digest.
func TestCPython312Vectors(t *testing.T) {
	for _, d := range Digests {
		t.Run("listener/"+d, func(t *testing.T) {
			a, b := net.Pipe()
			script := runScript(b, []step{
				{expect: vectors[d].challenge},
				{send: vectors[d].answer},
				{expect: welcomeFrame},
				{send: vectors["sha256"].challenge}, // the Python client's own challenge
				{expect: vectors["sha256"].answer},
				{send: welcomeFrame},
			})
			c, err := vectorConfig(Modern, d).Server(context.Background(), a, vectorKey)
			require.NoError(t, err)
			require.NoError(t, <-script)
			assert.Equal(t, ConnectionState{LocalAnswer: "sha256", PeerAnswer: d}, c.ConnectionState())
			c.Close()
		})
		t.Run("client/"+d, func(t *testing.T) {
			a, b := net.Pipe()
			script := runScript(b, []step{
				{send: vectors[d].challenge}, // the Python Listener's challenge
				{expect: vectors[d].answer},
				{send: welcomeFrame},
				{expect: vectors["sha256"].challenge},
				{send: vectors["sha256"].answer},
				{expect: welcomeFrame},
			})
			c, err := vectorConfig(Modern, "").Client(context.Background(), a, vectorKey)
			require.NoError(t, err)
			require.NoError(t, <-script)
			assert.Equal(t, ConnectionState{IsClient: true, LocalAnswer: d, PeerAnswer: "sha256"}, c.ConnectionState())
			c.Close()
		})
	}
}

// TestGenerationRules checks how each generation meets a peer of the
// other, against the same vectors.
func TestGenerationRules(t *testing.T) {
	tests := []struct {
		name     string
		gen      Generation
		isClient bool
		steps    []step
		wantErr  error
		state    ConnectionState
	}{
		{
			name: "auto listener accepts a 3.11 client's raw MD5 answer",
			gen:  Auto,
			steps: []step{
				{expect: vectors["sha256"].challenge},
				{send: py311AnswerToSHA256},
				{expect: welcomeFrame},
				{send: vectors["legacy"].challenge},
				{expect: vectors["legacy"].answer},
				{send: welcomeFrame},
			},
			state: ConnectionState{LocalAnswer: "md5", PeerAnswer: "md5", Legacy: true},
		},
		{
			name:     "auto client answers a 3.11 listener's challenge with raw MD5",
			gen:      Auto,
			isClient: true,
			steps: []step{
				{send: vectors["legacy"].challenge},
				{expect: vectors["legacy"].answer},
				{send: welcomeFrame},
				{expect: vectors["sha256"].challenge},
				{send: py311AnswerToSHA256},
				{expect: welcomeFrame},
			},
			state: ConnectionState{IsClient: true, LocalAnswer: "md5", PeerAnswer: "md5", Legacy: true},
		},
		{
			name: "legacy listener sends a 20-byte challenge",
			gen:  Legacy,
			steps: []step{
				{expect: vectors["legacy"].challenge},
				{send: vectors["legacy"].answer},
				{expect: welcomeFrame},
				{send: vectors["sha256"].challenge},
				{expect: py311AnswerToSHA256}, // as 3.11 answers a 3.12 challenge
				{send: welcomeFrame},
			},
			state: ConnectionState{LocalAnswer: "md5", PeerAnswer: "md5", Legacy: true},
		},
		{
			name: "modern listener refuses a raw MD5 answer",
			gen:  Modern,
			steps: []step{
				{expect: vectors["sha256"].challenge},
				{send: py311AnswerToSHA256},
				{expect: failureFrame},
			},
			wantErr: ErrLegacyPeer,
		},
		{
			name:     "modern client refuses a 20-byte challenge",
			gen:      Modern,
			isClient: true,
			steps:    []step{{send: vectors["legacy"].challenge}},
			wantErr:  ErrLegacyPeer,
		},
		{
			name: "wrong answer to the listener's challenge",
			gen:  Auto,
			steps: []step{
				{expect: vectors["sha256"].challenge},
				{send: "000000287b7368613235367d" + "00" + vectors["sha256"].answer[26:]},
				{expect: failureFrame},
			},
			wantErr: ErrBadAnswer,
		},
		{
			name: "listener's answer to the client's challenge rejected",
			gen:  Auto,
			steps: []step{
				{expect: vectors["sha256"].challenge},
				{send: vectors["sha256"].answer},
				{expect: welcomeFrame},
				{send: vectors["sha384"].challenge},
				{expect: vectors["sha384"].answer},
				{send: failureFrame},
			},
			wantErr: ErrAnswerRejected,
		},
		{
			name:     "client's answer rejected",
			gen:      Auto,
			isClient: true,
			steps: []step{
				{send: vectors["md5"].challenge},
				{expect: vectors["md5"].answer},
				{send: failureFrame},
			},
			wantErr: ErrAnswerRejected,
		},
		{
			name:     "wrong answer to the client's challenge",
			gen:      Auto,
			isClient: true,
			steps: []step{
				{send: vectors["sha256"].challenge},
				{expect: vectors["sha256"].answer},
				{send: welcomeFrame},
				{expect: vectors["sha256"].challenge},
				{send: vectors["sha3_256"].answer},
				{expect: failureFrame},
			},
			wantErr: ErrBadAnswer,
		},
		{
			name: "unsupported digest in the answer",
			gen:  Auto,
			steps: []step{
				{expect: vectors["sha256"].challenge},
				{send: "0000001a7b736861317d" + "000102030405060708090a0b0c0d0e0f10111213"}, // {sha1} + 20 bytes
				{expect: failureFrame},
			},
			wantErr: ErrUnsupportedDigest,
		},
		{
			name:     "not a challenge",
			gen:      Auto,
			isClient: true,
			steps:    []step{{send: "0000000548454c4c4f"}}, // HELLO
			wantErr:  ErrNotMultiprocessing,
		},
		{
			name:     "challenge too short",
			gen:      Auto,
			isClient: true,
			steps:    []step{{send: "0000001b234348414c4c454e474523000102030405060708090a0b0c0d0e0f"}}, // 16 bytes
			wantErr:  ErrNotMultiprocessing,
		},
		{
			name:     "handshake message over 256 bytes",
			gen:      Auto,
			isClient: true,
			steps:    []step{{send: "00000101"}},
			wantErr:  ErrMessageTooLarge,
		},
		{
			name:     "peer hangs up mid-frame",
			gen:      Auto,
			isClient: true,
			steps:    []step{{send: "0000003b2343"}},
			wantErr:  io.ErrUnexpectedEOF,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := net.Pipe()
			script := runScript(b, tt.steps)
			cfg := vectorConfig(tt.gen, "")
			var (
				c   *Conn
				err error
			)
			if tt.isClient {
				c, err = cfg.Client(context.Background(), a, vectorKey)
			} else {
				c, err = cfg.Server(context.Background(), a, vectorKey)
			}
			require.NoError(t, <-script)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				assert.Nil(t, c)
				switch tt.wantErr {
				case ErrBadAnswer, ErrAnswerRejected:
					assert.ErrorIs(t, err, auth.ErrAuthFailed)
				case ErrLegacyPeer, ErrUnsupportedDigest:
					assert.ErrorIs(t, err, auth.ErrNegotiation)
				default:
					assert.ErrorIs(t, err, auth.ErrProtocol)
				}
				assert.Regexp(t, `^mpcompat: handshake with .+: `, err.Error())
				_, werr := a.Write([]byte{0})
				assert.ErrorIs(t, werr, io.ErrClosedPipe, "a failed handshake closes the connection")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.state, c.ConnectionState())
			c.Close()
		})
	}
}
