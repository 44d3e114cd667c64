package auth

// The attack suite: each test mounts one attack over real loopback
// sockets, checks that it is refused with the right typed error on the
// side that was attacked, that a refused connection never comes out of
// Accept, and that the server keeps serving good clients. SECURITY.md maps
// each attack to its test.

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestAttackWrongKey: a client that holds a different key gets nowhere,
// whether it checks the server's proof (the real client) or ignores it and
// sends a proof anyway (a scripted attacker).
func TestAttackWrongKey(t *testing.T) {
	s := atkStartServer(t, nil, WithKey(atkKey))

	t.Run("real client", func(t *testing.T) {
		c := atkClient(t, s.addr, WithKey(atkOtherKey))
		require.ErrorIs(t, c.Handshake(), ErrBadServerProof)
		s.requireRefused(t, c.LocalAddr(), ErrClientRefusedServer)
		s.requireServes(t)
	})

	t.Run("attacker ignores the server proof", func(t *testing.T) {
		a := atkHandshakeUpTo(t, s.addr, atkOtherKey, "")
		// A proof under the wrong key, with data right behind it as a real
		// client would send: the data must never reach the application.
		atkWrite(t, a.conn, append(a.fin, "let me in"...))
		require.Equal(t, []byte{verdictReject}, atkReadRest(t, a.conn))
		s.requireRefused(t, a.conn.LocalAddr(), ErrBadClientProof)
		s.requireServes(t)
	})

	t.Run("right key control", func(t *testing.T) {
		a := atkGenuine(t, s.addr, atkKey, "")
		require.Equal(t, []byte{verdictAccept}, a.verdict)
		require.NoError(t, s.event(t, a.conn.LocalAddr()).Err)
	})
}

// TestAttackUnknownKeyID: a key ID the server does not know is refused,
// and looks from the outside exactly like a wrong key, so key IDs cannot be
// probed.
func TestAttackUnknownKeyID(t *testing.T) {
	s := atkStartServer(t, []Option{WithKey(atkKey), WithKeyID("k1")},
		WithKeys(map[string][]byte{"k1": atkKey}),
		WithKeyLookup(func(id string) ([]byte, error) {
			if id == "short" {
				return []byte("too short"), nil
			}
			return nil, os.ErrNotExist
		}))

	for _, id := range []string{"k2", "", "short", string(bytes.Repeat([]byte{'x'}, MaxKeyIDLen))} {
		t.Run("real client/"+id[:min(len(id), 8)], func(t *testing.T) {
			c := atkClient(t, s.addr, WithKey(atkKey), WithKeyID(id))
			require.ErrorIs(t, c.Handshake(), ErrBadServerProof)
			s.requireRefused(t, c.LocalAddr(), ErrUnknownKeyID)
			s.requireServes(t)
		})
	}

	t.Run("attacker with the right key under a wrong ID", func(t *testing.T) {
		a := atkHandshakeUpTo(t, s.addr, atkKey, "k2")
		atkWrite(t, a.conn, a.fin)
		require.Equal(t, []byte{verdictReject}, atkReadRest(t, a.conn))
		s.requireRefused(t, a.conn.LocalAddr(), ErrUnknownKeyID)
		s.requireServes(t)
	})

	t.Run("unknown ID looks like a wrong key", func(t *testing.T) {
		known := atkHandshakeUpTo(t, s.addr, atkOtherKey, "k1")
		unknown := atkHandshakeUpTo(t, s.addr, atkOtherKey, "k2")
		require.Equal(t, len(known.sh), len(unknown.sh))
		require.Equal(t, known.sh[:serverHdrLen], unknown.sh[:serverHdrLen], "server hello headers differ")
		atkWrite(t, known.conn, known.fin)
		atkWrite(t, unknown.conn, unknown.fin)
		require.Equal(t, atkReadRest(t, known.conn), atkReadRest(t, unknown.conn))
		s.requireRefused(t, known.conn.LocalAddr(), ErrBadClientProof)
		s.requireRefused(t, unknown.conn.LocalAddr(), ErrUnknownKeyID)
		s.requireServes(t)
	})
}

