#!/usr/bin/env python3
"""cased's Python detector API side by side with numpy and river (issue 5), same inputs, answers
compared before timing counts.

    python3 -m venv /tmp/peers && /tmp/peers/bin/pip install numpy river maturin
    /tmp/peers/bin/maturin build --release -m cased-py/Cargo.toml -o /tmp/wheels
    /tmp/peers/bin/pip install --force-reinstall /tmp/wheels/cased-*.whl
    /tmp/peers/bin/python benches/peers_python_api.py

Batch (1,000,000 points, N(100, 10) with a spike of 400 every 1000, window 60):
  * cased `Detector({"type": "spike"}).detect(numpy array)` — the default (hopping reference) and
    the exact rolling form (`refresh: 1`);
  * numpy, the same exact rolling robust z (median / MAD over `sliding_window_view`): must give the
    same alarms as cased's exact form;
  * numpy, the hopping robust z (median / MAD per block of `window` values, row i judged against
    the block before the one it is in): must give the same alarms as cased's default;
  * numpy, the issue's peer: a rolling mean / std z-score (cumulative sums), vectorised.
Per point (100,000 points of the same series, one Python call per value):
  * cased `Detector.update(x)` (spike, CUSUM);
  * river `anomaly.GaussianScorer(window_size=60)`: `score_one` then `learn_one` per value.
Times are medians of `--reps` runs, per point.
"""
import argparse
import sys

import numpy as np

import cased
from _peers import med, numpy_hopping_robust_z_alarms, numpy_robust_z_alarms, numpy_rolling_z_alarms

def series(n):
    rng = np.random.default_rng(1)
    xs = 100.0 + 10.0 * rng.normal(size=n)
    xs[999::1000] = 400.0
    return xs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    import river

    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, river {river.__version__}, cased {cased.__version__}")
    w, t = 60, 3.5
    xs = series(1_000_000)
    n = len(xs)

    def spike(**extra):
        return cased.Detector({"type": "spike", "metric": "m", "window": w, "min_samples": w, "threshold": t, **extra})

    exact_found = spike(refresh=1).detect(xs)
    want = numpy_robust_z_alarms(xs, w, t)
    assert len(exact_found) == want, (len(exact_found), want)
    print(f"same answer: cased exact robust z and numpy median/MAD both raise {want} alarms")
    default_found = spike().detect(xs)
    want = numpy_hopping_robust_z_alarms(xs, w, t)
    assert len(default_found) == want, (len(default_found), want)
    print(f"same answer: cased default (hopping) robust z and numpy block median/MAD both raise {want} alarms")

    rows = []
    tc, found = med(lambda: spike().detect(xs), a.reps)
    rows.append(("cased Detector(spike).detect, default", tc, len(found)))
    tc, found = med(lambda: spike(refresh=1).detect(xs), a.reps)
    rows.append(("cased Detector(spike, refresh=1).detect, exact", tc, len(found)))
    tn, alarms = med(lambda: numpy_robust_z_alarms(xs, w, t), max(1, a.reps // 2))
    rows.append(("numpy rolling median/MAD z (same answer as exact)", tn, alarms))
    tn, alarms = med(lambda: numpy_hopping_robust_z_alarms(xs, w, t), a.reps)
    rows.append(("numpy block median/MAD z (same answer as default)", tn, alarms))
    tz, alarms = med(lambda: numpy_rolling_z_alarms(xs, w, t), a.reps)
    rows.append(("numpy rolling mean/std z (the issue's peer)", tz, alarms))
    print(f"\nbatch, {n:,} points, window {w}:")
    for name, secs, k in rows:
        print(f"  {name:<52} {secs / n * 1e9:9.1f} ns/point  ({k} alarms)")

    m = 100_000
    ys = [float(v) for v in xs[:m]]

    def per_point_spike():
        d = spike()
        upd = d.update
        return sum(1 for y in ys if upd(y) is not None)

    def per_point_cusum():
        d = cased.Detector({"type": "cusum", "metric": "m"})
        upd = d.update
        return sum(1 for y in ys if upd(y) is not None)

    def per_point_river():
        from river import anomaly

        g = anomaly.GaussianScorer(window_size=w, grace_period=w)
        hits = 0
        for y in ys:
            if g.score_one(None, y) > 0.9995:  # |z| > 3.5 for a normal
                hits += 1
            g.learn_one(None, y)
        return hits

    def per_point_loop():
        return sum(1 for y in ys if y > 1e300)

    print(f"\nper point, {m:,} values, one Python call each:")
    for name, f in [
        ("cased Detector(spike).update", per_point_spike),
        ("cased Detector(cusum).update", per_point_cusum),
        ("river GaussianScorer(window 60) score_one+learn_one", per_point_river),
        ("bare Python loop (floor)", per_point_loop),
    ]:
        secs, k = med(f, a.reps)
        print(f"  {name:<52} {secs / m * 1e9:9.1f} ns/point  ({k} alarms)")


if __name__ == "__main__":
    main()
