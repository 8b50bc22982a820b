"""DeploymentEvent through the bindings: construction, every validation rule, JSON round trip,
CI environments."""

from __future__ import annotations

import json
import math
from typing import Any, Callable

import pytest

import cased
from cased import DeploymentEvent, ValidationError

SHA = "0123456789abcdef0123456789abcdef01234567"

FULL = {
    "deployment_request": "Deploy v1.4.2",
    "repository_full_name": "acme/shop",
    "status": "running",
    "external_url": "https://ci.example.com/runs/42",
    "commit_sha": SHA,
    "commit_message": "Fix checkout\n\nwith\ttabs",
    "ref": "refs/heads/main",
    "event_metadata": {"environment": "production", "version": "1.4.2", "replicas": [1, 2.5, None]},
}
FULL_JSON = (
    '{"deployment_request":"Deploy v1.4.2","repository_full_name":"acme/shop","status":"running",'
    '"external_url":"https://ci.example.com/runs/42","commit_sha":"' + SHA + '",'
    '"commit_message":"Fix checkout\\n\\nwith\\ttabs","ref":"refs/heads/main",'
    '"event_metadata":{"environment":"production","replicas":[1,2.5,null],"version":"1.4.2"}}'
)


def problems(exc: pytest.ExceptionInfo[ValidationError]) -> list[str]:
    """The fields a ValidationError names, sorted."""
    return sorted(e["field"] for e in exc.value.errors)


def test_minimal_event_defaults_to_success_and_omits_absent_fields() -> None:
    event = DeploymentEvent("Deploy v1")
    assert event.to_json() == '{"deployment_request":"Deploy v1","status":"success"}'
    assert event.to_dict() == {"deployment_request": "Deploy v1", "status": "success"}
    assert event.status == "success"
    assert event.repository_full_name is None
    assert event.ref is None
    assert event.event_metadata is None
    assert event.environment is None


def test_full_event_serializes_to_the_exact_wire_json() -> None:
    event = DeploymentEvent(**FULL)
    assert event.to_json() == FULL_JSON
    assert list(event.to_dict()) == list(FULL)
    assert event.to_dict() == FULL


def test_properties_read_every_field() -> None:
    event = DeploymentEvent(**FULL)
    assert event.deployment_request == "Deploy v1.4.2"
    assert event.repository_full_name == "acme/shop"
    assert event.status == "running"
    assert event.external_url == "https://ci.example.com/runs/42"
    assert event.commit_sha == SHA
    assert event.commit_message == "Fix checkout\n\nwith\ttabs"
    assert event.ref == "refs/heads/main"
    assert event.event_metadata == FULL["event_metadata"]
    assert event.environment == "production"
    assert event.correlation_id is None
    assert DeploymentEvent("x", event_metadata={"correlation_id": "run-7"}).correlation_id == "run-7"


def test_events_are_immutable() -> None:
    event = DeploymentEvent(**FULL)
    with pytest.raises(AttributeError):
        event.status = "failure"  # type: ignore[misc]
    metadata = event.event_metadata
    assert metadata is not None
    metadata["environment"] = "staging"
    assert event.environment == "production"


def test_round_trips_through_json_dict_and_bytes() -> None:
    event = DeploymentEvent(**FULL)
    assert DeploymentEvent.from_json(event.to_json()) == event
    assert DeploymentEvent.from_json(event.to_json().encode()) == event
    assert DeploymentEvent.from_dict(event.to_dict()) == event
    assert DeploymentEvent.from_json(FULL_JSON).to_json() == FULL_JSON


def test_equality_and_repr() -> None:
    event = DeploymentEvent(**FULL)
    assert event == DeploymentEvent(**FULL)
    assert event != DeploymentEvent(**{**FULL, "status": "failure"})
    assert event != FULL
    assert eval(repr(event), {"DeploymentEvent": DeploymentEvent}) == event
    assert repr(DeploymentEvent("Deploy v1")) == "DeploymentEvent('Deploy v1', status='success')"


