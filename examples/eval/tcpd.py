#!/usr/bin/env python3
"""Runs cased's changepoint detector (BOCPD, default settings) over TCPD-format series.

    examples/eval/tcpd.py --data DIR --out pred.json [--bin PATH] [-- extra score_series args]

Reads every <name>/<name>.json under --data (TCPD's format: `series[d].raw`, nulls missing) and
writes {name: [changepoint indices]}. Detection is causal (a change is reported from the rows seen
so far; its position may lie before the row that revealed it). Multivariate series run one
detector per dimension and merge changes closer than 5 rows. Score with:

    python3 ../shared/eval/tcpd_score.py --pred pred.json
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _runner  # noqa: E402


def merge(points, distance=5):
    out = []
    for p in sorted(points):
        if not out or p - out[-1] >= distance:
            out.append(p)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--bin", help="path of the score_series binary (default: build it in release mode)")
    ap.add_argument("extra", nargs="*", help="extra score_series arguments (after --)")
    a = ap.parse_args()
    binary = _runner.score_series_bin(a.bin)
    pred = {}
    for name in sorted(os.listdir(a.data)):
        path = os.path.join(a.data, name, name + ".json")
        if not os.path.exists(path):
            continue
        with open(path) as fh:
            data = json.load(fh)
        points = []
        for dim in data["series"]:
            out = _runner.run(binary, "changepoints", dim["raw"], a.extra)
            points.extend(json.loads(out))
        pred[name] = merge(points)
    with open(a.out, "w") as fh:
        json.dump(pred, fh, indent=1)
    print(f"wrote changepoints of {len(pred)} series to {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
