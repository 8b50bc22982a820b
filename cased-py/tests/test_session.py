"""Monitoring sessions through the bindings: millisecond schedules end to end, updates, the
deployment's signals, verdicts, the rollback hook, configuration errors and cancellation.

Nothing here sleeps to wait for a condition: tests await the session's own updates and report,
or events set by the checks, each bounded by ``WAIT`` so a regression fails instead of hanging.
"""

from __future__ import annotations

import asyncio
import contextvars
import subprocess
import sys
import textwrap
import threading
from collections.abc import Awaitable
from typing import Any, TypeVar

import pytest
from apiserver import ApiServer

import cased
from cased import DeploymentEvent, Monitor

T = TypeVar("T")

WAIT = 10.0
"""Upper bound for anything that should happen promptly (a hang fails, not blocks)."""

RUNNING = DeploymentEvent(
    "Deploy v2.0.1",
    repository_full_name="acme/shop",
    status="running",
    commit_sha="abcdef1",
    event_metadata={"environment": "prod"},
)
SUCCEEDED = DeploymentEvent("Deploy v2.0.1", repository_full_name="acme/shop", event_metadata={"environment": "prod"})

FAST = {"schedule": {"intervals": ["50ms"], "cooldown": "400ms"}, "verdict": {"min_samples": 3}}
"""Ticks 50 ms apart (each check may take up to 50 ms), a 400 ms cool-down, 3 samples."""

RUNNING_FAST = {"schedule": {"intervals": ["50ms"], "cooldown": "150ms"}, "verdict": {"min_samples": 1}}

which = contextvars.ContextVar("which", default="none")


async def within(awaitable: Awaitable[T]) -> T:
    return await asyncio.wait_for(awaitable, WAIT)


async def passing() -> dict[str, Any]:
    return {"status": "pass", "message": "all good"}


async def collect(session: cased.Session) -> list[dict[str, Any]]:
    return [u async for u in session.updates()]


def statuses(report: dict[str, Any]) -> list[list[str]]:
    return [[c["status"] for c in t["checks"]] for t in report["ticks"]]


@pytest.mark.asyncio
async def test_a_millisecond_session_is_healthy_end_to_end() -> None:
    calls = []

    async def probe() -> dict[str, Any]:
        calls.append(threading.get_ident())
        return {"status": "pass", "message": "HTTP 200"}

    monitor = Monitor(FAST, checks={"probe": probe})
    session = await monitor.start(SUCCEEDED)
    updates = await within(collect(session))
    report = await within(session.wait())

    assert report["verdict"] == "healthy", report["reason"]
    assert report["ended_by"] == "cooldown_elapsed"
    assert report["reason"] == f"all {len(report['ticks'])} measured ticks passed"
    assert len(report["ticks"]) >= 3
    assert statuses(report) == [["pass"]] * len(report["ticks"])
    assert report["ticks"][0]["checks"][0]["name"] == "probe"
    assert report["ticks"][0]["checks"][0]["category"] == "availability"
    assert report["ticks"][0]["checks"][0]["message"] == "HTTP 200"
    assert 0 <= report["cooldown_started_ms"] <= report["ticks"][0]["elapsed_ms"], "success starts in cool-down"
    assert report["event"] == SUCCEEDED.to_dict()
    assert report["session_id"] == session.id
    assert report["counters"]["measured_ticks"] == len(report["ticks"])
    assert report["rollback"] is None
    # Every call ran on this loop's thread, once per tick.
    assert calls == [threading.get_ident()] * len(report["ticks"])
    assert session.finished
    assert session.report() == report

    # Updates: one per tick in order, then the finishing one, with the report's verdict.
    n = len(report["ticks"])
    assert [u["tick"] for u in updates] == [*range(1, n + 1), n]
    assert [u["phase"] for u in updates] == ["cooldown"] * n + ["finished"]
    assert updates[-1]["verdict"] == report["verdict"]
    assert updates[-1]["reason"] == report["reason"]
    assert updates[-1]["next_tick_in_ms"] is None and updates[-1]["checks"] == []
    assert [u["checks"] for u in updates[:-1]] == [t["checks"] for t in report["ticks"]]
    assert all(u["session_id"] == session.id for u in updates)
    assert updates[0]["deployment"] == {
        "deployment_request": "Deploy v2.0.1",
        "repository": "acme/shop",
        "commit_sha": None,
        "environment": "prod",
        "correlation_id": session.id,
    }
    assert updates[0]["verdict"] == "inconclusive", "one sample is fewer than min_samples"


