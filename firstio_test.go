package auth

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFirstWriteAndReadSizes checks that the client's first Write (which
// carries the pending proof, copied into one message when small and by
// writev when large) and its first Read (which strips the verdict, through
// a pooled buffer when small) deliver every byte in order, at sizes around
// the pooled buffer's limits.
func TestFirstWriteAndReadSizes(t *testing.T) {
	writeSizes := []int{1, 100, hsBufLen - 34, hsBufLen - 33, hsBufLen - 32, hsBufLen, 4096, 100000}
	readSizes := []int{1, 2, 100, hsBufLen - 1, hsBufLen, 5000}
	ln, err := Listen("tcp", "127.0.0.1:0", WithKey(benchKey))
	require.NoError(t, err)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				buf := make([]byte, 3000)
				for { // echo until the client half-closes
					n, err := c.Read(buf)
					if _, werr := c.Write(buf[:n]); werr != nil || err != nil {
						return
					}
				}
			}()
		}
	}()
	d, err := NewDialer(WithKey(benchKey))
	require.NoError(t, err)
	for _, ws := range writeSizes {
		for _, rs := range readSizes {
			t.Run(fmt.Sprintf("write%d/read%d", ws, rs), func(t *testing.T) {
				nc, err := d.Dial("tcp", ln.Addr().String())
				require.NoError(t, err)
				c := nc.(*Conn)
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				payload := make([]byte, ws)
				rand.Read(payload)
				n, err := c.Write(payload)
				require.NoError(t, err)
				require.Equal(t, ws, n, "Write reports the application bytes only")
				require.NoError(t, c.CloseWrite())
				var got bytes.Buffer
				buf := make([]byte, rs)
				for {
					n, err := c.Read(buf)
					got.Write(buf[:n])
					if err == io.EOF {
						break
					}
					require.NoError(t, err)
				}
				assert.True(t, bytes.Equal(payload, got.Bytes()), "echo of %d bytes read %d at a time came back as %d bytes", ws, rs, got.Len())
			})
		}
	}
}

// corruptProof flips a bit of the client's proof on its way out: the second
// write of a client connection starts with the finished message.
type corruptProof struct {
	net.Conn
	writes int
}

func (c *corruptProof) Write(p []byte) (int, error) {
	c.writes++
	if c.writes == 2 && len(p) > 1 && p[0] == msgClientFinished {
		q := append([]byte(nil), p...)
		q[1] ^= 1
		return c.Conn.Write(q)
	}
	return c.Conn.Write(p)
}

// TestSmallFirstReadRejected checks that a rejection is reported by a
// 1-byte first Read.
func TestSmallFirstReadRejected(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer raw.Close()
		s, _ := Server(raw, WithKey(benchKey))
		done <- s.Handshake()
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	c, err := Client(&corruptProof{Conn: raw}, WithKey(benchKey))
	require.NoError(t, err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Write([]byte{1})
	require.NoError(t, err)
	_, err = c.Read(make([]byte, 1))
	assert.ErrorIs(t, err, ErrRejected)
	assert.ErrorIs(t, <-done, ErrBadClientProof)
}
