# Performance: run every benchmark briefly through the report command, so
# neither the benchmarks nor the report machinery can rot. A quick run does
# not judge the goals (this machine is shared and noisy); the committed
# BENCHMARKS.md comes from a full run: go run ./internal/benchreport
echo "== perf: benchmarks and report (quick)"
go run ./internal/benchreport -quick