// TestAttackImpostorServer: a server that does not hold the client's key
// cannot make the client believe it does, and learns no proof from it.
func TestAttackImpostorServer(t *testing.T) {
	real := atkStartServer(t, nil, WithKey(atkKey))

	t.Run("listener with another key", func(t *testing.T) {
		impostor := atkStartServer(t, nil, WithKey(atkOtherKey))
		c := atkClient(t, impostor.addr, WithKey(atkKey))
		require.ErrorIs(t, c.Handshake(), ErrBadServerProof)
		impostor.requireRefused(t, c.LocalAddr(), ErrClientRefusedServer)
		real.requireServes(t)
	})

	for _, tc := range []struct {
		name  string
		proof func(ch []byte) []byte
	}{
		{"proof under another key", func(ch []byte) []byte { return refServerHello(SuiteHMACSHA256, atkOtherKey, ch) }},
		{"random proof", func(ch []byte) []byte {
			sh := refServerHello(SuiteHMACSHA256, atkKey, ch)
			rand.Read(sh[len(sh)-32:])
			return sh
		}},
		{"client-labelled proof", func(ch []byte) []byte {
			sh := refServerHello(SuiteHMACSHA256, atkKey, ch)
			fin := refMAC(SuiteHMACSHA256, atkKey, "hmacauth v1 client proof", refTranscript(SuiteHMACSHA256, ch, sh[:len(sh)-32]))
			copy(sh[len(sh)-32:], fin)
			return sh
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			after := make(chan []byte, 1)
			raw := atkStartRaw(t, 1, func(c *net.TCPConn) {
				ch, err := readMessage(c, make([]byte, maxClientHello), clientHelloSize)
				if err != nil {
					after <- nil
					return
				}
				c.Write(tc.proof(ch))
				b, _ := io.ReadAll(c)
				after <- b
			})
			c := atkClient(t, raw.addr, WithKey(atkKey))
			require.ErrorIs(t, c.Handshake(), ErrBadServerProof)
			c.Close()
			// The client sent an alert of the size of a finished message,
			// never a proof of its own.
			got := <-after
			require.Equal(t, append([]byte{msgClientAlert, alertBadServerProof}, make([]byte, 31)...), got)
			real.requireServes(t)
		})
	}
}

// TestAttackReflection: a proof made by the server cannot be turned into a
// proof from a client, in the same session or another, and a hello cannot
// be bounced back at the side that sent it.
func TestAttackReflection(t *testing.T) {
	s := atkStartServer(t, nil, WithKey(atkKey))

	t.Run("server proof sent back as the client proof", func(t *testing.T) {
		a := atkHandshakeUpTo(t, s.addr, atkOtherKey, "")
		fin := append([]byte{msgClientFinished}, a.sh[len(a.sh)-32:]...)
		atkWrite(t, a.conn, fin)
		require.Equal(t, []byte{verdictReject}, atkReadRest(t, a.conn))
		s.requireRefused(t, a.conn.LocalAddr(), ErrBadClientProof)
		s.requireServes(t)
	})

	t.Run("server nonce used as the nonce of a second session", func(t *testing.T) {
		// The recipe's reflection: have the server answer its own challenge
		// in a parallel session, then present that answer.
		a := atkHandshakeUpTo(t, s.addr, atkOtherKey, "")
		b := atkDial(t, s.addr)
		chB := marshalClientHello(nil, ModeAuthOnly, []Suite{SuiteHMACSHA256}, "", a.sh[serverHdrLen:serverHdrLen+nonceLen])
		atkWrite(t, b, chB)
		shB := atkReadServerHello(t, b)
		atkWrite(t, a.conn, append([]byte{msgClientFinished}, shB[len(shB)-32:]...))
		require.Equal(t, []byte{verdictReject}, atkReadRest(t, a.conn))
		s.requireRefused(t, a.conn.LocalAddr(), ErrBadClientProof)
		b.Close()
		s.requireRefused(t, b.LocalAddr(), ErrProtocol, io.ErrUnexpectedEOF)
		s.requireServes(t)
	})

	t.Run("server hello sent to the server as a client hello", func(t *testing.T) {
		a := atkHandshakeUpTo(t, s.addr, atkOtherKey, "")
		b := atkDial(t, s.addr)
		atkWrite(t, b, a.sh)
		require.Empty(t, atkReadRest(t, b))
		s.requireRefused(t, b.LocalAddr(), ErrProtocol)
		a.conn.Close()
		s.requireRefused(t, a.conn.LocalAddr(), ErrProtocol, io.ErrUnexpectedEOF)
		s.requireServes(t)
	})

	t.Run("client hello bounced back to the client", func(t *testing.T) {
		raw := atkStartRaw(t, 1, func(c *net.TCPConn) {
			ch, err := readMessage(c, make([]byte, maxClientHello), clientHelloSize)
			if err == nil {
				c.Write(ch)
				io.Copy(io.Discard, c)
			}
		})
		c := atkClient(t, raw.addr, WithKey(atkKey))
		err := c.Handshake()
		require.ErrorIs(t, err, ErrProtocol)
		require.NotErrorIs(t, err, ErrAuthFailed)
		s.requireServes(t)
	})
}

