package auth

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSealedNegotiation(t *testing.T) {
	chacha := WithModes(ModeSealedChaCha20Poly1305)
	aes := WithModes(ModeSealedAES256GCM)
	optional := WithModes(ModeSealedAES256GCM, ModeSealedChaCha20Poly1305, ModeAuthOnly)
	tests := []struct {
		name           string
		server, client []Option
		want           Mode   // zero: the handshake fails
		clientMsg      string // in the client's error
		serverMsg      string // in the server's error
	}{
		{name: "both sealed", server: []Option{WithSealed()}, client: []Option{WithSealed()}, want: ModeSealedAES256GCM},
		{name: "neither sealed", want: ModeAuthOnly},
		{name: "client chooses ChaCha20", server: []Option{WithSealed()}, client: []Option{chacha}, want: ModeSealedChaCha20Poly1305},
		{name: "server requires ChaCha20", server: []Option{chacha}, client: []Option{WithSealed()}, want: ModeSealedChaCha20Poly1305},
		{name: "optional server, sealed client", server: []Option{optional}, client: []Option{WithSealed()}, want: ModeSealedAES256GCM},
		{name: "optional server, auth-only client", server: []Option{optional}, want: ModeAuthOnly},
		{name: "optional client, sealed server", server: []Option{WithSealed()}, client: []Option{optional}, want: ModeSealedAES256GCM},
		{name: "optional client, auth-only server", client: []Option{optional}, want: ModeAuthOnly},
		{name: "sealed client, auth-only server", client: []Option{WithSealed()},
			clientMsg: "this client requires the sealed mode", serverMsg: "the client requires the sealed mode"},
		{name: "auth-only client, sealed server", server: []Option{WithSealed()},
			clientMsg: "give auth.WithSealed() to this dialer", serverMsg: "this server requires the sealed mode"},
		{name: "different ciphers", server: []Option{aes}, client: []Option{chacha},
			clientMsg: "WithSealed", serverMsg: "WithModes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			serverErr := make(chan error, 1)
			ln := sealedListen(t, append(tt.server, WithHandshakeHook(func(ev HandshakeEvent) { serverErr <- ev.Err }))...)
			c, err := DialContext(t.Context(), "tcp", ln.Addr().String(), append([]Option{WithKey(sealedTestKey), WithWaitForVerdict()}, tt.client...)...)
			if tt.want == 0 {
				require.Error(t, err)
				assert.ErrorIs(t, err, ErrNegotiation)
				assert.Contains(t, err.Error(), tt.clientMsg)
				assert.Contains(t, err.Error(), "WithSealed")
				serr := <-serverErr
				assert.ErrorIs(t, serr, ErrNegotiation)
				assert.Contains(t, serr.Error(), tt.serverMsg)
				assert.True(t, strings.HasPrefix(serr.Error(), "auth: "), serr.Error())
				return
			}
			require.NoError(t, err)
			defer c.Close()
			require.NoError(t, <-serverErr)
			s := sealedAccept(t, ln)
			assert.Equal(t, tt.want, c.ConnectionState().Mode)
			assert.Equal(t, tt.want, s.ConnectionState().Mode)
			assert.Equal(t, tt.want.Sealed(), c.seal != nil)

			_, err = c.Write([]byte("ping"))
			require.NoError(t, err)
			buf := make([]byte, 4)
			_, err = io.ReadFull(s, buf)
			require.NoError(t, err)
			assert.Equal(t, "ping", string(buf))
		})
	}
}

// TestSealedStripping shows that a man in the middle who rewrites the
// client's offer to auth-only cannot downgrade a client that also accepts
// auth-only: the offer is in the transcript, so the server's proof fails.
func TestSealedStripping(t *testing.T) {
	optional := WithModes(ModeSealedAES256GCM, ModeAuthOnly)
	ln := sealedListen(t, optional)
	p := startSealedProxy(t, ln.Addr().String(), proxyPlan{rewriteOffer: ModeAuthOnly})
	_, err := DialContext(t.Context(), "tcp", p.addr(), WithKey(sealedTestKey), optional)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrBadServerProof)
}

