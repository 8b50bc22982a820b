#!/usr/bin/env python3
"""TCPD, cross-validated: cased's offline `segment` (PELT) or its streaming BOCPD detector.

    .venv/bin/python examples/eval/tcpd_cv.py --method segment --data DIR \
        --scorer ../shared/eval/tcpd_score.py [--folds 5] [--out pred.json]
    .venv/bin/python examples/eval/tcpd_cv.py --method bocpd --data DIR \
        --scorer ../shared/eval/tcpd_score.py [--bin PATH]

Every <name>/<name>.json under --data (TCPD's format: `series[d].raw`) is run under each setting
of a grid and scored per series with TCPDBench's F1 (margin 5) and covering, through the scorer
given. A multivariate series runs per dimension; changes closer than 5 rows are merged.

- `segment`: the whole series is segmented (TCPD's default experiment is offline); missing
  values are filled by linear interpolation so indices stay aligned. Grid: cost
  (`normal_meanvar`, `normal_mean`), penalty 4, 8, 12, 20, 30 × ln n (one rule for every series;
  4 ln n is MBIC for `normal_meanvar`), minimum segment (2, 5, 10), and the penalty scaled or not
  by the residuals' autocorrelation, (1 + ρ)/(1 − ρ) (`ar`).
- `bocpd`: the `changepoints` mode of the `score_series` example (causal; missing values
  skipped). Grid: expected run (100, 250, 1000), threshold (0.5, 0.8, 0.95, 0.99), prior scale
  (0.1, 0.3, 1, 3), minimum distance (5, 10, 20, 40).

Prints (1) the method's defaults on every series, (2) the k-fold cross-validated figure: for
each fold, the setting with the best mean of F1 and cover on the *other* folds is scored on the
fold (its own score is never looked at when choosing), with the mean and spread over folds, and
(3) the best setting on all the series (tuned on what it is scored on: an optimistic bound,
shown for the gap). --out writes the predictions of the setting chosen on all the series (the
one a user would ship).
"""
import argparse
import importlib.util
import itertools
import math
import json
import os
import statistics
import sys

import cased

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _runner  # noqa: E402

# Penalties: the named rules, or `k · ln n` per change (a number: the same rule for every
# series, scaled by its length; MBIC is 4 ln n for `normal_meanvar`, 3 ln n for `normal_mean`).
SEGMENT_GRID = [
    {"cost": c, "penalty": p, "min_size": m, "ar": ar}
    for c, p, m, ar in itertools.product(
        ["normal_meanvar", "normal_mean"], [4, 8, 12, 20, 30], [2, 5, 10], [False, True]
    )
]
SEGMENT_DEFAULT = {"cost": "normal_meanvar", "penalty": 4, "min_size": 2, "ar": False}

BOCPD_GRID = [
    {"expected_run": e, "threshold": t, "prior_scale": p, "min_distance": m}
    for e, t, p, m in itertools.product([100, 250, 1000], [0.5, 0.8, 0.95, 0.99], [0.1, 0.3, 1, 3], [5, 10, 20, 40])
]
BOCPD_DEFAULT = {"expected_run": 100, "threshold": 0.95, "prior_scale": 0.1, "min_distance": 20}


