#!/usr/bin/env python3
"""Answers the deploy-shaped benchmark by replaying every case through a real cased session.

    .venv/bin/python examples/eval/deploy.py --data FILE --out answers.json [--family-config F]

FILE is the set (`.json` or `.json.gz`): cases of one metric around one deployment, sampled
every `cadence_s` seconds, with `baseline` (before the deploy) and `post` (after it). Each case
becomes a `cased.Monitor.replay`: the baseline samples lie before the deployment's start, so the
session reads them as its pre-deploy window, exactly as it would from a Prometheus source; the
post samples arrive at the ticks of the default schedule (10 s, 30 s, 1 min, 5 min, then the
30-minute cool-down) and are judged in order. The configuration is fixed per family
(`FAMILIES` below, or `--family-config` JSON with the same shape): no per-case tuning.

The answer for a case is the post index of the first sample at which a warning-or-worse alarm
was raised (the finding's `index`), or null. Causal by construction: the session never sees a
sample before its time. Score with the set's scorer:

    python3 ../shared/eval/deploy/score.py FILE answers.json
"""
import argparse
import asyncio
import gzip
import json
import os
import sys

import cased

# The configuration a user would give for each kind of metric, chosen by 5-fold cross-validation
# on the development split (examples/eval/deploy_cv.py). `METRIC` is replaced by the case's metric.
FAMILIES = {
    # Latency: a level shift against the baseline's robust level and Theil–Sen trend.
    "latency": {"detectors": [{"type": "shift", "metric": "METRIC", "trend": True, "autocorrelation": False,
                               "test": "step", "threshold": 6.0, "spread_threshold": 8.0, "clip": 3.0,
                               "spike_guard": True}]},
    # CPU: the step-matched test on AR(1) innovations (autocorrelated series).
    "cpu": {"detectors": [{"type": "shift", "metric": "METRIC", "trend": False, "autocorrelation": True,
                           "test": "step", "threshold": 6.0, "spread_threshold": 6.0, "clip": 2.5,
                           "spike_guard": True}]},
    # Error counts: the exact conditional test, looked at as counts arrive.
    "errors": {"detectors": [{"type": "error_rate", "metric": "METRIC", "alpha": 0.01, "look_growth": 1.25,
                              "min_increase": 0.0002}]},
}

METRICS = {"latency": "api.latency_ms", "cpu": "host.cpu_percent", "errors": "api.http"}

# The deployment starts here (any fixed time: only differences matter).
T0 = 1_764_763_200.0


def recording(case, cadence):
    """The case as a recording: baseline before T0, post from T0 on, one sample per cadence."""
    family = case["family"]
    metric = METRICS[family]
    nb = len(case["baseline"])
    times = [T0 - cadence * (nb - j) for j in range(nb)] + [T0 + cadence * i for i in range(len(case["post"]))]
    values = case["baseline"] + case["post"]
    rec = {"started_at": T0}
    if family == "errors":
        rec["counts"] = [
            {"metric": metric, "timestamp": t, "errors": int(v["errors"]), "requests": int(v["requests"])}
            for t, v in zip(times, values)
        ]
    else:
        rec["samples"] = [{"metric": metric, "timestamp": t, "value": float(v)} for t, v in zip(times, values)]
    return rec


def config_for(family, families):
    text = json.dumps(families[family]).replace("METRIC", METRICS[family])
    return json.loads(text)


def first_alarm(report):
    """The post index of the first warning-or-worse alarm that counts toward the verdict."""
    hits = [
        f["index"]
        for f in report["findings"]
        if f["kind"] == "alarm" and f["severity"] in ("warning", "critical", "emergency") and f.get("index") is not None
    ]
    return min(hits) if hits else None


async def answer_all(cases, cadence, families, parallel):
    monitors = {f: cased.Monitor(config_for(f, families)) for f in families}
    event = cased.DeploymentEvent("replay", repository_full_name="acme/bench", event_metadata={"environment": "eval"})
    sem = asyncio.Semaphore(parallel)
    answers = {}

    async def one(case):
        async with sem:
            report = await monitors[case["family"]].replay(event, recording(case, cadence))
        answers[case["id"]] = first_alarm(report)

    await asyncio.gather(*(one(c) for c in cases))
    return answers


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--family-config", help="JSON file: {family: monitor configuration} (default: FAMILIES)")
    ap.add_argument("--parallel", type=int, default=os.cpu_count() or 2)
    a = ap.parse_args()
    opener = gzip.open if a.data.endswith(".gz") else open
    with opener(a.data, "rt") as fh:
        data = json.load(fh)
    families = FAMILIES
    if a.family_config:
        with open(a.family_config) as fh:
            families = json.load(fh)
    answers = asyncio.run(answer_all(data["cases"], float(data["cadence_s"]), families, a.parallel))
    with open(a.out, "w") as fh:
        json.dump(answers, fh, indent=0, sort_keys=True)
    print(f"{len(answers)} cases answered, {sum(v is not None for v in answers.values())} alarms", file=sys.stderr)


if __name__ == "__main__":
    main()
