# hardening: fuzz the whole-handshake targets briefly and report the flood
# latency and memory benchmarks. The attack, flood, burst and fd-limit tests
# already run in .ci/run's `go test -race -shuffle=on -count=1 ./...`
# (only -short skips the heavy ones, and .ci/run does not pass it).

# A count of executions, not a duration (golang/go#75804: Go 1.26's fuzz
# coordinator can fail spuriously when a -fuzztime duration ends on a loaded
# machine). 20000 executions take a few seconds per target.
echo "== hardening: fuzz whole handshakes"
for target in FuzzServerHandshake FuzzClientHandshake; do
	go test -run '^$' -fuzz "^${target}\$" -fuzztime 20000x .
done

# The goals (flood median at most 1.5x quiet; under 8 KiB per in-flight
# handshake; under 1 KiB per idle connection beyond raw TCP) are reported
# here, not asserted: performance goals live in benchmarks.
echo "== hardening: benchmarks"
go test -run '^$' -bench '^BenchmarkGoodClientLatency$' -benchtime 500x .
go test -run '^$' -bench '^BenchmarkMemory' -benchtime 3x .
