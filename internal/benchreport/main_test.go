package main

import (
	"bytes"
	"encoding/xml"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// sample is go test -bench output of two rounds, with the noise lines a
// real run prints between results.
const sample = `goos: linux
goarch: amd64
pkg: github.com/hmacauth/auth
cpu: Test CPU @ 1GHz
BenchmarkConnect/tcp-2         	    5000	    100000 ns/op	    90000 cpu-ns/conn	    1100 B/op	      25 allocs/op
BenchmarkConnect/auth-2        	    4000	    120000 ns/op	   110000 cpu-ns/conn	    2300 B/op	      35 allocs/op
BenchmarkConnect/tls13-2       	     600	   1500000 ns/op	  1700000 cpu-ns/conn	   94000 B/op	    1087 allocs/op
BenchmarkConnectParallel4/tcp-2 	    6000	    90000 ns/op	   100000 cpu-ns/conn	    1100 B/op	      25 allocs/op
BenchmarkConnectParallel4/auth-2	    5000	    95000 ns/op	   120000 cpu-ns/conn	    2300 B/op	      35 allocs/op
BenchmarkBulk/tcp-2            	      30	  50000000 ns/op	1342.18 MB/s	  40000000 cpu-ns/op	       0 B/op	       0 allocs/op
BenchmarkBulk/auth-2           	      30	  51000000 ns/op	1315.86 MB/s	  40000000 cpu-ns/op	       0 B/op	       0 allocs/op
PASS
ok  	github.com/hmacauth/auth	23.206s
BenchmarkConnect/tcp-2         	    5000	    110000 ns/op	    90000 cpu-ns/conn	    1100 B/op	      25 allocs/op
BenchmarkConnect/auth-2        	    4000	    140000 ns/op	   110000 cpu-ns/conn	    2300 B/op	      35 allocs/op
BenchmarkConnect/tls13-2       	     600	   1700000 ns/op	  1700000 cpu-ns/conn	   94000 B/op	    1087 allocs/op
BenchmarkConnect/sealed-2      	    4000	    130000 ns/op	   110000 cpu-ns/conn	    2300 B/op	      36 allocs/op
--- FAIL: BenchmarkSomething
BenchmarkBroken-2 not a result line
`

func TestParseAndMedian(t *testing.T) {
	r := parse([]byte(sample))
	assert.Equal(t, "Test CPU @ 1GHz", r.cpu)
	assert.Equal(t, []string{"Connect/tcp", "Connect/auth", "Connect/tls13", "ConnectParallel4/tcp", "ConnectParallel4/auth", "Bulk/tcp", "Bulk/auth", "Connect/sealed"}, r.order)
	tests := []struct {
		name, unit string
		want       float64
		ok         bool
	}{
		{"Connect/tcp", "ns/op", 105000, true}, // even count: mean of the middle two
		{"Connect/sealed", "ns/op", 130000, true},
		{"Bulk/auth", "MB/s", 1315.86, true},
		{"Connect/tcp", "allocs/op", 25, true},
		{"Proxy/tcp", "MB/s", 0, false},
		{"Connect/tcp", "MB/s", 0, false},
	}
	for _, tt := range tests {
		got, ok := r.median(tt.name, tt.unit)
		assert.Equal(t, tt.ok, ok, "%s %s", tt.name, tt.unit)
		assert.InDelta(t, tt.want, got, 1e-9, "%s %s", tt.name, tt.unit)
	}
	assert.Equal(t, 2, r.runs("Connect/tcp"))
	groups, variants := r.groups()
	assert.Equal(t, []string{"Connect", "ConnectParallel4", "Bulk"}, groups)
	assert.Equal(t, []string{"tcp", "auth", "tls13", "sealed"}, variants["Connect"])
}

func TestMedianOdd(t *testing.T) {
	r := parse([]byte("BenchmarkX/a-2 1 3 ns/op\nBenchmarkX/a-2 1 1 ns/op\nBenchmarkX/a-2 1 2 ns/op\n"))
	got, ok := r.median("X/a", "ns/op")
	require.True(t, ok)
	assert.Equal(t, 2.0, got)
}

func TestJudge(t *testing.T) {
	vs := judge(parse([]byte(sample)))
	byName := map[string]verdict{}
	for _, v := range vs {
		byName[v.goal.name] = v
	}
	require.Len(t, byName, len(goals))

	v := byName["connect+auth+echo vs plain TCP"]
	assert.True(t, v.ok)
	// Per-round ratios 1.2 and 140/110; their median.
	assert.InDelta(t, (1.2+140.0/110)/2, v.value, 1e-9)
	assert.True(t, v.pass, "1.24x is within 1.30x")

	v = byName["faster than TLS 1.3 mutual auth"]
	assert.InDelta(t, (1400000.0/20000+1590000.0/30000)/2, v.value, 1e-9)
	assert.True(t, v.pass)

	v = byName["CPU per connection, 4 clients, vs plain TCP"]
	assert.InDelta(t, 1.2, v.value, 1e-9)
	assert.True(t, v.pass)

	v = byName["bulk throughput vs plain TCP"]
	assert.InDelta(t, 1315.86/1342.18, v.value, 1e-9)
	assert.True(t, v.pass, "0.98x is at least 0.97x")

	v = byName["allocations per handshake beyond plain TCP"]
	assert.Equal(t, 10.0, v.value)
	assert.True(t, v.pass)

	// Missing benchmarks are n/a, not failures or panics.
	v = byName["proxy io.Copy throughput vs plain TCP"]
	assert.False(t, v.ok)
	assert.Equal(t, "n/a", v.status())
}

func TestJudgeMiss(t *testing.T) {
	out := strings.ReplaceAll(sample, "   120000 ns/op", "   300000 ns/op")
	out = strings.ReplaceAll(out, "   140000 ns/op", "   300000 ns/op")
	for _, v := range judge(parse([]byte(out))) {
		if v.goal.name == "connect+auth+echo vs plain TCP" {
			assert.Equal(t, "MISS", v.status())
		}
	}
}

func TestJudgeAuthNoSlowerThanTCP(t *testing.T) {
	out := "BenchmarkConnect/tcp-2 1 100 ns/op\nBenchmarkConnect/auth-2 1 90 ns/op\nBenchmarkConnect/tls13-2 1 1000 ns/op\n"
	for _, v := range judge(parse([]byte(out))) {
		if v.goal.name == "faster than TLS 1.3 mutual auth" {
			assert.True(t, math.IsInf(v.value, 1))
			assert.Equal(t, "PASS", v.status())
			assert.Equal(t, "∞", v.valueString())
		}
	}
}

// TestReportFromFile runs the command on saved output and checks the files
// it writes: a report naming every goal and variant, and a well-formed SVG
// with a bar per variant.
func TestReportFromFile(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	require.NoError(t, os.WriteFile(in, []byte(sample), 0o644))
	notes := filepath.Join(dir, "notes.md")
	require.NoError(t, os.WriteFile(notes, []byte("## Findings\n\nHand-written.\n"), 0o644))
	md := filepath.Join(dir, "BENCHMARKS.md")
	svg := filepath.Join(dir, "bench", "chart.svg")
	var stdout bytes.Buffer
	err := run([]string{"-in", in, "-md", md, "-svg", svg, "-notes", notes, "-dir", "/"}, &stdout)
	require.NoError(t, err)
	assert.Contains(t, stdout.String(), "PASS")
	assert.Contains(t, stdout.String(), "n/a")

	report, err := os.ReadFile(md)
	require.NoError(t, err)
	for _, g := range goals {
		assert.Contains(t, string(report), g.name)
	}
	assert.Contains(t, string(report), "![hmacauth against plain TCP and TLS 1.3](bench/chart.svg)")
	assert.Contains(t, string(report), "Connect/sealed")
	assert.Contains(t, string(report), "Hand-written.")
	assert.Contains(t, string(report), "Test CPU @ 1GHz")

	pic, err := os.ReadFile(svg)
	require.NoError(t, err)
	var doc struct {
		XMLName xml.Name
		Rects   []struct {
			Fill string `xml:"fill,attr"`
		} `xml:"rect"`
	}
	require.NoError(t, xml.Unmarshal(pic, &doc), "the chart must be well-formed XML")
	assert.Equal(t, "svg", doc.XMLName.Local)
	// One background rectangle plus one bar per (group, variant) with data:
	// Connect 4, ConnectParallel4 2, Bulk 2.
	assert.Len(t, doc.Rects, 1+4+2+2)
	assert.Contains(t, string(pic), "(1.24x TCP)")
}

func TestStrict(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	out := strings.ReplaceAll(sample, "   120000 ns/op", "   300000 ns/op")
	require.NoError(t, os.WriteFile(in, []byte(out), 0o644))
	var stdout bytes.Buffer
	err := run([]string{"-in", in, "-md", "", "-svg", "", "-strict"}, &stdout)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "goal missed")
	require.NoError(t, run([]string{"-in", in, "-md", "", "-svg", ""}, &stdout), "without -strict a miss is only reported")
}

