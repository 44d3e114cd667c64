# coretests: run the examples (each exits non-zero if anything unexpected
# happens) and fuzz every parser of the core briefly, one target per
# invocation as go test requires.
echo "== examples"
go run ./examples/echo
go run ./examples/http

# The fuzzing budget is a count of executions, not a duration: with a
# duration, Go 1.26's fuzz coordinator can report a spurious "context
# deadline exceeded" failure when the time is up on a loaded machine
# (golang/go#75804, fixed in Go 1.27). 30000 executions take a few seconds.
echo "== fuzz (core parsers)"
for target in FuzzClientHello FuzzServerHello FuzzParseKey; do
	go test -run '^$' -fuzz "^${target}\$" -fuzztime 30000x .
done