func TestSealedRoundTripAndExporter(t *testing.T) {
	for _, tc := range []struct {
		mode  Mode
		suite Suite
	}{
		{ModeSealedAES256GCM, SuiteHMACSHA256},
		{ModeSealedChaCha20Poly1305, SuiteHMACSHA256},
		{ModeSealedAES256GCM, SuiteHMACSHA512},
	} {
		mode := tc.mode
		t.Run(mode.String()+"/"+tc.suite.String(), func(t *testing.T) {
			ln := sealedListen(t, WithModes(mode), WithSuites(tc.suite))
			c := sealedDial(t, ln.Addr().String(), WithSealed())
			msg := pattern(200_000, 1) // several records
			go c.Write(msg)
			s := sealedAccept(t, ln)
			got := make([]byte, len(msg))
			_, err := io.ReadFull(s, got)
			require.NoError(t, err)
			require.Equal(t, msg, got)

			_, err = s.Write([]byte("pong"))
			require.NoError(t, err)
			small := make([]byte, 2) // smaller than the record: the rest is kept
			_, err = io.ReadFull(c, small)
			require.NoError(t, err)
			_, err = io.ReadFull(c, small)
			require.NoError(t, err)
			assert.Equal(t, "ng", string(small))

			ekc, err := c.ExportKeyingMaterial("test", []byte("ctx"), 32)
			require.NoError(t, err)
			eks, err := s.ExportKeyingMaterial("test", []byte("ctx"), 32)
			require.NoError(t, err)
			assert.Equal(t, ekc, eks)
			assert.Equal(t, mode, s.ConnectionState().Mode)
			assert.Equal(t, tc.suite, c.ConnectionState().Suite)
		})
	}
}

// TestSealedConfidentiality checks that the plaintext never appears on the
// wire, in either direction.
func TestSealedConfidentiality(t *testing.T) {
	ln := sealedListen(t, WithSealed())
	p := startSealedProxy(t, ln.Addr().String(), proxyPlan{})
	c := sealedDial(t, p.addr(), WithSealed())
	secret := []byte("attack at dawn, attack at dawn, attack at dawn")
	_, err := c.Write(secret)
	require.NoError(t, err)
	s := sealedAccept(t, ln)
	got := make([]byte, len(secret))
	_, err = io.ReadFull(s, got)
	require.NoError(t, err)
	_, err = s.Write(secret)
	require.NoError(t, err)
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	require.NoError(t, c.Close())
	require.NoError(t, s.Close())
	wire := p.wait()
	assert.NotContains(t, string(wire[0]), "attack")
	assert.NotContains(t, string(wire[1]), "attack")
	assert.Greater(t, len(wire[0]), len(secret))
	assert.Greater(t, len(wire[1]), len(secret))
}