func TestNoResults(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	require.NoError(t, os.WriteFile(in, []byte("PASS\nok x 1s\n"), 0o644))
	err := run([]string{"-in", in, "-md", "", "-svg", ""}, &bytes.Buffer{})
	require.Error(t, err)
}

func TestMetaRoundTrip(t *testing.T) {
	m := machine{cpu: "Test CPU", kernel: "Linux 1.0", goVersion: "go1.99", date: "2026-01-01 00:00 UTC",
		loadBefore: "1.00 2.00 3.00", loadAfter: "4.00 5.00 6.00", benchtime: "1s", bulktime: "2s",
		cores: 2, rounds: 5, took: 90 * time.Second}
	out := append(m.meta(), []byte(sample)...)
	var got machine
	require.True(t, got.readMeta(out))
	assert.Equal(t, m, got)
	assert.False(t, new(machine).readMeta([]byte(sample)))
	assert.NotEmpty(t, parse(out).samples, "meta lines do not disturb parsing")
}

// TestRatioPairsRounds checks that a burst of load in one round, which
// slows both variants of that round, does not skew the ratio, and that
// benchmarks with unequal sample counts fall back to the ratio of medians.
func TestRatioPairsRounds(t *testing.T) {
	out := "BenchmarkConnect/tcp-2 1 100 ns/op\nBenchmarkConnect/auth-2 1 120 ns/op\n" +
		"BenchmarkConnect/tcp-2 1 1000 ns/op\nBenchmarkConnect/auth-2 1 1200 ns/op\n" +
		"BenchmarkConnect/tcp-2 1 110 ns/op\nBenchmarkConnect/auth-2 1 132 ns/op\n"
	got, detail, err := ratio(parse([]byte(out)), "Connect/auth", "Connect/tcp", "ns/op")
	require.NoError(t, err)
	assert.InDelta(t, 1.2, got, 1e-9)
	assert.Contains(t, detail, "per-round")

	out += "BenchmarkConnect/auth-2 1 90 ns/op\n"
	got, _, err = ratio(parse([]byte(out)), "Connect/auth", "Connect/tcp", "ns/op")
	require.NoError(t, err)
	assert.InDelta(t, 126.0/110, got, 1e-9, "unequal counts: ratio of medians")
}