@pytest.mark.parametrize(
    ("kwargs", "field", "fragment"),
    [
        ({"deployment_request": ""}, "deployment_request", "must not be empty"),
        ({"deployment_request": " \t\n"}, "deployment_request", "must not be empty"),
        ({"deployment_request": "x" * 1001}, "deployment_request", "at most 1000"),
        ({"deployment_request": None}, "deployment_request", "must be a string, got null"),
        ({"repository_full_name": "shop"}, "repository_full_name", "owner/name"),
        ({"repository_full_name": "acme//shop"}, "repository_full_name", "owner/name"),
        ({"repository_full_name": "acme/sh op"}, "repository_full_name", "whitespace"),
        ({"status": "done"}, "status", "pending, running, success, failure, cancelled"),
        ({"status": 5}, "status", "must be a string, got a number"),
        ({"external_url": "ftp://example.com/x"}, "external_url", "http(s)"),
        ({"external_url": "/runs/42"}, "external_url", "http(s)"),
        ({"commit_sha": "abc12"}, "commit_sha", "7 to 64 hexadecimal"),
        ({"commit_sha": "g" * 40}, "commit_sha", "7 to 64 hexadecimal"),
        ({"commit_sha": "a" * 65}, "commit_sha", "7 to 64 hexadecimal"),
        ({"commit_message": "x" * 65537}, "commit_message", "at most 65536"),
        ({"ref": "feature..x"}, "ref", "not a valid git ref"),
        ({"ref": "main.lock"}, "ref", "not a valid git ref"),
        ({"ref": "my branch"}, "ref", "whitespace"),
        ({"event_metadata": [1]}, "event_metadata", "must be a JSON object, got an array"),
        ({"event_metadata": "prod"}, "event_metadata", "must be a JSON object, got a string"),
        ({"event_metadata": {"environment": 5}}, "event_metadata.environment", "must be a string"),
        ({"event_metadata": {"blob": "x" * 70_000}}, "event_metadata", "bytes of JSON"),
    ],
)
def test_each_rule(kwargs: dict[str, Any], field: str, fragment: str) -> None:
    args = {"deployment_request": "Deploy v1", **kwargs}
    with pytest.raises(ValidationError) as exc:
        DeploymentEvent(**args)
    assert exc.value.errors == [{"field": field, "message": exc.value.errors[0]["message"]}]
    assert fragment in exc.value.errors[0]["message"]
    assert exc.value.code == "validation"
    assert fragment in str(exc.value)
    with pytest.raises(ValidationError) as again:
        DeploymentEvent.from_dict(args)
    assert again.value.errors == exc.value.errors


@pytest.mark.parametrize(
    "kwargs",
    [
        {"repository_full_name": "gitlab-org/sub.group/my_project"},
        {"commit_sha": "abcdef1"},
        {"commit_sha": "a" * 64},
        {"deployment_request": "x" * 1000},
        {"commit_message": "x" * 65536},
        {"ref": "v1.4.2"},
        {"external_url": "http://localhost:8080/x?y=1"},
        {"status": "cancelled"},
    ],
)
def test_values_at_the_limits_are_accepted(kwargs: dict[str, Any]) -> None:
    event = DeploymentEvent(**{"deployment_request": "Deploy v1", **kwargs})
    assert {k: event.to_dict()[k] for k in kwargs} == kwargs


def test_every_bad_field_is_reported_at_once() -> None:
    with pytest.raises(ValidationError) as exc:
        DeploymentEvent(
            "",
            repository_full_name="nope",
            status="done",
            external_url="mailto:x@example.com",
            commit_sha="xyz",
            ref="a..b",
            event_metadata=[1],
        )
    assert problems(exc) == [
        "commit_sha",
        "deployment_request",
        "event_metadata",
        "external_url",
        "ref",
        "repository_full_name",
        "status",
    ]
    assert "7 problems" in str(exc.value)


def test_control_characters_are_rejected_but_tabs_and_newlines_kept() -> None:
    with pytest.raises(ValidationError) as exc:
        DeploymentEvent("Deploy\x07v1", commit_message="a\x00b")
    assert problems(exc) == ["commit_message", "deployment_request"]
    assert "U+0007" in str(exc.value)
    assert "U+0000" in str(exc.value)
    assert DeploymentEvent("Deploy\tv1", commit_message="a\r\nb").commit_message == "a\r\nb"


def test_unknown_keyword_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="commit_hash"):
        DeploymentEvent("Deploy v1", commit_hash=SHA)  # type: ignore[call-arg]


def test_from_dict_names_unknown_keys_and_suggests_the_field() -> None:
    with pytest.raises(ValidationError) as exc:
        DeploymentEvent.from_dict({"deployment_request": "Deploy v1", "comit_sha": SHA, "colour": "red"})
    assert problems(exc) == ["colour", "comit_sha"]
    messages = {e["field"]: e["message"] for e in exc.value.errors}
    assert "did you mean `commit_sha`?" in messages["comit_sha"]


