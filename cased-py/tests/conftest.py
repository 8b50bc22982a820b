"""Fixtures: a scripted deployments API on loopback, and a URL nobody listens on."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from apiserver import ApiServer, Reply


@pytest_asyncio.fixture
async def api() -> AsyncIterator[ApiServer]:
    """A server answering 201 ``{"id": 1}`` until a test changes ``api.script``."""
    server = ApiServer(script=[Reply(201, '{"id": 1}')])
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    async with listener:
        yield server
        listener.close()
        for writer in server.writers:
            writer.close()
        await listener.wait_closed()


@pytest.fixture
def refused_url() -> str:
    """A loopback URL whose port was just released, so connecting is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
