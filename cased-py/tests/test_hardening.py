"""Hardening: hostile input and faults end as errors and outcomes, never as a crash or a hang."""

from __future__ import annotations

from typing import Any

import pytest

import cased

LIMIT = 64  # cased_core::limits::MAX_JSON_DEPTH


def nested(levels: int) -> dict[str, Any]:
    """A dict nesting `levels` dicts (``{}`` is one level)."""
    d: dict[str, Any] = {}
    for _ in range(levels - 1):
        d = {"a": d}
    return d


def cyclic() -> dict[str, Any]:
    d: dict[str, Any] = {"x": 1}
    d["s"] = d
    return d


def test_event_metadata_deep_or_cyclic_is_a_validation_error() -> None:
    for bad, message in [(nested(3000), f"nested deeper than {LIMIT} levels"),
                         (nested(LIMIT + 1), f"nested deeper than {LIMIT} levels"),
                         (cyclic(), "contains a cycle")]:
        with pytest.raises(cased.ValidationError) as e:
            cased.DeploymentEvent("d", event_metadata=bad)
        assert e.value.errors[0]["field"] == "event_metadata", e.value.errors
        assert message in e.value.errors[0]["message"]


@pytest.mark.asyncio
async def test_an_event_mapping_holding_a_cycle_is_a_validation_error() -> None:
    lst: list[Any] = []
    lst.append(lst)
    with pytest.raises(cased.ValidationError, match="contains a cycle"):
        await cased.Monitor({}).start({"deployment_request": "d", "event_metadata": {"l": lst}})


def test_event_metadata_at_the_limit_is_accepted() -> None:
    event = cased.DeploymentEvent("d", event_metadata=nested(LIMIT))
    assert event.to_dict()["event_metadata"] == nested(LIMIT)


def test_every_entry_point_refuses_deep_and_cyclic_values() -> None:
    for bad in [nested(3000), cyclic()]:
        with pytest.raises(cased.ValidationError, match="config"):
            cased.Monitor(bad)
        with pytest.raises(cased.ValidationError, match="config"):
            cased.Detector(bad)
        with pytest.raises(cased.ValidationError, match="report"):
            cased.render_report(bad)
        with pytest.raises(cased.ValidationError, match="config"):
            cased.compare([1.0, 2.0], [1.0, 2.0], bad)
    # The core's own limit holds for a configuration one level too deep.
    with pytest.raises(cased.ValidationError, match=f"nested deeper than {LIMIT} levels"):
        cased.Monitor({"checks": [], "x": nested(LIMIT)})


@pytest.mark.asyncio
async def test_run_check_refuses_deep_and_cyclic_configs() -> None:
    for bad in [nested(3000), cyclic()]:
        with pytest.raises(cased.ValidationError, match="config"):
            await cased.run_check(bad)


# ---------------------------------------------------------------- time arithmetic

U64_MAX = "18446744073709551615"


@pytest.mark.asyncio
async def test_a_retry_after_of_u64_max_seconds_is_a_server_error_not_a_panic() -> None:
    import asyncio

    from apiserver import API_KEY, ApiServer, Reply

    server = ApiServer(script=[Reply(503, '{"message": "maintenance"}', {"Retry-After": U64_MAX})])
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    async with listener:
        client = cased.Client(API_KEY, base_url=server.url)
        with pytest.raises(cased.ServerError, match="beyond the retry budget"):
            await client.create_deployment(cased.DeploymentEvent("d"))
        assert len(server.requests) == 1
        listener.close()
        for w in server.writers:
            w.close()


def test_verify_webhook_signature_with_a_now_beyond_the_clock_is_a_validation_error() -> None:
    sig = cased.sign_webhook("k", 1_700_000_000, b"{}")
    with pytest.raises(cased.ValidationError) as e:
        cased.verify_webhook_signature("k", 1_700_000_000, b"{}", sig, now=1.8e19)
    assert e.value.errors[0]["field"] == "now"


@pytest.mark.parametrize(
    "check",
    [
        {"name": "web", "type": "http", "url": "http://127.0.0.1:1/", "timeout": "584942417y"},
        {"name": "port", "type": "tcp", "host": "127.0.0.1", "port": 1, "timeout": "2h"},
        {"name": "cmd", "type": "command", "program": "true", "timeout": "584942417y"},
    ],
)
def test_absurd_check_timeouts_are_refused_naming_the_key(check: dict[str, Any]) -> None:
    with pytest.raises(cased.ValidationError) as e:
        cased.Monitor({"checks": [check]})
    fields = [err["field"] for err in e.value.errors]
    assert any(f.endswith("timeout") for f in fields), e.value.errors
    assert "longest timeout accepted" in str(e.value)


def test_absurd_alert_delivery_spans_are_refused_naming_the_key() -> None:
    with pytest.raises(cased.ValidationError) as e:
        cased.Monitor({"alerts": {"channels": [{"name": "h", "type": "webhook", "url": "http://127.0.0.1:1/", "secret": "k"}],
                                  "delivery": {"max_elapsed": "584942417y", "timeout": "2h"}}})
    fields = {err["field"] for err in e.value.errors}
    assert {"alerts.delivery.max_elapsed", "alerts.delivery.timeout"} <= fields, e.value.errors


