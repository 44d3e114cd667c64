package main

import "github.com/hmacauth/auth"

// modeOptions returns the options that choose the protection of the bytes
// after the handshake, for every side the command runs (tunnel server,
// tunnel client, probe). --sealed (default true) asks for the sealed mode,
// which encrypts and authenticates every byte; --sealed=false runs
// auth-only (both ends must agree, or the handshake fails with a message
// naming WithSealed).
func modeOptions(sealed bool) []auth.Option {
	if !sealed {
		return nil
	}
	return []auth.Option{auth.WithSealed()}
}
