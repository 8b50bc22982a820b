"""Type stubs of ``cased._cased``, the compiled core of the ``cased`` package."""

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Literal, TypedDict, TypeVar, Union, final

from typing_extensions import NotRequired

__version__: str

_Status = Literal["pending", "running", "success", "failure", "cancelled"]
_CheckStatus = Literal["pass", "warn", "fail", "error"]
_Category = Literal["availability", "endpoint", "database", "dependency"]
_Phase = Literal["pending", "active", "cooldown", "finished"]
_Verdict = Literal["healthy", "degraded", "unhealthy", "inconclusive"]
_EndReason = Literal[
    "cooldown_elapsed", "max_duration", "unhealthy", "error_limit", "deployment_failed", "cancelled"
]

class _FieldProblem(TypedDict):
    field: str
    message: str

class _DeploymentResponse(TypedDict):
    status: int
    body: Any
    attempts: int

class _CheckResultLike(TypedDict):
    """What a custom check returns. ``latency_ms`` defaults to the measured time of the call."""

    status: _CheckStatus
    message: str
    evidence: NotRequired[Any]
    latency_ms: NotRequired[float]

class _CheckOutcome(TypedDict):
    """One run of a check (``run_check``)."""

    status: _CheckStatus
    latency_ms: float
    message: str
    evidence: NotRequired[Any]

class _CheckResult(TypedDict):
    """One check's result within a tick."""

    name: str
    category: _Category
    status: _CheckStatus
    latency_ms: float
    message: str

class _DeploymentInfo(TypedDict):
    deployment_request: str
    repository: str | None
    commit_sha: str | None
    environment: str | None
    correlation_id: str

class _Finding(TypedDict):
    metric: str
    detector: str
    severity: Literal["info", "warning", "critical", "emergency"]
    message: str

class _StatusUpdate(TypedDict):
    """Published after every tick, and once more (``phase == "finished"``, no checks, the
    last tick's number) when the session ends."""

    session_id: str
    deployment: _DeploymentInfo
    phase: _Phase
    tick: int
    elapsed_ms: float
    checks: list[_CheckResult]
    findings: list[_Finding]
    verdict: _Verdict
    reason: str
    next_tick_in_ms: float | None

class _Skipped(TypedDict):
    """Given instead of updates to a listener that fell behind: how many it missed."""

    skipped: int

class _Counters(TypedDict):
    measured_ticks: int
    failed_ticks: int
    warned_ticks: int
    errors: int

class _TickRecord(TypedDict):
    tick: int
    phase: _Phase
    elapsed_ms: float
    late_ms: float
    checks: list[_CheckResult]
    verdict: _Verdict

class _MetricSummary(TypedDict):
    count: int
    window: int
    last: float
    mean: float

class _RollbackRecord(TypedDict):
    elapsed_ms: float
    error: str | None
    """None when the hook returned, otherwise ``"ExceptionType: message"`` or its timeout."""

class _Report(TypedDict):
    """The final report of a session."""

    session_id: str
    event: dict[str, Any]
    verdict: _Verdict
    reason: str
    ended_by: _EndReason
    started_at_unix_ms: int
    duration_ms: float
    cooldown_started_ms: float | None
    extended: bool
    counters: _Counters
    ticks: list[_TickRecord]
    findings: list[_Finding]
    metrics: dict[str, _MetricSummary]
    rollback: _RollbackRecord | None

class _RollbackInfo(TypedDict):
    """What the rollback hook is called with."""

    session_id: str
    event: dict[str, Any]
    reason: str

_CheckFn = Callable[[], Awaitable[_CheckResultLike]]
_F = TypeVar("_F", bound=_CheckFn)
_RollbackFn = Callable[[_RollbackInfo], Union[Awaitable[None], None]]

