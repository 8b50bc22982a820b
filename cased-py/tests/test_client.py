"""Client through the bindings, against a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
import inspect

import pytest
from apiserver import API_KEY, HANG, ApiServer, Reply, json_body

import cased
from cased import Client, DeploymentEvent

EVENT = DeploymentEvent(
    "Deploy v1.4.2",
    repository_full_name="acme/shop",
    commit_sha="abcdef1",
    event_metadata={"environment": "production"},
)
WAIT = 10.0
"""Upper bound for awaiting something that should happen promptly (a hang fails, not blocks)."""


def assert_key_hidden(*texts: object) -> None:
    for text in texts:
        assert API_KEY not in str(text)


@pytest.mark.asyncio
async def test_posts_the_event_with_headers_and_exact_body(api: ApiServer) -> None:
    client = Client(API_KEY, base_url=api.url)
    result = await client.create_deployment(EVENT)
    assert result == {"status": 201, "body": {"id": 1}, "attempts": 1}
    [request] = api.requests
    assert request.method == "POST"
    assert request.path == "/api/v1/deployments/"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["accept"] == "application/json"
    assert request.body == EVENT.to_json().encode()
    assert json_body(request) == {
        "deployment_request": "Deploy v1.4.2",
        "repository_full_name": "acme/shop",
        "status": "success",
        "commit_sha": "abcdef1",
        "event_metadata": {"environment": "production"},
    }


@pytest.mark.asyncio
async def test_base_url_path_prefix_is_kept(api: ApiServer) -> None:
    client = Client(API_KEY, base_url=f"{api.url}/tenant/a")
    assert client.endpoint == f"{api.url}/tenant/a/api/v1/deployments/"
    await client.create_deployment(EVENT)
    assert [r.path for r in api.requests] == ["/tenant/a/api/v1/deployments/"]


@pytest.mark.asyncio
async def test_empty_and_non_json_answers_are_returned(api: ApiServer) -> None:
    client = Client(API_KEY, base_url=api.url)
    api.script = [Reply(202, ""), Reply(200, "accepted")]
    assert await client.create_deployment(EVENT) == {"status": 202, "body": None, "attempts": 1}
    assert await client.create_deployment(EVENT) == {"status": 200, "body": "accepted", "attempts": 1}


@pytest.mark.asyncio
async def test_api_key_is_read_from_the_environment(api: ApiServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASED_API_KEY", "sk_from_env_42")
    await Client(base_url=api.url).create_deployment(EVENT)
    assert api.requests[0].headers["authorization"] == "Bearer sk_from_env_42"


@pytest.mark.asyncio
async def test_base_url_is_read_from_the_environment(api: ApiServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASED_BASE_URL", api.url)
    await Client(API_KEY).create_deployment(EVENT)
    assert len(api.requests) == 1 and api.requests[0].path == "/api/v1/deployments/"
    monkeypatch.setenv("CASED_BASE_URL", "not a url")
    with pytest.raises(cased.ValidationError) as e:
        Client(API_KEY)
    assert [f["field"] for f in e.value.errors] == ["base_url"]
    assert "(from CASED_BASE_URL)" in str(e.value)
    Client(API_KEY, base_url=api.url)  # a base URL given wins


@pytest.mark.asyncio
async def test_unauthorized(api: ApiServer) -> None:
    api.script = [Reply(401, '{"error": "bad key"}')]
    with pytest.raises(cased.UnauthorizedError) as exc:
        await Client(API_KEY, base_url=api.url).create_deployment(EVENT)
    assert isinstance(exc.value, cased.ApiError)
    assert isinstance(exc.value, cased.CasedError)
    assert exc.value.status == 401
    assert exc.value.code == "unauthorized"
    assert "bad key" in str(exc.value)
    assert len(api.requests) == 1
    assert_key_hidden(exc.value, repr(exc.value), exc.value.args)


@pytest.mark.asyncio
async def test_invalid_request_keeps_the_server_message(api: ApiServer) -> None:
    api.script = [Reply(422, '{"message": "commit_sha is unknown to this repository"}')]
    with pytest.raises(cased.InvalidRequestError) as exc:
        await Client(API_KEY, base_url=api.url).create_deployment(EVENT)
    assert exc.value.status == 422
    assert exc.value.code == "invalid_request"
    assert str(exc.value) == "invalid request (HTTP 422): commit_sha is unknown to this repository"
    assert len(api.requests) == 1


@pytest.mark.asyncio
async def test_503_then_201_is_retried(api: ApiServer) -> None:
    api.script = [Reply(503, '{"detail": "restarting"}'), Reply(201, '{"id": 2}')]
    result = await Client(API_KEY, base_url=api.url).create_deployment(EVENT)
    assert result == {"status": 201, "body": {"id": 2}, "attempts": 2}
    assert [r.body for r in api.requests] == [EVENT.to_json().encode()] * 2
    # One Idempotency-Key per event, kept across its retries; the next event gets another.
    keys = [r.headers["idempotency-key"] for r in api.requests]
    assert keys[0] == keys[1] and len(keys[0]) == 32
    api.script = [Reply(201, '{"id": 3}')]
    await Client(API_KEY, base_url=api.url).create_deployment(EVENT)
    assert api.requests[-1].headers["idempotency-key"] not in keys


@pytest.mark.asyncio
async def test_rate_limited_carries_retry_after(api: ApiServer) -> None:
    api.script = [Reply(429, '{"message": "slow down"}', {"Retry-After": "7"})]
    with pytest.raises(cased.RateLimitedError) as exc:
        await Client(API_KEY, base_url=api.url, max_retries=0).create_deployment(EVENT)
    assert exc.value.retry_after == 7.0
    assert exc.value.status == 429
    assert exc.value.code == "rate_limited"
    assert "slow down" in str(exc.value)


@pytest.mark.asyncio
async def test_server_error_is_not_retried_on_500(api: ApiServer) -> None:
    api.script = [Reply(500, '{"message": "boom"}')]
    with pytest.raises(cased.ServerError) as exc:
        await Client(API_KEY, base_url=api.url).create_deployment(EVENT)
    assert exc.value.status == 500
    assert exc.value.code == "server"
    assert len(api.requests) == 1


@pytest.mark.asyncio
async def test_connection_refused_is_a_transport_error(refused_url: str) -> None:
    client = Client(API_KEY, base_url=refused_url, max_retries=0)
    with pytest.raises(cased.TransportError) as exc:
        await client.create_deployment(EVENT)
    assert exc.value.status is None
    assert exc.value.code == "transport"
    assert_key_hidden(exc.value, repr(exc.value))


@pytest.mark.asyncio
async def test_a_success_body_over_1_mib_is_a_transport_error(api: ApiServer) -> None:
    api.script = [Reply(201, '"' + "x" * (1 << 20) + '"')]
    client = Client(API_KEY, base_url=api.url, max_retries=3)
    with pytest.raises(cased.TransportError) as exc:
        await client.create_deployment(EVENT)
    assert "1 MiB" in str(exc.value) and len(str(exc.value)) < 400, str(exc.value)[:200]
    assert len(api.requests) == 1, "not retried: the event was received"


@pytest.mark.asyncio
async def test_a_server_that_never_answers_times_out(api: ApiServer) -> None:
    api.script = [HANG]
    client = Client(API_KEY, base_url=api.url, timeout=0.3)
    with pytest.raises(cased.TimeoutError) as exc:
        await asyncio.wait_for(client.create_deployment(EVENT), WAIT)
    assert exc.value.code == "timeout"
    assert exc.value.status is None
    assert len(api.requests) == 1
    await asyncio.wait_for(api.hung_up.wait(), WAIT)


@pytest.mark.asyncio
async def test_cancelling_the_awaiting_task_drops_the_request(api: ApiServer) -> None:
    api.script = [HANG]
    # A timeout far beyond WAIT: only dropping the Rust future can close the connection in time.
    client = Client(API_KEY, base_url=api.url, timeout=60)
    task = asyncio.create_task(client.create_deployment(EVENT))
    await asyncio.wait_for(api.received.wait(), WAIT)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The Rust future was dropped: its connection is closed...
    await asyncio.wait_for(api.hung_up.wait(), WAIT)
    # ...and the loop and the client still work.
    api.script = [HANG, Reply(201, '{"id": 3}')]
    assert await client.create_deployment(EVENT) == {"status": 201, "body": {"id": 3}, "attempts": 1}


def test_configuration_problems_are_reported_at_once() -> None:
    with pytest.raises(cased.ValidationError) as exc:
        Client("", base_url="ftp://example.com", timeout=0)
    assert sorted(e["field"] for e in exc.value.errors) == ["api_key", "base_url", "timeout"]
    assert exc.value.code == "validation"


@pytest.mark.parametrize("timeout", [-1.0, float("nan"), 0.0])
def test_non_positive_timeouts_are_rejected(timeout: float) -> None:
    with pytest.raises(cased.ValidationError) as exc:
        Client(API_KEY, timeout=timeout)
    assert exc.value.errors == [{"field": "timeout", "message": "must be greater than zero"}]


def test_missing_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CASED_API_KEY", raising=False)
    with pytest.raises(cased.ValidationError) as exc:
        Client()
    assert [e["field"] for e in exc.value.errors] == ["api_key"]
    assert "CASED_API_KEY" in str(exc.value)


def test_too_many_retries_are_rejected() -> None:
    with pytest.raises(cased.ValidationError) as exc:
        Client(API_KEY, max_retries=101)
    assert [e["field"] for e in exc.value.errors] == ["max_retries"]


def test_repr_and_errors_never_show_the_key() -> None:
    client = Client(API_KEY, base_url="http://127.0.0.1:9/")
    assert repr(client) == "Client(endpoint='http://127.0.0.1:9/api/v1/deployments/')"
    assert_key_hidden(repr(client), client.endpoint)
    with pytest.raises(cased.ValidationError) as exc:
        Client(f"{API_KEY} with spaces")
    assert [e["field"] for e in exc.value.errors] == ["api_key"]
    assert_key_hidden(exc.value, repr(exc.value), exc.value.errors)


def test_create_deployment_requires_an_event() -> None:
    with pytest.raises(TypeError, match="DeploymentEvent"):
        Client(API_KEY).create_deployment(EVENT.to_dict())  # type: ignore[arg-type]


def test_create_deployment_is_a_coroutine_for_asyncio_run(refused_url: str) -> None:
    client = Client(API_KEY, base_url=refused_url, max_retries=0)
    call = client.create_deployment(EVENT)
    assert inspect.iscoroutine(call)
    with pytest.raises(cased.TransportError):
        asyncio.run(call)
