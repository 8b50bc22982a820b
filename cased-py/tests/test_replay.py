"""Replay and backtests through the binding: a recorded deployment driven through the real
session pipeline on a virtual clock, baselines from the recording's pre-deploy window, counts
baselines, and named validation errors."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import cased

T0 = 1_764_763_200.0


def event() -> cased.DeploymentEvent:
    return cased.DeploymentEvent(
        "Deploy v2", repository_full_name="acme/shop", event_metadata={"environment": "prod"}
    )


def latency(after: float) -> dict[str, Any]:
    """An hour at ~100 ms before the deploy, 30 minutes at ~`after` ms after it (every 10 s)."""
    wobble = [(i * 0.618033988749) % 1.0 * 4 - 2 for i in range(540)]
    samples = [
        {"metric": "api.latency_ms", "timestamp": T0 - 3600 + 10 * i, "value": 100 + wobble[i]}
        for i in range(360)
    ]
    samples += [
        {"metric": "api.latency_ms", "timestamp": T0 + 10 * i, "value": after + wobble[360 + i]}
        for i in range(180)
    ]
    return {"started_at": T0, "samples": samples}


CONFIG = {"detectors": [{"type": "baseline", "metric": "api.latency_ms", "allowed_change": 0.1}]}


@pytest.mark.asyncio
async def test_a_replay_judges_a_recording_on_a_virtual_clock() -> None:
    monitor = cased.Monitor(CONFIG)
    loop = asyncio.get_running_loop()
    started = loop.time()
    bad = await monitor.replay(event(), latency(after=200))
    assert loop.time() - started < 30, "a 30-minute recording replays without waiting"
    assert bad["verdict"] == "unhealthy", bad["reason"]
    assert bad["baselines"]["api.latency_ms"] == "the window before the deployment (360 values)"
    finding = next(f for f in bad["findings"] if f["metric"] == "api.latency_ms")
    assert finding["index"] >= 0 and finding["tick"] >= 1
    assert bad["started_at_unix_ms"] == int(T0 * 1000)
    good = await monitor.replay(event(), latency(after=100))
    assert good["verdict"] == "healthy", (good["reason"], good["findings"])


@pytest.mark.asyncio
async def test_the_report_says_when_the_metric_changed() -> None:
    recording = latency(after=100)
    for s in recording["samples"]:
        if s["timestamp"] >= T0 + 60:
            s["value"] += 100
    report = await cased.Monitor(CONFIG).replay(event(), recording)
    assert report["verdict"] == "unhealthy", report["reason"]
    [change] = report["changes"]
    assert change["metric"] == "api.latency_ms"
    assert change["at_unix_ms"] == int((T0 + 60) * 1000)
    assert change["after_start_ms"] == 60_000
    assert change["earliest_unix_ms"] < change["at_unix_ms"] <= change["latest_unix_ms"]
    assert change["message"].endswith(", 1m after the rollout started."), change["message"]
    assert "When it changed" in cased.render_report(report, format="markdown")
    good = await cased.Monitor(CONFIG).replay(event(), latency(after=100))
    assert good["changes"] == []


@pytest.mark.asyncio
async def test_a_first_deployment_without_baseline_is_healthy_and_says_so() -> None:
    recording = latency(after=100)
    recording["samples"] = [s for s in recording["samples"] if s["timestamp"] >= T0]
    report = await cased.Monitor(CONFIG).replay(event(), recording)
    assert report["verdict"] == "healthy", report["reason"]
    assert any("no earlier baseline existed for api.latency_ms" in n for n in report["notes"])


def counts(rate: float) -> dict[str, Any]:
    return {
        "started_at": T0,
        "counts": [
            {"metric": "api.http", "timestamp": T0 + 10 * i, "errors": round(rate * 2000), "requests": 2000}
            for i in range(180)
        ],
    }


@pytest.mark.asyncio
async def test_error_rates_are_judged_against_counts_baselines() -> None:
    config = {"detectors": [{"type": "error_rate", "metric": "api.http"}]}
    for baseline in [(10, 2000), {"errors": 10, "requests": 2000}]:
        monitor = cased.Monitor(config, baselines={"api.http": baseline})
        report = await monitor.replay(event(), counts(0.05))
        assert report["verdict"] == "unhealthy", report["reason"]
        assert report["baselines"]["api.http"].startswith("a baseline provided by the caller")
        assert (await monitor.replay(event(), counts(0.005)))["verdict"] == "healthy"
    with pytest.raises(cased.ValidationError) as e:
        cased.Monitor(config, baselines={"api.http": (20, 10)})
    assert "errors" in str(e.value)


@pytest.mark.asyncio
async def test_bad_recordings_name_the_field() -> None:
    monitor = cased.Monitor(CONFIG)
    with pytest.raises(cased.ValidationError) as e:
        await monitor.replay(event(), {"started_at": T0, "samples": [{"metric": "", "timestamp": T0, "value": 1.0}]})
    assert e.value.errors[0]["field"] == "samples[0].metric"
    with pytest.raises(cased.ValidationError) as e:
        await monitor.replay(event(), {"started_at": T0, "sampels": []})
    assert "sampels" in str(e.value)
    with pytest.raises(cased.ValidationError) as e:
        await monitor.replay(event(), {"started_at": object()})
    assert e.value.errors[0]["field"] == "started_at"


@pytest.mark.asyncio
async def test_pushed_counts_are_judged_in_a_live_session() -> None:
    config = {
        "schedule": {"intervals": ["10ms"], "cooldown": "200ms"},
        "verdict": {"min_samples": 1},
        "detectors": [{"type": "error_rate", "metric": "api.http"}],
    }
    monitor = cased.Monitor(config, baselines={"api.http": (10, 20_000)})
    session = await monitor.start(event())
    session.push_counts("api.http", 100, 1000)
    report = await session.wait()
    assert report["verdict"] == "unhealthy", report["reason"]


def test_the_replay_example_runs() -> None:
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "examples" / "python" / "replay.py"
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.startswith("verdict: unhealthy"), out.stdout + out.stderr
    assert "baseline: the window before the deployment (360 values)" in out.stdout
