package main

import (
	"fmt"
	"math"
	"slices"
)

// goal is one performance goal: a number computed from medians of one run,
// compared with a limit. Add goals (for example for the sealed mode) by
// appending to goals; a goal whose benchmarks are missing shows as n/a.
type goal struct {
	name   string
	text   string // what the number means, for the report
	atMost bool   // the value must be <= limit; otherwise >= limit
	limit  float64
	unit   string // "x" for ratios, "" for counts
	value  func(r *results) (v float64, detail string, err error)
}

// ratio is a/b: the median of the per-round ratios when both benchmarks
// have one sample per round (a burst of load from elsewhere then cancels
// out within a round), the ratio of the medians otherwise.
func ratio(r *results, a, b, unit string) (float64, string, error) {
	va, ok := r.median(a, unit)
	if !ok {
		return 0, "", fmt.Errorf("no %s for %s", unit, a)
	}
	vb, ok := r.median(b, unit)
	if !ok {
		return 0, "", fmt.Errorf("no %s for %s", unit, b)
	}
	if vb == 0 {
		return 0, "", fmt.Errorf("%s of %s is zero", unit, b)
	}
	detail := fmt.Sprintf("medians %s / %s = %s / %s", a, b, human(va, unit), human(vb, unit))
	sa, sb := r.samples[a][unit], r.samples[b][unit]
	if len(sa) == len(sb) && len(sa) > 1 {
		per := make([]float64, 0, len(sa))
		for i := range sa {
			if sb[i] != 0 {
				per = append(per, sa[i]/sb[i])
			}
		}
		if len(per) == len(sa) {
			return medianOf(per), detail + fmt.Sprintf("; median of %d per-round ratios", len(per)), nil
		}
	}
	return va / vb, detail, nil
}

// vsPlainTCP is the auth variant of benchmark bench against plain TCP's,
// with the bare extra round trip (tcp-1rtt) for reference in the detail:
// what it costs alone, and the auth variant against it.
func vsPlainTCP(r *results, bench, unit string) (float64, string, error) {
	v, d, err := ratio(r, bench+"/auth", bench+"/tcp", unit)
	if err != nil {
		return v, d, err
	}
	if rtt, _, err := ratio(r, bench+"/tcp-1rtt", bench+"/tcp", unit); err == nil {
		d += fmt.Sprintf("; one extra round trip alone (tcp-1rtt): %.2fx", rtt)
		if over, _, err := ratio(r, bench+"/auth", bench+"/tcp-1rtt", unit); err == nil {
			d += fmt.Sprintf(", this library against it: %.2fx", over)
		}
	}
	return v, d, nil
}

