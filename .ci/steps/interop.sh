# interop: Python interoperability (WithRecipe and mpcompat).
# The tests of both packages start real python3 processes; under CI=true a
# missing python3 fails them, so make sure there is one.
if ! command -v python3 >/dev/null 2>&1; then
  apt-get update
  apt-get install -y python3
fi
python3 --version

echo "== interop: go run ./examples/python"
timeout 120 go run ./examples/python

echo "== interop: fuzz mpcompat parsers"
for target in FuzzRecvBytes FuzzDigestNameAndPayload FuzzHandshake; do
  go test -run '^$' -fuzz "^${target}\$" -fuzztime 20000x ./mpcompat
done
