package auth

import (
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPendingProofWriteThenReadOverPipe is a regression test: over
// net.Pipe, a client's first Write (carrying its pending proof) blocks
// until the server reads the data, which the server does only after its
// verdict has been read. A Read started meanwhile must not wait for that
// Write, in either mode.
func TestPendingProofWriteThenReadOverPipe(t *testing.T) {
	for _, mode := range []Mode{ModeAuthOnly, ModeSealedAES256GCM} {
		t.Run(mode.String(), func(t *testing.T) {
			opts := []Option{WithModes(mode)}
			c, s := pipePair(t, opts, opts)
			wrote := make(chan error, 1)
			go func() {
				_, err := c.Write([]byte("hello"))
				wrote <- err
			}()
			time.Sleep(20 * time.Millisecond) // let the Write take the proof
			read := make(chan []byte, 1)
			go func() {
				b, _ := io.ReadAll(c)
				read <- b
			}()
			go func() {
				b := make([]byte, 5)
				if _, err := io.ReadFull(s, b); err == nil {
					s.Write(b)
				}
				s.Close()
			}()
			select {
			case err := <-wrote:
				require.NoError(t, err)
			case <-time.After(5 * time.Second):
				c.Close()
				s.Close()
				<-read
				t.Fatal("the first Write deadlocked with a concurrent Read")
			}
			assert.Equal(t, "hello", string(<-read))
		})
	}
}
