#!/usr/bin/env bash
# Takes docs/mission-control.png: runs `cased demo --serve` on a free loopback port in a fresh
# store, waits (bounded) for its "Mission Control at" line, screenshots the board with headless
# Chromium (Debian's `chromium`, or $CASED_TEST_CHROMIUM), and stops the demo.
#
#   bash examples/mission-control-screenshot.sh [OUTPUT.png]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/mission-control.png}"
browser="${CASED_TEST_CHROMIUM:-chromium}"
work="$(mktemp -d)"
cargo build -q -p cased-cli
cased="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
bin="$cased/${CARGO_BUILD_TARGET:+$CARGO_BUILD_TARGET/}debug/cased"
"$bin" demo --serve --listen 127.0.0.1:0 --out "$work/.cased" 2>"$work/demo.log" &
demo=$!
trap 'kill "$demo" 2>/dev/null || true; rm -rf "$work"' EXIT
url=""
for _ in $(seq 1 300); do   # at most 60 s
  url="$(sed -n 's/^cased demo: Mission Control at \([^ ]*\).*/\1/p' "$work/demo.log")"
  [ -n "$url" ] && break
  kill -0 "$demo" 2>/dev/null || { cat "$work/demo.log"; exit 1; }
  sleep 0.2
done
[ -n "$url" ] || { echo "the demo did not come up:"; cat "$work/demo.log"; exit 1; }
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,300 \
  --virtual-time-budget=3000 --screenshot="$PWD/$out" "$url" 2>/dev/null
echo "wrote $out from $url"
