#!/usr/bin/env bash
# Health-check throughput (issue 4) and its peers, against nginx-light on loopback answering
# 200 "ok". From the repository root:
#
#   bash benches/checks/run.sh            # N=20000 C=64 ROUNDS=3 by default
#
# Needs nginx-light and wrk (Debian: apt-get install -y nginx-light wrk) and python3-venv.
# Peers are installed into a throwaway venv under /tmp (never committed). Prints one JSON line
# per run, ROUNDS rounds each; BENCHMARKS.md reports the medians.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${N:-20000}
C=${C:-64}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-18080}
WORK=${WORK:-/tmp/cased-bench-checks}
mkdir -p "$WORK"

command -v nginx >/dev/null && command -v wrk >/dev/null || {
    echo "install nginx-light and wrk first: apt-get install -y nginx-light wrk" >&2; exit 1; }

cat > "$WORK/nginx.conf" <<CONF
worker_processes 2;
pid $WORK/nginx.pid;
error_log $WORK/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$PORT reuseport backlog=4096;
        location / { default_type text/plain; return 200 "ok"; }
    }
}
CONF
[ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null && sleep 0.5 || true
nginx -c "$WORK/nginx.conf" -p "$WORK"
trap 'kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true' EXIT
URL="http://127.0.0.1:$PORT/"
curl -fsS "$URL" >/dev/null

if [ ! -x "$WORK/venv/bin/python" ]; then
    python3 -m venv "$WORK/venv"
    "$WORK/venv/bin/pip" install -q --disable-pip-version-check aiohttp uvloop
fi
cargo build -q --release -p cased-benches --example checks_load
LOAD=${CARGO_TARGET_DIR:-target}/${CARGO_BUILD_TARGET:+$CARGO_BUILD_TARGET/}release/examples/checks_load

echo "# machine: $(nproc) cores; $(uname -r); N=$N C=$C; $(uptime)"
for round in $(seq "$ROUNDS"); do
    echo "# round $round; $(uptime)"
    wrk -t2 -c"$C" -d10s "$URL" | awk '/Requests\/sec/ {printf "{\"mode\":\"wrk\",\"checks_per_s\":%d}\n", $2}'
    "$LOAD" reqwest-raw "$URL" "$N" "$C"
    "$LOAD" http-pooled "$URL" "$N" "$C"
    "$LOAD" http-fresh "$URL" "$N" "$C"
    "$LOAD" tcp "127.0.0.1:$PORT" "$N" "$C"
    "$WORK/venv/bin/python" benches/checks/peers.py http-pooled "$URL" "$N" "$C"
    "$WORK/venv/bin/python" benches/checks/peers.py http-close "$URL" "$N" "$C"
    "$WORK/venv/bin/python" benches/checks/peers.py tcp "127.0.0.1:$PORT" "$N" "$C"
done
