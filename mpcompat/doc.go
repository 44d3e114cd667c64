// Package mpcompat speaks the wire protocol of CPython's
// multiprocessing.connection over TCP or Unix sockets, so a Go service can
// sit on either side of Python processes that use Listener(address,
// authkey=...) and Client(address, authkey=...).
//
// The authentication is CPython's: each side proves the key by answering
// the other's HMAC challenge. The listening side delivers a challenge and
// then answers one; the connecting side answers and then delivers. Both
// generations of the handshake are spoken: the one of Python 3.11 and
// earlier (a 20-byte challenge answered with a raw HMAC-MD5) and the one of
// Python 3.12 and later (a challenge that names its digest, "{sha256}" by
// default, answered with a MAC over the whole challenge and the digest's
// name in front). By default (Auto) this package behaves like CPython 3.12:
// it sends the modern challenge and follows a legacy peer, so it talks to
// every Python 3 version. Config.Generation pins one generation.
//
// After the handshake, a Conn exchanges byte messages framed as
// Connection.send_bytes and recv_bytes frame them: a 4-byte big-endian
// signed length (or -1 and an 8-byte length for messages over 2 GiB - 1)
// and the bytes. Python's send and recv pickle objects; this package never
// unpickles anything, so have the Python side use send_bytes and
// recv_bytes.
//
// Like the hmacauth protocol's auth-only mode, nothing here encrypts or
// integrity-protects the messages after the handshake; CPython's legacy
// generation also relies on HMAC-MD5. Use it on trusted networks, or
// inside TLS or SSH tunnels.
package mpcompat