# ---------------------------------------------------------------- alerts at the end of a script


def alerting(channel: str = "pager") -> dict[str, Any]:
    return {
        "schedule": {"intervals": ["20ms"], "max_duration": "20s"},
        "alerts": {
            "channels": [{"name": channel, "type": "custom"}],
            "routes": [{"channels": [channel], "group_wait": "10ms"}],
            "delivery": {"max_retries": 2, "initial_backoff": "10ms", "max_backoff": "20ms"},
        },
    }


async def down() -> dict[str, Any]:
    return {"status": "fail", "message": "HTTP 503"}


@pytest.mark.asyncio
async def test_run_delivers_its_alerts_before_it_returns() -> None:
    delivered: list[dict[str, Any]] = []

    async def pager(notification: dict[str, Any]) -> None:
        delivered.append(notification)

    async with cased.Monitor(alerting(), checks={"web": down}, notifiers={"pager": pager}) as monitor:
        report = await monitor.run({"deployment_request": "Deploy v2"})
        # No waiting: the verdict's alert went out before run() returned.
        assert report["verdict"] == "unhealthy"
        assert [n["alerts"][0]["key"] for n in delivered] == [report["alerts"][0]["key"]]
        assert report["alert_failures"] == []


@pytest.mark.asyncio
async def test_the_final_alert_failure_is_in_the_report() -> None:
    async def broken(notification: dict[str, Any]) -> None:
        raise RuntimeError("pager answered 500")

    monitor = cased.Monitor(alerting(), checks={"web": down}, notifiers={"pager": broken})
    report = await monitor.run({"deployment_request": "Deploy v2"})
    assert report["verdict"] == "unhealthy"
    [failure] = report["alert_failures"]
    assert failure["channel"] == "pager"
    assert "pager answered 500" in failure["error"]
    stats = await monitor.close()
    assert stats["failed"] == 1 and stats["delivered"] == 0


@pytest.mark.asyncio
async def test_close_validates_grace() -> None:
    with pytest.raises(cased.ValidationError):
        await cased.Monitor({}).close(-1.0)
    assert (await cased.Monitor({}).close())["delivered"] == 0


# ---------------------------------------------------------------- command checks


