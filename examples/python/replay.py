"""Backtest a policy: replay a recorded deployment through cased's session pipeline.

    .venv/bin/python examples/python/replay.py

The recording holds an hour of p95 latency before the deploy (the pre-deploy baseline) and
30 minutes after it, where latency rises by 25 %. The replay runs on a virtual clock: the
30 minutes take milliseconds, and nothing is sent or recorded.
"""
import asyncio
import math

import cased

T0 = 1_764_763_200.0  # when the deployment started (seconds since the Unix epoch)


def recording() -> dict:
    def p95(t: float) -> float:
        wobble = 3.0 * math.sin(t / 37.0) + 2.0 * math.sin(t / 11.0)
        return (125.0 if t >= 300 else 100.0) + wobble  # 25 % slower from 5 minutes in

    times = [T0 + t for t in range(-3600, 1800, 10)]
    return {
        "started_at": T0,
        "samples": [{"metric": "api.p95_ms", "timestamp": t, "value": p95(t - T0)} for t in times],
    }


async def main() -> None:
    monitor = cased.Monitor(
        {"detectors": [{"type": "baseline", "metric": "api.p95_ms", "allowed_change": 0.1}]}
    )
    event = cased.DeploymentEvent(
        "Deploy v1.4.2", repository_full_name="acme/checkout", event_metadata={"environment": "production"}
    )
    report = await monitor.replay(event, recording())
    print("verdict:", report["verdict"], "-", report["reason"])
    print("baseline:", report["baselines"]["api.p95_ms"])
    for f in report["findings"]:
        print(f"finding at sample {f['index']} (tick {f['tick']}): {f['message']}")


if __name__ == "__main__":
    asyncio.run(main())
