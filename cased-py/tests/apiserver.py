"""A real deployments API on loopback: an asyncio HTTP/1.1 server that records every request and
answers from a script of responses (or never answers)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

API_KEY = "sk_test_0123456789abcdef"

HANG = "hang"
"""A scripted answer: read the request, never answer, and notice when the client hangs up."""


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class ApiServer:
    """Answers request N with ``script[N]`` (the last entry repeats)."""

    script: list[Reply | str]
    requests: list[Request] = field(default_factory=list)
    received: asyncio.Event = field(default_factory=asyncio.Event)
    hung_up: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append(Request(method, path, headers, body))
            self.received.set()
            reply = self.script[min(len(self.requests) - 1, len(self.script) - 1)]
            if reply == HANG:
                # Blocks until the client closes the connection.
                await reader.read()
                self.hung_up.set()
                return
            assert isinstance(reply, Reply)
            payload = reply.body.encode()
            extra = "".join(f"{k}: {v}\r\n" for k, v in reply.headers.items())
            writer.write(
                f"HTTP/1.1 {reply.status} Scripted\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n{extra}\r\n".encode()
                + payload
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            self.hung_up.set()
        finally:
            writer.close()


def json_body(request: Request) -> object:
    return json.loads(request.body)
