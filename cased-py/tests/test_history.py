"""The deployment history and reports through the bindings: sessions recorded by a monitor,
queried back, and rendered as Markdown, HTML and JSON."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

import pytest

import cased
from cased import DeploymentEvent, History, Monitor

T = TypeVar("T")
WAIT = 10.0
CONFIG = {"schedule": {"intervals": ["50ms"], "cooldown": "150ms"}, "verdict": {"min_samples": 1}}


async def within(awaitable: Awaitable[T]) -> T:
    return await asyncio.wait_for(awaitable, WAIT)


def event(env: str, repo: str = "acme/shop") -> DeploymentEvent:
    return DeploymentEvent(
        f"Deploy to {env}", repository_full_name=repo, commit_sha="abcdef1", event_metadata={"environment": env}
    )


async def up() -> dict[str, Any]:
    return {"status": "pass", "message": "HTTP 200"}


async def down() -> dict[str, Any]:
    return {"status": "fail", "message": "HTTP 503 <script>"}


async def record(history: History) -> tuple[dict[str, Any], dict[str, Any]]:
    good = await within(Monitor(CONFIG, checks={"web": up}, history=history).run(event("staging")))
    bad = await within(Monitor(CONFIG, checks={"web": down}, history=history).run(event("prod")))
    return good, bad


@pytest.mark.asyncio
async def test_sessions_are_recorded_and_queried_back(tmp_path: Path) -> None:
    path = tmp_path / "history" / "cased.db"
    history = History(path)
    assert history.path == path and path.exists()
    started = int(time.time() * 1000)
    good, bad = await record(history)
    assert (good["verdict"], bad["verdict"]) == ("healthy", "unhealthy")

    everything = await within(history.deployments())
    assert [d["session_id"] for d in everything] == [bad["session_id"], good["session_id"]], "newest first"
    [prod] = await within(history.deployments(environment="prod"))
    assert (prod["verdict"], prod["repository"], prod["commit_sha"]) == ("unhealthy", "acme/shop", "abcdef1")
    assert await within(history.deployments(verdict="healthy", limit=5)) == [everything[1]]
    assert await within(history.deployments(repository="acme/other")) == []
    assert await within(history.deployments(since_unix_ms=started, until_unix_ms=started)) == []
    assert len(await within(history.deployments(since_unix_ms=started))) == 2

    assert await within(history.report(bad["session_id"])) == bad
    assert await within(history.report("nope")) is None
    assert (await within(history.deployment(good["session_id"])))["verdict"] == "healthy"
    assert [t["tick"] for t in await within(history.ticks(good["session_id"]))] == [t["tick"] for t in good["ticks"]]

    [bucket] = await within(history.verdict_counts("week"))
    assert (bucket["healthy"], bucket["unhealthy"], bucket["total"]) == (1, 1, 2)
    assert (await within(history.verdict_counts(environment="prod")))[0]["total"] == 1
    [detected] = await within(history.time_to_detect())
    assert (detected["session_id"], detected["detected_by"], detected["tick"]) == (bad["session_id"], "failed_tick", 1)
    assert [d["session_id"] for d in await within(history.last_healthy(3))] == [good["session_id"]]
    assert await within(history.last_healthy(3, environment="prod")) == []
    assert await within(history.deployment_of_finding("nope:1")) is None

    # The file outlives the object.
    reopened = History(str(path))
    assert len(await within(reopened.deployments())) == 2
    assert await within(reopened.prune(int(time.time() * 1000) + 1)) == 2
    assert await within(reopened.deployments()) == []


@pytest.mark.asyncio
async def test_findings_link_back_to_their_deployment() -> None:
    history = History.in_memory()
    assert history.path is None and repr(history) == "History(':memory:')"
    config = {
        **CONFIG,
        "detectors": [{"type": "threshold", "metric": "web.latency_ms", "upper": -1, "trigger": 1}],
    }
    report = await within(Monitor(config, checks={"web": up}, history=history).run(event("prod")))
    findings = await within(history.findings(report["session_id"]))
    if not findings:
        pytest.fail(f"no finding recorded; the report has {report['findings']}")
    owner = await within(history.deployment_of_finding(findings[0]["id"]))
    assert owner is not None and owner["session_id"] == report["session_id"]


@pytest.mark.asyncio
async def test_queries_are_validated() -> None:
    history = History(":memory:")
    with pytest.raises(cased.ValidationError) as unknown:
        await history.deployments(repo="acme/shop")  # type: ignore[call-arg]
    assert unknown.value.errors[0]["field"] == "filter"
    assert "unknown field `repo`" in unknown.value.errors[0]["message"]
    with pytest.raises(cased.ValidationError) as verdict:
        await history.deployments(verdict="fine")  # type: ignore[arg-type]
    assert verdict.value.errors[0]["field"] == "filter"
    with pytest.raises(cased.ValidationError) as bucket:
        await history.verdict_counts("month")  # type: ignore[arg-type]
    assert bucket.value.errors[0]["field"] == "bucket"


def test_a_path_that_cannot_be_a_database_is_a_storage_error(tmp_path: Path) -> None:
    not_sqlite = tmp_path / "notes.txt"
    not_sqlite.write_text("hello " * 1000)
    with pytest.raises(cased.StorageError) as exc:
        History(not_sqlite)
    assert exc.value.code == "storage"
    assert isinstance(exc.value, cased.CasedError)


@pytest.mark.asyncio
async def test_cancelling_a_query_is_clean() -> None:
    history = History.in_memory()
    task = asyncio.ensure_future(history.deployments())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await within(history.deployments()) == []


# --- reports -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_reports_render_as_markdown_html_and_json() -> None:
    history = History.in_memory()
    _, bad = await record(history)

    markdown = cased.render_report(bad)
    assert markdown.startswith("## Deployment unhealthy: acme/shop to prod"), markdown[:200]
    assert "**Verdict: unhealthy.**" in markdown
    assert cased.render_report(bad, "markdown") == markdown
    assert cased.render_report(json.dumps(bad), "md") == markdown, "JSON text renders the same"

    html = cased.render_report(bad, "html")
    assert html.lstrip().lower().startswith("<!doctype html")
    assert "<svg" in html
    assert "https://" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "<script" not in html, "user text is escaped"

    assert json.loads(cased.render_report(bad, "json")) == bad

    recorded = await within(history.render_report(bad["session_id"], "md"))
    assert recorded is not None and recorded.startswith("## Deployment unhealthy")
    assert await within(history.render_report("nope")) is None


def test_render_report_is_validated() -> None:
    with pytest.raises(cased.ValidationError) as fmt:
        cased.render_report({}, "pdf")  # type: ignore[arg-type]
    assert fmt.value.errors[0]["field"] == "format"
    with pytest.raises(cased.ValidationError) as report:
        cased.render_report({"verdict": "healthy"})
    assert report.value.errors[0]["field"] == "report"
    with pytest.raises(cased.ValidationError) as text:
        cased.render_report("{not json")
    assert text.value.errors[0]["field"] == "report"


@pytest.mark.asyncio
async def test_checkpoint_leaves_every_session_in_the_db_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    history = History(path)
    good, _ = await record(history)
    wal = tmp_path / "history.db-wal"
    assert wal.stat().st_size > 0, "the sessions are in the write-ahead log first"
    await within(history.checkpoint())
    assert not wal.exists() or wal.stat().st_size == 0
    upload = tmp_path / "upload" / "history.db"
    upload.parent.mkdir()
    shutil.copyfile(path, upload)
    report = await within(History(upload).report(good["session_id"]))
    assert report is not None and report["verdict"] == "healthy"
    assert await within(History.in_memory().checkpoint()) is None
