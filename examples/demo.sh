#!/usr/bin/env bash
# The demo `make demo` runs: a local mock deployments API, and one event posted to it from each
# of Rust (the `cased` command), Python and Node.
set -euo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
python3 -u examples/mock_api.py >"$log" &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 100); do grep -q '^listening on' "$log" && break; sleep 0.05; done
port=$(sed -n 's/^listening on //p' "$log")
base="http://127.0.0.1:$port"
echo "mock deployments API on $base"

cargo run -q -p cased-cli -- notify --base-url "$base" --api-key demo-key \
  -m "Deploy checkout v1.4.2 (from Rust)" --repository acme/checkout --commit-sha 4f2a9c1d \
  --ref refs/heads/main --status running --environment production
.venv/bin/python examples/python/notify.py "$base"
node examples/node/notify.mjs "$base"

echo
echo "what the server received:"
grep -v '^listening on' "$log"
count=$(grep -c '^\[mock API\]' "$log")
echo "$count of 3 events received"
[ "$count" -eq 3 ]
