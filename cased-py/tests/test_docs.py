"""The README's Python examples marked ``python runnable`` run as written, as scripts, against a
real deployments API on loopback (``CASED_BASE_URL`` and ``CASED_API_KEY`` point them at it)."""

from __future__ import annotations

import asyncio
import os
import pathlib
import re
import sys

import pytest
from apiserver import API_KEY, ApiServer

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"^```python runnable\n(.*?)^```$", README.read_text(), flags=re.S | re.M)


def test_the_readme_has_runnable_python_examples() -> None:
    assert BLOCKS, "no ```python runnable block in README.md"


@pytest.mark.asyncio
@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
async def test_a_readme_example_runs_as_a_script(api: ApiServer, code: str) -> None:
    env = {**os.environ, "CASED_BASE_URL": api.url, "CASED_API_KEY": API_KEY}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    assert len(api.requests) == 1, "the example posts one event"
    assert api.requests[0].path == "/api/v1/deployments/"
    assert out.decode().startswith("201"), out.decode()