def not_running(pid: int) -> bool:
    """Done for: gone, a zombie (not yet reaped by init), exiting (``PF_EXITING``), or with a
    SIGKILL pending (queued when ``kill(2)`` returns; the process may not have been scheduled
    to die yet). As ``not_running`` in tests/checks.rs."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(") ", 1)[1].split()
        with open(f"/proc/{pid}/status") as f:
            status = f.read().splitlines()
    except (OSError, IndexError):
        return True
    pf_exiting, sigkill_bit = 0x4, 1 << 8
    dead = fields[0] in ("Z", "X")
    exiting = len(fields) > 6 and int(fields[6]) & pf_exiting != 0
    kill_pending = any(
        line.split()[0] in ("SigPnd:", "ShdPnd:") and int(line.split()[1], 16) & sigkill_bit != 0
        for line in status
        if line.startswith(("SigPnd:", "ShdPnd:"))
    )
    return dead or exiting or kill_pending


@pytest.mark.asyncio
async def test_a_command_is_judged_by_its_exit_status_and_its_orphans_are_killed() -> None:
    outcome = await cased.run_check({"name": "c", "type": "command", "shell": True,
                                     "program": "sleep 30 & echo $!; exit 0", "timeout": "20s"})
    assert outcome["status"] == "pass", outcome
    pid = int(outcome["evidence"]["stdout"].strip())
    assert not_running(pid)


# ---------------------------------------------------------------- found by the binding fuzz


def test_error_counts_near_the_64_bit_limit_are_compared_not_a_panic() -> None:
    # The pooled error count overflowed: a PanicException.
    big = 2**64 - 1
    judged = cased.compare_error_rates((big, big), (big, big))
    assert judged["baseline"] == {"errors": big, "requests": big}
    assert judged["alarm"] is False


def test_lone_surrogates_in_text_arguments_are_validation_errors_naming_them() -> None:
    # They were UnicodeEncodeErrors.
    for call, field in [
        (lambda: cased.DeploymentEvent.from_json("\ud800"), "text"),
        (lambda: cased.sign_webhook("\ud800", 1, b""), "secret"),
        (lambda: cased.verify_webhook_signature("s", "1", b"", "v1=\udfff"), "signature"),
        (lambda: cased.Client("k\ud800", "http://127.0.0.1:9"), "api_key"),
        (lambda: cased.PrometheusSource("http://\ud800"), "url"),
        (lambda: cased.render_report("{}", "\ud800"), "format"),
        (lambda: cased.compare([1.0, 2.0], [1.0, 2.0], metric="\ud800"), "metric"),
        (lambda: cased.Monitor({}, baselines={"\ud800": [1.0]}), "baselines"),
        (lambda: cased.Monitor({}, checks={"\ud800": print}), "checks"),
    ]:
        with pytest.raises(cased.ValidationError) as e:
            call()
        assert [p["field"] for p in e.value.errors] == [field], e.value.errors


def test_integers_beyond_range_in_plain_arguments_are_validation_errors() -> None:
    # They were OverflowErrors.
    with pytest.raises(cased.ValidationError) as e:
        cased.Client("k", "http://127.0.0.1:9", max_retries=2**40)
    assert e.value.errors[0]["field"] == "max_retries"
    with pytest.raises(cased.ValidationError) as e:
        cased.compare([1.0, 2.0], [1.0, 2.0], look=-1)
    assert e.value.errors[0]["field"] == "look"
    # A timestamp beyond 64 bits is judged as text: malformed, not an OverflowError.
    with pytest.raises(cased.SignatureError):
        cased.verify_webhook_signature("s", 2**70, b"", "v1=00")


def test_a_blank_key_is_named_quoted_not_as_an_empty_field() -> None:
    # A blank key gave the field "": an invisible name.
    with pytest.raises(cased.ValidationError) as e:
        cased.Monitor({"": object()})
    assert e.value.errors[0]["field"] == '""', e.value.errors
    with pytest.raises(cased.ValidationError) as e:
        cased.DeploymentEvent.from_dict({"deployment_request": "x", "\t": 2**70})
    assert e.value.errors[0]["field"] == '"\\t"', e.value.errors


def test_from_env_refuses_surrogates_naming_the_variable() -> None:
    with pytest.raises(cased.ValidationError) as e:
        cased.DeploymentEvent.from_env({"GITHUB_ACTIONS": "true", "GITHUB_SHA": "\ud800"})
    assert e.value.errors[0]["field"] == "env.GITHUB_SHA", e.value.errors
    with pytest.raises(TypeError, match="env: expected a mapping"):
        cased.DeploymentEvent.from_env(5)  # type: ignore[arg-type]


DETECTOR_METRIC_CONFIG: dict[str, Any] = {
    "schedule": {"intervals": ["1s"], "cooldown": "0s"},
    "checks": [{"name": "web", "type": "tcp", "host": "127.0.0.1", "port": 9}],
    "detectors": [
        {"type": "spike", "metric": "web.latency_ms"},
        {"type": "spike", "metric": "queue.latency_ms"},
        {"type": "spike", "metric": "web.latency", "name": "slow-web"},
    ],
}


@pytest.mark.asyncio
async def test_a_detector_on_a_metric_nothing_produces_is_refused_at_start_naming_it() -> None:
    cancelled = cased.DeploymentEvent("Deploy", status="cancelled")
    # Decorator checks may still come, so the constructor accepts it ...
    monitor = cased.Monitor(DETECTOR_METRIC_CONFIG)
    # ... and start() refuses it, naming each detector and metric.
    with pytest.raises(cased.ValidationError) as e:
        await monitor.start(cancelled)
    assert [x["field"] for x in e.value.errors] == ["detectors[1].metric", "detectors[2].metric"]
    assert '"slow-web" detector watches "web.latency"' in e.value.errors[1]["message"]
    assert "web.latency_ms" in e.value.errors[1]["message"]
    with pytest.raises(cased.ValidationError):
        await monitor.run(cancelled)

    @monitor.check("queue")
    async def queue() -> dict[str, Any]:
        return {"status": "pass", "message": "ok"}

    # The decorator check produces queue.latency_ms; web.latency is still refused.
    with pytest.raises(cased.ValidationError) as e:
        await monitor.start(cancelled)
    assert [x["field"] for x in e.value.errors] == ["detectors[2].metric"]
    # Declared as pushed, it is accepted.
    ok = cased.Monitor({**DETECTOR_METRIC_CONFIG, "pushed": ["web.latency"]}, checks={"queue": queue})
    report = await ok.run(cancelled)
    assert report["verdict"] == "inconclusive"


@pytest.mark.asyncio
async def test_a_push_only_monitor_is_not_held_to_the_detector_metric_rule() -> None:
    monitor = cased.Monitor({"schedule": {"intervals": ["1s"], "cooldown": "0s"},
                             "detectors": [{"type": "spike", "metric": "queue_depth"}]})
    report = await monitor.run(cased.DeploymentEvent("Deploy", status="cancelled"))
    assert report["ended_by"] == "cancelled"
    # Declaring `pushed` opts in: a detector on another metric is refused.
    typo = cased.Monitor({"pushed": ["queue_depth"],
                          "detectors": [{"type": "spike", "metric": "queue_dept"}]})
    with pytest.raises(cased.ValidationError) as e:
        await typo.start(cased.DeploymentEvent("Deploy", status="cancelled"))
    assert e.value.errors[0]["field"] == "detectors[0].metric"
    assert '"queue_dept"' in e.value.errors[0]["message"]
    with pytest.raises(cased.ValidationError) as e:
        cased.Monitor({"pushed": [""]})
    assert e.value.errors[0]["field"] == "pushed[0]"
