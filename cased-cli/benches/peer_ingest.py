"""The ingest bench's peer: a minimal FastAPI + SQLite receiver of deployment events.

It does what `cased serve` does for `POST /api/v1/deployments/` without a configuration: the
same validation rules (pydantic v2 models), the same tables (a deployment row and an event row),
the same identity matching (a later event of the same repository + commit + environment, or the
same correlation id, updates the deployment) and the same answer, one commit per event.

    python peer_ingest.py --port 0 --db /tmp/peer.db --workers 2

prints `listening on http://127.0.0.1:PORT` once it accepts connections (the bench waits for
that line). Dependencies: `cased-cli/benches/requirements-ingest.txt`.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import sqlite3
import sys
import threading
import time
from typing import Any, Literal, Optional
from urllib.parse import urlparse

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_REQUEST = 1000
MAX_MESSAGE = 65_536
MAX_NAME = 2048
MAX_METADATA = 64 * 1024

SCHEMA = """
CREATE TABLE IF NOT EXISTS deployments (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    repository TEXT, environment TEXT, commit_sha TEXT, correlation_id TEXT,
    status TEXT NOT NULL, event TEXT NOT NULL, note TEXT, state TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS deployments_by_identity
    ON deployments (repository, lower(commit_sha), environment);
CREATE INDEX IF NOT EXISTS deployments_by_correlation ON deployments (correlation_id);
CREATE TABLE IF NOT EXISTS deployment_events (
    deployment_id TEXT NOT NULL REFERENCES deployments (id),
    received_at_ms INTEGER NOT NULL, status TEXT NOT NULL, event TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS deployment_events_by_deployment ON deployment_events (deployment_id);
"""


def _text(value: str, limit: int) -> str:
    if len(value) > limit:
        raise ValueError(f"is {len(value)} characters long; at most {limit} are allowed")
    for c in value:
        if (ord(c) < 32 or 127 <= ord(c) < 160) and c not in "\t\n\r":
            raise ValueError(f"contains the control character U+{ord(c):04X}")
    return value


def _token(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    if len(value) > MAX_NAME:
        raise ValueError(f"is longer than {MAX_NAME} characters")
    if any(c.isspace() or ord(c) < 32 or 127 <= ord(c) < 160 for c in value):
        raise ValueError("contains whitespace or a control character")
    return value


def _segment_ok(seg: str) -> bool:
    return seg not in ("", ".", "..") and all(c.isascii() and (c.isalnum() or c in "-_.") for c in seg)


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    deployment_request: str
    repository_full_name: Optional[str] = None
    status: Literal["pending", "running", "success", "failure", "cancelled"] = "pending"
    external_url: Optional[str] = None
    commit_sha: Optional[str] = None
    commit_message: Optional[str] = None
    ref: Optional[str] = None
    event_metadata: Optional[dict[str, Any]] = Field(default=None)

    @field_validator("deployment_request")
    @classmethod
    def request(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return _text(v, MAX_REQUEST)

    @field_validator("repository_full_name")
    @classmethod
    def repository(cls, v: Optional[str]) -> Optional[str]:
        if v is not None:
            _token(v)
            segments = v.split("/")
            if len(segments) < 2 or not all(_segment_ok(s) for s in segments):
                raise ValueError("must look like `owner/name`")
        return v

    @field_validator("external_url")
    @classmethod
    def url(cls, v: Optional[str]) -> Optional[str]:
        if v is not None:
            _token(v)
            u = urlparse(v)
            if u.scheme not in ("http", "https") or not u.hostname:
                raise ValueError("must be an absolute http(s) URL")
        return v

    @field_validator("commit_sha")
    @classmethod
    def sha(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not (7 <= len(v) <= 64 and all(c in "0123456789abcdefABCDEF" for c in v)):
            raise ValueError("must be 7 to 64 hexadecimal characters")
        return v

    @field_validator("commit_message")
    @classmethod
    def message(cls, v: Optional[str]) -> Optional[str]:
        return None if v is None else _text(v, MAX_MESSAGE)

    @field_validator("ref")
    @classmethod
    def git_ref(cls, v: Optional[str]) -> Optional[str]:
        if v is not None:
            _token(v)
            if (
                ".." in v
                or "@{" in v
                or any(c in "~^:?*[\\" for c in v)
                or v.endswith(("/", ".", ".lock"))
            ):
                raise ValueError("is not a valid git ref name")
        return v

    @field_validator("event_metadata")
    @classmethod
    def metadata(cls, v: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
        if v is None:
            return v
        for key in ("environment", "correlation_id"):
            if key in v and not isinstance(v[key], str):
                raise ValueError(f"{key} must be a string")
        if "environment" in v:
            _token(v["environment"])
        if len(json.dumps(v, separators=(",", ":"))) > MAX_METADATA:
            raise ValueError(f"at most {MAX_METADATA} bytes of JSON are allowed")
        return v


app = FastAPI()
_local = threading.local()
DB_PATH = os.environ.get("PEER_DB", "peer.db")


def db() -> sqlite3.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = sqlite3.connect(DB_PATH, timeout=5, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.executescript(SCHEMA)
        _local.conn = conn
    return conn


@app.exception_handler(RequestValidationError)
async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {"field": ".".join(str(p) for p in e["loc"][1:]) or "body", "message": e["msg"]}
        for e in exc.errors()
    ]
    return JSONResponse(
        status_code=422,
        content={"code": "validation_error", "message": "invalid deployment event", "errors": errors},
    )


@app.post("/api/v1/deployments/")
def create(event: Event, request: Request) -> Response:
    # A sync handler: FastAPI runs it on its thread pool, as SQLite calls block.
    meta = event.event_metadata or {}
    environment, correlation = meta.get("environment"), meta.get("correlation_id")
    now = int(time.time() * 1000)
    body = event.model_dump_json(exclude_none=True)
    conn = db()
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = None
        if correlation is not None:
            row = conn.execute(
                "SELECT id FROM deployments WHERE correlation_id = ? ORDER BY seq DESC LIMIT 1",
                (correlation,),
            ).fetchone()
        if row is None and event.repository_full_name and event.commit_sha:
            row = conn.execute(
                "SELECT id FROM deployments WHERE repository = ? AND lower(commit_sha) = lower(?) "
                "AND environment IS ? ORDER BY seq DESC LIMIT 1",
                (event.repository_full_name, event.commit_sha, environment),
            ).fetchone()
        if row is None:
            dep_id, created = f"dep_{secrets.token_hex(8)}", True
            conn.execute(
                "INSERT INTO deployments (id, created_at_ms, updated_at_ms, repository, environment, "
                "commit_sha, correlation_id, status, event, note, state) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'recorded')",
                (
                    dep_id, now, now, event.repository_full_name, environment, event.commit_sha,
                    correlation, event.status, body, "no service is configured",
                ),
            )
        else:
            dep_id, created = row[0], False
            conn.execute(
                "UPDATE deployments SET status = ?, event = ?, updated_at_ms = ? WHERE id = ?",
                (event.status, body, now, dep_id),
            )
        conn.execute(
            "INSERT INTO deployment_events (deployment_id, received_at_ms, status, event) VALUES (?, ?, ?, ?)",
            (dep_id, now, event.status, body),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    host = request.headers.get("host", "")
    answer = {
        "id": dep_id,
        "url": f"http://{host}/deployments/{dep_id}",
        "created": created,
        "status": event.status,
        "state": "recorded",
        "monitored": False,
        "service": None,
        "session_id": None,
        "unmonitored_reason": "no service is configured",
    }
    return Response(
        content=json.dumps(answer), status_code=201 if created else 200, media_type="application/json"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--db", default="peer.db")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    os.environ["PEER_DB"] = os.path.abspath(args.db)
    # The workers import this file as `peer_ingest`.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))
    port = args.port
    if port == 0:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]

    def announce() -> None:
        # The line the bench waits for, once a connection is accepted.
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        print(f"listening on http://127.0.0.1:{port}", file=sys.stderr, flush=True)

    threading.Thread(target=announce, daemon=True).start()
    uvicorn.run(
        "peer_ingest:app",
        host="127.0.0.1",
        port=port,
        workers=args.workers,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
