"""Binding fuzz (RELIABILITY.md): Hypothesis over every public constructor and entry point.

The property, for any generated input: the call returns, or raises a ``ValidationError`` whose
problems each name a field (or an error the API documents for that call: ``SignatureError`` for
``verify_webhook_signature``, ``TypeError`` for a hook that is not callable, and ``TypeError``
for a plain argument of the wrong Python type — a ``str`` parameter given ``None`` or a list, as
everywhere in Python; a wrong type *inside* a document (an event, a configuration, a report) is a
``ValidationError`` naming its path) — never another exception, never a crash of the interpreter. Inputs are arbitrary JSON-ish values (nested dicts
and lists, strings with NUL and lone surrogates, integers beyond 64 bits, NaN and ±inf), values
of the wrong type (bytes, sets, objects, dates), and valid inputs mutated at up to 3 nodes.

Examples per target: ``CASED_FUZZ_CASES`` (the variable the Rust property tests read), default
200 — a few seconds each. A long run: ``CASED_FUZZ_CASES=100000 .venv/bin/python -m pytest
cased-py/tests/test_fuzz.py -q``.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import decimal
import json
import math
import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cased

CASES = int(os.environ.get("CASED_FUZZ_CASES", "200"))
FUZZ = settings(
    max_examples=CASES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)

# Executions per target, printed at the end of a run (`-s`) for RELIABILITY.md.
EXECUTIONS: dict[str, int] = {}

# --------------------------------------------------------------------------- generators

# Any code point, NUL and lone surrogates included.
ANY_CHAR = st.characters(codec=None, exclude_categories=())
TEXT = st.one_of(
    st.text(ANY_CHAR, max_size=20),
    st.sampled_from(["", "\x00", "\ud800", "a\udfffb", " ", "\t", "1h", "10s", "-1s", "2xx", "http://", "é" * 300]),
)
NUMBER = st.one_of(
    st.integers(),  # unbounded: beyond 64 bits too
    st.sampled_from([0, -1, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63) - 1, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 5e-324, 1.8e308]),
)
SCALAR = st.one_of(st.none(), st.booleans(), NUMBER, TEXT)


class Opaque:
    """An object JSON cannot hold."""


ODD = st.one_of(
    st.binary(max_size=8),
    st.builds(bytearray, st.binary(max_size=4)),
    st.just(Opaque()),
    st.just(datetime.datetime(2026, 1, 1)),
    st.just(decimal.Decimal("1.5")),
    st.just(1 + 2j),
    st.frozensets(st.integers(0, 3), max_size=3),
)
KEY = st.one_of(TEXT, st.integers(), st.none(), st.tuples(st.integers()))


def json_ish(odd: bool = True) -> st.SearchStrategy[Any]:
    leaves = st.one_of(SCALAR, ODD) if odd else SCALAR
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.tuples(inner, inner),
            st.dictionaries(TEXT, inner, max_size=4),
            st.dictionaries(KEY, inner, max_size=3) if odd else st.dictionaries(TEXT, inner, max_size=3),
        ),
        max_leaves=12,
    )


ANY = json_ish()


def paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every node of a JSON document, as the keys and indices leading to it."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += paths(v, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn, valid: list[Any]) -> Any:
    """One of `valid`, changed at up to 3 nodes: a node replaced by any value, a key removed,
    a key added, a list emptied or given one more element."""
    doc = copy.deepcopy(draw(st.sampled_from(valid)))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths(doc)))
        action = draw(st.sampled_from(["replace", "remove", "add", "grow"]))
        value = draw(ANY)
        if not path:
            if action == "replace":
                doc = value
            continue
        parent = doc
        try:
            for step in path[:-1]:
                parent = parent[step]
        except (KeyError, IndexError, TypeError):
            continue
        last = path[-1]
        if not isinstance(parent, (dict, list)):
            continue
        try:
            if action == "replace":
                parent[last] = value
            elif action == "remove":
                del parent[last]
            elif action == "add" and isinstance(parent, dict):
                parent[draw(TEXT)] = value
            elif action == "grow" and isinstance(parent[last], list):
                parent[last].append(value)
            elif action == "grow" and isinstance(parent[last], dict):
                parent[last].clear()
        except (KeyError, IndexError, TypeError):
            continue
    return doc


# --------------------------------------------------------------------------- valid inputs

EVENTS: list[Any] = [
    {
        "deployment_request": "Deploy v2",
        "repository_full_name": "acme/shop",
        "status": "success",
        "external_url": "https://ci.example.com/run/1",
        "commit_sha": "0123456789abcdef0123456789abcdef01234567",
        "commit_message": "Fix checkout",
        "ref": "refs/heads/main",
        "event_metadata": {"environment": "prod", "correlation_id": "c-1", "n": [1, 2.5, None, True]},
    },
    {"deployment_request": "x"},
]

CHECKS: list[Any] = [
    {"name": "web", "type": "http", "url": "http://127.0.0.1:9/health", "timeout": "200ms",
     "method": "GET", "headers": {"x-a": "b"}, "category": "endpoint", "max_redirects": 2,
     "max_body_bytes": 1024, "connection": "fresh", "redact": ["k"],
     "expect": {"status": ["2xx", 301], "max_latency": "1s", "warn_latency": "500ms", "body_contains": "ok",
                "body_regex": "o+k", "json": [{"pointer": "/a", "equals": 1}], "headers": {"x": "y"}}},
    {"name": "tcp", "type": "tcp", "host": "127.0.0.1", "port": 9, "send": "PING", "expect": "PONG", "timeout": "200ms"},
    {"name": "dns", "type": "dns", "host": "localhost", "addresses": ["127.0.0.1"], "timeout": "200ms"},
    {"name": "pg", "type": "postgres", "url": "postgres://u@127.0.0.1:9/db", "tls": "disable", "timeout": "200ms"},
    {"name": "redis", "type": "redis", "url": "redis://127.0.0.1:9", "timeout": "200ms"},
    {"name": "cmd", "type": "command", "program": "true", "args": ["a"], "timeout": "1s",
     "expect": {"exit_code": 0, "stdout_contains": "", "stderr_regex": ".*"}},
]

DETECTORS: list[Any] = [
    {"type": "threshold", "metric": "web.latency_ms", "upper": 100, "trigger": 2, "name": "slow"},
    {"type": "baseline", "metric": "web.latency_ms", "allowed_change": 0.1, "direction": "increase"},
    {"type": "spike", "metric": "web.latency_ms", "window": 10, "threshold": 4},
    {"type": "cusum", "metric": "web.latency_ms"},
    {"type": "ewma", "metric": "web.latency_ms"},
    {"type": "trend", "metric": "web.latency_ms"},
    {"type": "changepoint", "metric": "web.latency_ms"},
    {"type": "likelihood", "metric": "web.latency_ms", "tail": 1e-6},
    {"type": "shift", "metric": "web.latency_ms", "trend": False},
]

CONFIGS: list[Any] = [
    {
        "schedule": {"intervals": ["1s", "2s"], "cooldown": "5s", "max_duration": "1m", "jitter": "0s"},
        "checks": CHECKS,
        "verdict": {"failure_limit": 0, "consecutive_error_limit": 4, "min_samples": 5, "no_data": "inconclusive"},
        "detectors": [*DETECTORS, {"type": "error_rate", "metric": "prom.http"}],
        "alerts": {"channels": [{"name": "app", "type": "inapp"},
                                {"name": "hook", "type": "webhook", "url": "http://127.0.0.1:9/h", "secret": "s"}]},
        "baseline": {"pre_deploy": "1h", "previous": 5},
        "sources": [
            {"name": "prom", "type": "prometheus", "url": "http://127.0.0.1:9", "queries": {"latency": "up"},
             "counts": {"http": {"errors": "e", "requests": "r"}}},
            {"type": "host"},
        ],
    },
    {"checks": [CHECKS[0]]},
    {},
]


def error_is_named(e: cased.ValidationError) -> None:
    assert isinstance(e.errors, list) and e.errors, e
    for problem in e.errors:
        assert isinstance(problem["field"], str) and problem["field"].strip(), e.errors
        assert isinstance(problem["message"], str) and problem["message"], e.errors


def wrong_type(value: Any, *types: type, optional: bool = False) -> tuple[type[BaseException], ...]:
    """TypeError is allowed when a plain argument is not of one of `types` (None: when it is
    not `optional`)."""
    if (value is None and optional) or (isinstance(value, types) and not (isinstance(value, bool) and bool not in types)):
        return ()
    return (TypeError,)


def not_values(v: Any) -> tuple[type[BaseException], ...]:
    """TypeError is allowed when `v` is not a sequence of numbers (`_Values`)."""
    if isinstance(v, (list, tuple)) and all(isinstance(x, (int, float)) for x in v):
        return ()
    return (TypeError,)


def holds(target: str, call: Callable[[], Any], *allowed: type[BaseException]) -> None:
    """The property: `call` returns, or raises a ValidationError naming its fields, or one of
    the `allowed` documented errors."""
    EXECUTIONS[target] = EXECUTIONS.get(target, 0) + 1
    try:
        call()
    except cased.ValidationError as e:
        error_is_named(e)
    except allowed:
        pass


# --------------------------------------------------------------------------- targets

EVENT_FIELDS = ["repository_full_name", "status", "external_url", "commit_sha", "commit_message", "ref",
                "event_metadata"]


@FUZZ
@given(request=ANY, kwargs=st.dictionaries(st.sampled_from(EVENT_FIELDS), ANY, max_size=4))
def test_deployment_event_constructor(request: Any, kwargs: dict[str, Any]) -> None:
    holds("DeploymentEvent()", lambda: cased.DeploymentEvent(request, **kwargs))


@FUZZ
@given(d=st.one_of(ANY, mutated(EVENTS)))
def test_deployment_event_from_dict(d: Any) -> None:
    def call() -> None:
        event = cased.DeploymentEvent.from_dict(d)
        # What is accepted reads back as itself.
        assert cased.DeploymentEvent.from_json(event.to_json()) == event

    holds("DeploymentEvent.from_dict", call)


@FUZZ
@given(text=st.one_of(TEXT, st.binary(max_size=40), mutated(EVENTS).map(lambda d: json.dumps(d, default=repr, skipkeys=True))))
def test_deployment_event_from_json(text: Any) -> None:
    holds("DeploymentEvent.from_json", lambda: cased.DeploymentEvent.from_json(text))


@FUZZ
@given(env=st.one_of(
    st.dictionaries(TEXT, TEXT, max_size=6),
    st.dictionaries(st.sampled_from(["GITHUB_ACTIONS", "GITLAB_CI", "GITHUB_SHA", "GITHUB_REPOSITORY", "GITHUB_REF",
                                     "CI_COMMIT_SHA", "CI_PROJECT_PATH", "CASED_ENVIRONMENT",
                                     "CASED_DEPLOYMENT_REQUEST", "GITHUB_RUN_ID"]),
                    st.one_of(TEXT, st.just("true")), max_size=8),
    st.dictionaries(KEY, ANY, max_size=3),
))
def test_deployment_event_from_env(env: Any) -> None:
    # A key or value that is not a str is a TypeError (``Mapping[str, str]``).
    wrong = any(not isinstance(x, str) for kv in env.items() for x in kv)
    holds("DeploymentEvent.from_env", lambda: cased.DeploymentEvent.from_env(env), *((TypeError,) if wrong else ()))


@FUZZ
@given(config=st.one_of(ANY, mutated(CONFIGS)))
def test_monitor_config(config: Any) -> None:
    holds("Monitor(config)", lambda: cased.Monitor(config))


@FUZZ
@given(
    config=mutated(CONFIGS[1:]),
    checks=st.one_of(st.none(), st.dictionaries(TEXT, st.one_of(ANY, st.just(lambda: None)), max_size=2)),
    baselines=st.one_of(st.none(), st.dictionaries(TEXT, ANY, max_size=2)),
    on_rollback=st.one_of(st.none(), ANY, st.just(print)),
)
def test_monitor_options(config: Any, checks: Any, baselines: Any, on_rollback: Any) -> None:
    # A check or hook that is not callable is a TypeError (documented).
    holds("Monitor(config, options)",
          lambda: cased.Monitor(config, checks=checks, baselines=baselines, on_rollback=on_rollback), TypeError)


@FUZZ
@given(config=st.one_of(ANY, mutated(DETECTORS)), xs=st.lists(NUMBER, max_size=8))
def test_detector(config: Any, xs: list[Any]) -> None:
    def call() -> None:
        detector = cased.Detector(config)
        for x in xs:
            try:
                detector.update(x)
            except cased.ValidationError as e:
                error_is_named(e)
        try:
            detector.detect(xs)
        except cased.ValidationError as e:
            error_is_named(e)

    holds("Detector", call)


VALUES = st.one_of(ANY, st.lists(NUMBER, max_size=30), st.lists(st.floats(-1e6, 1e6), min_size=5, max_size=30))
COUNTS = st.one_of(ANY, st.tuples(NUMBER, NUMBER), st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)))


@FUZZ
@given(baseline=VALUES, current=VALUES, config=st.one_of(st.none(), ANY), metric=ANY, look=ANY)
def test_compare(baseline: Any, current: Any, config: Any, metric: Any, look: Any) -> None:
    plain = (*not_values(baseline), *not_values(current), *wrong_type(metric, str, optional=True),
             *wrong_type(look, int, optional=True))
    holds("compare", lambda: cased.compare(baseline, current, config, metric=metric, look=look), *plain)


@FUZZ
@given(baseline=COUNTS, current=COUNTS, config=st.one_of(st.none(), ANY))
def test_compare_error_rates(baseline: Any, current: Any, config: Any) -> None:
    holds("compare_error_rates", lambda: cased.compare_error_rates(baseline, current, config), TypeError)  # (e, r) pairs


@FUZZ
@given(values=VALUES, config=st.one_of(st.none(), ANY, st.fixed_dictionaries(
    {}, optional={"cost": ANY, "penalty": ANY, "min_size": ANY, "penalty_scale": ANY, "autocorrelation": ANY})))
def test_segment(values: Any, config: Any) -> None:
    holds("segment", lambda: cased.segment(values, config), *not_values(values))


@FUZZ
@given(secret=ANY, timestamp=ANY, body=ANY, signature=ANY, tolerance=ANY, now=ANY)
def test_webhook_signatures(secret: Any, timestamp: Any, body: Any, signature: Any, tolerance: Any, now: Any) -> None:
    plain = (*wrong_type(secret, str), *wrong_type(timestamp, str, int), *wrong_type(body, str, bytes, bytearray))
    holds("sign_webhook", lambda: cased.sign_webhook(secret, timestamp, body), *plain)
    plain += (*wrong_type(signature, str), *wrong_type(tolerance, int, float), *wrong_type(now, int, float, optional=True))
    holds("verify_webhook_signature",
          lambda: cased.verify_webhook_signature(secret, timestamp, body, signature, tolerance, now),
          cased.SignatureError, *plain)


@FUZZ
@given(secret=TEXT, ts=st.integers(0, 2**40), body=st.binary(max_size=64),
       flip=st.integers(0, 10_000))
def test_a_signed_body_verifies_and_a_changed_one_does_not(secret: str, ts: int, body: bytes, flip: int) -> None:
    EXECUTIONS["verify_webhook_signature (signed)"] = EXECUTIONS.get("verify_webhook_signature (signed)", 0) + 1
    try:
        signature = cased.sign_webhook(secret, ts, body)
    except cased.ValidationError as e:  # a secret JSON cannot hold (a lone surrogate)
        error_is_named(e)
        return
    cased.verify_webhook_signature(secret, ts, body, signature, now=ts)
    if body:
        changed = bytearray(body)
        changed[flip % len(body)] ^= 1 << (flip % 8)
        with pytest.raises(cased.SignatureError):
            cased.verify_webhook_signature(secret, ts, bytes(changed), signature, now=ts)


@FUZZ
@given(api_key=ANY, base_url=st.one_of(ANY, st.sampled_from(["http://127.0.0.1:9", "https://x", "ftp://x", "http://"])),
       timeout=ANY, max_retries=ANY)
def test_client_options(api_key: Any, base_url: Any, timeout: Any, max_retries: Any) -> None:
    plain = (*wrong_type(api_key, str, optional=True), *wrong_type(base_url, str, optional=True), *wrong_type(timeout, int, float, optional=True),
             *wrong_type(max_retries, int, optional=True))
    holds("Client()", lambda: cased.Client(api_key, base_url, timeout, max_retries), *plain)


@FUZZ
@given(url=ANY, bearer_token=ANY, timeout=ANY)
def test_prometheus_source_options(url: Any, bearer_token: Any, timeout: Any) -> None:
    plain = (*wrong_type(url, str), *wrong_type(bearer_token, str, optional=True), *wrong_type(timeout, int, float, optional=True))
    holds("PrometheusSource()", lambda: cased.PrometheusSource(url, bearer_token=bearer_token, timeout=timeout),
          *plain)


def a_report() -> dict[str, Any]:
    """A real report: a replayed deployment whose latency doubled."""
    samples = [{"metric": "api.latency_ms", "timestamp": 1_764_763_200.0 + 10 * i - 600,
                "value": 100.0 + (i % 7) + (100 if i >= 60 else 0)} for i in range(120)]
    monitor = cased.Monitor({"detectors": [{"type": "baseline", "metric": "api.latency_ms"}]})
    event = cased.DeploymentEvent("Deploy v2", repository_full_name="acme/shop")
    return asyncio.run(monitor.replay(event, {"started_at": 1_764_763_200.0, "samples": samples}))


REPORTS = [a_report()]


@FUZZ
@given(report=st.one_of(ANY, mutated(REPORTS), mutated(REPORTS).map(lambda r: json.dumps(r, default=repr, skipkeys=True))),
       fmt=st.one_of(st.sampled_from(["md", "markdown", "html", "json"]), ANY),
       context=st.one_of(st.none(), ANY, st.fixed_dictionaries(
           {}, optional={"baselines": ANY, "series": ANY, "finding_ticks": ANY, "alerts": ANY})))
def test_render_report(report: Any, fmt: Any, context: Any) -> None:
    holds("render_report", lambda: cased.render_report(report, fmt, context), *wrong_type(fmt, str, optional=True))


@FUZZ
@given(config=st.one_of(ANY, mutated(CHECKS[:2])))
def test_run_check(config: Any) -> None:
    # Only the loopback http and tcp checks are mutated: a command or DNS check is never run
    # from a random configuration. A check whose target fails is an outcome, not an error.
    async def call() -> None:
        outcome = await asyncio.wait_for(cased.run_check(config), 30)
        assert outcome["status"] in ("pass", "warn", "fail", "error"), outcome

    holds("run_check", lambda: asyncio.run(call()))


def test_zz_executions_per_target() -> None:
    """Prints the executions of this run (with `-s`), for RELIABILITY.md; every target ran."""
    print("\nbinding fuzz (Python) executions:", json.dumps(EXECUTIONS, sort_keys=True))
    if EXECUTIONS:  # empty when a single test is selected
        assert all(n > 0 for n in EXECUTIONS.values())
