package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hmacauth/auth"
)

const probeExamples = `  hmacauth probe redis-host:6380 --key-file ~/.hmacauth/keys
  hmacauth probe redis-host:6380 --key-file keys --key-id app-2027 --json
  HMACAUTH_KEY_FILE=keys hmacauth probe 127.0.0.1:6380 || echo "exit $?"
`

// probeReport is what probe prints.
type probeReport struct {
	Address     string  `json:"address"`
	Result      string  `json:"result"` // accepted, refused or failed
	KeyID       string  `json:"key_id"`
	Suite       string  `json:"suite,omitempty"`
	Mode        string  `json:"mode,omitempty"`
	ConnectMS   float64 `json:"connect_ms"`
	HandshakeMS float64 `json:"handshake_ms"`
	TotalMS     float64 `json:"total_ms"`
	Error       string  `json:"error,omitempty"`
}

func cmdProbe(args []string, e *env) int {
	f := newCmdFlags(e, "hmacauth probe", "hmacauth probe ADDR --key-file FILE [--key-id ID] [flags]", probeExamples)
	var keyFile, keyID string
	var timeout time.Duration
	var sealed, asJSON bool
	f.stringVar(&keyFile, "key-file", "HMACAUTH_KEY_FILE", "", "key file holding the key to prove")
	f.stringVar(&keyID, "key-id", "HMACAUTH_KEY_ID", "", "key ID to use from the key file (needed when it holds several)")
	f.durationVar(&timeout, "timeout", "HMACAUTH_TIMEOUT", 10*time.Second, "bound on the connect and the handshake together")
	f.boolVar(&sealed, "sealed", "HMACAUTH_SEALED", true, "ask for the sealed mode (encrypted and integrity-protected); must match the server")
	f.boolVar(&asJSON, "json", "", false, "print the report as one JSON object")
	f.logFlags()
	pos, err := f.parse(args)
	if err == nil {
		switch {
		case len(pos) == 0:
			err = errors.New("missing ADDR, the server to probe (host:port)")
		case len(pos) > 1:
			err = fmt.Errorf("unexpected argument %q after ADDR", pos[1])
		}
	}
	if err == nil {
		err = f.required("key-file")
	}
	if err != nil {
		return f.usageErr(err)
	}
	log := f.logger()
	store, ok := loadKeys(log, keyFile)
	if !ok {
		return exitFailure
	}
	ck, err := pickKey(store, keyID)
	if err != nil {
		log.Error("cannot choose a key", "error", err)
		return exitFailure
	}

	rep := probeReport{Address: pos[0], KeyID: ck.id}
	code := probe(&rep, ck, timeout, sealed)
	if asJSON {
		b, _ := json.Marshal(rep)
		fmt.Fprintln(e.stdout, string(b))
	} else {
		fmt.Fprintf(e.stdout, "address:   %s\nresult:    %s\nkey_id:    %s\n", rep.Address, rep.Result, rep.KeyID)
		if rep.Suite != "" {
			fmt.Fprintf(e.stdout, "suite:     %s\nmode:      %s\n", rep.Suite, rep.Mode)
		}
		fmt.Fprintf(e.stdout, "connect:   %.3f ms\nhandshake: %.3f ms\ntotal:     %.3f ms\n", rep.ConnectMS, rep.HandshakeMS, rep.TotalMS)
		if rep.Error != "" {
			fmt.Fprintf(e.stdout, "error:     %s\n", rep.Error)
		}
	}
	return code
}

// probe connects, runs the handshake through to the server's verdict, and
// fills in the report. It returns the exit code.
func probe(rep *probeReport, ck clientKey, timeout time.Duration, sealed bool) int {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

	start := time.Now()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", rep.Address)
	rep.ConnectMS = ms(time.Since(start))
	if err != nil {
		rep.Result, rep.Error = "failed", err.Error()
		rep.TotalMS = ms(time.Since(start))
		return exitFailure
	}
	opts := []auth.Option{auth.WithKey(ck.key), auth.WithKeyID(ck.id), auth.WithWaitForVerdict(), auth.WithHandshakeTimeout(timeout)}
	c, err := auth.Client(raw, append(opts, modeOptions(sealed)...)...)
	if err != nil {
		raw.Close()
		rep.Result, rep.Error = "failed", err.Error()
		return exitFailure
	}
	defer c.Close()
	hs := time.Now()
	err = c.HandshakeContext(ctx)
	rep.HandshakeMS = ms(time.Since(hs))
	rep.TotalMS = ms(time.Since(start))
	st := c.ConnectionState()
	if st.Suite != 0 {
		rep.Suite, rep.Mode = st.Suite.String(), st.Mode.String()
	}
	switch {
	case err == nil:
		rep.Result = "accepted"
		return exitOK
	case errors.Is(err, auth.ErrAuthFailed):
		rep.Result, rep.Error = "refused", err.Error()
		return exitAuth
	}
	rep.Result, rep.Error = "failed", err.Error()
	return exitFailure
}