// TestAttackReplay: every message of a recorded genuine session is
// useless when replayed, because each side's nonce makes each session's
// transcript new.
func TestAttackReplay(t *testing.T) {
	s := atkStartServer(t, nil, WithKey(atkKey))
	rec := atkGenuine(t, s.addr, atkKey, "")
	require.Equal(t, []byte{verdictAccept}, rec.verdict)
	require.NoError(t, s.event(t, rec.conn.LocalAddr()).Err)

	t.Run("client hello and finished", func(t *testing.T) {
		c := atkDial(t, s.addr)
		atkWrite(t, c, rec.ch)
		sh := atkReadServerHello(t, c)
		require.NotEqual(t, rec.sh[serverHdrLen:serverHdrLen+nonceLen], sh[serverHdrLen:serverHdrLen+nonceLen], "the server reused a nonce")
		atkWrite(t, c, rec.fin)
		require.Equal(t, []byte{verdictReject}, atkReadRest(t, c))
		s.requireRefused(t, c.LocalAddr(), ErrBadClientProof)
		s.requireServes(t)
	})

	t.Run("whole client stream at once", func(t *testing.T) {
		c := atkDial(t, s.addr)
		atkWrite(t, c, bytes.Join([][]byte{rec.ch, rec.fin, []byte("data")}, nil))
		rest := atkReadRest(t, c)
		require.NotContains(t, rest, []byte("data"))
		// Depending on how the bytes arrive, the server sees either a peer
		// that sent past its hello or a finished that does not verify.
		ev := s.requireRefused(t, c.LocalAddr())
		require.True(t, errIsAny(ev.Err, ErrBadClientProof, ErrProtocol), "%v", ev.Err)
		s.requireServes(t)
	})

	t.Run("finished as a client hello", func(t *testing.T) {
		c := atkDial(t, s.addr)
		atkWrite(t, c, rec.fin)
		require.Empty(t, atkReadRest(t, c))
		s.requireRefused(t, c.LocalAddr(), ErrNotProtocol)
		s.requireServes(t)
	})

	for _, withVerdict := range []bool{false, true} {
		name := "server hello to a new client"
		if withVerdict {
			name += ", with the accept verdict"
		}
		t.Run(name, func(t *testing.T) {
			raw := atkStartRaw(t, 1, func(c *net.TCPConn) {
				if _, err := readMessage(c, make([]byte, maxClientHello), clientHelloSize); err != nil {
					return
				}
				msg := rec.sh
				if withVerdict {
					msg = append(append([]byte(nil), rec.sh...), rec.verdict...)
				}
				c.Write(msg)
				io.Copy(io.Discard, c)
			})
			c := atkClient(t, raw.addr, WithKey(atkKey))
			err := c.Handshake()
			if withVerdict {
				// The verdict glued to the hello is refused before the proof
				// is even looked at.
				require.True(t, errIsAny(err, ErrBadServerProof, ErrProtocol), "%v", err)
			} else {
				require.ErrorIs(t, err, ErrBadServerProof)
			}
			s.requireServes(t)
		})
	}
}

