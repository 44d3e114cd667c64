package auth

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// fuzzMessages are the plaintexts of the one authentic stream the record
// fuzzer knows: whatever it feeds the reader, every byte delivered must come
// from these, in order.
var fuzzMessages = [][]byte{[]byte("first"), bytes.Repeat([]byte("second "), 40), []byte("x")}

// fuzzStream returns the authentic stream: fuzzMessages, then a close
// record of type closeType (recordTypeClose or recordTypeCloseWrite).
func fuzzStream(f *testing.F, closeType byte) []byte {
	w, _ := testCiphers(f, ModeSealedAES256GCM, labelSealedC2S)
	var s []byte
	for _, m := range fuzzMessages {
		var err error
		if s, err = w.seal(s, recordTypeData, m); err != nil {
			f.Fatal(err)
		}
	}
	s, err := w.seal(s, closeType, nil)
	if err != nil {
		f.Fatal(err)
	}
	return s
}

// FuzzRecordParser feeds arbitrary bytes to the header parser and to a
// sealed Conn's record layer, with arbitrary read sizes. It must never
// panic or hang; it may deliver only a prefix of the authentic plaintext;
// and it ends with io.EOF only after an authentic close or close-write
// record, and otherwise with an error wrapping ErrProtocol.
func FuzzRecordParser(f *testing.F) {
	valid := fuzzStream(f, recordTypeClose)
	validHalf := fuzzStream(f, recordTypeCloseWrite)
	f.Add(valid, uint16(4096))
	f.Add(validHalf, uint16(4096))
	retyped := bytes.Clone(valid) // a close record turned into close-write
	retyped[len(retyped)-recordHeaderLen-recordTagLen] = recordTypeCloseWrite
	f.Add(retyped, uint16(4096))
	f.Add(valid, uint16(1))
	f.Add(valid[:len(valid)-1], uint16(7))
	f.Add(valid[:30], uint16(100))
	flipped := bytes.Clone(valid)
	flipped[10] ^= 1
	f.Add(flipped, uint16(64))
	f.Add([]byte{0x01, 0x00, 0x00, 0x11}, uint16(3))
	f.Add([]byte{0x02, 0x00, 0x00, 0x10}, uint16(3))
	f.Add([]byte{0x03, 0x00, 0x00, 0x10}, uint16(3))
	f.Add([]byte{0x04, 0x00, 0x00, 0x10}, uint16(3))
	f.Add([]byte{}, uint16(0))
	want := bytes.Join(fuzzMessages, nil)

	f.Fuzz(func(t *testing.T, stream []byte, readSize uint16) {
		if h, err := parseRecordHeader(stream); err == nil {
			if h.bodyLen < recordTagLen || h.bodyLen > maxRecordBody {
				t.Fatalf("accepted body length %d", h.bodyLen)
			}
		} else if !errors.Is(err, ErrProtocol) {
			t.Fatalf("untyped header error %v", err)
		}

		_, r := testCiphers(t, ModeSealedAES256GCM, labelSealedC2S)
		c := recordReaderConn(stream, r)
		var got []byte
		buf := make([]byte, int(readSize)%5000+1)
		var err error
		for range 10000 {
			var n int
			n, err = c.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				break
			}
		}
		if !bytes.HasPrefix(want, got) {
			t.Fatalf("delivered bytes that are not the authentic plaintext: %q", got)
		}
		switch {
		case err == io.EOF:
			if !bytes.Equal(got, want) || !bytes.HasPrefix(stream, valid) && !bytes.HasPrefix(stream, validHalf) {
				t.Fatalf("io.EOF without an authentic close record")
			}
		case err == nil:
			t.Fatalf("no end after 10000 reads")
		case !errors.Is(err, ErrProtocol):
			t.Fatalf("untyped error %v", err)
		}
	})
}
