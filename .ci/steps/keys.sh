# Steps for key files, the KeyStore and cmd/hmacauth (branch keys).
# Sourced by .ci/run from the repo root, as root, with set -euo pipefail and
# CI=true.

# The end-to-end tests of cmd/hmacauth need a real Redis. Under CI=true a
# missing redis-server or redis-cli fails them (they never skip), so these
# lines must run BEFORE the root `go test ./...`.
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server redis-tools
fi

echo "== keys: fuzz the key file parser"
go test -run '^$' -fuzz '^FuzzParseKeyFile$' -fuzztime 30000x .

echo "== keys: hmacauth builds as one static binary"
keys_bin_dir=$(mktemp -d)
CGO_ENABLED=0 go build -trimpath -o "$keys_bin_dir/hmacauth" ./cmd/hmacauth
if ldd "$keys_bin_dir/hmacauth" >/dev/null 2>&1; then
  echo "hmacauth is dynamically linked"; ldd "$keys_bin_dir/hmacauth"; exit 1
fi
"$keys_bin_dir/hmacauth" help >/dev/null
"$keys_bin_dir/hmacauth" keygen --id ci-check | grep -Eq '^ci-check [A-Za-z0-9+/]{43}=$'
rm -rf "$keys_bin_dir"