@pytest.mark.asyncio
async def test_listeners_follow_independently_and_late_ones_get_the_last_update() -> None:
    monitor = Monitor(FAST, checks={"probe": passing})
    session = await monitor.start(SUCCEEDED)
    first, second = await within(asyncio.gather(collect(session), collect(session)))
    assert first == second
    assert first[-1]["phase"] == "finished"
    late = session.updates()
    assert await within(late.__anext__()) == first[-1]
    with pytest.raises(StopAsyncIteration):
        await within(late.__anext__())


@pytest.mark.asyncio
async def test_complete_moves_a_running_deployment_into_cooldown() -> None:
    monitor = Monitor(RUNNING_FAST, checks={"probe": passing})
    session = await monitor.start(RUNNING)
    phases = []

    async def follow() -> None:
        async for update in session.updates():
            phases.append(update["phase"])
            if len(phases) == 1:
                assert update["phase"] == "active"
                await session.complete()

    await within(follow())
    report = await within(session.wait())
    assert report["ended_by"] == "cooldown_elapsed"
    assert report["verdict"] == "healthy"
    assert report["cooldown_started_ms"] is not None
    assert report["cooldown_started_ms"] >= report["ticks"][0]["elapsed_ms"]
    ticks = [t["phase"] for t in report["ticks"]]
    assert ticks[0] == "active" and ticks[-1] == "cooldown", ticks
    assert phases[0] == "active" and phases[-2:] == ["cooldown", "finished"], phases


@pytest.mark.asyncio
@pytest.mark.parametrize("awaited", [True, False], ids=["awaited", "plain-call"])
@pytest.mark.parametrize(("signal", "ended_by"), [("fail", "deployment_failed"), ("cancel", "cancelled")])
async def test_fail_and_cancel_end_the_session(signal: str, ended_by: str, awaited: bool) -> None:
    monitor = Monitor(RUNNING_FAST, checks={"probe": passing})
    session = await monitor.start(RUNNING)
    first = await within(session.updates().__anext__())
    assert first["phase"] == "active"
    done = getattr(session, signal)()
    if awaited:
        assert await done is None
    report = await within(session.wait())
    assert report["ended_by"] == ended_by
    assert report["verdict"] == "inconclusive"
    assert len(report["ticks"]) >= 1
    assert session.report() == report
    # Signals after the end change nothing.
    await session.complete()
    assert session.report() == report


@pytest.mark.asyncio
@pytest.mark.parametrize(("status", "ended_by"), [("failure", "deployment_failed"), ("cancelled", "cancelled")])
async def test_an_event_that_already_ended_ends_the_session_at_once(status: str, ended_by: str) -> None:
    calls = []

    async def probe() -> dict[str, Any]:
        calls.append(1)
        return {"status": "pass", "message": "up"}

    monitor = Monitor(FAST, checks={"probe": probe})
    report = await within(monitor.run({"deployment_request": "Deploy v3", "status": status}))
    assert (report["ended_by"], report["ticks"], calls) == (ended_by, [], [])
    assert report["event"]["status"] == status


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["async", "sync", "async-raises", "sync-raises"])
async def test_an_unhealthy_deployment_fires_the_rollback_hook_exactly_once(kind: str) -> None:
    seen: list[dict[str, Any]] = []
    finished = []

    async def async_hook(info: dict[str, Any]) -> None:
        seen.append(info)
        # Really suspend, so the hook is awaited rather than merely called.
        later = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(later.set_result, None)
        await later
        finished.append(threading.get_ident())
        if kind == "async-raises":
            raise RuntimeError("rollback API said no")

    def sync_hook(info: dict[str, Any]) -> None:
        seen.append(info)
        finished.append(threading.get_ident())
        if kind == "sync-raises":
            raise RuntimeError("rollback API said no")

    async def failing() -> dict[str, Any]:
        return {"status": "fail", "message": "HTTP 503"}

    monitor = Monitor(
        {"schedule": {"intervals": ["50ms"]}, "verdict": {"failure_limit": 0}},
        checks={"web": failing},
        on_rollback=async_hook if kind.startswith("async") else sync_hook,
    )
    report = await within(monitor.run(RUNNING))

    assert report["verdict"] == "unhealthy"
    assert report["ended_by"] == "unhealthy"
    assert len(report["ticks"]) == 1, "a failure limit of 0 ends at the first failed tick"
    assert 'check "web" failed: HTTP 503' in report["reason"]
    assert len(seen) == 1 and finished == [threading.get_ident()]
    assert seen[0] == {"session_id": report["session_id"], "event": RUNNING.to_dict(), "reason": report["reason"]}
    rollback = report["rollback"]
    assert rollback is not None
    if kind.endswith("raises"):
        assert rollback["error"] == "RuntimeError: rollback API said no"
    else:
        assert rollback["error"] is None


