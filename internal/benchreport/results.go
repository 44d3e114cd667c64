package main

import (
	"bufio"
	"bytes"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// results holds every sample of every benchmark and metric, by benchmark
// name without the GOMAXPROCS suffix ("Connect/auth") and unit ("ns/op").
type results struct {
	samples map[string]map[string][]float64
	order   []string // benchmark names in first-seen order
	cpu     string
}

var procSuffix = regexp.MustCompile(`-\d+$`)

// parse reads the text output of go test -bench. Lines that are not
// benchmark results are ignored, so the output of several runs can be
// concatenated.
func parse(out []byte) *results {
	r := &results{samples: map[string]map[string][]float64{}}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if cpu, ok := strings.CutPrefix(line, "cpu: "); ok {
			r.cpu = strings.TrimSpace(cpu)
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue // not a result line
		}
		name := procSuffix.ReplaceAllString(strings.TrimPrefix(f[0], "Benchmark"), "")
		m := r.samples[name]
		if m == nil {
			m = map[string][]float64{}
			r.samples[name] = m
			r.order = append(r.order, name)
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			m[f[i+1]] = append(m[f[i+1]], v)
		}
	}
	return r
}

// median returns the median of a benchmark's metric and whether there was
// any sample.
func (r *results) median(name, unit string) (float64, bool) {
	s := slices.Clone(r.samples[name][unit])
	if len(s) == 0 {
		return 0, false
	}
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2], true
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2, true
}

// runs returns how many samples a benchmark has.
func (r *results) runs(name string) int { return len(r.samples[name]["ns/op"]) }

// groups returns the benchmark groups ("Connect") in order, each with its
// variants ("tcp", "auth") in order.
func (r *results) groups() (names []string, variants map[string][]string) {
	variants = map[string][]string{}
	for _, n := range r.order {
		g, v, ok := strings.Cut(n, "/")
		if !ok {
			continue
		}
		if _, seen := variants[g]; !seen {
			names = append(names, g)
		}
		variants[g] = append(variants[g], v)
	}
	return names, variants
}
