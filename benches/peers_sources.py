#!/usr/bin/env python3
"""The exposition parser side by side with prometheus_client's parser, same bytes, same answer.

    /work/main/.venv/bin/pip install prometheus_client    # or: pip install -r benches/requirements-sources.txt
    cargo bench -p cased-benches --bench sources           # writes $TMPDIR/cased-bench-sources/{page.txt,answer.json}
    python benches/peers_sources.py [--dir $TMPDIR/cased-bench-sources]

Parses the 1,000-series page that the Rust bench wrote with
`prometheus_client.parser.text_string_to_metric_families` (all families and samples
materialised), checks the series count and value sum against the bench's own answer, then
prints the median wall and thread-CPU time per page and pages per second.
"""
import argparse
import json
import math
import os
import sys
import tempfile
import time

import prometheus_client
from prometheus_client.parser import text_string_to_metric_families


def parse(page):
    n, total = 0, 0.0
    for family in text_string_to_metric_families(page):
        for s in family.samples:
            n += 1
            total += s.value
    return n, total


def median(clock, f, reps):
    ts = []
    for _ in range(reps):
        t = clock()
        f()
        ts.append(clock() - t)
    ts.sort()
    return ts[len(ts) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "cased-bench-sources"))
    ap.add_argument("--reps", type=int, default=200)
    a = ap.parse_args()
    with open(os.path.join(a.dir, "page.txt")) as f:
        page = f.read()
    with open(os.path.join(a.dir, "answer.json")) as f:
        want = json.load(f)
    n, total = parse(page)
    assert n == want["series"] and math.isclose(total, want["sum"], rel_tol=1e-12), (n, total, want)
    version = getattr(prometheus_client, "__version__", None)
    if version is None:
        from importlib.metadata import version as v

        version = v("prometheus_client")
    print(f"prometheus_client {version}, python {sys.version.split()[0]}: same answer ({n} series, sum {total})")
    for name, clock in [("wall", time.perf_counter), ("thread_cpu", time.thread_time)]:
        t = median(clock, lambda: parse(page), a.reps)
        print(f"text_string_to_metric_families 1000 series ({name}): median {t * 1e6:.0f} us, {1 / t:.0f} pages/s")


if __name__ == "__main__":
    main()
