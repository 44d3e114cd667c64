package auth_test

import (
	"bytes"
	"expvar"
	"fmt"
	"io"
	"log"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hmacauth/auth"
)

// exampleListener is the listener the published expvar reads. A program
// publishes once at start-up; the example may run more than once per process
// (go test -count=2), so it publishes once and swaps the listener.
var (
	exampleListener atomic.Pointer[auth.AuthListener]
	publishOnce     sync.Once
)

// waitForStats polls until the listener has finished n handshakes: the
// client side of a refused handshake can return before the server has
// counted it.
func waitForStats(ln *auth.AuthListener, n uint64) {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if s := ln.Stats(); s.Accepted+s.Refused() >= n {
			return
		}
	}
}

// This example publishes a listener's counters with expvar, from the
// standard library: serve http.DefaultServeMux (or expvar.Handler()) and
// /debug/vars shows them as JSON.
func ExampleAuthListener_Stats() {
	key := bytes.Repeat([]byte{7}, auth.DefaultKeyLen) // use auth.GenerateKey
	ln, err := auth.Listen("tcp", "127.0.0.1:0", auth.WithKey(key))
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	exampleListener.Store(ln)
	publishOnce.Do(func() {
		expvar.Publish("hmacauth_listener", expvar.Func(func() any {
			return exampleListener.Load().Stats()
		}))
	})
	go func() { // the application: echo until the peer closes
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()

	good, err := auth.Dial("tcp", ln.Addr().String(), auth.WithKey(key))
	if err != nil {
		log.Fatal(err)
	}
	good.Close()
	wrong := bytes.Repeat([]byte{8}, auth.DefaultKeyLen)
	if _, err := auth.Dial("tcp", ln.Addr().String(), auth.WithKey(wrong)); err == nil {
		log.Fatal("a wrong key was accepted")
	}
	waitForStats(ln, 2)

	fmt.Println(expvar.Get("hmacauth_listener"))
	// Output:
	// {"Accepted":1,"RefusedTimeout":0,"RefusedAuthFailed":1,"RefusedNegotiation":0,"RefusedProtocol":0,"RefusedOther":0,"InFlight":0}
}

// writePrometheus writes a listener's counters in the Prometheus text
// exposition format. Served over HTTP at /metrics, it lets Prometheus scrape
// the listener with no client library at all; with client_golang, the same
// loop fits a prometheus.Collector's Collect (see docs).
func writePrometheus(w io.Writer, s auth.ListenerStats) {
	fmt.Fprintln(w, "# HELP hmacauth_handshakes_accepted_total Connections that passed the handshake.")
	fmt.Fprintln(w, "# TYPE hmacauth_handshakes_accepted_total counter")
	fmt.Fprintf(w, "hmacauth_handshakes_accepted_total %d\n", s.Accepted)
	fmt.Fprintln(w, "# HELP hmacauth_handshakes_refused_total Connections refused, by reason.")
	fmt.Fprintln(w, "# TYPE hmacauth_handshakes_refused_total counter")
	for _, r := range auth.RefusalReasons {
		fmt.Fprintf(w, "hmacauth_handshakes_refused_total{reason=%q} %d\n", r, s.RefusedBy(r))
	}
	fmt.Fprintln(w, "# HELP hmacauth_handshakes_in_flight Handshakes running now.")
	fmt.Fprintln(w, "# TYPE hmacauth_handshakes_in_flight gauge")
	fmt.Fprintf(w, "hmacauth_handshakes_in_flight %d\n", s.InFlight)
}

// This example exports a listener's counters to Prometheus without adding a
// dependency: it writes the text format that Prometheus scrapes. A client
// with an unknown key ID is counted under reason "auth_failed".
func ExampleListenerStats_prometheus() {
	key := bytes.Repeat([]byte{7}, auth.DefaultKeyLen)
	ln, err := auth.Listen("tcp", "127.0.0.1:0", auth.WithKey(key))
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()

	// A client presenting a key ID the server does not know is refused.
	if _, err := auth.Dial("tcp", ln.Addr().String(), auth.WithKey(key), auth.WithKeyID("nobody")); err == nil {
		log.Fatal("an unknown key ID was accepted")
	}
	waitForStats(ln, 1)

	// In a server: http.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
	//	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	//	writePrometheus(w, ln.Stats())
	// })
	writePrometheus(os.Stdout, ln.Stats())
	// Output:
	// # HELP hmacauth_handshakes_accepted_total Connections that passed the handshake.
	// # TYPE hmacauth_handshakes_accepted_total counter
	// hmacauth_handshakes_accepted_total 0
	// # HELP hmacauth_handshakes_refused_total Connections refused, by reason.
	// # TYPE hmacauth_handshakes_refused_total counter
	// hmacauth_handshakes_refused_total{reason="timeout"} 0
	// hmacauth_handshakes_refused_total{reason="auth_failed"} 1
	// hmacauth_handshakes_refused_total{reason="negotiation"} 0
	// hmacauth_handshakes_refused_total{reason="protocol"} 0
	// hmacauth_handshakes_refused_total{reason="other"} 0
	// # HELP hmacauth_handshakes_in_flight Handshakes running now.
	// # TYPE hmacauth_handshakes_in_flight gauge
	// hmacauth_handshakes_in_flight 0
}
