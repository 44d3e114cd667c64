// Command benchreport runs the package's benchmarks several times, takes
// medians, checks the performance goals (ratios between variants of the
// same run) and writes BENCHMARKS.md with a chart.
//
// From the module root:
//
//	go run ./internal/benchreport              # full run, writes BENCHMARKS.md, bench/chart.svg
//	go run ./internal/benchreport -count 3 -benchtime 200ms
//	go run ./internal/benchreport -quick       # a smoke run of the machinery, files in a temp dir
//	go run ./internal/benchreport -in out.txt  # report on saved `go test -bench` output
//
// Rounds are interleaved: every round runs every benchmark once, so a
// burst of load from elsewhere hits all variants alike. Benchmarks or
// variants missing from the output (for example a variant not built yet)
// show as n/a; they never fail the report.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

type options struct {
	count     int
	benchtime string
	bulktime  string
	quick     bool
	in        string
	raw       string
	md        string
	svg       string
	notes     string
	strict    bool
	dir       string
}

func run(args []string, stdout io.Writer) error {
	var o options
	fs := flag.NewFlagSet("benchreport", flag.ContinueOnError)
	fs.IntVar(&o.count, "count", 9, "rounds; each round runs every benchmark once")
	fs.StringVar(&o.benchtime, "benchtime", "500ms", "-benchtime of the connect benchmarks")
	fs.StringVar(&o.bulktime, "bulktime", "500ms", "-benchtime of the bulk and proxy benchmarks (64 MiB per op)")
	fs.BoolVar(&o.quick, "quick", false, "one short round to check that the machinery works; writes to a temp dir unless -md/-svg are given; never judges the goals")
	fs.StringVar(&o.in, "in", "", "read `go test -bench` output from this file instead of running the benchmarks")
	fs.StringVar(&o.raw, "raw", "bench/results.txt", "save the raw benchmark output here (empty: do not)")
	fs.StringVar(&o.md, "md", "BENCHMARKS.md", "write the report here (empty: do not)")
	fs.StringVar(&o.svg, "svg", "bench/chart.svg", "write the chart here (empty: do not)")
	fs.StringVar(&o.notes, "notes", "bench/notes.md", "hand-written findings included in the report (optional)")
	fs.BoolVar(&o.strict, "strict", false, "exit non-zero if a goal is missed")
	fs.StringVar(&o.dir, "dir", ".", "module root holding the benchmarks")
	if err := fs.Parse(args); err != nil {
		return err
	}
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	if o.quick {
		o.count = 1
		if !explicit["benchtime"] {
			o.benchtime = "20x"
		}
		if !explicit["bulktime"] {
			o.bulktime = "2x"
		}
		tmp, err := os.MkdirTemp("", "benchreport")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		for name, p := range map[string]*string{"md": &o.md, "svg": &o.svg, "raw": &o.raw} {
			if !explicit[name] {
				*p = filepath.Join(tmp, filepath.Base(*p))
			}
		}
	}
	if o.count < 1 {
		return fmt.Errorf("-count %d: want at least 1", o.count)
	}

	var (
		out  []byte
		info machine
		err  error
	)
	info = describeMachine()
	if o.in != "" {
		if out, err = os.ReadFile(o.in); err != nil {
			return err
		}
		if !info.readMeta(out) {
			info.source = o.in
		}
	} else {
		if out, err = runBenchmarks(o, &info, stdout); err != nil {
			return err
		}
	}
	res := parse(out)
	if len(res.samples) == 0 {
		return fmt.Errorf("no benchmark results found")
	}
	if res.cpu != "" {
		info.cpu = res.cpu
	}
	if o.raw != "" && o.in == "" {
		if err := writeFile(o.raw, out); err != nil {
			return err
		}
	}
	verdicts := judge(res)
	printSummary(stdout, res, verdicts, o.quick)

	if o.svg != "" {
		if err := writeFile(o.svg, chart(res)); err != nil {
			return err
		}
	}
	if o.md != "" {
		var notes []byte
		if o.notes != "" {
			notes, _ = os.ReadFile(filepath.Join(o.dir, o.notes)) // optional
		}
		svgRef := ""
		if o.svg != "" {
			if rel, err := filepath.Rel(filepath.Dir(o.md), o.svg); err == nil {
				svgRef = filepath.ToSlash(rel)
			}
		}
		if err := writeFile(o.md, markdown(res, verdicts, info, o, svgRef, notes)); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s", o.md)
		if o.svg != "" {
			fmt.Fprintf(stdout, " and %s", o.svg)
		}
		fmt.Fprintln(stdout)
	}
	if o.quick {
		// The smoke run checks the machinery: every goal's inputs must be
		// there, whatever the numbers say.
		for _, v := range verdicts {
			if !v.ok {
				return fmt.Errorf("quick run: goal %q has no data (%s)", v.goal.name, v.note)
			}
		}
		fmt.Fprintln(stdout, "quick run: report machinery OK (goals not judged on a quick run)")
		return nil
	}
	if o.strict {
		for _, v := range verdicts {
			if v.ok && !v.pass {
				return fmt.Errorf("goal missed: %s", v.goal.name)
			}
		}
	}
	return nil
}

