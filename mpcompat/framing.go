package mpcompat

import (
	"encoding/binary"
	"errors"
	"io"
	"math"
)

// Framing of multiprocessing.connection's send_bytes and recv_bytes on a
// socket (CPython's Connection._send_bytes and _recv_bytes): a 4-byte
// big-endian signed length and the bytes; a message longer than
// 0x7fffffff bytes has the length -1 and then an 8-byte big-endian
// unsigned length.
const (
	shortHeaderLen = 4
	longHeaderLen  = 12

	// maxShortForm is the longest message CPython sends with a 4-byte
	// length; longer ones use the -1 form.
	maxShortForm = math.MaxInt32

	// readChunk bounds the buffer allocated ahead of the bytes that have
	// arrived, so a peer that announces a large message and sends little
	// costs little memory.
	readChunk = 1 << 20
)

// appendHeader appends the frame header for a message of n bytes. Messages
// longer than longFormAt bytes get the -1 form; CPython uses maxShortForm.
func appendHeader(b []byte, n int, longFormAt int64) []byte {
	if int64(n) > longFormAt {
		b = binary.BigEndian.AppendUint32(b, math.MaxUint32) // int32(-1)
		return binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return binary.BigEndian.AppendUint32(b, uint32(n))
}

// readHeader reads a frame header and returns the message length. got is
// the number of header bytes read, so a caller can tell a clean end of
// stream (io.EOF with got == 0) from a torn one.
func readHeader(r io.Reader) (size uint64, got int, err error) {
	var hdr [8]byte
	n, err := io.ReadFull(r, hdr[:4])
	if err != nil {
		return 0, n, err
	}
	short := int32(binary.BigEndian.Uint32(hdr[:4]))
	switch {
	case short >= 0:
		return uint64(short), n, nil
	case short != -1:
		// CPython would read a negative length as an empty message and lose
		// track of the stream; refuse it instead.
		return 0, n, errorf([]error{ErrNotMultiprocessing}, "frame length %d is negative", short)
	}
	m, err := io.ReadFull(r, hdr[:8])
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, n + m, err
	}
	return binary.BigEndian.Uint64(hdr[:8]), n + m, nil
}

// readPayload reads a message body of size bytes, growing its buffer as
// bytes arrive rather than all at once.
func readPayload(r io.Reader, size uint64) ([]byte, error) {
	if size <= readChunk {
		buf := make([]byte, size)
		_, err := io.ReadFull(r, buf)
		return buf, eofIsUnexpected(err)
	}
	buf := make([]byte, 0, readChunk)
	for uint64(len(buf)) < size {
		if len(buf) == cap(buf) {
			next := min(uint64(2*cap(buf)), size)
			grown := make([]byte, len(buf), next)
			copy(grown, buf)
			buf = grown
		}
		n, err := io.ReadFull(r, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			return buf, eofIsUnexpected(err)
		}
	}
	return buf, nil
}

func eofIsUnexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