// TestAttackSplice: a man in the middle who runs several sessions at once
// cannot move a message from one session into another.
func TestAttackSplice(t *testing.T) {
	s := atkStartServer(t, nil, WithKey(atkKey))

	t.Run("client finished into a parallel session", func(t *testing.T) {
		cside, mitm := atkPair(t)
		client, err := Client(cside, WithKey(atkKey))
		require.NoError(t, err)
		done := atkAsync(func() error {
			if err := client.Handshake(); err != nil {
				return err
			}
			_, err := client.Write([]byte("hi"))
			return err
		})
		ch := atkReadClientHello(t, mitm)
		s1, s2 := atkDial(t, s.addr), atkDial(t, s.addr)
		atkWrite(t, s1, ch)
		atkWrite(t, s2, ch)
		sh1, sh2 := atkReadServerHello(t, s1), atkReadServerHello(t, s2)
		atkWrite(t, mitm, sh1)
		require.NoError(t, atkWait(t, done))
		fin := make([]byte, 33)
		_, err = io.ReadFull(mitm, fin)
		require.NoError(t, err)
		require.Equal(t, refFinished(SuiteHMACSHA256, atkKey, ch, sh1), fin)
		require.NotEqual(t, sh1, sh2)

		atkWrite(t, s2, fin)
		require.Equal(t, []byte{verdictReject}, atkReadRest(t, s2))
		s.requireRefused(t, s2.LocalAddr(), ErrBadClientProof)

		// Control: in its own session the same proof is good, so the
		// refusal above is the splice's doing. (Relaying a whole session
		// untouched is not an attack on authentication; see SECURITY.md.)
		require.Equal(t, []byte{verdictAccept}, atkFinishAndEcho(t, s1, fin))
		require.NoError(t, s.event(t, s1.LocalAddr()).Err)
		client.Close()
		s.requireServes(t)
	})

	t.Run("server hellos swapped between two clients", func(t *testing.T) {
		var (
			clients [2]*Conn
			mitms   [2]*net.TCPConn
			done    [2]<-chan error
			servers [2]*net.TCPConn
			shs     [2][]byte
		)
		for i := range 2 {
			var cside *net.TCPConn
			cside, mitms[i] = atkPair(t)
			c, err := Client(cside, WithKey(atkKey))
			require.NoError(t, err)
			clients[i] = c
			done[i] = atkAsync(c.Handshake)
		}
		for i := range 2 {
			ch := atkReadClientHello(t, mitms[i])
			servers[i] = atkDial(t, s.addr)
			atkWrite(t, servers[i], ch)
			shs[i] = atkReadServerHello(t, servers[i])
		}
		for i := range 2 {
			atkWrite(t, mitms[i], shs[1-i])
		}
		for i := range 2 {
			require.ErrorIs(t, atkWait(t, done[i]), ErrBadServerProof)
			// Pass the client's alert on: the server learns the client
			// refused it.
			alert := make([]byte, 33)
			_, err := io.ReadFull(mitms[i], alert)
			require.NoError(t, err)
			require.Equal(t, byte(msgClientAlert), alert[0])
			atkWrite(t, servers[i], alert)
			s.requireRefused(t, servers[i].LocalAddr(), ErrClientRefusedServer)
		}
		s.requireServes(t)
	})
}

