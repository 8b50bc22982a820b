"""Custom checks written in Python, and the one-off runner ``cased.run_check`` against real
servers on loopback."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable
from typing import Any, TypeVar

import pytest
from apiserver import HANG, ApiServer, Reply

import cased
from cased import DeploymentEvent, Monitor

T = TypeVar("T")

WAIT = 10.0
"""Upper bound for anything that should happen promptly (a hang fails, not blocks)."""

EVENT = DeploymentEvent("Deploy v2.0.1", repository_full_name="acme/shop", status="running")

ONE_TICK = {"schedule": {"intervals": ["50ms"]}, "verdict": {"consecutive_error_limit": 0, "min_samples": 1}}
"""A check that errors once ends the session (error limit 0): one tick to look at."""


async def within(awaitable: Awaitable[T]) -> T:
    return await asyncio.wait_for(awaitable, WAIT)


async def first_tick(monitor: Monitor) -> list[dict[str, Any]]:
    """The checks of the first tick of a session, which is then cancelled."""
    session = await monitor.start(EVENT)
    update = await within(session.updates().__anext__())
    await session.cancel()
    await within(session.wait())
    return update["checks"]


# --- custom checks -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_an_exception_is_an_error_outcome_with_its_message() -> None:
    async def database() -> dict[str, Any]:
        raise RuntimeError("database is down")

    monitor = Monitor(ONE_TICK, checks={"database": database})
    report = await within(monitor.run(EVENT))
    [tick] = report["ticks"]
    [check] = tick["checks"]
    assert (check["name"], check["status"], check["message"]) == ("database", "error", "RuntimeError: database is down")
    assert check["latency_ms"] >= 0
    assert report["ended_by"] == "error_limit"
    assert report["verdict"] == "inconclusive", "errors are not failures"
    assert report["counters"]["failed_ticks"] == 0
    assert 'check "database" could not run 1 times in a row (limit 0)' in report["reason"]


@pytest.mark.asyncio
async def test_an_exception_without_a_message_is_named_by_its_type() -> None:
    async def broken() -> dict[str, Any]:
        raise KeyError

    [check] = (await within(Monitor(ONE_TICK, checks={"broken": broken}).run(EVENT)))["ticks"][0]["checks"]
    assert (check["status"], check["message"]) == ("error", "KeyError")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("result", "problem"),
    [
        (None, 'expected a dict like {"status": "pass", "message": "..."}, got NoneType'),
        ("pass", "got str"),
        ({"status": "ok", "message": "fine"}, '"status" is "ok", not "pass", "warn", "fail" or "error"'),
        ({"status": "pass"}, '"message" is missing'),
        ({"message": "fine"}, '"status" is missing'),
        ({"status": "pass", "message": 200}, '"message" is 200, not a string'),
        ({"status": "pass", "message": "fine", "colour": "green"}, 'unknown key "colour"'),
        ({"status": "pass", "message": "fine", "latency_ms": -1}, '"latency_ms" is -1, not a non-negative number'),
        ({"status": "pass", "message": "fine", "latency_ms": "fast"}, '"latency_ms" is "fast"'),
        ({"status": "pass", "message": "fine", "evidence": {"at": object()}}, "result.evidence.at: is a Python object, which JSON cannot hold"),
    ],
)
async def test_a_malformed_result_is_an_error_outcome_saying_what_is_wrong(result: Any, problem: str) -> None:
    async def check() -> Any:
        return result

    [outcome] = (await within(Monitor(ONE_TICK, checks={"c": check}).run(EVENT)))["ticks"][0]["checks"]
    assert outcome["status"] == "error"
    assert outcome["message"].startswith("malformed check result: "), outcome["message"]
    assert problem in outcome["message"]


@pytest.mark.asyncio
async def test_every_problem_of_a_result_is_listed() -> None:
    async def check() -> Any:
        return {"status": "green", "latency_ms": -3, "extra": 1}

    [outcome] = (await within(Monitor(ONE_TICK, checks={"c": check}).run(EVENT)))["ticks"][0]["checks"]
    for problem in ('"status" is "green"', '"message" is missing', '"latency_ms" is -3', 'unknown key "extra"'):
        assert problem in outcome["message"]


@pytest.mark.asyncio
async def test_results_carry_status_message_and_reported_latency() -> None:
    async def warn() -> dict[str, Any]:
        return {"status": "warn", "message": "queue is long", "latency_ms": 12.5, "evidence": {"depth": 912}}

    def sync_pass() -> dict[str, Any]:
        return {"status": "pass", "message": "plain functions work too"}

    monitor = Monitor(ONE_TICK, checks={"queue": warn})
    monitor.add_check("plain", sync_pass, category="dependency")
    assert monitor.check_names() == ["queue", "plain"]
    queue, plain = await within(first_tick(monitor))
    assert queue == {
        "name": "queue",
        "category": "availability",
        "status": "warn",
        "latency_ms": 12.5,
        "message": "queue is long",
        "evidence": {"depth": 912},
    }
    assert plain["evidence"] is None, "no evidence given: None"
    assert (plain["name"], plain["category"], plain["status"]) == ("plain", "dependency", "pass")
    assert plain["message"] == "plain functions work too"


@pytest.mark.asyncio
async def test_the_decorator_registers_checks_in_order() -> None:
    monitor = Monitor(ONE_TICK)

    @monitor.check("db", category="database")
    async def db() -> dict[str, Any]:
        return {"status": "fail", "message": "replica lag 40 s"}

    @monitor.check("cache")
    async def cache() -> dict[str, Any]:
        return {"status": "pass", "message": "PONG"}

    assert asyncio.iscoroutinefunction(db), "the decorator returns the function unchanged"
    assert monitor.check_names() == ["db", "cache"]
    assert repr(monitor) == "Monitor(checks=['db', 'cache'])"
    checks = await within(first_tick(monitor))
    assert [(c["name"], c["category"], c["status"], c["message"]) for c in checks] == [
        ("db", "database", "fail", "replica lag 40 s"),
        ("cache", "availability", "pass", "PONG"),
    ]


@pytest.mark.asyncio
async def test_a_never_returning_check_neither_hangs_the_session_nor_leaks_its_task() -> None:
    started = []
    cancelled = []
    all_cancelled = asyncio.Event()

    async def hangs() -> dict[str, Any]:
        started.append(1)
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            cancelled.append(1)
            if len(cancelled) == 2:
                all_cancelled.set()
            raise
        raise AssertionError("unreachable")

    async def up() -> dict[str, Any]:
        return {"status": "pass", "message": "up"}

    config = {"schedule": {"intervals": ["50ms"]}, "verdict": {"consecutive_error_limit": 1}}
    report = await within(Monitor(config, checks={"hangs": hangs, "up": up}).run(EVENT))
    assert report["ended_by"] == "error_limit"
    assert [[(c["name"], c["status"]) for c in t["checks"]] for t in report["ticks"]] == [
        [("hangs", "error"), ("up", "pass")]
    ] * 2
    assert {t["checks"][0]["message"] for t in report["ticks"]} == {"the check did not finish within 50 ms"}
    # The session gave up on each call, and each call's task was cancelled.
    await within(all_cancelled.wait())
    assert len(started) == len(cancelled) == 2


def test_custom_checks_are_validated() -> None:
    async def up() -> dict[str, Any]:
        return {"status": "pass", "message": "up"}

    configured = {"checks": [{"name": "web", "type": "http", "url": "http://127.0.0.1:9/"}]}
    with pytest.raises(cased.ValidationError) as twice:
        Monitor(configured, checks={"web": up})
    assert twice.value.errors == [{"field": "checks", "message": 'two checks are named "web"'}]

    monitor = Monitor(configured, checks={"up": up})
    with pytest.raises(cased.ValidationError) as again:
        monitor.add_check("up", up)
    assert again.value.errors[0]["field"] == "checks"
    with pytest.raises(cased.ValidationError) as category:
        monitor.add_check("db", up, category="databse")
    assert category.value.errors[0]["field"] == "category"
    assert "databse" in category.value.errors[0]["message"]
    with pytest.raises(TypeError, match="expected an async callable"):
        monitor.add_check("nothing", None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="on_rollback"):
        Monitor(on_rollback="rollback.sh")  # type: ignore[arg-type]
    assert monitor.check_names() == ["web", "up"], "failed additions leave the monitor as it was"


def test_configuration_limits_name_the_key() -> None:
    async def up() -> dict[str, Any]:
        return {"status": "pass", "message": "up"}

    many = [{"name": f"c{i}", "type": "tcp", "host": "127.0.0.1", "port": 1} for i in range(1001)]
    with pytest.raises(cased.ValidationError) as e:
        Monitor({"checks": many})
    assert e.value.errors[0]["field"] == "checks"
    assert "at most 1000" in e.value.errors[0]["message"]
    for bad in ("a\0b", "n" * 257):
        with pytest.raises(cased.ValidationError) as e:
            Monitor({"checks": [{"name": bad, "type": "tcp", "host": "h", "port": 1}]})
        assert e.value.errors[0]["field"] == "checks[0].name"
        with pytest.raises(cased.ValidationError) as e:
            Monitor(checks={bad: up})
        assert e.value.errors[0]["field"] == "checks"
    with pytest.raises(cased.ValidationError) as e:
        Monitor({"schedule": {"k" * 100_000: 1}})
    assert len(str(e.value)) < 1000 and "k" * 64 in str(e.value)


# --- run_check -----------------------------------------------------------------------------


def http(url: str, **extra: Any) -> dict[str, Any]:
    return {"name": "web", "type": "http", "url": url, **extra}


@pytest.mark.asyncio
async def test_run_check_passes_on_200(api: ApiServer) -> None:
    api.script = [Reply(200, '{"ok": true}')]
    outcome = await within(cased.run_check(http(f"{api.url}/health")))
    assert outcome["status"] == "pass"
    assert re.fullmatch(r"HTTP 200 in \d+ ms", outcome["message"]), outcome["message"]
    assert outcome["latency_ms"] > 0
    [request] = api.requests
    assert (request.method, request.path) == ("GET", "/health")


@pytest.mark.asyncio
async def test_run_check_fails_on_503_with_evidence(api: ApiServer) -> None:
    api.script = [Reply(503, '{"detail": "restarting"}')]
    outcome = await within(cased.run_check(http(f"{api.url}/health")))
    assert outcome["status"] == "fail"
    assert outcome["message"].startswith("HTTP 503"), outcome["message"]
    assert outcome["evidence"]["status"] == 503
    assert outcome["evidence"]["failures"][0]["check"] == "status"
    assert outcome["evidence"]["failures"][0]["body_excerpt"] == '{"detail": "restarting"}'


@pytest.mark.asyncio
async def test_run_check_takes_the_whole_configuration(api: ApiServer) -> None:
    api.script = [Reply(503)]
    outcome = await within(cased.run_check(http(f"{api.url}/ready", method="head", expect={"status": [503]})))
    assert outcome["status"] == "pass"
    assert outcome["message"].startswith("HTTP 503 in "), outcome["message"]
    assert [(r.method, r.path) for r in api.requests] == [("HEAD", "/ready")]


@pytest.mark.asyncio
async def test_run_check_on_a_closed_port_fails_and_never_raises(refused_url: str) -> None:
    outcome = await within(cased.run_check(http(f"{refused_url}/health")))
    assert outcome["status"] == "fail"
    assert outcome["message"].startswith(f"GET {refused_url}/health: connection refused"), outcome["message"]


@pytest.mark.asyncio
async def test_run_check_times_out_as_a_failure(api: ApiServer) -> None:
    api.script = [HANG]
    outcome = await within(cased.run_check(http(api.url, timeout="200ms")))
    assert outcome["status"] == "fail"
    assert "timed out" in outcome["message"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("config", "field", "words"),
    [
        (http("http://x.test", urll="typo"), "config", "unknown field `urll`"),
        ({"name": "web", "url": "http://x.test"}, "config", "missing field `type`"),
        (http("http://x.test") | {"type": "gopher"}, "config", "unknown variant `gopher`"),
        (http("ftp://x.test"), "url", "not an absolute http(s) URL"),
        (http("http://x.test", timeout="0s"), "timeout", "greater than zero"),
    ],
)
async def test_run_check_rejects_invalid_configurations(config: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(cased.ValidationError) as exc:
        await within(cased.run_check(config))
    assert exc.value.errors[0]["field"] == field, exc.value.errors
    assert words in exc.value.errors[0]["message"]


@pytest.mark.asyncio
async def test_run_check_rejects_values_json_cannot_hold() -> None:
    with pytest.raises(cased.ValidationError) as exc:
        await cased.run_check(http("http://x.test", timeout=object()))
    assert exc.value.errors[0]["field"] == "timeout"
    with pytest.raises(cased.ValidationError) as exc:
        await cased.run_check(http("http://x.test", timeout=float("nan")))
    assert exc.value.errors[0]["field"] == "timeout"


@pytest.mark.asyncio
async def test_cancelling_run_check_drops_the_request(api: ApiServer) -> None:
    api.script = [HANG]
    # A timeout far beyond WAIT: only dropping the Rust future can close the connection in time.
    task = asyncio.create_task(cased.run_check(http(api.url, timeout="60s")))
    await within(api.received.wait())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await within(api.hung_up.wait())


def test_run_check_works_under_asyncio_run(refused_url: str) -> None:
    assert asyncio.run(cased.run_check(http(refused_url)))["status"] == "fail"


# --- tcp and command -----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_run_check_tcp_sends_and_expects_against_a_local_server() -> None:
    received = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.readline())
        writer.write(b"+PONG\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        config = {"name": "tcp", "type": "tcp", "host": "127.0.0.1", "port": port}
        ok = await within(cased.run_check({**config, "send": "PING\r\n", "expect": "PONG"}))
        assert ok["status"] == "pass", ok
        assert received == [b"PING\r\n"]
        wrong = await within(cased.run_check({**config, "send": "PING\r\n", "expect": "HELLO"}))
        assert wrong["status"] == "fail", wrong
        server.close()
    await server.wait_closed()


@pytest.mark.asyncio
async def test_run_check_tcp_on_a_closed_port_fails(refused_url: str) -> None:
    port = int(refused_url.rsplit(":", 1)[1])
    outcome = await within(cased.run_check({"name": "tcp", "type": "tcp", "host": "127.0.0.1", "port": port}))
    assert outcome["status"] == "fail"
    assert "refused" in outcome["message"], outcome["message"]


@pytest.mark.asyncio
async def test_run_check_command() -> None:
    ok = await within(cased.run_check({"name": "true", "type": "command", "program": "true"}))
    assert ok["status"] == "pass", ok
    failed = await within(cased.run_check({"name": "false", "type": "command", "program": "false"}))
    assert failed["status"] == "fail", failed
    echo = {"name": "echo", "type": "command", "program": "echo", "args": ["ready; rm -rf /"]}
    matched = await within(cased.run_check({**echo, "expect": {"stdout_contains": "ready; rm"}}))
    assert matched["status"] == "pass", "arguments are passed as they are, without a shell"
    missing = await within(cased.run_check({"name": "x", "type": "command", "program": "/nonexistent/cased-probe"}))
    assert missing["status"] in {"fail", "error"}, missing
    slow = {"name": "slow", "type": "command", "program": "sleep", "args": ["5"], "timeout": "200ms"}
    timed_out = await within(cased.run_check(slow))
    assert timed_out["status"] == "fail" and timed_out["evidence"]["error"] == "timeout", timed_out
    assert "killed" in timed_out["message"]


@pytest.mark.asyncio
async def test_secret_query_parameters_stay_out_of_outcomes(api: ApiServer, refused_url: str) -> None:
    api.script = [Reply(503)]
    query = "?page=2&api_key=SEKRET1&X-Api-Key=SEKRET2&tenant=SEKRET3"
    outcome = await within(cased.run_check(http(f"{api.url}/health{query}", redact=["tenant"])))
    assert outcome["status"] == "fail"
    assert api.requests[0].path == f"/health{query}", "the request itself carries the secrets"
    assert outcome["evidence"]["url"] == (
        f"{api.url}/health?page=2&api_key=[redacted]&X-Api-Key=[redacted]&tenant=[redacted]"
    )
    outcome = await within(cased.run_check(http(f"{refused_url}/{query}", redact=["tenant"])))
    assert outcome["status"] == "fail"
    assert "api_key=[redacted]" in outcome["message"], outcome["message"]
    assert "SEKRET" not in repr(outcome), outcome