// TestSealedTampering alters the stream between the two ends in every way
// the record layer must catch, and checks that the reader gets exactly the
// records before the damage, then a typed error, and never a forged byte.
func TestSealedTampering(t *testing.T) {
	const records = 5
	chunk := func(i int) []byte { return pattern(9, byte(i)) } // 9+20 bytes on the wire
	type tc struct {
		name  string
		plan  proxyPlan
		clean int   // records delivered intact before the error
		want  error // what the reader's error matches
	}
	var tests []tc
	for off := range recordHeaderLen + 9 + recordTagLen {
		tests = append(tests, tc{
			name:  "flip byte " + strconv.Itoa(off),
			plan:  proxyPlan{record: 2, action: actFlip, offset: off},
			clean: 2, want: ErrProtocol,
		})
	}
	tests = append(tests,
		tc{name: "flip in close record", plan: proxyPlan{record: records, action: actFlip, offset: 6}, clean: records, want: ErrRecordAuth},
		tc{name: "drop", plan: proxyPlan{record: 2, action: actDrop}, clean: 2, want: ErrRecordAuth},
		tc{name: "drop first", plan: proxyPlan{record: 0, action: actDrop}, clean: 0, want: ErrRecordAuth},
		tc{name: "replay", plan: proxyPlan{record: 2, action: actReplay}, clean: 3, want: ErrRecordAuth},
		tc{name: "reorder", plan: proxyPlan{record: 1, action: actSwap}, clean: 1, want: ErrRecordAuth},
		tc{name: "truncate between records", plan: proxyPlan{record: 3, action: actCut}, clean: 3, want: ErrTruncated},
		tc{name: "truncate mid-record", plan: proxyPlan{record: 3, action: actCutMid}, clean: 3, want: ErrTruncated},
		tc{name: "drop close record", plan: proxyPlan{record: records, action: actCut}, clean: records, want: ErrTruncated},
	)
	for _, dir := range []string{"client to server", "server to client"} {
		for _, tt := range tests {
			t.Run(dir+"/"+tt.name, func(t *testing.T) {
				plan := tt.plan
				plan.s2c = dir == "server to client"
				ln := sealedListen(t, WithSealed())
				p := startSealedProxy(t, ln.Addr().String(), plan)
				c := sealedDial(t, p.addr(), WithSealed())
				// The side under test reads; the other writes records 0 to
				// records-1 and then closes with a close record.
				var writer, reader *Conn
				// The client's proof goes out with its first record.
				if plan.s2c {
					require.NoError(t, c.flush())
					writer, reader = sealedAccept(t, ln), c
				} else {
					writer = c
				}
				var want []byte
				var wg sync.WaitGroup
				wg.Go(func() {
					for i := range records {
						if _, err := writer.Write(chunk(i)); err != nil {
							return
						}
					}
					writer.CloseWrite()
				})
				if reader == nil {
					reader = sealedAccept(t, ln)
				}
				for i := range tt.clean {
					want = append(want, chunk(i)...)
				}
				got, err := readAllTimeout(t, reader, 5*time.Second)
				wg.Wait()
				require.Error(t, err, "the damage went unnoticed")
				assert.ErrorIs(t, err, tt.want)
				assert.ErrorIs(t, err, ErrProtocol)
				assert.False(t, errors.Is(err, os.ErrDeadlineExceeded), "the reader hung: %v", err)
				assert.True(t, strings.HasPrefix(err.Error(), "auth: "), err.Error())
				assert.Equal(t, string(want), string(got), "the reader got other bytes than the intact records")
				// The error sticks, for Read and Write alike.
				_, err2 := reader.Read(make([]byte, 10))
				assert.ErrorIs(t, err2, tt.want)
				_, err2 = reader.Write([]byte("x"))
				assert.Error(t, err2)
			})
		}
	}
}

// TestSealedLargeBothWays sends 32 MiB each way at once over loopback and
// compares hashes.
func TestSealedLargeBothWays(t *testing.T) {
	size := 32 << 20
	if testing.Short() {
		size = 4 << 20
	}
	for _, mode := range []Mode{ModeSealedAES256GCM, ModeSealedChaCha20Poly1305} {
		t.Run(mode.String(), func(t *testing.T) {
			ln := sealedListen(t, WithModes(mode))
			c, s := sealedPair(t, ln, "", WithSealed())
			for _, conn := range []*Conn{c, s} {
				conn.SetDeadline(time.Now().Add(60 * time.Second))
			}
			send := func(conn *Conn, seed byte) [32]byte {
				h := sha256.New()
				chunkSizes := []int{1, 1000, 32 << 10, MaxRecordPlaintext + 3, 300 << 10}
				left, i := size, 0
				for left > 0 {
					n := min(left, chunkSizes[i%len(chunkSizes)])
					b := pattern(n, seed+byte(i))
					h.Write(b)
					_, err := conn.Write(b)
					require.NoError(t, err)
					left -= n
					i++
				}
				require.NoError(t, conn.CloseWrite())
				return [32]byte(h.Sum(nil))
			}
			recv := func(conn *Conn) [32]byte {
				h := sha256.New()
				n, err := io.CopyBuffer(h, struct{ io.Reader }{conn}, make([]byte, 7000))
				require.NoError(t, err)
				assert.Equal(t, int64(size), n)
				return [32]byte(h.Sum(nil))
			}
			var sentC, sentS, gotC, gotS [32]byte
			var wg sync.WaitGroup
			wg.Go(func() { sentC = send(c, 1) })
			wg.Go(func() { sentS = send(s, 2) })
			wg.Go(func() { gotS = recv(s) })
			gotC = recv(c)
			wg.Wait()
			assert.Equal(t, sentC, gotS)
			assert.Equal(t, sentS, gotC)
		})
	}
}

