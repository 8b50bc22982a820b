"""Alerts through the bindings: webhook signatures (the core's pinned reference value, round
trips, tampering, replays), a custom notifier written in Python and the in-app channel."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Awaitable
from typing import Any, TypeVar

import pytest
from apiserver import ApiServer, Reply

import cased
from cased import DeploymentEvent, Monitor

T = TypeVar("T")
WAIT = 10.0
SECRET = "whsec_test"
NOW = 1_700_000_000
BODY = b'{"schema":"cased.notification/v1"}'


async def within(awaitable: Awaitable[T]) -> T:
    return await asyncio.wait_for(awaitable, WAIT)


def test_the_signature_is_the_core_reference_value() -> None:
    # cased-core alert/webhook.rs: hmac.new(b"whsec_test", b"1700000000.{}", hashlib.sha256)
    expected = "v1=35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91"
    assert cased.sign_webhook(SECRET, "1700000000", b"{}") == expected
    assert cased.sign_webhook(SECRET, NOW, "{}") == expected
    mac = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert cased.sign_webhook(SECRET, NOW, bytearray(BODY)) == f"v1={mac}"


def test_a_signed_body_verifies() -> None:
    signature = cased.sign_webhook(SECRET, NOW, BODY)
    assert cased.verify_webhook_signature(SECRET, str(NOW), BODY, signature, now=NOW) is None
    assert cased.verify_webhook_signature(SECRET, NOW, BODY, signature, tolerance=300, now=NOW + 300) is None
    # Several signatures in one header (secret rotation): any match is enough.
    rotated = f"v1={'0' * 64},{signature}"
    assert cased.verify_webhook_signature(SECRET, NOW, BODY, rotated, now=NOW) is None
    # Without `now`, the current time.
    import time

    fresh = int(time.time())
    cased.verify_webhook_signature(SECRET, fresh, BODY, cased.sign_webhook(SECRET, fresh, BODY))


@pytest.mark.parametrize(
    ("secret", "timestamp", "body", "signature", "now", "code"),
    [
        (SECRET, NOW, BODY + b" ", None, NOW, "mismatch"),
        ("another secret", NOW, BODY, None, NOW, "mismatch"),
        (SECRET, NOW, BODY, None, NOW + 301, "outside_tolerance"),
        (SECRET, NOW, BODY, None, NOW - 301, "outside_tolerance"),
        (SECRET, "yesterday", BODY, None, NOW, "malformed_timestamp"),
        (SECRET, NOW, BODY, "sha256=abc", NOW, "malformed_signature"),
    ],
    ids=["tampered body", "wrong secret", "stale", "future", "bad timestamp", "bad header"],
)
def test_rejections_carry_a_code(
    secret: str, timestamp: Any, body: bytes, signature: str | None, now: int, code: str
) -> None:
    signature = signature or cased.sign_webhook(SECRET, NOW, BODY)
    with pytest.raises(cased.SignatureError) as exc:
        cased.verify_webhook_signature(secret, timestamp, body, signature, now=now)
    assert exc.value.code == code
    assert isinstance(exc.value, cased.CasedError)


def test_bad_arguments() -> None:
    signature = cased.sign_webhook(SECRET, NOW, BODY)
    with pytest.raises(cased.ValidationError) as exc:
        cased.verify_webhook_signature(SECRET, NOW, BODY, signature, tolerance=-1, now=NOW)
    assert exc.value.errors[0]["field"] == "tolerance"
    with pytest.raises(TypeError, match="body"):
        cased.sign_webhook(SECRET, NOW, {"a": 1})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="timestamp"):
        cased.sign_webhook(SECRET, 1.5, BODY)  # type: ignore[arg-type]


# --- alerts from sessions --------------------------------------------------------------------

EVENT = DeploymentEvent(
    "Deploy v2.0.1", repository_full_name="acme/shop", event_metadata={"environment": "prod"}
)


def alerting(*channels: dict[str, Any]) -> dict[str, Any]:
    return {
        "schedule": {"intervals": ["50ms"], "cooldown": "400ms"},
        "verdict": {"min_samples": 1},
        "alerts": {
            "channels": list(channels),
            "routes": [{"name": "default", "channels": [c["name"] for c in channels], "group_wait": "10ms"}],
            "delivery": {"max_retries": 1, "initial_backoff": "10ms", "max_backoff": "20ms"},
        },
    }


async def down() -> dict[str, Any]:
    return {"status": "fail", "message": "HTTP 503"}


@pytest.mark.asyncio
async def test_a_failing_session_alerts_a_python_notifier_and_the_inapp_channel() -> None:
    delivered: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    async def pager(notification: dict[str, Any]) -> None:
        assert asyncio.get_running_loop() is loop
        await delivered.put(notification)

    config = alerting({"name": "pager", "type": "custom"}, {"name": "app", "type": "inapp"})
    monitor = Monitor(config, checks={"web": down}, notifiers={"pager": pager})
    session = await monitor.start(EVENT)
    stream = session.alerts("app")
    report = await within(session.wait())
    assert report["verdict"] == "unhealthy"
    assert [(a["severity"], a["title"]) for a in report["alerts"]] == [("critical", "Deployment unhealthy")]

    notification = await within(delivered.get())
    assert notification["schema"] == "cased.notification/v1"
    assert (notification["status"], notification["severity"]) == ("firing", "critical")
    assert notification["deployment"]["repository"] == "acme/shop"
    assert notification["deployment"]["environment"] == "prod"
    [alert] = notification["alerts"]
    assert alert["title"] == "Deployment unhealthy"
    assert alert["key"] == report["alerts"][0]["key"]

    inapp = await within(stream.__anext__())
    assert inapp["id"] == notification["id"]
    assert inapp["alerts"][0]["key"] == alert["key"]


@pytest.mark.asyncio
async def test_a_notifier_that_raises_is_retried_with_the_same_notification() -> None:
    attempts: list[str] = []
    retried = asyncio.Event()

    async def broken(notification: dict[str, Any]) -> None:
        attempts.append(notification["id"])
        if len(attempts) == 2:
            retried.set()
        raise RuntimeError("pager is down")

    config = alerting({"name": "pager", "type": "custom"})
    session = await Monitor(config, checks={"web": down}, notifiers={"pager": broken}).start(EVENT)
    assert (await within(session.wait()))["verdict"] == "unhealthy"
    await within(retried.wait())
    assert len(attempts) == 2 and attempts[0] == attempts[1], "a retry carries the same notification id"


def test_notifiers_and_channels_are_validated() -> None:
    with pytest.raises(TypeError, match="notifier"):
        Monitor(alerting({"name": "pager", "type": "custom"}), notifiers={"pager": "page.sh"})  # type: ignore[dict-item]
    with pytest.raises(cased.ValidationError):
        Monitor(alerting({"name": "pager", "type": "pager"}))


@pytest.mark.asyncio
async def test_alerts_of_an_unknown_channel_is_an_error() -> None:
    session = await Monitor(alerting({"name": "app", "type": "inapp"})).start(EVENT)
    with pytest.raises(cased.ValidationError):
        session.alerts("nope")
    await session.cancel()
    await within(session.wait())


@pytest.mark.asyncio
async def test_cancelling_a_wait_for_alerts_leaves_the_stream_usable() -> None:
    config = alerting({"name": "app", "type": "inapp"})
    session = await Monitor(config, checks={"web": down}).start(EVENT)
    stream = session.alerts("app")
    waiting = asyncio.ensure_future(stream.__anext__())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await within(session.wait())
    notification = await within(stream.__anext__())
    assert notification["severity"] == "critical"


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    return []


@pytest.mark.asyncio
async def test_slack_messages_escape_mentions_and_links(api: ApiServer) -> None:
    api.script = [Reply(200, "ok")]
    evil = DeploymentEvent(
        "<!channel> <https://evil.example|Approve rollback>",
        event_metadata={"environment": "<!channel>"},
    )
    config = alerting({"name": "ops", "type": "slack", "webhook_url": f"{api.url}/services/T/B/x"})
    session = await Monitor(config, checks={"web": down}).start(evil)
    assert (await within(session.wait()))["verdict"] == "unhealthy"
    await within(api.received.wait())
    body = json.loads(api.requests[0].body)
    headline = (
        "[CRITICAL] Deployment unhealthy — &lt;!channel&gt; "
        "&lt;https://evil.example|Approve rollback&gt; (&lt;!channel&gt;)"
    )
    assert body["text"] == headline
    assert body["attachments"][0]["fallback"] == headline
    for s in _strings(body):
        assert "<" not in s and ">" not in s, s


@pytest.mark.asyncio
async def test_pagerduty_gets_an_events_api_v2_trigger(api: ApiServer, monkeypatch: pytest.MonkeyPatch) -> None:
    api.script = [Reply(202, '{"status": "success"}')]
    monkeypatch.setenv("CASED_TEST_PD_KEY", "R0UTINGKEY0123456789")
    config = alerting(
        {"name": "pager", "type": "pagerduty", "routing_key": "${CASED_TEST_PD_KEY}", "url": f"{api.url}/v2/enqueue"}
    )
    event = DeploymentEvent("Deploy v2", repository_full_name="acme/shop", event_metadata={"environment": "prod"})
    session = await Monitor(config, checks={"web": down}).start(event)
    assert (await within(session.wait()))["verdict"] == "unhealthy"
    await within(api.received.wait())
    sent = json.loads(api.requests[0].body)
    assert api.requests[0].path == "/v2/enqueue"
    assert sent["routing_key"] == "R0UTINGKEY0123456789"
    assert sent["event_action"] == "trigger"
    assert sent["payload"]["severity"] == "error"  # cased critical
    assert sent["payload"]["source"] == "acme/shop" and sent["payload"]["group"] == "prod"
    assert sent["dedup_key"]
    with pytest.raises(cased.ValidationError) as e:
        Monitor(alerting({"name": "pager", "type": "pagerduty"}))
    assert "alerts.channels[0].routing_key" in [f["field"] for f in e.value.errors]


@pytest.mark.asyncio
async def test_alertmanager_gets_labelled_v2_alerts(api: ApiServer) -> None:
    api.script = [Reply(200, "")]
    config = alerting({"name": "am", "type": "alertmanager", "url": api.url, "labels": {"team": "payments"}})
    event = DeploymentEvent("Deploy v2", repository_full_name="acme/shop", event_metadata={"environment": "prod"})
    session = await Monitor(config, checks={"web": down}).start(event)
    assert (await within(session.wait()))["verdict"] == "unhealthy"
    await within(api.received.wait())
    assert api.requests[0].path == "/api/v2/alerts"
    sent = json.loads(api.requests[0].body)
    labels = sent[0]["labels"]
    assert labels["alertname"] == "CasedDeployment" and labels["severity"] == "critical"
    assert (labels["repository"], labels["environment"], labels["team"]) == ("acme/shop", "prod", "payments")
    assert sent[0]["annotations"]["summary"]
    with pytest.raises(cased.ValidationError) as e:
        Monitor(alerting({"name": "am", "type": "alertmanager", "url": "alertmanager:9093"}))
    assert "alerts.channels[0].url" in [f["field"] for f in e.value.errors]