@pytest.mark.asyncio
async def test_a_healthy_deployment_never_fires_the_hook() -> None:
    fired = []
    monitor = Monitor(FAST, checks={"probe": passing}, on_rollback=fired.append)
    report = await within(monitor.run(SUCCEEDED))
    assert (report["verdict"], report["rollback"], fired) == ("healthy", None, [])


@pytest.mark.asyncio
async def test_callables_run_in_the_context_of_the_caller_of_start() -> None:
    seen = []

    async def probe() -> dict[str, Any]:
        seen.append(which.get())
        return {"status": "pass", "message": "up"}

    monitor = Monitor(FAST, checks={"probe": probe})
    which.set("deploy-42")
    session = await monitor.start(SUCCEEDED)
    which.set("changed later")
    await within(session.wait())
    assert seen and set(seen) == {"deploy-42"}


@pytest.mark.asyncio
async def test_cancelling_the_task_awaiting_wait_cancels_the_session() -> None:
    monitor = Monitor(RUNNING_FAST, checks={"probe": passing})
    session = await monitor.start(RUNNING)
    waiter = asyncio.create_task(session.wait())
    # The first update also lets the waiting task start awaiting.
    await within(session.updates().__anext__())
    assert not waiter.done()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    # A running deployment would otherwise be monitored for max_duration (2 h).
    report = await within(session.wait())
    assert report["ended_by"] == "cancelled"
    assert report["reason"].startswith("the session was cancelled")
    assert session.report() is not None and session.report()["ended_by"] == "cancelled"


@pytest.mark.asyncio
async def test_a_timeout_around_wait_cancels_the_session_but_shield_does_not() -> None:
    monitor = Monitor(RUNNING_FAST, checks={"probe": passing})
    shielded = await monitor.start(RUNNING)
    await within(shielded.updates().__anext__())
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.shield(shielded.wait()), 0)
    await shielded.complete()
    assert (await within(shielded.wait()))["ended_by"] == "cooldown_elapsed"

    timed = await monitor.start(RUNNING)
    await within(timed.updates().__anext__())
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(timed.wait(), 0.01)
    assert (await within(timed.wait()))["ended_by"] == "cancelled"


@pytest.mark.asyncio
async def test_cancelling_the_task_awaiting_run_cancels_the_session() -> None:
    calls: list[str] = []
    entered = asyncio.Event()
    release = asyncio.Event()

    async def probe() -> dict[str, Any]:
        calls.append(which.get())
        if len(calls) == 1:
            entered.set()
            await release.wait()
        return {"status": "pass", "message": "up"}

    # 300 ms apart: the first session's next tick would come well inside the second session.
    monitor = Monitor(
        {"schedule": {"intervals": ["300ms"], "cooldown": "900ms"}, "verdict": {"min_samples": 1}},
        checks={"probe": probe},
    )
    which.set("first")
    runner = asyncio.create_task(monitor.run(RUNNING))
    await within(entered.wait())
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    release.set()
    # The second session is the clock: while it runs 3+ ticks, a first session still alive would
    # have ticked again.
    which.set("second")
    report = await within(monitor.run(SUCCEEDED))
    assert len(report["ticks"]) >= 3
    assert calls.count("second") == len(report["ticks"])
    assert calls.count("first") == 1, calls


def test_run_works_under_asyncio_run() -> None:
    monitor = Monitor(FAST, checks={"probe": passing})
    report = asyncio.run(monitor.run(SUCCEEDED))
    assert report["verdict"] == "healthy"


