"""Metric sources and baseline stores through the bindings: Prometheus queries against a
scripted server on loopback, host samples, and baselines carried from one session to the next."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from apiserver import ApiServer, Reply

import cased
from cased import BaselineStore, DeploymentEvent, HostSource, Monitor, PrometheusSource

WAIT = 10.0

TOKEN = "prom-s3cret-token"


def vector(*series: tuple[dict[str, str], float, str]) -> str:
    result = [{"metric": m, "value": [t, v]} for m, t, v in series]
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}})


def params(api: ApiServer, n: int = -1) -> tuple[str, dict[str, list[str]]]:
    url = urlsplit(api.requests[n].path)
    return url.path, parse_qs(url.query)


# --- Prometheus -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_an_instant_query_sends_promql_time_and_token(api: ApiServer) -> None:
    api.script = [
        Reply(
            200,
            vector(
                ({"__name__": "up", "instance": "web-1"}, 1700000000.5, "0.25"),
                ({"instance": "web-2"}, 1700000000.5, "NaN"),
            ),
        )
    ]
    source = PrometheusSource(api.url + "/prom", bearer_token=TOKEN, timeout=5)
    assert TOKEN not in repr(source) and repr(source) == f"PrometheusSource({api.url + '/prom'!r})"

    promql = 'rate(errors{job="web"}[5m])'
    samples = await asyncio.wait_for(source.query("error_rate", promql, 1700000000.5), WAIT)

    assert samples == [
        {"metric": "error_rate", "labels": {"instance": "web-1"}, "timestamp": 1700000000.5, "value": 0.25}
    ], "NaN points are dropped, __name__ is not a label"
    path, query = params(api)
    assert path == "/prom/api/v1/query"
    assert query == {"query": [promql], "time": ["1700000000.500"]}
    assert api.requests[-1].headers["authorization"] == f"Bearer {TOKEN}"


@pytest.mark.asyncio
async def test_a_range_query_sends_its_window_and_step(api: ApiServer) -> None:
    matrix = {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [{"metric": {"route": "/login"}, "values": [[100, "1"], [160, "2.5"]]}],
        },
    }
    api.script = [Reply(200, json.dumps(matrix))]
    source = PrometheusSource(api.url)

    samples = await asyncio.wait_for(source.query_range("p99", "p99_latency", 100, 160, 60), WAIT)

    assert [(s["timestamp"], s["value"], s["labels"]) for s in samples] == [
        (100, 1.0, {"route": "/login"}),
        (160, 2.5, {"route": "/login"}),
    ]
    path, query = params(api)
    assert path == "/api/v1/query_range"
    assert query == {"query": ["p99_latency"], "start": ["100.000"], "end": ["160.000"], "step": ["60"]}
    assert "authorization" not in api.requests[-1].headers
    with pytest.raises(cased.ValidationError):
        await source.query_range("p99", "p99_latency", 160, 100, 60)
    with pytest.raises(cased.ValidationError):
        await source.query_range("p99", "p99_latency", 100, 160, -1)


@pytest.mark.asyncio
async def test_no_series_is_no_data_and_an_api_error_is_a_query_error(api: ApiServer) -> None:
    source = PrometheusSource(api.url, bearer_token=TOKEN)
    api.script = [Reply(200, vector())]
    with pytest.raises(cased.NoDataError) as no_data:
        await asyncio.wait_for(source.query("m", "absent_metric"), WAIT)
    assert no_data.value.code == "no_data"
    assert "time" not in params(api)[1], "no time: the server's now"

    api.script = [Reply(400, json.dumps({"status": "error", "errorType": "bad_data", "error": "parse error"}))]
    with pytest.raises(cased.QueryError, match="parse error") as exc:
        await asyncio.wait_for(source.query("m", "rate(("), WAIT)
    assert exc.value.error_type == "bad_data"
    assert exc.value.status == 400
    assert isinstance(exc.value, cased.CasedError)


def test_a_bad_url_or_timeout_is_a_validation_error() -> None:
    with pytest.raises(cased.ValidationError):
        PrometheusSource("ftp://prometheus:9090")
    with pytest.raises(cased.ValidationError):
        PrometheusSource("http://prometheus:9090", timeout=0)
    with pytest.raises(cased.ValidationError):
        PrometheusSource("http://prometheus:9090", timeout=-1)


# --- host --------------------------------------------------------------------------------------


def test_the_host_source_samples_memory() -> None:
    host = HostSource()
    samples = host.sample()
    by_metric = {s["metric"]: s for s in samples}
    for metric in ("host_memory_used_percent", "host_memory_used_bytes"):
        assert metric in by_metric, samples
        assert math.isfinite(by_metric[metric]["value"]) and by_metric[metric]["value"] >= 0
    assert 0 < by_metric["host_memory_used_percent"]["value"] <= 100
    assert all(math.isfinite(s["value"]) and math.isfinite(s["timestamp"]) for s in samples)
    assert all("mount" in s["labels"] for s in samples if s["metric"] == "host_disk_used_percent")
    assert repr(host) == "HostSource()"


# --- baseline stores ---------------------------------------------------------------------------

EVENT = DeploymentEvent(
    "Deploy v2", repository_full_name="acme/shop", event_metadata={"environment": "prod"}
)

BASELINE_CONFIG = {
    "schedule": {"intervals": ["50ms"], "cooldown": "400ms"},
    "verdict": {"min_samples": 3},
    "detectors": [{"type": "baseline", "metric": "web.latency_ms", "min_samples": 5}],
}


def web_check() -> Any:
    jitter = itertools.cycle([0.0, 1.0, -1.0, 2.0, -2.0])

    async def web() -> dict[str, Any]:
        return {"status": "pass", "message": "HTTP 200", "latency_ms": 100.0 + next(jitter)}

    return web


async def session(store: BaselineStore, event: DeploymentEvent = EVENT) -> Any:
    """The report of one session of a monitor on ``store`` with the ``web`` check."""
    monitor = Monitor(BASELINE_CONFIG, checks={"web": web_check()}, baseline_store=store)
    return await asyncio.wait_for(monitor.run(event), WAIT)


async def two_sessions(store: BaselineStore) -> tuple[Any, Any]:
    first = await session(store)
    second = await session(store)
    return first, second


@pytest.mark.asyncio
async def test_a_healthy_session_becomes_the_baseline_of_the_next(tmp_path: Path) -> None:
    path = tmp_path / "baselines.db"
    store = BaselineStore.sqlite(path)
    assert repr(store) == f"BaselineStore.sqlite({str(path)!r})"

    first, second = await two_sessions(store)

    assert first["no_data"] == ["web.latency_ms"], "no baseline yet"
    assert len(first["ticks"]) >= 5
    assert second["no_data"] == [], "the first session's samples are the baseline"
    assert second["findings"] == []
    assert second["verdict"] == "healthy", second["reason"]

    # The file keeps them: a third session from a reopened store has its baseline too.
    reopened = BaselineStore.sqlite(path)
    third = await session(reopened)
    assert third["no_data"] == []


@pytest.mark.asyncio
async def test_an_in_memory_store_carries_baselines_per_repository_and_environment() -> None:
    store = BaselineStore.in_memory()
    assert repr(store) == "BaselineStore.in_memory()"
    first, second = await two_sessions(store)
    assert first["no_data"] == ["web.latency_ms"]
    assert second["no_data"] == []

    elsewhere = DeploymentEvent(
        "Deploy v2", repository_full_name="acme/shop", event_metadata={"environment": "staging"}
    )
    other = await session(store, elsewhere)
    assert other["no_data"] == ["web.latency_ms"], "baselines are kept per environment"


def test_a_baseline_store_that_cannot_be_opened_raises(tmp_path: Path) -> None:
    with pytest.raises(cased.StorageError, match="baseline store"):
        BaselineStore.sqlite(tmp_path / "missing" / "dir" / "baselines.db")
