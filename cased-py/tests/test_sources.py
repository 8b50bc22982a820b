"""Sessions that measure the service from configured sources: a `scrape` source reading a
loopback exporter's Prometheus page, with error counts judged by an error-rate detector and a
gauge by a threshold, and no check at all."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from apiserver import ApiServer, Reply

import cased

FAST = {"intervals": ["20ms"], "cooldown": "300ms", "max_duration": "20s"}


def page(errors: int, requests: int, inflight: float) -> Reply:
    text = (
        "# TYPE http_requests_total counter\n"
        f'http_requests_total{{code="200"}} {requests - errors}\n'
        f'http_requests_total{{code="500"}} {errors}\n'
        "# TYPE inflight gauge\n"
        f"inflight {inflight}\n"
    )
    return Reply(200, text, {"content-type": "text/plain; version=0.0.4"})


def config(url: str) -> dict:
    return {
        "schedule": FAST,
        "verdict": {"min_samples": 3},
        "sources": [
            {
                "type": "scrape",
                "name": "app",
                "url": url + "/metrics",
                "metrics": {"inflight": {"gauge": "inflight"}},
                "counts": {
                    "http": {
                        "errors": {"counter": "http_requests_total", "match": {"code": {"regex": "5.."}}},
                        "requests": {"counter": "http_requests_total"},
                    }
                },
            }
        ],
        "detectors": [
            {"type": "error_rate", "metric": "app.http"},
            {"type": "threshold", "metric": "app.inflight", "upper": 100},
        ],
    }


def event() -> cased.DeploymentEvent:
    return cased.DeploymentEvent("Deploy", repository_full_name="acme/shop", event_metadata={"environment": "prod"})


@pytest.mark.asyncio
async def test_a_session_without_checks_judges_scraped_error_counts(api: ApiServer) -> None:
    # 0.5 % errors per scrape interval, then 10 %: each page adds 1000 requests.
    api.script = [page(5 * i, 1000 * i, 3) for i in range(1, 4)] + [page(15 + 100 * i, 3000 + 1000 * i, 3) for i in range(1, 200)]
    monitor = cased.Monitor(config(api.url), baselines={"app.http": (10, 2000)})
    report = await monitor.run(event())
    assert report["verdict"] == "unhealthy", report["reason"]
    assert any(f["metric"] == "app.http" and f["detector"] == "error_rate" for f in report["findings"])
    assert all(not t["checks"] for t in report["ticks"]), "no checks: the source measured every tick"


@pytest.mark.asyncio
async def test_a_healthy_scrape_is_healthy_and_a_bad_source_is_named(api: ApiServer) -> None:
    api.script = [page(5 * i, 1000 * i, 3) for i in range(1, 400)]
    report = await cased.Monitor(config(api.url), baselines={"app.http": (10, 2000)}).run(event())
    assert report["verdict"] == "healthy", (report["reason"], report["findings"])
    bad = config(api.url)
    bad["sources"][0]["url"] = "not a url"
    with pytest.raises(cased.ValidationError) as e:
        cased.Monitor(bad)
    assert e.value.errors[0]["field"].startswith("sources[0].url"), e.value.errors


@pytest_asyncio.fixture
async def control() -> AsyncIterator[ApiServer]:
    """A second exporter on loopback: the stable track."""
    server = ApiServer(script=[Reply(200, "")])
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    async with listener:
        yield server
        listener.close()


def control_config(canary: str, stable: str) -> dict:
    c = config(canary)
    c["sources"][0]["control_url"] = stable + "/metrics"
    c["detectors"] = [{"type": "error_rate", "metric": "app.http"}]
    return c


@pytest.mark.asyncio
async def test_canary_is_judged_against_the_control_service_live(api: ApiServer, control: ApiServer) -> None:
    control.script = [page(5 * i, 1000 * i, 3) for i in range(1, 400)]  # 0.5 % errors
    api.script = [page(100 * i, 1000 * i, 3) for i in range(1, 400)]  # 10 % errors
    report = await cased.Monitor(control_config(api.url, control.url)).run(event())
    assert report["verdict"] == "unhealthy", report["reason"]
    assert report["baselines"]["app.http"].startswith("the control track"), report["baselines"]
    api.script = [page(5 * i, 1000 * i, 3) for i in range(1, 400)]
    api.requests.clear()
    control.requests.clear()
    report = await cased.Monitor(control_config(api.url, control.url)).run(event())
    assert report["verdict"] == "healthy", (report["reason"], report["findings"])
