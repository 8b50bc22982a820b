#!/usr/bin/env python3
"""`segment` of 10,000 points against ruptures' Pelt with the same cost and penalty, side by
side in one run: both must find the same changes, then the times are compared.

    python3 -m venv /tmp/rup && /tmp/rup/bin/pip install ruptures==1.1.10
    cargo build --release -p cased-benches --example segment_time
    /tmp/rup/bin/python benches/peers_segment.py target/x86_64-unknown-linux-gnu/release/examples/segment_time

The series: 10,000 N(level, 1) points whose level changes every 1,000 points (seeded). Costs:
cased `normal_mean` (Σ(x − x̄)² / σ²) and ruptures `l2` (Σ(x − x̄)²) with the penalty times σ²,
σ = 1.4826 · MAD(Δx) / √2 — the same optimisation; and cased `normal_meanvar` against ruptures
`CostNormal(add_small_diag=False)`. ruptures runs once per cost (it takes seconds), cased 20
times (median).
"""
import json
import math
import subprocess
import sys
import tempfile
import time

import numpy as np
import ruptures as rpt


def main():
    binary = sys.argv[1]
    rng = np.random.default_rng(42)
    levels = rng.choice([-2.0, 0.0, 2.0, 4.0], size=10)
    x = np.round(np.concatenate([lv + rng.normal(0, 1, 1000) for lv in levels]), 6)
    n = len(x)
    d = np.diff(x)
    sigma = 1.482602218505602 * np.median(np.abs(d - np.median(d))) / math.sqrt(2)
    for cost, pen in [("normal_mean", 3 * math.log(n)), ("normal_meanvar", 4 * math.log(n))]:
        if cost == "normal_mean":
            algo, rpen = rpt.Pelt(model="l2", min_size=2, jump=1), pen * sigma**2
        else:
            algo, rpen = rpt.Pelt(custom_cost=rpt.costs.CostNormal(add_small_diag=False), min_size=2, jump=1), pen
        t = time.perf_counter()
        bkps = algo.fit(x).predict(pen=rpen)[:-1]
        ruptures_s = time.perf_counter() - t
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump({"values": x.tolist(), "cost": cost, "penalty": pen}, f)
        out = json.loads(subprocess.run([binary, f.name, "20"], check=True, capture_output=True, text=True).stdout)
        same = out["changes"] == [int(b) for b in bkps]
        print(json.dumps({"cost": cost, "n": n, "changes": len(bkps), "same_changes": same,
                          "ruptures_s": round(ruptures_s, 4), "cased_s": out["median_s"],
                          "ratio": round(ruptures_s / out["median_s"], 1)}))
        if not same:
            print("changes differ:", out["changes"], bkps, file=sys.stderr)
            sys.exit(1)


if __name__ == "__main__":
    main()