// TestSealedRekey lowers the rekey interval so a transfer crosses several
// key generations, and checks that both sides switch in step.
func TestSealedRekey(t *testing.T) {
	old := rekeyInterval
	rekeyInterval = 7
	t.Cleanup(func() { rekeyInterval = old })
	ln := sealedListen(t, WithSealed())
	c, s := sealedPair(t, ln, "", WithSealed())
	firstKey := c.seal.out.aead
	msg := pattern(100*1000, 3)
	go func() {
		for i := 0; i < len(msg); i += 1000 {
			c.Write(msg[i : i+1000])
		}
		c.CloseWrite()
	}()
	got, err := readAllTimeout(t, s, 10*time.Second)
	require.NoError(t, err)
	require.Equal(t, msg, got)
	// 100 data records and the close record: 101/7 = 14 generations.
	assert.Equal(t, uint64(14), s.seal.in.gen)
	c.seal.wmu.Lock()
	assert.Equal(t, uint64(14), c.seal.out.gen)
	assert.NotSame(t, firstKey, c.seal.out.aead)
	c.seal.wmu.Unlock()
}

func TestSealedHalfClose(t *testing.T) {
	run := func(t *testing.T, c, s *Conn) {
		var wg sync.WaitGroup
		var reply []byte
		var replyErr error
		wg.Go(func() { reply, replyErr = readAllTimeout(t, c, 5*time.Second) })
		wg.Go(func() { // over net.Pipe a Write waits for the reader
			_, err := c.Write([]byte("request"))
			assert.NoError(t, err)
			assert.NoError(t, c.CloseWrite())
			_, err = c.Write([]byte("more"))
			assert.ErrorIs(t, err, net.ErrClosed)
		})
		req, err := readAllTimeout(t, s, 5*time.Second)
		require.NoError(t, err) // EOF after the close record
		assert.Equal(t, "request", string(req))
		_, err = s.Write([]byte("response"))
		require.NoError(t, err)
		require.NoError(t, s.Close())
		wg.Wait()
		require.NoError(t, replyErr)
		assert.Equal(t, "response", string(reply))
	}
	t.Run("tcp", func(t *testing.T) {
		ln := sealedListen(t, WithSealed())
		c := sealedDial(t, ln.Addr().String(), WithSealed())
		require.NoError(t, c.flush())
		run(t, c, sealedAccept(t, ln))
	})
	t.Run("pipe", func(t *testing.T) {
		// net.Pipe cannot shut down one side: the close record does it.
		c, s := pipePair(t, []Option{WithSealed()}, []Option{WithSealed()})
		run(t, c, s)
	})
}

// TestSealedReadDeadline times a Read out in the middle of a record and
// checks that the record still arrives whole afterwards.
func TestSealedReadDeadline(t *testing.T) {
	ln := sealedListen(t, WithSealed())
	release := make(chan struct{})
	p := startSealedProxy(t, ln.Addr().String(), proxyPlan{record: 1, action: actStall, release: release})
	c := sealedDial(t, p.addr(), WithSealed())
	msg0, msg1 := pattern(100, 4), pattern(50_000, 5)
	_, err := c.Write(msg0)
	require.NoError(t, err)
	s := sealedAccept(t, ln)
	_, err = c.Write(msg1)
	require.NoError(t, err)

	got := make([]byte, len(msg0))
	_, err = io.ReadFull(s, got)
	require.NoError(t, err)
	require.Equal(t, msg0, got)

	require.NoError(t, s.SetReadDeadline(time.Now().Add(100*time.Millisecond)))
	n, err := s.Read(make([]byte, 100))
	assert.Zero(t, n)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	assert.True(t, ne.Timeout())

	close(release)
	require.NoError(t, s.SetReadDeadline(time.Now().Add(5*time.Second)))
	got = make([]byte, len(msg1))
	_, err = io.ReadFull(s, got)
	require.NoError(t, err)
	assert.Equal(t, msg1, got)
}