// TestAttackDowngrade: a man in the middle who edits the version, suites
// or modes on the way is caught, because each proof covers the messages as
// each side sent them.
func TestAttackDowngrade(t *testing.T) {
	both := []Suite{SuiteHMACSHA512, SuiteHMACSHA256}
	s := atkStartServer(t, []Option{WithKey(atkKey), WithSuites(both...)}, WithKey(atkKey), WithSuites(both...))

	t.Run("control: SHA-512 is negotiated", func(t *testing.T) {
		c := atkClient(t, s.addr, WithKey(atkKey), WithSuites(both...), WithWaitForVerdict())
		require.NoError(t, c.Handshake())
		require.Equal(t, SuiteHMACSHA512, c.ConnectionState().Suite)
		require.NoError(t, s.event(t, c.LocalAddr()).Err)
	})

	// mitm runs a real client through an editing man in the middle. The
	// edits return the bytes to forward.
	mitm := func(t *testing.T, editCH, editSH func([]byte) []byte) (clientErr error, server *net.TCPConn) {
		cside, m := atkPair(t)
		client, err := Client(cside, WithKey(atkKey), WithSuites(both...))
		require.NoError(t, err)
		t.Cleanup(func() { client.Close() })
		done := atkAsync(client.Handshake)
		ch := atkReadClientHello(t, m)
		server = atkDial(t, s.addr)
		atkWrite(t, server, editCH(ch))
		sh := atkReadServerHello(t, server)
		atkWrite(t, m, editSH(sh))
		clientErr = atkWait(t, done)
		// Pass on whatever the failed client sent last (its alert), sized
		// for the suite the server chose.
		if b, _ := io.ReadAll(m); len(b) > 0 {
			out := make([]byte, 1+Suite(sh[7]).size())
			copy(out, b)
			server.Write(out)
		}
		return clientErr, server
	}
	same := func(b []byte) []byte { return b }

	t.Run("suite stripped from the client hello", func(t *testing.T) {
		err, server := mitm(t, func(ch []byte) []byte {
			p, err := parseClientHello(ch)
			require.NoError(t, err)
			return marshalClientHello(nil, p.modes, []Suite{SuiteHMACSHA256}, p.keyID, p.nonce)
		}, same)
		require.ErrorIs(t, err, ErrBadServerProof)
		s.requireRefused(t, server.LocalAddr(), ErrClientRefusedServer)
		s.requireServes(t)
	})

	t.Run("suite rewritten in the server hello", func(t *testing.T) {
		err, server := mitm(t, same, func(sh []byte) []byte {
			out := append([]byte(nil), sh[:serverHdrLen+nonceLen+32]...)
			out[7] = byte(SuiteHMACSHA256)
			return out
		})
		require.ErrorIs(t, err, ErrBadServerProof)
		s.requireRefused(t, server.LocalAddr(), ErrClientRefusedServer)
		s.requireServes(t)
	})

	t.Run("reserved mode bits added", func(t *testing.T) {
		err, server := mitm(t, func(ch []byte) []byte {
			ch = append([]byte(nil), ch...)
			ch[6] |= 0xFE
			return ch
		}, same)
		require.ErrorIs(t, err, ErrBadServerProof)
		s.requireRefused(t, server.LocalAddr(), ErrClientRefusedServer)
		s.requireServes(t)
	})

	t.Run("version lowered in the client hello", func(t *testing.T) {
		err, server := mitm(t, func(ch []byte) []byte {
			ch = append([]byte(nil), ch...)
			ch[5] = 0
			return ch
		}, same)
		// The server answers that it does not speak version 0; the client
		// stops there, with no fallback to anything weaker.
		require.ErrorIs(t, err, ErrNegotiation)
		s.requireRefused(t, server.LocalAddr(), ErrNegotiation)
		s.requireServes(t)
	})

	t.Run("forged server hello of an older version", func(t *testing.T) {
		for _, sh := range [][]byte{
			{0x89, 'H', 'M', 'A', 0x02, 0, statusUnsupportedVersion, 0, 0},
			append([]byte{0x89, 'H', 'M', 'A', 0x02, 0, statusOK, 1, 1}, make([]byte, 64)...),
		} {
			raw := atkStartRaw(t, 1, func(c *net.TCPConn) {
				if _, err := readMessage(c, make([]byte, maxClientHello), clientHelloSize); err == nil {
					c.Write(sh)
					io.Copy(io.Discard, c)
				}
			})
			c := atkClient(t, raw.addr, WithKey(atkKey))
			err := c.Handshake()
			require.True(t, errIsAny(err, ErrNegotiation, ErrProtocol), "%v", err)
			require.False(t, c.ConnectionState().HandshakeComplete)
		}
		s.requireServes(t)
	})
}