def test_from_dict_requires_the_request_and_an_object() -> None:
    with pytest.raises(ValidationError) as exc:
        DeploymentEvent.from_dict({"status": "success"})
    assert exc.value.errors == [{"field": "deployment_request", "message": "is required"}]
    with pytest.raises(ValidationError) as exc:
        DeploymentEvent.from_dict([1, 2])  # type: ignore[arg-type]
    assert exc.value.errors == [{"field": "body", "message": "must be a JSON object, got an array"}]


@pytest.mark.parametrize("text", ["", "   \n", b"", b" "])
def test_empty_json_is_rejected(text: str | bytes) -> None:
    with pytest.raises(ValidationError) as exc:
        DeploymentEvent.from_json(text)
    assert exc.value.errors == [{"field": "body", "message": "is empty; expected a JSON object"}]


def test_malformed_json_and_non_objects_are_rejected() -> None:
    with pytest.raises(ValidationError) as exc:
        DeploymentEvent.from_json('{"deployment_request": ')
    assert problems(exc) == ["body"]
    assert "is not valid JSON" in str(exc.value)
    with pytest.raises(ValidationError) as exc:
        DeploymentEvent.from_json("[]")
    assert "must be a JSON object, got an array" in str(exc.value)
    with pytest.raises(ValidationError) as exc:
        DeploymentEvent.from_json("{}")
    assert exc.value.errors == [{"field": "deployment_request", "message": "is required"}]


def test_invalid_utf8_bytes_name_the_offset() -> None:
    data = b'{"deployment_request": "Deploy \xff"}'
    with pytest.raises(ValidationError) as exc:
        DeploymentEvent.from_json(data)
    assert problems(exc) == ["body"]
    offset = data.index(b"\xff")
    assert f"offset {offset}" in str(exc.value)


def test_from_json_rejects_other_types() -> None:
    with pytest.raises(TypeError, match="str or bytes"):
        DeploymentEvent.from_json(bytearray(b"{}"))  # type: ignore[arg-type]


def test_values_json_cannot_hold_are_a_validation_error_naming_the_key() -> None:
    with pytest.raises(ValidationError) as exc:
        DeploymentEvent("Deploy v1", event_metadata={"raw": b"\x00"})
    assert problems(exc) == ["event_metadata.raw"]
    with pytest.raises(ValidationError) as exc:
        DeploymentEvent("Deploy v1", event_metadata={"when": object()})
    assert problems(exc) == ["event_metadata.when"]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_infinities_in_metadata_are_refused_naming_the_key(bad: float) -> None:
    # They used to become null silently.
    with pytest.raises(ValidationError) as exc:
        DeploymentEvent("Deploy v1", event_metadata={"ok": 1.5, "scores": {"p99": [0.1, bad]}})
    assert problems(exc) == ["event_metadata.scores.p99[1]"]
    assert "not a number JSON can hold" in str(exc.value)
    with pytest.raises(ValidationError) as exc:
        DeploymentEvent.from_dict({"deployment_request": "x", "event_metadata": {"score": bad}})
    assert problems(exc) == ["event_metadata.score"]


def test_integers_beyond_64_bits_are_named_by_their_key_not_body() -> None:
    for big in (2**64, -(2**63) - 1, 10**30):
        with pytest.raises(ValidationError) as exc:
            DeploymentEvent.from_dict({"deployment_request": "x", "event_metadata": {"build": big}})
        assert problems(exc) == ["event_metadata.build"]
        assert "beyond 64 bits" in str(exc.value)
    # The edges fit.
    event = DeploymentEvent("x", event_metadata={"a": 2**64 - 1, "b": -(2**63)})
    assert event.event_metadata == {"a": 2**64 - 1, "b": -(2**63)}


