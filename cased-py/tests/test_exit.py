"""Exiting right after the last call must not crash: the tokio thread completing a future may
still be inside the interpreter when the script ends (PyO3/pyo3-async-runtimes#40)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

CHILDREN = 12
"""Without the exit gate about one child in five crashed, so twelve catch a regression."""

SCRIPT = textwrap.dedent(
    """
    import asyncio, socket, cased
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = cased.Client("sk_exit", base_url=f"http://127.0.0.1:{port}", max_retries=0)
    event = cased.DeploymentEvent("Deploy v1")

    async def main():
        calls = [client.create_deployment(event) for _ in range(32)]
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert all(isinstance(r, cased.TransportError) for r in results), results

    asyncio.run(main())
    print("done")
    """
)


def test_exit_after_the_last_call_does_not_crash() -> None:
    for _ in range(CHILDREN):
        child = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
        assert (child.returncode, child.stdout) == (0, "done\n"), child.stderr