def load_scorer(path):
    spec = importlib.util.spec_from_file_location("tcpd_score", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def interpolate(raw):
    """Missing values (None) filled linearly between neighbours (ends: nearest value)."""
    known = [i for i, v in enumerate(raw) if v is not None]
    if not known:
        return [0.0] * len(raw)
    out = [float(v) if v is not None else None for v in raw]
    for i in range(len(out)):
        if out[i] is None:
            left = max((k for k in known if k < i), default=None)
            right = min((k for k in known if k > i), default=None)
            if left is None:
                out[i] = out[right]
            elif right is None:
                out[i] = out[left]
            else:
                w = (i - left) / (right - left)
                out[i] = out[left] * (1 - w) + out[right] * w
    return out


def merge(points, distance=5):
    out = []
    for p in sorted(points):
        if not out or p - out[-1] >= distance:
            out.append(p)
    return out


def predict_bocpd(series, config, binary):
    """Change indices of one TCPD series under one BOCPD setting."""
    extra = [
        "--expected-run", str(config["expected_run"]), "--threshold", str(config["threshold"]),
        "--prior-scale", str(config["prior_scale"]), "--min-distance", str(config["min_distance"]),
    ]
    points = []
    for dim in series:
        points.extend(json.loads(_runner.run(binary, "changepoints", dim, extra)))
    return merge(points)


def predict_segment(series, config):
    """Change indices of one TCPD series under one `segment` setting: penalty `penalty · ln n`,
    with `ar` corrected by the core for the residuals' autocorrelation (`autocorrelation`)."""
    points = []
    for dim in series:
        values = interpolate(dim)
        if len(values) < 2 * config["min_size"]:
            continue
        setting = {
            "cost": config["cost"],
            "min_size": config["min_size"],
            "penalty": config["penalty"] * math.log(len(values)),
            "autocorrelation": config["ar"],
        }
        points.extend(cased.segment(values, setting)["changes"])
    return merge(points)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", choices=["segment", "bocpd"], required=True)
    ap.add_argument("--bin", help="bocpd: the score_series binary (default: build it in release mode)")
    ap.add_argument("--data", required=True)
    ap.add_argument("--scorer", required=True, help="path of tcpd_score.py")
    ap.add_argument("--annotations", help="annotations.json (default: next to the scorer's TCPD/)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--out")
    a = ap.parse_args()
    scorer = load_scorer(a.scorer)
    with open(a.annotations or scorer.DEF_ANN) as fh:
        ann = json.load(fh)

    series = {}
    for name in sorted(os.listdir(a.data)):
        path = os.path.join(a.data, name, name + ".json")
        if os.path.exists(path):
            with open(path) as fh:
                series[name] = [d["raw"] for d in json.load(fh)["series"]]
    names = sorted(series)

    if a.method == "segment":
        grid, default, predict = SEGMENT_GRID, SEGMENT_DEFAULT, predict_segment
    else:
        binary = _runner.score_series_bin(a.bin)
        grid, default = BOCPD_GRID, BOCPD_DEFAULT

        def predict(s, config):
            return predict_bocpd(s, config, binary)

    # per[setting index][name] = (f1, cover)
    per = []
    for config in grid:
        pred = {n: predict(series[n], config) for n in names}
        rows, _ = scorer.score(pred, ann, names, a.data)
        per.append({n: (rows[n]["f1"], rows[n]["cover"]) for n in names})

    def mean_of(i, subset):
        f1 = statistics.mean(per[i][n][0] for n in subset)
        cover = statistics.mean(per[i][n][1] for n in subset)
        return f1, cover

    d = grid.index(default)
    f1, cover = mean_of(d, names)
    print(f"defaults {default}: F1 {f1:.3f}  cover {cover:.3f}  (all {len(names)} series)")

    folds = [names[k :: a.folds] for k in range(a.folds)]
    fold_f1, fold_cover, chosen = [], [], []
    for k, test in enumerate(folds):
        train = [n for n in names if n not in test]
        best = max(range(len(grid)), key=lambda i: sum(mean_of(i, train)))
        chosen.append(grid[best])
        f1, cover = mean_of(best, test)
        fold_f1.append(f1)
        fold_cover.append(cover)
    print(
        f"{a.folds}-fold cross-validated: F1 {statistics.mean(fold_f1):.3f} ± {statistics.stdev(fold_f1):.3f}  "
        f"cover {statistics.mean(fold_cover):.3f} ± {statistics.stdev(fold_cover):.3f}  (mean ± sd over folds)"
    )
    for k, c in enumerate(chosen):
        print(f"  fold {k + 1}: chose {c}: F1 {fold_f1[k]:.3f} cover {fold_cover[k]:.3f}")
    best = max(range(len(grid)), key=lambda i: sum(mean_of(i, names)))
    f1, cover = mean_of(best, names)
    print(f"best on all series (optimistic): {grid[best]}: F1 {f1:.3f}  cover {cover:.3f}")

    if a.out:
        with open(a.out, "w") as fh:
            json.dump({n: predict(series[n], grid[best]) for n in names}, fh, indent=1)
        print(f"wrote the changes of {len(names)} series under {grid[best]} to {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
