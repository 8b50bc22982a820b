"""enable_logging: the core's tracing output on stderr, never the key. Logging is process-wide,
so switching it on runs in a child interpreter."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import cased

API_KEY = "sk_log_secret_77"


def test_a_bad_filter_is_a_validation_error() -> None:
    with pytest.raises(cased.ValidationError) as exc:
        cased.enable_logging("cased_core=loud")
    assert [e["field"] for e in exc.value.errors] == ["filter"]


def test_logs_reach_stderr_without_the_key(refused_url: str) -> None:
    script = textwrap.dedent(
        f"""
        import asyncio, cased
        cased.enable_logging("cased_core=debug")
        client = cased.Client({API_KEY!r}, base_url={refused_url!r}, max_retries=0)
        event = cased.DeploymentEvent("Deploy v1", repository_full_name="acme/shop")
        try:
            asyncio.run(client.create_deployment(event))
        except cased.TransportError:
            print("transport error")
        try:
            cased.enable_logging("info")
        except cased.ValidationError as e:
            print("again:", e.errors[0]["field"])
        """
    )
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert child.returncode == 0, child.stderr
    assert child.stdout.splitlines() == ["transport error", "again: filter"]
    assert "deployment event not delivered" in child.stderr
    assert "acme/shop" in child.stderr
    assert API_KEY not in child.stderr
    assert API_KEY not in child.stdout