// TestJudgeRoundTripReference checks that the connect and CPU goals show
// the bare round trip (tcp-1rtt) against plain TCP, and this library
// against the round trip, in their detail.
func TestJudgeRoundTripReference(t *testing.T) {
	const in = `BenchmarkConnect/tcp-2         	    5000	    100000 ns/op	    90000 cpu-ns/conn
BenchmarkConnect/tcp-1rtt-2    	    5000	    125000 ns/op	   100000 cpu-ns/conn
BenchmarkConnect/auth-2        	    4000	    150000 ns/op	   110000 cpu-ns/conn
BenchmarkConnectParallel4/tcp-2 	    6000	    90000 ns/op	   100000 cpu-ns/conn
BenchmarkConnectParallel4/tcp-1rtt-2	    6000	    95000 ns/op	   110000 cpu-ns/conn
BenchmarkConnectParallel4/auth-2	    5000	    99000 ns/op	   132000 cpu-ns/conn
`
	byName := map[string]verdict{}
	for _, v := range judge(parse([]byte(in))) {
		byName[v.goal.name] = v
	}
	v := byName["connect+auth+echo vs plain TCP"]
	assert.InDelta(t, 1.5, v.value, 1e-9)
	assert.Contains(t, v.note, "one extra round trip alone (tcp-1rtt): 1.25x, this library against it: 1.20x")
	v = byName["CPU per connection, 4 clients, vs plain TCP"]
	assert.InDelta(t, 1.32, v.value, 1e-9)
	assert.Contains(t, v.note, "one extra round trip alone (tcp-1rtt): 1.10x, this library against it: 1.20x")
}