// TestSealedWriteDeadline checks that a Write that times out reports a
// timeout and that later Writes fail rather than corrupt the stream.
func TestSealedWriteDeadline(t *testing.T) {
	ln := sealedListen(t, WithSealed())
	c, _ := sealedPair(t, ln, "", WithSealed())
	require.NoError(t, c.SetWriteDeadline(time.Now().Add(100*time.Millisecond)))
	big := make([]byte, 1<<20)
	var err error
	for range 64 { // the peer never reads: the socket buffers fill up
		if _, err = c.Write(big); err != nil {
			break
		}
	}
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	require.NoError(t, c.SetWriteDeadline(time.Time{}))
	_, err2 := c.Write([]byte("x"))
	assert.ErrorIs(t, err2, os.ErrDeadlineExceeded, "a write after a partial record must not go out")
}

// TestSealedConcurrentWriters writes fixed-size messages from several
// goroutines at once while the peer reads and writes too; every message
// must arrive whole.
func TestSealedConcurrentWriters(t *testing.T) {
	ln := sealedListen(t, WithSealed())
	c, s := sealedPair(t, ln, "", WithSealed())
	const writers, each, size = 4, 50, 3000
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				msg := bytes.Repeat([]byte{byte(w*each + i)}, size)
				if _, err := c.Write(msg); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	var echoed []byte
	var echoErr error
	var rwg sync.WaitGroup
	rwg.Go(func() { echoed, echoErr = readAllTimeout(t, c, 10*time.Second) })
	go func() { wg.Wait(); c.CloseWrite() }()

	got, err := readAllTimeout(t, s, 10*time.Second)
	require.NoError(t, err)
	require.Len(t, got, writers*each*size)
	seen := map[byte]bool{}
	for i := 0; i < len(got); i += size {
		m := got[i : i+size]
		require.Equal(t, bytes.Repeat(m[:1], size), m, "message %d interleaved", i/size)
		seen[m[0]] = true
	}
	assert.Len(t, seen, writers*each)
	_, err = s.Write(got[:size])
	require.NoError(t, err)
	require.NoError(t, s.CloseWrite())
	rwg.Wait()
	require.NoError(t, echoErr)
	assert.Equal(t, got[:size], echoed)
}

// TestSealedCopy checks that io.Copy in and out of sealed connections goes
// through the record layer (ReadFrom and WriteTo), including between a
// sealed and an auth-only connection.
func TestSealedCopy(t *testing.T) {
	sealedLn := sealedListen(t, WithSealed())
	plainLn := sealedListen(t)
	p := startSealedProxy(t, sealedLn.Addr().String(), proxyPlan{})
	c1 := sealedDial(t, p.addr(), WithSealed())
	require.NoError(t, c1.flush())
	s1 := sealedAccept(t, sealedLn)
	c2, s2 := sealedPair(t, plainLn, "")

	msg := bytes.Repeat([]byte("sealed copy "), 40_000)
	var wg sync.WaitGroup
	wg.Go(func() {
		// ReadFrom on a sealed Conn from a plain reader.
		n, err := io.Copy(c1, bytes.NewReader(msg))
		assert.NoError(t, err)
		assert.Equal(t, int64(len(msg)), n)
		assert.NoError(t, c1.CloseWrite())
	})
	wg.Go(func() {
		// Sealed to auth-only: WriteTo of s1 into ReadFrom of s2's peer.
		n, err := io.Copy(c2, s1)
		assert.NoError(t, err)
		assert.Equal(t, int64(len(msg)), n)
		assert.NoError(t, c2.CloseWrite())
	})
	var out bytes.Buffer
	_, err := io.Copy(&out, s2) // auth-only WriteTo
	require.NoError(t, err)
	wg.Wait()
	assert.Equal(t, msg, out.Bytes())
	require.NoError(t, c1.Close())
	require.NoError(t, s1.Close())
	assert.NotContains(t, string(p.wait()[0]), "sealed copy")
}