func writeFile(path string, data []byte) error {
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	return os.WriteFile(path, data, 0o644)
}

// benchGroups are the go test -bench patterns run in each round, with the
// benchtime each takes.
func benchGroups(o options) [][2]string {
	return [][2]string{
		{"^Benchmark(Connect|ConnectParallel4|Handshake)$", o.benchtime},
		{"^Benchmark(Bulk|Proxy)$", o.bulktime},
	}
}

// runBenchmarks builds the test binary once and runs it o.count rounds.
func runBenchmarks(o options, info *machine, progress io.Writer) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "benchreport-bin")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "auth.test")
	build := exec.Command("go", "test", "-c", "-o", bin, ".")
	build.Dir = o.dir
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("building the benchmarks: %w", err)
	}
	info.loadBefore = loadavg()
	info.date = time.Now().UTC().Format("2006-01-02 15:04 MST")
	start := time.Now()
	var all bytes.Buffer
	for round := 1; round <= o.count; round++ {
		for _, g := range benchGroups(o) {
			fmt.Fprintf(progress, "round %d/%d: %s (benchtime %s)\n", round, o.count, g[0], g[1])
			cmd := exec.Command(bin, "-test.run", "^$", "-test.bench", g[0], "-test.benchtime", g[1], "-test.count", "1")
			cmd.Dir = o.dir
			cmd.Stderr = os.Stderr
			out, err := cmd.Output()
			all.Write(out)
			if err != nil {
				os.Stderr.Write(out)
				return nil, fmt.Errorf("running %s: %w", g[0], err)
			}
		}
	}
	info.loadAfter = loadavg()
	info.took = time.Since(start).Round(time.Second)
	info.rounds = o.count
	info.benchtime, info.bulktime = o.benchtime, o.bulktime
	return append(info.meta(), all.Bytes()...), nil
}

// metaPrefix starts the lines that record the machine in the raw output,
// so that a report made later with -in still says where the numbers come
// from.
const metaPrefix = "benchreport-meta: "

func (m *machine) fields() map[string]*string {
	return map[string]*string{
		"cpu": &m.cpu, "kernel": &m.kernel, "go": &m.goVersion, "date": &m.date,
		"load-before": &m.loadBefore, "load-after": &m.loadAfter,
		"benchtime": &m.benchtime, "bulktime": &m.bulktime,
	}
}

func (m *machine) meta() []byte {
	var b bytes.Buffer
	for k, p := range m.fields() {
		fmt.Fprintf(&b, "%s%s=%s\n", metaPrefix, k, *p)
	}
	fmt.Fprintf(&b, "%scores=%d\n%srounds=%d\n%stook=%s\n", metaPrefix, m.cores, metaPrefix, m.rounds, metaPrefix, m.took)
	return b.Bytes()
}

// readMeta fills m from the meta lines of saved output and reports whether
// there were any.
func (m *machine) readMeta(out []byte) bool {
	found := false
	f := m.fields()
	for _, line := range strings.Split(string(out), "\n") {
		kv, ok := strings.CutPrefix(line, metaPrefix)
		if !ok {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		found = true
		switch k {
		case "cores":
			fmt.Sscan(v, &m.cores)
		case "rounds":
			fmt.Sscan(v, &m.rounds)
		case "took":
			m.took, _ = time.ParseDuration(v)
		default:
			if p, ok := f[k]; ok {
				*p = v
			}
		}
	}
	return found
}

// machine describes where the numbers come from.
type machine struct {
	cpu, kernel, goVersion string
	cores                  int
	loadBefore, loadAfter  string
	date                   string
	took                   time.Duration
	rounds                 int
	benchtime, bulktime    string
	source                 string
}

func describeMachine() machine {
	m := machine{
		cores:     runtime.NumCPU(),
		date:      time.Now().UTC().Format("2006-01-02 15:04 MST"),
		goVersion: runtime.Version(),
	}
	if out, err := exec.Command("go", "env", "GOVERSION").Output(); err == nil {
		m.goVersion = strings.TrimSpace(string(out))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = "Linux " + strings.TrimSpace(string(b))
	} else {
		m.kernel = runtime.GOOS
	}
	return m
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
