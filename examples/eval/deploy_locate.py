#!/usr/bin/env python3
"""How well reports say *when* a metric changed, on the deploy-shaped benchmark.

    .venv/bin/python examples/eval/deploy_locate.py --data FILE

Replays every case of FILE through a real cased session, exactly as `deploy.py` does (same
per-family configuration), and reads the report's `changes`. For the cases with a known change
time (`step` and `errors` kinds: the regression is present from post index `onset`), it prints
per kind: how many caught regressions carry a located change, the share located exactly at
`onset`, within ±1 and ±3 samples, how often the reported interval holds `onset` (coverage), and
the median interval width in samples. On the control kinds it prints how many reports carry a
change (only alarms are located, so this follows the false-alarm rate).
"""
import argparse
import asyncio
import gzip
import json
import os
import statistics
from collections import defaultdict

import cased

from deploy import FAMILIES, T0, config_for, recording


async def changes_of_all(cases, cadence, parallel):
    monitors = {f: cased.Monitor(config_for(f, FAMILIES)) for f in FAMILIES}
    event = cased.DeploymentEvent("replay", repository_full_name="acme/bench", event_metadata={"environment": "eval"})
    sem = asyncio.Semaphore(parallel)
    out = {}

    async def one(case):
        async with sem:
            report = await monitors[case["family"]].replay(event, recording(case, cadence))
        out[case["id"]] = report["changes"]

    await asyncio.gather(*(one(c) for c in cases))
    return out


def post_index(unix_ms, cadence):
    """The post index of a time (fractional; negative before the deploy)."""
    return (unix_ms / 1000.0 - T0) / cadence


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--parallel", type=int, default=os.cpu_count() or 2)
    a = ap.parse_args()
    opener = gzip.open if a.data.endswith(".gz") else open
    with opener(a.data, "rt") as fh:
        data = json.load(fh)
    cadence = float(data["cadence_s"])
    cases = data["cases"]
    changes = asyncio.run(changes_of_all(cases, cadence, a.parallel))

    rows = defaultdict(lambda: defaultdict(list))
    for case in cases:
        kind = case["kind"] if case.get("k") is None else f"{case['kind']} k={case['k']}"
        if os.environ.get("BY_FAMILY"):
            kind = f"{case['family']} {kind}"
        r = rows[kind]
        r["cases"].append(1)
        located = changes[case["id"]]
        r["located"].append(1 if located else 0)
        if not located or not case.get("regression") or case["kind"] not in ("step", "errors"):
            continue
        c = located[0]
        onset = case["onset"]
        at = round(post_index(c["at_unix_ms"], cadence))
        lo = post_index(c["earliest_unix_ms"], cadence)
        hi = post_index(c["latest_unix_ms"], cadence)
        r["error"].append(abs(at - onset))
        # The change lies after `earliest` and at or before `latest`.
        r["covered"].append(1 if lo < onset <= hi + 1e-9 or (lo <= onset and at == onset) else 0)
        r["width"].append(hi - lo)

    print(f"{'kind':<22}{'cases':>6}{'located':>9}{'exact':>8}{'±1':>8}{'±3':>8}{'covered':>9}{'width':>7}")
    for kind in sorted(rows):
        r = rows[kind]
        n = len(r["cases"])
        line = f"{kind:<22}{n:>6}{sum(r['located']):>9}"
        if r["error"]:
            m = len(r["error"])
            share = lambda p: f"{100 * sum(e <= p for e in r['error']) / m:>7.0f}%"  # noqa: E731
            line += share(0) + share(1) + share(3)
            line += f"{100 * sum(r['covered']) / m:>8.0f}%{statistics.median(r['width']):>7.1f}"
        print(line)
    all_err = [e for r in rows.values() for e in r["error"]]
    all_cov = [c for r in rows.values() for c in r["covered"]]
    if all_err:
        m = len(all_err)
        print(
            f"\nstep and errors regressions located: {m}; exact {100 * sum(e == 0 for e in all_err) / m:.1f} %, "
            f"within ±1 {100 * sum(e <= 1 for e in all_err) / m:.1f} %, within ±3 {100 * sum(e <= 3 for e in all_err) / m:.1f} %, "
            f"interval holds the onset {100 * sum(all_cov) / m:.1f} %"
        )


if __name__ == "__main__":
    main()
