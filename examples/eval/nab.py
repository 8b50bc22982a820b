#!/usr/bin/env python3
"""Runs cased's NAB detector set (score_series nab) over NAB-format data and writes NAB results files.

    examples/eval/nab.py --data DIR --out DIR [--bin PATH] [-- extra score_series args]

Reads every CSV (`timestamp,value`) under --data and writes, for DATA/<category>/<name>.csv,
OUT/<category>/cased_<name>.csv with `timestamp,value,anomaly_score` (NAB's results layout).
Scores are strictly causal (row i uses rows <= i; see cased-core/examples/score_series.rs) and in
[0, 1]; >= 0.5 means cased would raise an alarm at that row, so scoring uses the fixed threshold
0.5 (no tuning on the scored data):

    python3 ../shared/eval/nab_score.py --results-dir OUT --threshold 0.5
"""
import argparse
import csv
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _runner  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--bin", help="path of the score_series binary (default: build it in release mode)")
    ap.add_argument("extra", nargs="*", help="extra score_series arguments (after --)")
    a = ap.parse_args()
    binary = _runner.score_series_bin(a.bin)
    n = 0
    for dirpath, _, files in os.walk(a.data):
        for f in sorted(files):
            if not f.endswith(".csv"):
                continue
            src = os.path.join(dirpath, f)
            rel = os.path.relpath(dirpath, a.data)
            with open(src, newline="") as fh:
                rows = list(csv.DictReader(fh))
            values = []
            for r in rows:
                try:
                    values.append(float(r["value"]))
                except (TypeError, ValueError):
                    values.append(None)
            scores = _runner.run(binary, "nab", values, a.extra).split()
            if len(scores) != len(rows):
                raise RuntimeError(f"{src}: {len(scores)} scores for {len(rows)} rows")
            out_dir = os.path.join(a.out, rel)
            os.makedirs(out_dir, exist_ok=True)
            with open(os.path.join(out_dir, "cased_" + f), "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["timestamp", "value", "anomaly_score"])
                for r, s in zip(rows, scores):
                    w.writerow([r["timestamp"], r["value"], s])
            n += 1
    print(f"scored {n} files into {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
