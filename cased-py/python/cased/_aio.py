"""Asyncio glue for ``cased._cased``.

The Rust core hands out ``asyncio.Future`` objects (``pyo3_async_runtimes``), which need a
running loop when created and which ``asyncio.run`` and ``asyncio.create_task`` refuse. Each
function here wraps one such call in a real coroutine: nothing starts until it is awaited, and
cancelling the awaiting task cancels the future, which drops the Rust future.
"""

from __future__ import annotations

from typing import Any


async def create_deployment(client: Any, event: Any) -> Any:
    """Await ``client._create_deployment(event)``; see ``Client.create_deployment``."""
    return await client._create_deployment(event)
