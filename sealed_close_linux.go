package auth

import (
	"net"
	"syscall"
)

// sendBeforeFIN writes b to conn, if conn is a TCP connection, with
// MSG_MORE and without blocking: the kernel holds the bytes and sends them
// with the FIN of the Close that must follow, in one segment instead of a
// segment of their own (on loopback, that saves most of the cost of a
// sealed Close). It returns how many bytes it wrote: 0 for another kind of
// connection, or when the send buffer is full.
func sendBeforeFIN(conn net.Conn, b []byte) int {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return 0
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return 0
	}
	sent := 0
	rc.Write(func(fd uintptr) bool {
		n, err := syscall.SendmsgN(int(fd), b, nil, nil, syscall.MSG_MORE|syscall.MSG_DONTWAIT|syscall.MSG_NOSIGNAL)
		if err == nil {
			sent = n
		}
		return true // never wait: the caller writes the rest
	})
	return sent
}
