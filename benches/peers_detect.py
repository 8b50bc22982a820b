#!/usr/bin/env python3
"""Side-by-side with Python peers (issue 5), same inputs, answers compared before timing counts.

    python -m venv /tmp/v && /tmp/v/bin/pip install numpy scipy pymannkendall changepoint ruptures
    cargo build --release -p cased-core --example score_series
    /tmp/v/bin/python benches/peers_detect.py [--bin target/release/examples/score_series]

Peers: numpy rolling z-score (1M points, window 60), scipy.stats.mannwhitneyu (1000 vs 1000),
pymannkendall.original_test and scipy.stats.theilslopes (n = 1000), and for changepoints on 10,000
points with a mean shift every 2,000: `changepoint` (the Rust BOCPD crate that augurs wraps, through
its Python binding; augurs' own Python package has no changepoint detector) and ruptures Pelt
(l2 cost, jump 5). The Rust timings come from
criterion (`cargo bench -p cased-benches --bench detect`, same sizes and shapes); this script
checks, on its own inputs, that cased (through the score_series example) gives the same answers.
"""
import argparse
import json
import subprocess
import sys
import time

import numpy as np
import changepoint as cpd
import pymannkendall as mk
import ruptures
import scipy
from _peers import med, numpy_robust_z_alarms, numpy_rolling_z_alarms
from scipy import stats


def cased(binary, mode, *series, extra=()):
    text = "\n\n".join("\n".join(repr(float(v)) for v in s) for s in series) + "\n"
    r = subprocess.run([binary, mode, *extra], input=text, capture_output=True, text=True, check=True)
    return [float(v) for v in r.stdout.split()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/examples/score_series")
    a = ap.parse_args()
    print(f"numpy {np.__version__}, scipy {scipy.__version__}, pymannkendall {mk.__version__}, python {sys.version.split()[0]}")
    rng = np.random.default_rng(2)
    x = np.round(rng.normal(0, 1, 1000), 2)
    y = np.round(rng.normal(0.1, 1, 1000), 2)
    r = stats.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic")
    u, p = cased(a.bin, "mwu", x, y)
    assert u == r.statistic and abs(p - r.pvalue) <= 1e-9 * max(r.pvalue, 1e-300), (u, p, r)
    t, _ = med(lambda: stats.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic"), 50)
    print(f"mwu 1000v1000: same U={u} p={p:.6g}; scipy median {t * 1e6:.1f} us")

    ramp = 0.01 * np.arange(1000) + rng.normal(0, 1, 1000)
    r = mk.original_test(ramp)
    s, z, tau, p = cased(a.bin, "mk", ramp)
    assert s == r.s and abs(z - r.z) < 1e-9 and abs(tau - r.Tau) < 1e-12, (s, z, tau, r)
    t, _ = med(lambda: mk.original_test(ramp), 5)
    print(f"mann_kendall 1000: same S={s:.0f} z={z:.6g}; pymannkendall median {t * 1e3:.2f} ms")
    ts = stats.theilslopes(ramp)
    slope, icpt = cased(a.bin, "theil_sen", ramp)
    assert abs(slope - ts.slope) < 1e-12 and abs(icpt - ts.intercept) < 1e-9, (slope, ts)
    t, _ = med(lambda: stats.theilslopes(ramp), 5)
    print(f"theil_sen 1000: same slope={slope:.6g}; scipy median {t * 1e3:.2f} ms")

    n, w = 1_000_000, 60
    xs = 100 + 10 * rng.normal(size=n)
    xs[999::1000] = 400.0

    want = numpy_robust_z_alarms(xs, w, 3.5)
    (got,) = cased(a.bin, "robust_z", xs, extra=("--window", str(w)))
    assert int(got) == want, (got, want)
    t1, _ = med(lambda: numpy_rolling_z_alarms(xs, w, 3.5), 3)
    t2, _ = med(lambda: numpy_robust_z_alarms(xs, w, 3.5), 1)
    print(f"rolling z 1M (w={w}): numpy mean/std {t1 / n * 1e9:.1f} ns/pt; "
          f"numpy median/MAD {t2 / n * 1e9:.1f} ns/pt (same {want} alarms as cased's SpikeDetector)")

    xs = np.array([(i // 2000) * 3.0 + v for i, v in enumerate(np.random.default_rng(3).normal(size=10_000))])
    text = "\n".join(repr(float(v)) for v in xs) + "\n"
    r = subprocess.run([a.bin, "changepoints"], input=text, capture_output=True, text=True, check=True)
    ours = json.loads(r.stdout)
    want = [2000, 4000, 6000, 8000]
    near = lambda found: len(found) == len(want) and all(abs(f - w) <= 5 for f, w in zip(found, want))
    assert near(ours), ours

    def bocpd_peer():
        b = cpd.Bocpd(cpd.NormalGamma(0.0, 1.0, 1.0, 1.0), 100.0)
        hist = [b.step(float(x)) for x in xs]
        return [i + 1 for i in cpd.map_changepoints(hist) if i > 0]  # index of the last value before -> first after

    t0 = time.perf_counter()
    theirs = bocpd_peer()
    t = time.perf_counter() - t0
    assert near(theirs), theirs
    print(f"bocpd 10k: cased {ours}, changepoint {theirs} (same within 5); changepoint {t / len(xs) * 1e6:.1f} us/pt (one run)")

    t0 = time.perf_counter()
    pelt = ruptures.Pelt(model="l2", jump=5).fit(xs).predict(pen=3 * np.log(len(xs)) * np.var(np.diff(xs)) / 2)[:-1]
    t = time.perf_counter() - t0
    assert near(pelt), pelt
    print(f"pelt 10k (jump 5): ruptures {pelt} (same within 5); ruptures {t:.2f} s (one run)")


if __name__ == "__main__":
    main()
