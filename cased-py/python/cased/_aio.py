"""Asyncio glue for ``cased._cased``.

The Rust core hands out ``asyncio.Future`` objects (``pyo3_async_runtimes``), which need a
running loop when created and which ``asyncio.run`` and ``asyncio.create_task`` refuse. Each
function here wraps one such call in a real coroutine: nothing starts until it is awaited, and
cancelling the awaiting task cancels the future, which drops the Rust future.

``Call`` is the other direction: Rust running a user callable (a custom check, the rollback
hook) on the event loop captured at ``Monitor.start``.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from . import _cased


async def create_deployment(client: Any, event: Any) -> Any:
    """Await ``client._create_deployment(event)``; see ``Client.create_deployment``."""
    return await client._create_deployment(event)


async def start(monitor: Any, event: Any) -> Any:
    """Start a session inside the running loop; see ``Monitor.start``."""
    return monitor._start(event)


async def run(monitor: Any, event: Any) -> Any:
    """Start a session and await its report; cancelling the awaiting task cancels the session."""
    return await monitor._start(event)._wait()


async def wait(session: Any) -> Any:
    """Await ``session._wait()``; cancelling the awaiting task cancels the session."""
    return await session._wait()


async def next_update(updates: Any) -> Any:
    """The next update of ``updates``, or ``StopAsyncIteration`` after the last one."""
    item = await updates._next()
    if item is None:
        raise StopAsyncIteration
    return item


async def enter(obj: Any) -> Any:
    """``async with obj``: ``obj`` itself."""
    return obj


async def run_check(config: Any) -> Any:
    """Await ``_cased._run_check(config)``; see ``run_check``."""
    return await _cased._run_check(config)


async def call(method: Any, *args: Any) -> Any:
    """Await ``method(*args)``, an asyncio future a Rust method makes inside the running loop
    (the queries of ``History``)."""
    return await method(*args)


class Call:
    """One call of ``fn(*args)`` made by Rust, run as a task on the captured loop.

    Awaiting it calls ``fn`` and awaits the result when it is awaitable, so coroutine functions
    and plain functions both work. It is awaitable but not a coroutine: when Rust cannot schedule
    it, no coroutine is left un-awaited. Rust schedules ``cancel`` when it stops waiting (the
    session timed the check out); that cancels the task, or skips the call if it has not begun.
    """

    __slots__ = ("_args", "_cancelled", "_fn", "_task")

    def __init__(self, fn: Any, args: tuple[Any, ...]) -> None:
        self._fn = fn
        self._args = args
        self._task: asyncio.Task[Any] | None = None
        self._cancelled = False

    def __await__(self) -> Any:
        return self._run().__await__()

    async def _run(self) -> Any:
        if self._cancelled:
            return None
        self._task = asyncio.current_task()
        result = self._fn(*self._args)
        if inspect.isawaitable(result):
            result = await result
        return result

    def cancel(self) -> None:
        self._cancelled = True
        if self._task is not None:
            self._task.cancel()