HOSTILE: list[tuple[str, Callable[[], object], str]] = [
    ("lone surrogate in the request", lambda: DeploymentEvent("Deploy \ud800"), "deployment_request"),
    ("lone surrogate in metadata", lambda: DeploymentEvent("x", event_metadata={"k": "\udfff"}), "event_metadata.k"),
    ("lone surrogate in a metadata key", lambda: DeploymentEvent("x", event_metadata={"\ud800": 1}), "event_metadata[0]"),
    ("bytes as the request", lambda: DeploymentEvent(b"Deploy"), "deployment_request"),  # type: ignore[arg-type]
    ("bytes in from_dict", lambda: DeploymentEvent.from_dict({"deployment_request": b"x"}), "deployment_request"),
    ("an object in from_dict", lambda: DeploymentEvent.from_dict({"deployment_request": object()}), "deployment_request"),
    ("NaN in a monitor config", lambda: cased.Monitor({"checks": [{"name": "w", "type": "http", "url": "http://127.0.0.1:9/", "timeout": math.nan}]}), "checks[0].timeout"),
    ("a huge integer in a monitor config", lambda: cased.Monitor({"verdict": {"failure_limit": 2**70}}), "verdict.failure_limit"),
    ("a surrogate in a monitor config", lambda: cased.Monitor({"checks": [{"name": "\ud800", "type": "tcp", "address": "127.0.0.1:9"}]}), "checks[0].name"),
    ("bytes in a monitor config", lambda: cased.Monitor({"schedule": {"intervals": [b"1s"]}}), "schedule.intervals[0]"),
    ("an object in a monitor config", lambda: cased.Monitor({"schedule": object()}), "schedule"),
    ("an object as a monitor config", lambda: cased.Monitor(object()), "config"),  # type: ignore[arg-type]
    ("infinity in a detector", lambda: cased.Detector({"type": "threshold", "metric": "m", "above": math.inf}), "above"),
]


@pytest.mark.parametrize(("what", "call", "field"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_inputs_are_validation_errors_not_type_or_unicode_errors(
    what: str, call: Callable[[], object], field: str
) -> None:
    with pytest.raises(ValidationError) as exc:
        call()
    assert field in [e["field"] for e in exc.value.errors], (what, exc.value.errors)


GITHUB = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_SHA": SHA,
    "GITHUB_REPOSITORY": "acme/shop",
    "GITHUB_REF": "refs/heads/main",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_RUN_ID": "99",
    "GITHUB_RUN_ATTEMPT": "2",
    "CASED_ENVIRONMENT": "production",
}
GITLAB = {
    "GITLAB_CI": "true",
    "CI_COMMIT_SHA": SHA,
    "CI_PROJECT_PATH": "group/sub/shop",
    "CI_COMMIT_REF_NAME": "main",
    "CI_PIPELINE_URL": "https://gitlab.example.com/group/sub/shop/-/pipelines/7",
    "CI_COMMIT_MESSAGE": "Fix checkout",
    "CI_ENVIRONMENT_NAME": "staging",
    "CI_PIPELINE_ID": "7",
}


def test_from_env_reads_github_actions() -> None:
    event = DeploymentEvent.from_env(GITHUB)
    assert event.to_dict() == {
        "deployment_request": "Deploy acme/shop@0123456",
        "repository_full_name": "acme/shop",
        "status": "success",
        "external_url": "https://github.com/acme/shop/actions/runs/99",
        "commit_sha": SHA,
        "ref": "refs/heads/main",
        "event_metadata": {"correlation_id": "github:acme/shop:99:2", "environment": "production"},
    }


def test_from_env_reads_gitlab_ci() -> None:
    event = DeploymentEvent.from_env(GITLAB)
    assert event.to_dict() == {
        "deployment_request": "Deploy group/sub/shop@0123456",
        "repository_full_name": "group/sub/shop",
        "status": "success",
        "external_url": "https://gitlab.example.com/group/sub/shop/-/pipelines/7",
        "commit_sha": SHA,
        "commit_message": "Fix checkout",
        "ref": "main",
        "event_metadata": {"correlation_id": "gitlab:group/sub/shop:7", "environment": "staging"},
    }


def test_from_env_without_a_ci_names_the_environment() -> None:
    with pytest.raises(ValidationError) as exc:
        DeploymentEvent.from_env({"HOME": "/root"})
    assert problems(exc) == ["environment"]
    assert "GITHUB_ACTIONS=true" in str(exc.value)


def test_from_env_reports_bad_ci_values() -> None:
    with pytest.raises(ValidationError) as exc:
        DeploymentEvent.from_env({**GITHUB, "GITHUB_SHA": "not-a-sha"})
    assert problems(exc) == ["commit_sha"]


def test_from_env_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("GITHUB_", "GITLAB_", "CI_", "CASED_")):
            monkeypatch.delenv(name)
    for name, value in GITHUB.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CASED_DEPLOYMENT_REQUEST", "Ship it")
    event = DeploymentEvent.from_env()
    assert event.deployment_request == "Ship it"
    assert event.repository_full_name == "acme/shop"


def test_to_json_is_valid_json_for_unicode() -> None:
    event = DeploymentEvent("Déploiement 🚀", commit_message="naïve")
    assert json.loads(event.to_json())["deployment_request"] == "Déploiement 🚀"
    assert cased.DeploymentEvent.from_json(event.to_json()) == event