func medianOf(s []float64) float64 {
	s = slices.Clone(s)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

var goals = []goal{
	{
		name:   "connect+auth+echo vs plain TCP",
		text:   "latency of connect, authenticate, 1-byte echo, close; one client at a time",
		atMost: true, limit: 1.30, unit: "x",
		value: func(r *results) (float64, string, error) {
			return vsPlainTCP(r, "Connect", "ns/op")
		},
	},
	{
		name:  "faster than TLS 1.3 mutual auth",
		text:  "what authentication adds to a plain TCP connect+echo, TLS 1.3 (ECDSA P-256 mutual, X25519) over this library: (tls13 - tcp) / (auth - tcp)",
		limit: 20, unit: "x",
		value: func(r *results) (float64, string, error) {
			tcp, ok1 := r.median("Connect/tcp", "ns/op")
			auth, ok2 := r.median("Connect/auth", "ns/op")
			tls, ok3 := r.median("Connect/tls13", "ns/op")
			if !ok1 || !ok2 || !ok3 {
				return 0, "", fmt.Errorf("needs Connect/tcp, Connect/auth and Connect/tls13")
			}
			d := fmt.Sprintf("medians: TLS adds %s, auth adds %s; whole exchange %.1fx faster", human(tls-tcp, "ns/op"), human(auth-tcp, "ns/op"), tls/auth)
			added := func(tcp, auth, tls float64) float64 {
				if auth-tcp <= 0 {
					return math.Inf(1)
				}
				return (tls - tcp) / (auth - tcp)
			}
			st, sa, sl := r.samples["Connect/tcp"]["ns/op"], r.samples["Connect/auth"]["ns/op"], r.samples["Connect/tls13"]["ns/op"]
			if len(st) == len(sa) && len(sa) == len(sl) && len(st) > 1 {
				per := make([]float64, len(st))
				for i := range st {
					per[i] = added(st[i], sa[i], sl[i])
				}
				return medianOf(per), d + fmt.Sprintf("; median of %d per-round ratios", len(per)), nil
			}
			return added(tcp, auth, tls), d, nil
		},
	},
	{
		name:   "CPU per connection, 4 clients, vs plain TCP",
		text:   "process CPU time (user+sys, both sides) per connection with 4 concurrent clients",
		atMost: true, limit: 1.25, unit: "x",
		value: func(r *results) (float64, string, error) {
			return vsPlainTCP(r, "ConnectParallel4", "cpu-ns/conn")
		},
	},
	{
		name:  "bulk throughput vs plain TCP",
		text:  "64 MiB one way in 32 KiB writes over one connection",
		limit: 0.97, unit: "x",
		value: func(r *results) (float64, string, error) {
			return ratio(r, "Bulk/auth", "Bulk/tcp", "MB/s")
		},
	},
	{
		name:  "proxy io.Copy throughput vs plain TCP",
		text:  "64 MiB through io.Copy between two authenticated connections, against two plain ones",
		limit: 0.97, unit: "x",
		value: func(r *results) (float64, string, error) {
			return ratio(r, "Proxy/auth", "Proxy/tcp", "MB/s")
		},
	},
	{
		name:   "sealed handshake vs auth-only",
		text:   "the sealed mode's connect and handshake (both sides' whole key schedule; no data, no close record) against auth-only (goal: handshake cost within 5%); the detail adds the whole connect, 1-byte echo and close",
		atMost: true, limit: 1.05, unit: "x",
		value: func(r *results) (float64, string, error) {
			v, d, err := ratio(r, "Handshake/sealed", "Handshake/auth", "ns/op")
			if err == nil {
				if whole, _, err := ratio(r, "Connect/sealed", "Connect/auth", "ns/op"); err == nil {
					d += fmt.Sprintf("; connect, 1-byte echo and close: %.2fx", whole)
				}
			}
			return v, d, err
		},
	},
	{
		name:  "sealed bulk throughput vs TLS 1.3 AES-128-GCM",
		text:  "64 MiB one way in 32 KiB writes, the sealed mode against TLS 1.3 (TLS_AES_128_GCM_SHA256 on this hardware); goal: at least 1.15x",
		limit: 1.15, unit: "x",
		value: func(r *results) (float64, string, error) {
			return ratio(r, "Bulk/sealed", "Bulk/tls13", "MB/s")
		},
	},
	{
		name:   "allocations per handshake beyond plain TCP",
		text:   "allocs/op of Connect/auth minus Connect/tcp (both sides of the connection)",
		atMost: true, limit: 12,
		value: func(r *results) (float64, string, error) {
			a, ok1 := r.median("Connect/auth", "allocs/op")
			t, ok2 := r.median("Connect/tcp", "allocs/op")
			if !ok1 || !ok2 {
				return 0, "", fmt.Errorf("needs allocs/op of Connect/auth and Connect/tcp")
			}
			ba, _ := r.median("Connect/auth", "B/op")
			bt, _ := r.median("Connect/tcp", "B/op")
			return a - t, fmt.Sprintf("%.0f - %.0f allocs; %.0f - %.0f = %.0f bytes", a, t, ba, bt, ba-bt), nil
		},
	},
}

// verdict is a goal's outcome in one run.
type verdict struct {
	goal  goal
	ok    bool // the value could be computed
	pass  bool
	value float64
	note  string
}

func judge(r *results) []verdict {
	var vs []verdict
	for _, g := range goals {
		v, detail, err := g.value(r)
		if err != nil {
			vs = append(vs, verdict{goal: g, note: err.Error()})
			continue
		}
		pass := v >= g.limit
		if g.atMost {
			pass = v <= g.limit
		}
		vs = append(vs, verdict{goal: g, ok: true, pass: pass, value: v, note: detail})
	}
	return vs
}

func (v verdict) status() string {
	switch {
	case !v.ok:
		return "n/a"
	case v.pass:
		return "PASS"
	}
	return "MISS"
}

func (v verdict) valueString() string {
	if !v.ok {
		return "n/a"
	}
	if math.IsInf(v.value, 1) {
		return "∞"
	}
	if v.goal.unit == "x" {
		return fmt.Sprintf("%.2fx", v.value)
	}
	return fmt.Sprintf("%.0f", v.value)
}

func (g goal) limitString() string {
	op := "≥"
	if g.atMost {
		op = "≤"
	}
	if g.unit == "x" {
		return fmt.Sprintf("%s %.2fx", op, g.limit)
	}
	return fmt.Sprintf("%s %.0f", op, g.limit)
}

// human formats a metric for people.
func human(v float64, unit string) string {
	switch unit {
	case "ns/op", "cpu-ns/conn", "cpu-ns/op":
		switch {
		case math.Abs(v) >= 1e9:
			return fmt.Sprintf("%.2f s", v/1e9)
		case math.Abs(v) >= 1e6:
			return fmt.Sprintf("%.2f ms", v/1e6)
		case math.Abs(v) >= 1e3:
			return fmt.Sprintf("%.1f µs", v/1e3)
		}
		return fmt.Sprintf("%.0f ns", v)
	case "MB/s":
		return fmt.Sprintf("%.0f MB/s", v)
	case "B/op":
		return fmt.Sprintf("%.0f B", v)
	case "allocs/op":
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.0f %s", v, unit)
}