// TestSealedClose checks that Close ends the stream cleanly (the peer reads
// io.EOF) while closing the raw connection without a close record is
// reported as truncation.
func TestSealedClose(t *testing.T) {
	ln := sealedListen(t, WithSealed())
	c, s := sealedPair(t, ln, "", WithSealed())
	_, err := c.Write([]byte("bye"))
	require.NoError(t, err)
	require.NoError(t, c.Close())
	got, err := readAllTimeout(t, s, 5*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "bye", string(got))

	c, s = sealedPair(t, ln, "", WithSealed())
	// A FIN without a close record, as an attacker who cuts the stream
	// would send.
	require.NoError(t, c.NetConn().(*net.TCPConn).CloseWrite())
	_, err = readAllTimeout(t, s, 5*time.Second)
	assert.ErrorIs(t, err, ErrTruncated)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
}

// TestSealedClientReadsFirst has the server speak first, so the client's
// first Read sends its proof alone and then reads the verdict and the
// first record.
func TestSealedClientReadsFirst(t *testing.T) {
	ln := sealedListen(t, WithSealed())
	c := sealedDial(t, ln.Addr().String(), WithSealed())
	done := make(chan []byte, 1)
	go func() {
		b := make([]byte, 5)
		io.ReadFull(c, b)
		done <- b
	}()
	s := sealedAccept(t, ln)
	_, err := s.Write([]byte("hello"))
	require.NoError(t, err)
	assert.Equal(t, "hello", string(<-done))
}

func TestWithModesRefusesUnknown(t *testing.T) {
	for _, m := range [][]Mode{nil, {0}, {0x08}, {ModeAuthOnly | ModeSealedAES256GCM}} {
		_, err := NewDialer(WithKey(sealedTestKey), WithModes(m...))
		assert.Error(t, err, "%v", m)
	}
	assert.Equal(t, "auth-only|sealed-AES-256-GCM", (ModeAuthOnly | ModeSealedAES256GCM).String())
	assert.False(t, (ModeAuthOnly | ModeSealedAES256GCM).Sealed())
	assert.True(t, ModeSealedChaCha20Poly1305.Sealed())
}

// TestSealedFailedHandshakeDropsKeys checks that keys a server derived
// ahead of the client's proof are dropped when the handshake fails.
func TestSealedFailedHandshakeDropsKeys(t *testing.T) {
	a, b := net.Pipe()
	srv, err := Server(b, WithKey(sealedTestKey), WithSealed())
	require.NoError(t, err)
	other := bytes.Repeat([]byte{0x11}, 32)
	cli, err := Client(a, WithKey(other), WithSealed())
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Go(func() { cli.Handshake() })
	err = srv.Handshake()
	wg.Wait()
	require.ErrorIs(t, err, ErrAuthFailed)
	assert.Nil(t, srv.seal)
	assert.NoError(t, srv.Close())
	cli.Close()
}

// TestSealedVerdict checks the client's handling of the server's verdict,
// which a sealed client reads in front of the first record: a rejection
// (here, a client proof altered on the way) and a verdict byte that is
// neither accept nor reject both end the connection with a typed error.
func TestSealedVerdict(t *testing.T) {
	for _, tc := range []struct {
		name string
		plan proxyPlan
		want error
	}{
		{"rejected", proxyPlan{flipFin: true}, ErrRejected},
		{"garbled verdict", proxyPlan{verdict: 0x42}, ErrProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln := sealedListen(t, WithSealed())
			p := startSealedProxy(t, ln.Addr().String(), tc.plan)
			c := sealedDial(t, p.addr(), WithSealed())
			_, err := c.Write([]byte("hello"))
			require.NoError(t, err) // the verdict is not known yet
			if tc.want != ErrRejected {
				// An accepted client's verdict comes with the server's
				// first write.
				_, err := sealedAccept(t, ln).Write([]byte("hi"))
				require.NoError(t, err)
			}
			require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
			n, err := c.Read(make([]byte, 10))
			assert.Zero(t, n)
			require.ErrorIs(t, err, tc.want)
			_, err = c.Write([]byte("more"))
			assert.ErrorIs(t, err, tc.want, "the failure sticks")
		})
	}
}