// TestAttackTruncation cuts every handshake message at every byte, in both
// directions: each cut is refused as a protocol error that wraps
// io.ErrUnexpectedEOF, and the refused side sees no verdict.
func TestAttackTruncation(t *testing.T) {
	s := atkStartServer(t, nil, WithKey(atkKey), WithSuites(SuiteHMACSHA256, SuiteHMACSHA512))

	t.Run("client hello", func(t *testing.T) {
		ch := atkHello("key-id")
		for k := range len(ch) {
			c := atkDial(t, s.addr)
			atkWrite(t, c, ch[:k])
			require.NoError(t, c.CloseWrite())
			require.Empty(t, atkReadRest(t, c), "cut at %d", k)
			s.requireRefused(t, c.LocalAddr(), ErrProtocol, io.ErrUnexpectedEOF)
			c.Close()
		}
		s.requireServes(t)
	})

	for _, suite := range []Suite{SuiteHMACSHA256, SuiteHMACSHA512} {
		t.Run("finished/"+suite.String(), func(t *testing.T) {
			for k := range 1 + suite.size() {
				a := atkHandshakeUpTo(t, s.addr, atkKey, "", suite)
				require.Equal(t, suite, a.suite)
				atkWrite(t, a.conn, a.fin[:k])
				require.NoError(t, a.conn.CloseWrite())
				require.Empty(t, atkReadRest(t, a.conn), "cut at %d", k)
				s.requireRefused(t, a.conn.LocalAddr(), ErrProtocol, io.ErrUnexpectedEOF)
				a.conn.Close()
			}
			s.requireServes(t)
		})

		t.Run("server hello/"+suite.String(), func(t *testing.T) {
			full := 9 + 32 + suite.size()
			raw := atkStartRaw(t, full, func(c *net.TCPConn) {
				ch, err := readMessage(c, make([]byte, maxClientHello), clientHelloSize)
				if err != nil {
					return
				}
				// The client tells the script where to cut in its key ID.
				k := int(ch[len(ch)-nonceLen-1])
				c.Write(refServerHello(suite, atkKey, ch)[:k])
			})
			for k := range full {
				c := atkClient(t, raw.addr, WithKey(atkKey), WithSuites(suite), WithKeyID(string([]byte{byte(k)})))
				err := c.Handshake()
				require.ErrorIs(t, err, ErrProtocol, "cut at %d", k)
				require.ErrorIs(t, err, io.ErrUnexpectedEOF, "cut at %d", k)
			}
			s.requireServes(t)
		})
	}

	t.Run("verdict", func(t *testing.T) {
		raw := atkStartRaw(t, 2, func(c *net.TCPConn) {
			ch, err := readMessage(c, make([]byte, maxClientHello), clientHelloSize)
			if err != nil {
				return
			}
			c.Write(refServerHello(SuiteHMACSHA256, atkKey, ch))
			io.ReadFull(c, make([]byte, 33))
			// Hang up instead of giving a verdict.
		})
		c := atkClient(t, raw.addr, WithKey(atkKey))
		require.NoError(t, c.Handshake(), "the server's proof is good")
		_, err := c.Read(make([]byte, 10))
		require.ErrorIs(t, err, ErrProtocol)
		require.ErrorIs(t, err, io.ErrUnexpectedEOF)

		c = atkClient(t, raw.addr, WithKey(atkKey), WithWaitForVerdict())
		err = c.Handshake()
		require.ErrorIs(t, err, ErrProtocol)
		require.ErrorIs(t, err, io.ErrUnexpectedEOF)
		s.requireServes(t)
	})
}

