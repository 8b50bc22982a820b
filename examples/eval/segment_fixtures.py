#!/usr/bin/env python3
"""Writes cased-core/tests/fixtures/segment_ruptures.json: synthetic series with known changes
and the breakpoints `ruptures.Pelt(jump=1)` finds on them with the same cost and penalty as
`cased.segment`. `cased-core/tests/segment.rs` checks that cased finds the same ones.

    python3 -m venv /tmp/rup && /tmp/rup/bin/pip install ruptures==1.1.10
    /tmp/rup/bin/python examples/eval/segment_fixtures.py

The costs, on ruptures' side: `normal_mean` is ruptures' `l2` cost (Σ(x − x̄)²) with the
penalty multiplied by σ² (cased divides the cost by σ² instead; σ = 1.4826 · MAD(Δx) / √2),
`normal_meanvar` is `CostNormal(add_small_diag=False)` (n · ln σ̂²), `poisson` a custom cost
2 · (S − S · ln(S / n)).
"""
import json
import math
import os

import numpy as np
import ruptures as rpt
from ruptures.base import BaseCost


class CostPoisson(BaseCost):
    model = "poisson"
    min_size = 1

    def fit(self, signal):
        self.signal = signal.reshape(-1, 1)
        self.csum = np.concatenate([[0.0], np.cumsum(signal)])
        return self

    def error(self, start, end):
        s = self.csum[end] - self.csum[start]
        n = end - start
        return 0.0 if s <= 0 else 2.0 * (s - s * math.log(s / n))


def diff_sigma(x):
    d = np.diff(x)
    return 1.482602218505602 * np.median(np.abs(d - np.median(d))) / math.sqrt(2)


def series(rng, kind):
    if kind == "mean":
        levels = [(0.0, 120), (2.5, 90), (-1.0, 150), (1.5, 140)]
        return np.concatenate([lv + rng.normal(0, 1, n) for lv, n in levels])
    if kind == "meanvar":
        parts = [(0.0, 1.0, 150), (0.0, 4.0, 120), (3.0, 1.5, 130), (3.0, 0.5, 100)]
        return np.concatenate([m + rng.normal(0, s, n) for m, s, n in parts])
    rates = [(20.0, 100), (35.0, 120), (12.0, 80), (12.5, 100)]
    return np.concatenate([rng.poisson(r, n).astype(float) for r, n in rates])


def main():
    cases = []
    for seed in range(4):
        for cost, kind in [("normal_mean", "mean"), ("normal_meanvar", "meanvar"), ("poisson", "counts")]:
            rng = np.random.default_rng(1000 + seed)
            x = np.round(series(rng, kind), 6)
            n = len(x)
            p = {"normal_mean": 1, "normal_meanvar": 2, "poisson": 1}[cost]
            for penalty in [(p + 2) * math.log(n), (p + 1) * math.log(n)]:
                min_size = 2
                if cost == "normal_mean":
                    algo = rpt.Pelt(model="l2", min_size=min_size, jump=1).fit(x)
                    bkps = algo.predict(pen=penalty * diff_sigma(x) ** 2)
                elif cost == "normal_meanvar":
                    algo = rpt.Pelt(custom_cost=rpt.costs.CostNormal(add_small_diag=False), min_size=min_size, jump=1).fit(x)
                    bkps = algo.predict(pen=penalty)
                else:
                    algo = rpt.Pelt(custom_cost=CostPoisson(), min_size=min_size, jump=1).fit(x)
                    bkps = algo.predict(pen=penalty)
                cases.append({"cost": cost, "penalty": penalty, "min_size": min_size, "values": x.tolist(),
                              "ruptures_changes": [int(b) for b in bkps[:-1]]})
    here = os.path.dirname(os.path.abspath(__file__))
    out = os.path.join(here, "..", "..", "cased-core", "tests", "fixtures", "segment_ruptures.json")
    with open(out, "w") as f:
        json.dump({"ruptures": rpt.__version__, "cases": cases}, f)
        f.write("\n")
    print(out, len(cases), "cases")


if __name__ == "__main__":
    main()
