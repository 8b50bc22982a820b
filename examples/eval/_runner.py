"""Shared helpers of the evaluation runners: find (or build) cased's `score_series` example
binary and run it on one series.

The runners call the Rust detectors through this binary (stdin: one value per line). The Python
package exposes the detectors too, but the binary keeps the runners free of a Python build and
keeps the detector set in one place (`cased-core/examples/score_series.rs`); switching to the
Python binding would change only this file.
"""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def score_series_bin(explicit=None):
    """Path of the score_series binary: --bin, $CASED_SCORE_SERIES, or built in release mode."""
    path = explicit or os.environ.get("CASED_SCORE_SERIES")
    if path:
        return path
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    triple = os.environ.get("CARGO_BUILD_TARGET")
    path = os.path.join(target, *([triple] if triple else []), "release", "examples", "score_series")
    print("building cased-core's score_series example (release)...", file=sys.stderr)
    subprocess.run(
        ["cargo", "build", "-q", "--release", "-p", "cased-core", "--example", "score_series"],
        cwd=ROOT,
        check=True,
    )
    return path


def run(binary, mode, values, extra=()):
    """Feeds `values` (floats or None for missing) to the binary; returns its stdout."""
    text = "\n".join("" if v is None else repr(float(v)) for v in values) + "\n"
    r = subprocess.run([binary, mode, *extra], input=text, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"score_series {mode} failed: {r.stderr.strip()}")
    return r.stdout
