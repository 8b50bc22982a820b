#!/usr/bin/env python3
"""NAB, cross-validated: the settings of cased's NAB detector chosen without looking at the files
they are scored on.

    .venv/bin/python examples/eval/nab_cv.py --data ../shared/eval/NAB/data \
        --scorer ../shared/eval/nab_score.py [--bin PATH] [--folds 6] [--detector context]

Every file runs through `score_series nab` (a `LikelihoodDetector`, strictly causal, threshold 0.5
fixed) under each setting of a grid: window (100, 200, 400) × quiet rows after an alarm (150,
200, 300, 400) × likelihood cut-off (3e-6, 1e-5, 3e-5) × range margin (2 %, 5 %, off). With
`--detector context` it is a `ContextDetector` and the grid is window (200, 400) × quiet rows
(150, 200, 300) × cut-off (3e-6, 1e-5, 3e-5) × range margin (2 %, 5 %) × context length (8, 16)
× gain (3, 5). The files
are split into k folds (every k-th file in key order); for each fold the setting with the best
normalised standard score on the *other* folds is scored on the fold. Prints, for each profile
(standard, low FP, low FN): the defaults on all files, the cross-validated score pooled over the
folds (each file scored under the setting chosen without it, normalised over all files, so it
reads like the all-files figure) with the mean ± sd of the per-fold scores, and the best setting
on all files (tuned on what it is scored on: the optimistic bound).
"""
import argparse
import importlib.util
import itertools
import os
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _runner  # noqa: E402

GRIDS = {
    "likelihood": [
        {"window": w, "refractory": q, "lik_eps": e, "range_margin": m}
        for w, q, e, m in itertools.product([100, 200, 400], [150, 200, 300, 400], [3e-6, 1e-5, 3e-5], [0.02, 0.05, -1])
    ],
    "context": [
        {"window": w, "refractory": q, "lik_eps": e, "range_margin": m, "context": c, "gain": g}
        for w, q, e, m, c, g in itertools.product([200, 400], [150, 200, 300], [3e-6, 1e-5, 3e-5], [0.02, 0.05], [8, 16], [3, 5])
    ],
}
DEFAULTS = {
    "likelihood": {"window": 200, "refractory": 200, "lik_eps": 1e-5, "range_margin": 0.05},
    "context": {"window": 400, "refractory": 200, "lik_eps": 1e-5, "range_margin": 0.02, "context": 16, "gain": 5},
}
PROFILES = ["standard", "reward_low_FP_rate", "reward_low_FN_rate"]


def load_scorer(path):
    spec = importlib.util.spec_from_file_location("nab_score", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def read_values(path):
    import csv

    with open(path, newline="") as fh:
        out = []
        for row in csv.DictReader(fh):
            try:
                out.append(float(row["value"]))
            except ValueError:
                out.append(None)
        return out


FLAGS = {
    "window": "--window", "refractory": "--refractory", "lik_eps": "--lik-eps",
    "range_margin": "--range-margin", "context": "--context", "gain": "--gain",
}


def scores_of(binary, values, setting, detector):
    extra = ["--detector", detector]
    for key, value in setting.items():
        extra += [FLAGS[key], str(value)]
    return [float(line) for line in _runner.run(binary, "nab", values, extra).split()]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--scorer", required=True, help="path of nab_score.py")
    ap.add_argument("--windows", help="combined_windows.json (default: the scorer's)")
    ap.add_argument("--bin", help="the score_series binary (default: build it in release mode)")
    ap.add_argument("--folds", type=int, default=6)
    ap.add_argument("--detector", choices=sorted(GRIDS), default="likelihood")
    ap.add_argument("--parallel", type=int, default=os.cpu_count() or 2)
    a = ap.parse_args()
    GRID = GRIDS[a.detector]
    nab = load_scorer(a.scorer)
    binary = _runner.score_series_bin(a.bin)
    corpus = nab.Corpus(a.data, a.windows or nab.DEF_WINDOWS)
    keys = corpus.keys
    values = {k: read_values(os.path.join(a.data, k)) for k in keys}

    # raw[setting][profile][key]: the file's raw NAB score at threshold 0.5.
    def run(i):
        scores = {k: scores_of(binary, values[k], GRID[i], a.detector) for k in keys}
        return {p: nab.score_at_threshold(corpus, scores, p, 0.5)[1] for p in PROFILES}

    with ThreadPoolExecutor(a.parallel) as pool:
        raw = list(pool.map(run, range(len(GRID))))

    def norm(i, p, subset):
        return nab.normalize(corpus, sum(raw[i][p][k] for k in subset), p, keys=subset)

    d = GRID.index(DEFAULTS[a.detector])
    folds = [keys[f :: a.folds] for f in range(a.folds)]
    chosen = []
    for test in folds:
        train = [k for k in keys if k not in test]
        chosen.append(max(range(len(GRID)), key=lambda i: norm(i, "standard", train)))
    best_all = max(range(len(GRID)), key=lambda i: norm(i, "standard", keys))
    print(f"{a.detector}: {len(keys)} files, {len(GRID)} settings, {a.folds} folds; threshold 0.5 fixed")
    for p in PROFILES:
        pooled = nab.normalize(
            corpus, sum(raw[c][p][k] for c, test in zip(chosen, folds) for k in test), p, keys=keys
        )
        per_fold = [norm(c, p, test) for c, test in zip(chosen, folds)]
        print(
            f"{p:<20} defaults {norm(d, p, keys):6.1f}   cross-validated {pooled:6.1f} "
            f"(folds {statistics.mean(per_fold):.1f} ± {statistics.stdev(per_fold):.1f})   "
            f"best on all files {norm(best_all, p, keys):6.1f}"
        )
    for f, c in enumerate(chosen):
        print(f"  fold {f + 1} chose {GRID[c]}")
    print(f"  best on all files: {GRID[best_all]}")


if __name__ == "__main__":
    main()