// TestSealedConcurrentCloseSendsCloseRecord checks that two Closes racing
// on one sealed connection (a proxy's error path and its shutdown path do
// this) still deliver the authenticated close record: the peer reads a
// clean io.EOF, never ErrTruncated.
func TestSealedConcurrentCloseSendsCloseRecord(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	ln, err := Listen("tcp", "127.0.0.1:0", WithKey(key), WithSealed())
	require.NoError(t, err)
	defer ln.Close()
	for i := range 50 {
		c, err := Dial("tcp", ln.Addr().String(), WithKey(key), WithSealed(), WithWaitForVerdict())
		require.NoError(t, err)
		s, err := ln.Accept()
		require.NoError(t, err)
		var wg sync.WaitGroup
		for range 3 {
			wg.Add(1)
			go func() { defer wg.Done(); c.Close() }()
		}
		wg.Wait()
		s.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = s.Read(make([]byte, 1))
		require.ErrorIs(t, err, io.EOF, "round %d", i)
		require.NotErrorIs(t, err, ErrTruncated, "round %d", i)
		s.Close()
	}
}

// TestSealedCloseAnswersNoCloseRecord checks the two close records: Close
// sends the close record (the sender reads nothing more), so the peer's
// own Close sends none, where it would only hit a closed socket and
// provoke a reset; CloseWrite sends the close-write record, so the peer,
// whose reply is still read, ends its stream with a close record of its
// own. A proxy records which records cross.
func TestSealedCloseAnswersNoCloseRecord(t *testing.T) {
	for _, halfClose := range []bool{false, true} {
		t.Run(map[bool]string{false: "Close", true: "CloseWrite"}[halfClose], func(t *testing.T) {
			ln := sealedListen(t, WithSealed())
			p := startSealedProxy(t, ln.Addr().String(), proxyPlan{})
			c := sealedDial(t, p.addr(), WithSealed())
			_, err := c.Write([]byte("ping"))
			require.NoError(t, err)
			s := sealedAccept(t, ln)
			got := make([]byte, 4)
			_, err = io.ReadFull(s, got)
			require.NoError(t, err)
			_, err = s.Write([]byte("pong"))
			require.NoError(t, err)
			_, err = io.ReadFull(c, got)
			require.NoError(t, err)
			assert.Equal(t, "pong", string(got))

			if halfClose {
				require.NoError(t, c.CloseWrite())
			} else {
				require.NoError(t, c.Close())
			}
			rest, err := readAllTimeout(t, s, 5*time.Second)
			require.NoError(t, err, "the server reads a clean io.EOF")
			assert.Empty(t, rest)
			if halfClose {
				_, err = s.Write([]byte("last"))
				require.NoError(t, err)
			}
			require.NoError(t, s.Close())
			if halfClose {
				rest, err = readAllTimeout(t, c, 5*time.Second)
				require.NoError(t, err, "the client reads the reply and a clean io.EOF")
				assert.Equal(t, "last", string(rest))
				require.NoError(t, c.Close())
			}

			wire := p.wait()
			if halfClose {
				assert.Equal(t, []byte{recordTypeData, recordTypeCloseWrite}, wireRecordTypes(t, wire[0], 0), "client to server")
				assert.Equal(t, []byte{recordTypeData, recordTypeData, recordTypeClose}, wireRecordTypes(t, wire[1], 1), "server to client")
			} else {
				assert.Equal(t, []byte{recordTypeData, recordTypeClose}, wireRecordTypes(t, wire[0], 0), "client to server")
				assert.Equal(t, []byte{recordTypeData}, wireRecordTypes(t, wire[1], 1), "server to client: no close record after the client's")
			}
		})
	}
}

// TestSealedHalfCloseStillDetectsTruncation checks that after CloseWrite
// the reply is still protected against truncation: a server whose stream
// ends without a close record is reported as ErrTruncated, not io.EOF.
func TestSealedHalfCloseStillDetectsTruncation(t *testing.T) {
	ln := sealedListen(t, WithSealed())
	c, s := sealedPair(t, ln, "", WithSealed())
	_, err := c.Write([]byte("request"))
	require.NoError(t, err)
	require.NoError(t, c.CloseWrite())
	req, err := readAllTimeout(t, s, 5*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "request", string(req))
	_, err = s.Write([]byte("partial"))
	require.NoError(t, err)
	// The stream ends without the server's close record, as when someone
	// on the path cuts it.
	require.NoError(t, s.NetConn().Close())
	got, err := readAllTimeout(t, c, 5*time.Second)
	assert.Equal(t, "partial", string(got))
	assert.ErrorIs(t, err, ErrTruncated)
}

