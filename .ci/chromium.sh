#!/usr/bin/env bash
# Installs Debian's `chromium` package when it is missing, for cased-cli/tests/mission_control.rs
# (Mission Control in a real headless browser, driven over the DevTools protocol; no browser
# download). Prints the export line for CASED_TEST_CHROMIUM.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    echo "chromium: installing the Debian package" >&2
    $SUDO apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends chromium >&2
fi
echo "export CASED_TEST_CHROMIUM=$(command -v chromium)"