@final
class DeploymentEvent:
    """A validated deployment event, the body of ``POST /api/v1/deployments/``.

    Keyword names are the wire names. Every value is validated by the core at once; all
    problems are raised together as one :class:`ValidationError`. A value JSON cannot hold
    (bytes, a datetime, ...) raises ``TypeError``. Instances are immutable and compare equal
    when all fields are equal.
    """

    def __init__(
        self,
        deployment_request: str,
        *,
        repository_full_name: str | None = None,
        status: _Status | None = None,
        external_url: str | None = None,
        commit_sha: str | None = None,
        commit_message: str | None = None,
        ref: str | None = None,
        event_metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Validate and build an event; ``status`` defaults to ``"success"``.

        Raises:
            ValidationError: listing every bad field.
        """

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> DeploymentEvent:
        """Validate a dict with the wire field names; unknown keys are rejected by name.

        Raises:
            ValidationError: listing every problem.
        """

    @staticmethod
    def from_json(text: str | bytes) -> DeploymentEvent:
        """Parse and validate JSON text, or UTF-8 bytes (invalid UTF-8 names its offset).

        Raises:
            ValidationError: malformed or empty JSON, or any field problem.
        """

    @staticmethod
    def from_env(env: Mapping[str, str] | None = None) -> DeploymentEvent:
        """Build an event from a CI environment: GitHub Actions (``GITHUB_ACTIONS=true``) or
        GitLab CI (``GITLAB_CI=true``), detected. ``env`` defaults to ``os.environ``.
        ``CASED_ENVIRONMENT`` and ``CASED_DEPLOYMENT_REQUEST`` are read too.

        Raises:
            ValidationError: on field ``environment`` when no CI is detected, or listing the
                problems of the values found.
        """

    @property
    def deployment_request(self) -> str:
        """What is being deployed, for a person."""

    @property
    def repository_full_name(self) -> str | None:
        """``owner/name`` (or ``group/sub/project``), if given."""

    @property
    def status(self) -> _Status:
        """The deployment status (``"success"`` when it was not given)."""

    @property
    def external_url(self) -> str | None:
        """Link to the pipeline or deployment page, if given."""

    @property
    def commit_sha(self) -> str | None:
        """The deployed commit (7 to 64 hex characters), if given."""

    @property
    def commit_message(self) -> str | None:
        """The deployed commit's message, if given."""

    @property
    def ref(self) -> str | None:
        """The git ref (``refs/heads/main`` or a bare branch or tag name), if given."""

    @property
    def event_metadata(self) -> dict[str, Any] | None:
        """The metadata object, if given (a fresh copy on every access)."""

    @property
    def environment(self) -> str | None:
        """``event_metadata["environment"]``, if it is a string."""

    @property
    def correlation_id(self) -> str | None:
        """``event_metadata["correlation_id"]``, if it is a string."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON object sent to the API, as a dict; absent fields are omitted."""

    def to_json(self) -> str:
        """The compact JSON text sent to the API; absent fields are omitted."""

    def __eq__(self, other: object) -> bool: ...

@final
class Client:
    """A client of the deployments API (``POST {base_url}/api/v1/deployments/``).

    ``api_key`` defaults to ``$CASED_API_KEY``, ``base_url`` to ``https://app.cased.com``,
    ``timeout`` (seconds per attempt) to 10, ``max_retries`` to 3. Connect errors and HTTP
    408, 429, 502, 503 and 504 are retried with exponential backoff and full jitter, honouring
    ``Retry-After``. The key never appears in ``repr()`` or in error messages.

    Raises:
        ValidationError: naming every bad setting (missing key, bad URL, timeout <= 0, ...).
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> None: ...
    @property
    def endpoint(self) -> str:
        """The full URL events are posted to."""

    async def create_deployment(self, event: DeploymentEvent) -> _DeploymentResponse:
        """Post ``event`` and return ``{"status": int, "body": Any, "attempts": int}``
        (``body`` is the parsed JSON answer, a string if it is not JSON, None if empty).

        Nothing is sent until the coroutine is awaited. Cancelling the awaiting task drops the
        request.

        Raises:
            UnauthorizedError, InvalidRequestError, RateLimitedError, ServerError,
            TimeoutError, TransportError: after the last attempt.
        """

@final
class Monitor:
    """Starts monitoring sessions from one configuration, the same model as JSON and
    ``cased.toml``: ``{"schedule": {...}, "checks": [...], "verdict": {...}}``; every key is
    optional.

    ``checks`` maps names to custom checks: async callables (plain callables work too) returning
    ``{"status": "pass" | "warn" | "fail" | "error", "message": str, "evidence": Any,
    "latency_ms": float}`` (the last two optional). A custom check runs on the event loop of
    the caller of ``start()``, in its context, each run under the session's timeout (at most
    the smallest interval): an exception is an ``error`` outcome carrying
    ``"ExceptionType: message"``, a malformed result an ``error`` outcome saying what is wrong,
    and a run that overruns is cancelled (``CancelledError`` inside the check).

    ``on_rollback`` is called exactly once when a session becomes unhealthy, with
    ``{"session_id", "event" (the wire dict), "reason"}``, on the same loop; it may be async.
    Its exception (or a run over 60 s) is recorded in ``report["rollback"]["error"]``.

    Raises:
        ValidationError: naming each bad setting by its path (``schedule.intervals[1]``,
            ``verdikt``, ``checks[0].url``, ``checks`` for a name used twice).
        TypeError: for a value JSON cannot hold, or a check or hook that is not callable.
    """

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        on_rollback: _RollbackFn | None = None,
        checks: Mapping[str, _CheckFn] | None = None,
    ) -> None: ...
    def add_check(self, name: str, f: _CheckFn, *, category: _Category | None = None) -> None:
        """Add a custom check, run after the configured ones at every tick of sessions started
        from now on. ``category`` defaults to ``"availability"``.

        Raises:
            ValidationError: for a name already used (field ``checks``) or a bad category.
        """

    def check(self, name: str, *, category: _Category | None = None) -> Callable[[_F], _F]:
        """Decorator form of :meth:`add_check`; returns the function unchanged."""

    def check_names(self) -> list[str]:
        """The names of the checks each tick runs, configured ones first."""

    async def start(self, event: DeploymentEvent | Mapping[str, Any]) -> Session:
        """Start a session for ``event`` (an event, or a dict with the wire field names). The
        first tick runs at once. An event whose status is ``"failure"`` or ``"cancelled"``
        gives a session that ends at once with that outcome; ``"success"`` (the default)
        starts in the cool-down; ``"pending"``/``"running"`` until :meth:`Session.complete`.

        The session runs until it ends, whether or not the ``Session`` is kept.

        Raises:
            ValidationError: listing every problem of a dict event.
        """

    async def run(self, event: DeploymentEvent | Mapping[str, Any]) -> _Report:
        """Start a session and return its report. Cancelling the awaiting task cancels the
        session."""

@final
class Session:
    """A running monitoring session (from :meth:`Monitor.start`)."""

    @property
    def id(self) -> str:
        """The session's id (the event's ``correlation_id`` plus a suffix, or a random id)."""

    @property
    def finished(self) -> bool:
        """Whether the session has ended and its report is ready."""

    def updates(self) -> Updates:
        """Follow the session's updates: ``async for update in session.updates()``. Any
        number of listeners may follow; each starts with the latest update, if any."""

    def complete(self) -> Awaitable[None]:
        """The deployment succeeded: the cool-down starts now (no effect once it runs or the
        session ended). Takes effect at once; the result may be awaited (``await
        session.complete()``) or ignored."""

    def fail(self) -> Awaitable[None]:
        """The deployment failed: the session ends (``ended_by == "deployment_failed"``) once
        the tick in progress, if any, is over. Takes effect at once; awaiting is optional."""

    def cancel(self) -> Awaitable[None]:
        """Stop the session (``ended_by == "cancelled"``) once the tick in progress, if any, is
        over. Takes effect at once; awaiting is optional, so it can be called from signal
        handlers and other threads."""

    def push(self, metric: str, value: float) -> None:
        """Add a sample of ``metric``, kept in a bounded window and summarised in
        ``report["metrics"]``.

        Raises:
            ValidationError: on field ``metric`` (empty) or ``value`` (NaN or infinite).
        """

    async def wait(self) -> _Report:
        """Wait for the session to end and return its report (again on every call).

        Cancelling the awaiting task (``task.cancel()``, ``asyncio.wait_for`` timing out)
        cancels the session; shield it (``asyncio.shield``) to only stop waiting.
        """

    def report(self) -> _Report | None:
        """The report, or None while the session runs."""

@final
class Updates(AsyncIterator[Union[_StatusUpdate, _Skipped]]):
    """A listener's view of a session's updates (from :meth:`Session.updates`): status update
    dicts in order, ending after the one whose ``phase`` is ``"finished"``. A listener that
    falls behind (more than 16 updates) gets ``{"skipped": n}`` in place of the ``n`` updates
    it missed; the checks never wait for listeners."""

    def __aiter__(self) -> Updates: ...
    async def __anext__(self) -> _StatusUpdate | _Skipped: ...

async def run_check(config: Mapping[str, Any]) -> _CheckOutcome:
    """Run one check once from its configuration, e.g. ``{"name": "web", "type": "http",
    "url": "http://127.0.0.1:8080/health", "expect": {"status": ["2xx"]}}``. Faults of the
    target (refused, timeout, wrong status...) are outcomes, never exceptions.

    Raises:
        ValidationError: for an invalid configuration (field ``config`` for a key or type
            problem, else the bad setting's name, e.g. ``url``).
    """

def enable_logging(filter: str | None = None) -> None:
    """Write the core's log to stderr, filtered by a ``RUST_LOG``-style directive such as
    ``"info"`` or ``"cased_core=debug"`` (default: ``$RUST_LOG``, else ``"warn"``).

    Raises:
        ValidationError: on field ``filter`` when it does not parse, or when logging is
            already enabled.
    """

class CasedError(Exception):
    """Base class of every error raised by cased."""

    code: str
    """The stable kind code: ``"validation"``, ``"unauthorized"``, ``"invalid_request"``,
    ``"rate_limited"``, ``"server"``, ``"timeout"`` or ``"transport"``."""

class ValidationError(CasedError):
    """Input failed validation; every problem is listed, not only the first."""

    errors: list[_FieldProblem]
    """Each problem as ``{"field": ..., "message": ...}``."""

class ApiError(CasedError):
    """A call to the deployments API failed."""

    status: int | None
    """The HTTP status the API answered, or None when there was no answer."""

class UnauthorizedError(ApiError):
    """The API rejected the credentials (HTTP 401 or 403)."""

class InvalidRequestError(ApiError):
    """The API rejected the request (HTTP 400, 404, 422, ...); the message is the server's."""

class RateLimitedError(ApiError):
    """The API kept answering 429 until the retry budget ran out."""

    retry_after: float | None
    """The server's last ``Retry-After``, in seconds, or None."""

class ServerError(ApiError):
    """The API kept failing with a server error (5xx, or 408)."""

class TimeoutError(ApiError):
    """A request to the API did not complete within its timeout."""

class TransportError(ApiError):
    """The API could not be reached (connection refused, DNS, TLS, reset...)."""