// TestAttackOversize sends fields and messages beyond the protocol's
// bounds, and floods of bytes where a handshake message belongs.
func TestAttackOversize(t *testing.T) {
	s := atkStartServer(t, nil, WithKey(atkKey))
	hdr := func(modes, count byte) []byte { return []byte{0x89, 'H', 'M', 'A', 0x01, 1, modes, count} }
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i*7 + 5) // starts with neither the magic nor a finished
	}

	for _, tc := range []struct {
		name string
		send []byte
		want error
	}{
		{"17 suites", append(hdr(1, 17), bytes.Repeat([]byte{1}, 17+1+32)...), ErrProtocol},
		{"255 suites", append(hdr(1, 255), bytes.Repeat([]byte{1}, 255+1+32)...), ErrProtocol},
		{"no suites", append(hdr(1, 0), make([]byte, 1+32)...), ErrProtocol},
		{"no mode", append(hdr(0, 1), make([]byte, 2+32)...), ErrProtocol},
		{"only unknown suites", append(append(hdr(1, 16), bytes.Repeat([]byte{0xEE}, 16)...), make([]byte, 1+32)...), ErrNegotiation},
		{"a megabyte of garbage", big, ErrNotProtocol},
		{"magic then a megabyte", append([]byte{0x89, 'H', 'M', 'A'}, big...), ErrProtocol},
		{"hello then a megabyte", append(atkHello(""), big...), ErrProtocol},
		{"TLS client hello", []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03}, ErrNotProtocol},
		{"HTTP request", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), ErrNotProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := atkDial(t, s.addr)
			done := atkAsync(func() error {
				_, err := c.Write(tc.send)
				return err // a reset is fine: the server hung up early
			})
			rest := atkReadRest(t, c)
			require.False(t, bytes.HasSuffix(rest, []byte{verdictAccept}), "the server accepted")
			s.requireRefused(t, c.LocalAddr(), tc.want)
			c.Close()
			atkWait(t, done)
			s.requireServes(t)
		})
	}

	t.Run("longest key ID is served", func(t *testing.T) {
		id := string(bytes.Repeat([]byte{'k'}, MaxKeyIDLen))
		s2 := atkStartServer(t, []Option{WithKey(atkKey), WithKeyID(id)}, WithKeys(map[string][]byte{id: atkKey}))
		s2.requireServes(t)
		_, err := NewDialer(WithKey(atkKey), WithKeyID(id+"k"))
		require.Error(t, err)
	})

	for _, tc := range []struct {
		name string
		sh   func(ch []byte) []byte
	}{
		{"server hello with an unknown suite", func(ch []byte) []byte {
			return append([]byte{0x89, 'H', 'M', 'A', 0x02, 1, 0, 0xFF, 1}, big[:4096]...)
		}},
		{"server hello with trailing bytes", func(ch []byte) []byte {
			return append(refServerHello(SuiteHMACSHA256, atkKey, ch), big[:4096]...)
		}},
		{"a megabyte instead of a server hello", func([]byte) []byte { return big }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := atkStartRaw(t, 1, func(c *net.TCPConn) {
				ch, err := readMessage(c, make([]byte, maxClientHello), clientHelloSize)
				if err == nil {
					c.Write(tc.sh(ch))
				}
			})
			c := atkClient(t, raw.addr, WithKey(atkKey))
			err := c.Handshake()
			if err == nil {
				// The hello arrived alone and was good: the junk behind it
				// then fails as the verdict.
				_, err = c.Read(make([]byte, 10))
			}
			require.ErrorIs(t, err, ErrProtocol)
		})
	}

	t.Run("verdict byte that is neither", func(t *testing.T) {
		raw := atkStartRaw(t, 1, func(c *net.TCPConn) {
			ch, err := readMessage(c, make([]byte, maxClientHello), clientHelloSize)
			if err != nil {
				return
			}
			c.Write(refServerHello(SuiteHMACSHA256, atkKey, ch))
			io.ReadFull(c, make([]byte, 33))
			c.Write([]byte{'?', 'x'})
			io.Copy(io.Discard, c)
		})
		c := atkClient(t, raw.addr, WithKey(atkKey))
		require.NoError(t, c.Handshake())
		_, err := c.Read(make([]byte, 10))
		require.ErrorIs(t, err, ErrProtocol)
		_, err = c.Write([]byte("after"))
		require.ErrorIs(t, err, ErrProtocol, "the failure is sticky")
	})
}

