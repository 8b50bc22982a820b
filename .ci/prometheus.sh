#!/usr/bin/env bash
# Installs the Debian `prometheus` package when it is missing, for tests/prometheus.rs (which
# starts its own server on loopback). Prints the export line for CASED_TEST_PROMETHEUS_BIN.
set -euo pipefail
if ! command -v prometheus >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    echo "prometheus: installing the Debian package" >&2
    $SUDO apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends prometheus >&2
    # The package starts a system service we do not use; the test runs its own server.
    ($SUDO systemctl stop prometheus 2>/dev/null || $SUDO service prometheus stop 2>/dev/null || true) >&2
fi
echo "export CASED_TEST_PROMETHEUS_BIN=$(command -v prometheus)"
