//go:build !linux

package auth

import "net"

// sendBeforeFIN writes nothing: only Linux can hold bytes for the FIN
// (MSG_MORE). The caller writes them instead.
func sendBeforeFIN(net.Conn, []byte) int { return 0 }