// TestAttackStallMidHandshake: clients that stop at each point of the
// handshake are cut off at the handshake timeout, while good clients are
// served in the meantime.
func TestAttackStallMidHandshake(t *testing.T) {
	const timeout = 2 * time.Second
	s := atkStartServer(t, nil, WithKey(atkKey), WithHandshakeTimeout(timeout))
	ch := atkHello("")
	stages := []struct {
		name string
		send func(c *net.TCPConn)
		sees int // bytes the staller gets to read
	}{
		{"silent", func(*net.TCPConn) {}, 0},
		{"half a magic", func(c *net.TCPConn) { c.Write(ch[:2]) }, 0},
		{"hello without nonce", func(c *net.TCPConn) { c.Write(ch[:len(ch)-nonceLen]) }, 0},
		{"hello without its last byte", func(c *net.TCPConn) { c.Write(ch[:len(ch)-1]) }, 0},
		{"hello, no finished", func(c *net.TCPConn) { c.Write(atkHello("")) }, 9 + 32 + 32},
		{"hello, half a finished", func(c *net.TCPConn) {
			c.Write(atkHello(""))
			readMessage(c, make([]byte, maxServerHello), serverHelloSize) // the server hello, then:
			c.Write([]byte{msgClientFinished, 0, 0})
		}, 0},
	}
	conns := make([]*net.TCPConn, len(stages))
	for i, st := range stages {
		conns[i] = atkDial(t, s.addr)
		st.send(conns[i])
	}
	// The stallers hold their handshakes open; good clients get through.
	for range 3 {
		s.requireServes(t)
	}
	for i, st := range stages {
		t.Run(st.name, func(t *testing.T) {
			rest := atkReadRest(t, conns[i])
			require.Len(t, rest, st.sees)
			ev := s.requireRefused(t, conns[i].LocalAddr(), os.ErrDeadlineExceeded)
			require.GreaterOrEqual(t, ev.Duration, timeout)
			require.Contains(t, ev.Err.Error(), "timed out")
		})
	}
	s.requireServes(t)
}

// TestAttackOneByteASecond: a client that keeps sending one byte a second
// is still cut off at the handshake timeout, which bounds the whole
// handshake rather than each read.
func TestAttackOneByteASecond(t *testing.T) {
	const timeout = 1500 * time.Millisecond
	s := atkStartServer(t, nil, WithKey(atkKey), WithHandshakeTimeout(timeout))
	c := atkDial(t, s.addr)
	ch := atkHello("")
	sent := make(chan int, 1)
	go func() {
		n := 0
		defer func() { sent <- n }()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for n < len(ch) {
			if _, err := c.Write(ch[n : n+1]); err != nil {
				return
			}
			n++
			<-tick.C
		}
	}()
	s.requireServes(t)
	ev := s.requireRefused(t, c.LocalAddr(), os.ErrDeadlineExceeded)
	require.GreaterOrEqual(t, ev.Duration, timeout)
	require.Empty(t, atkReadRest(t, c))
	c.Close()
	n := <-sent
	require.Less(t, n, len(ch), "the dribbler finished its hello: the timeout did not bound the whole handshake")
	s.requireServes(t)
}

// errIsAny reports whether err matches any of targets.
func errIsAny(err error, targets ...error) bool {
	for _, t := range targets {
		if err != nil && errors.Is(err, t) {
			return true
		}
	}
	return false
}