@pytest.mark.asyncio
async def test_pushed_samples_are_validated_and_summarised() -> None:
    monitor = Monitor(FAST, checks={"probe": passing})
    session = await monitor.start(SUCCEEDED)
    for value in (10, 20, 31.5):
        session.push("p99_ms", value)
    with pytest.raises(cased.ValidationError) as nan:
        session.push("p99_ms", float("nan"))
    assert [e["field"] for e in nan.value.errors] == ["value"]
    assert "not a finite number" in nan.value.errors[0]["message"]
    with pytest.raises(cased.ValidationError) as inf:
        session.push("p99_ms", float("inf"))
    assert [e["field"] for e in inf.value.errors] == ["value"]
    with pytest.raises(cased.ValidationError) as empty:
        session.push(" ", 1.0)
    assert [e["field"] for e in empty.value.errors] == ["metric"]
    with pytest.raises(TypeError):
        session.push("p99_ms", "fast")  # type: ignore[arg-type]
    report = await within(session.wait())
    assert report["metrics"] == {
        "p99_ms": {"count": 3, "window": 3, "last": 31.5, "mean": 20.5, "median": 20.0}
    }


@pytest.mark.asyncio
async def test_a_configured_http_check_runs_in_sessions(api: ApiServer) -> None:
    config = {**FAST, "checks": [{"name": "web", "type": "http", "url": f"{api.url}/health", "category": "endpoint"}]}
    monitor = Monitor(config)
    assert monitor.check_names() == ["web"]
    report = await within(monitor.run(SUCCEEDED))
    assert report["verdict"] == "healthy", report["reason"]
    checks = [c for t in report["ticks"] for c in t["checks"]]
    assert {(c["name"], c["category"], c["status"]) for c in checks} == {("web", "endpoint", "pass")}
    assert all(c["message"].startswith("HTTP 201 in ") for c in checks)
    assert [r.path for r in api.requests] == ["/health"] * len(report["ticks"])


@pytest.mark.asyncio
async def test_a_dict_event_is_validated_by_the_core() -> None:
    monitor = Monitor(FAST, checks={"probe": passing})
    with pytest.raises(cased.ValidationError) as exc:
        await monitor.start({"deployment_request": " ", "commit_sha": "xyz", "colour": "blue"})
    assert {e["field"] for e in exc.value.errors} >= {"deployment_request", "colour"}
    with pytest.raises(cased.ValidationError) as exc:
        await monitor.start({"deployment_request": "x", "event_metadata": {"at": object()}})
    assert exc.value.errors[0]["field"] == "event_metadata.at"


@pytest.mark.parametrize(
    ("config", "field", "words"),
    [
        ({"schedule": {"intervals": []}}, "schedule.intervals", "at least one interval"),
        ({"schedule": {"intervals": ["1s", "0s"]}}, "schedule.intervals[1]", "outside 1ms..7days"),
        ({"schedule": {"intervals": ["1s", "soon"]}}, "schedule.intervals", '"soon"'),
        ({"verdikt": {"failure_limit": 1}}, "verdikt", "unknown field `verdikt`"),
        ({"schedule": {"cooldwn": "1m"}}, "schedule.cooldwn", "unknown field `cooldwn`"),
        ({"verdict": {"no_data": "maybe"}}, "verdict.no_data", "maybe"),
        ({"checks": [{"name": "web", "type": "http", "url": "not a url"}]}, "checks[0].url", "not a url"),
        ([1, 2], "config", "must be an object"),
    ],
)
def test_configuration_errors_name_the_key_path(config: Any, field: str, words: str) -> None:
    with pytest.raises(cased.ValidationError) as exc:
        Monitor(config)
    assert exc.value.errors[0]["field"] == field, exc.value.errors
    assert words in exc.value.errors[0]["message"]
    assert exc.value.code == "validation"


def test_configuration_values_json_cannot_hold_are_validation_errors_naming_the_key() -> None:
    with pytest.raises(cased.ValidationError) as exc:
        Monitor({"schedule": {"intervals": [b"10s"]}})
    assert exc.value.errors[0]["field"] == "schedule.intervals[0]"


def test_exiting_with_a_session_still_running_does_not_crash() -> None:
    script = textwrap.dedent(
        """
        import asyncio, cased

        async def probe():
            return {"status": "pass", "message": "up"}

        async def main():
            config = {"schedule": {"intervals": ["10ms"]}, "verdict": {"consecutive_error_limit": 100000}}
            monitor = cased.Monitor(config, checks={"probe": probe})
            session = await monitor.start(cased.DeploymentEvent("Deploy v1", status="running"))
            async for update in session.updates():
                if update["tick"] >= 3:
                    break

        asyncio.run(main())
        print("done")
        """
    )
    for _ in range(4):
        child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
        assert (child.returncode, child.stdout) == (0, "done\n"), child.stderr