// TestSealedReadAfterClose checks that a Read after Close fails with
// net.ErrClosed instead of returning plaintext left in the read buffer,
// which Close hands back to a pool.
func TestSealedReadAfterClose(t *testing.T) {
	ln := sealedListen(t, WithSealed())
	c, s := sealedPair(t, ln, "", WithSealed())
	_, err := s.Write(pattern(100, 1))
	require.NoError(t, err)
	got := make([]byte, 10)
	_, err = io.ReadFull(c, got) // 90 bytes of the record stay opened
	require.NoError(t, err)
	assert.Equal(t, pattern(100, 1)[:10], got)
	require.NoError(t, c.Close())
	n, err := c.Read(got)
	assert.Zero(t, n)
	assert.ErrorIs(t, err, net.ErrClosed)
}

// TestSealedReadRacesClose closes connections while another goroutine
// reads them, for the race detector: the read buffer goes back to its pool
// only when no Read can touch it.
func TestSealedReadRacesClose(t *testing.T) {
	ln := sealedListen(t, WithSealed())
	for i := range 20 {
		c, s := sealedPair(t, ln, "", WithSealed())
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				if _, err := s.Write(pattern(3000, byte(i))); err != nil {
					return
				}
			}
		})
		read := make(chan struct{})
		wg.Go(func() {
			buf := make([]byte, 1000)
			for j := 0; ; j++ {
				if j == 5 {
					close(read)
				}
				if _, err := c.Read(buf); err != nil {
					if j < 5 {
						close(read)
					}
					return
				}
			}
		})
		<-read
		require.NoError(t, c.Close())
		s.Close()
		wg.Wait()
	}
}

// fillSendBuffer writes to c until the kernel takes no more, because the
// peer does not read.
func fillSendBuffer(t testing.TB, c net.Conn) {
	t.Helper()
	chunk := make([]byte, 64<<10)
	require.NoError(t, c.SetWriteDeadline(time.Now().Add(300*time.Millisecond)))
	for {
		if _, err := c.Write(chunk); err != nil {
			require.ErrorIs(t, err, os.ErrDeadlineExceeded)
			break
		}
	}
	require.NoError(t, c.SetWriteDeadline(time.Time{}))
}

// TestSendBeforeFIN checks the Linux shortcut for Close's close record:
// the bytes are held and go out with the FIN, nothing is written to other
// connections, and a full send buffer never makes it block.
func TestSendBeforeFIN(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	assert.Zero(t, sendBeforeFIN(a, []byte("pipe")))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	pair := func() (net.Conn, net.Conn) {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		s, err := ln.Accept()
		require.NoError(t, err)
		t.Cleanup(func() { c.Close(); s.Close() })
		return c, s
	}
	c, s := pair()
	n := sendBeforeFIN(c, []byte("held"))
	if runtime.GOOS != "linux" {
		assert.Zero(t, n)
		return
	}
	assert.Equal(t, 4, n)
	require.NoError(t, c.Close())
	got, err := readAllTimeout(t, s, 5*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "held", string(got))

	c, _ = pair()
	fillSendBuffer(t, c)
	start := time.Now()
	assert.LessOrEqual(t, sendBeforeFIN(c, pattern(100<<10, 1)), 100<<10)
	assert.Less(t, time.Since(start), time.Second)
}

// TestSealedCloseStalledPeer checks that Close returns, within about
// sealCloseTimeout, when the peer does not read: the close record goes
// into the kernel's queue behind the unread bytes, or Close gives up on it.
func TestSealedCloseStalledPeer(t *testing.T) {
	ln := sealedListen(t, WithSealed())
	c, s := sealedPair(t, ln, "", WithSealed())
	_, err := s.Write([]byte("x"))
	require.NoError(t, err)
	_, err = io.ReadFull(c, make([]byte, 1)) // the verdict too
	require.NoError(t, err)
	fillSendBuffer(t, c.NetConn()) // bytes the server never reads
	start := time.Now()
	c.Close()
	assert.Less(t, time.Since(start), 3*sealCloseTimeout)
}
