# coretests: run the examples (each exits non-zero if anything unexpected
# happens) and fuzz every parser of the core for a few seconds, one target
# per invocation as go test requires.
echo "== examples"
go run ./examples/echo
go run ./examples/http

echo "== fuzz (core parsers)"
for target in FuzzClientHello FuzzServerHello FuzzParseKey; do
	go test -run '^$' -fuzz "^${target}\$" -fuzztime 5s .
done
