"""Type stubs of ``cased._cased``, the compiled core of the ``cased`` package."""

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any, Literal, TypedDict, TypeVar, Union, final

from typing_extensions import Buffer, NotRequired

__version__: str

_Status = Literal["pending", "running", "success", "failure", "cancelled"]
_CheckStatus = Literal["pass", "warn", "fail", "error"]
_Category = Literal["availability", "endpoint", "database", "dependency"]
_Phase = Literal["pending", "active", "cooldown", "finished"]
_Verdict = Literal["healthy", "degraded", "unhealthy", "inconclusive"]
_EndReason = Literal[
    "cooldown_elapsed", "max_duration", "unhealthy", "error_limit", "deployment_failed", "cancelled",
    "internal_error"
]

class _FieldProblem(TypedDict):
    field: str
    message: str

class _DeploymentResponse(TypedDict):
    status: int
    body: Any
    attempts: int

class _DeploymentPage(TypedDict):
    """One page of ``Client.deployments``: the deployments as the API shapes them, newest first."""

    deployments: list[dict[str, Any]]
    next_cursor: str | None
    """Pass it as ``cursor=`` for the next page; None on the last."""

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
    evidence: Any
    """What was expected and what came back, when the check says (``None`` otherwise)."""

class _DeploymentInfo(TypedDict):
    deployment_request: str
    repository: str | None
    commit_sha: str | None
    environment: str | None
    correlation_id: str

_Severity = Literal["info", "warning", "critical", "emergency"]

class _Finding(TypedDict):
    """A detector's finding, with its evidence."""

    metric: str
    detector: str
    severity: _Severity
    kind: Literal["alarm", "resolved"]
    current: float
    baseline: float | None
    statistic: float
    p_value: float | None
    confidence: float
    effect_size: float
    n: int
    rule: str
    message: str
    index: NotRequired[int]
    """0-based position, in the metric's stream since the session started, of the value that
    raised it (absent for findings stated in code)."""
    tick: NotRequired[int]
    """The session tick that raised it."""

class _DetectorFinding(_Finding):
    """A finding of :class:`Detector`, with the 0-based position in the stream of the value
    that raised it in ``index``."""

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
    source_errors: list[_SourceError]
    """Sources that could not be read at this tick."""

class _SourceError(TypedDict):
    source: str
    message: str

class _RecordedSample(TypedDict):
    metric: str
    timestamp: float
    """Seconds since the Unix epoch."""
    value: float
    labels: NotRequired[dict[str, str]]

class _RecordedCounts(TypedDict):
    metric: str
    timestamp: float
    errors: int
    requests: int

class _RecordedCheck(TypedDict):
    name: str
    at: float
    """Seconds after the deployment started."""
    status: Literal["pass", "warn", "fail", "error"]
    latency_ms: NotRequired[float]
    message: NotRequired[str]
    category: NotRequired[_Category]

class _Recording(TypedDict):
    """A recorded deployment for :meth:`Monitor.replay`."""

    started_at: float
    """When the deployment started, seconds since the Unix epoch: the session's time 0."""
    completed_after: NotRequired[float]
    """Seconds after ``started_at`` at which the deployment reported success."""
    samples: NotRequired[list[_RecordedSample]]
    counts: NotRequired[list[_RecordedCounts]]
    control_samples: NotRequired[list[_RecordedSample]]
    control_counts: NotRequired[list[_RecordedCounts]]
    checks: NotRequired[list[_RecordedCheck]]

class _Skipped(TypedDict):
    """Given instead of updates to a listener that fell behind: how many it missed."""

    skipped: int

class _Counters(TypedDict):
    measured_ticks: int
    failed_ticks: int
    warned_ticks: int
    errors: int
    warning_findings: int

class _AlertSummary(TypedDict):
    key: str
    severity: _Severity
    title: str

class _AlertFailure(TypedDict):
    """A delivery of a session's alert that finally failed."""

    channel: str
    notification_id: str
    keys: list[str]
    attempts: int
    error: str | None

class _AlertRetry(TypedDict):
    """A delivery of a session's alert that succeeded only after a retry (not a failure)."""

    channel: str
    notification_id: str
    keys: list[str]
    attempts: int
    note: str
    """``timed out, retried (delivered on attempt 2; attempt 1: …)``."""

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
    median: NotRequired[float]

class _ChangePoint(TypedDict):
    """When an alarmed metric changed: the located level shift and its likelihood interval."""

    metric: str
    at_unix_ms: int
    earliest_unix_ms: int
    """The change happened after this time and at or before ``latest_unix_ms``."""
    latest_unix_ms: int
    after_start_ms: int
    """``at_unix_ms`` from the session's start (negative: before the rollout)."""
    before: float
    after: float
    n: int
    message: str
    """E.g. ``"api.latency_ms rose from 120 to 180 at 2026-12-04T14:03:20Z ± 10s, 40s after
    the rollout started."``"""

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
    alerts: list[_AlertSummary]
    alert_failures: list[_AlertFailure]
    alert_retries: list[_AlertRetry]
    no_data: list[str]
    baselines: dict[str, str]
    """Which baseline judged each compared metric (``"the window before the deployment (360
    values)"``, ``"the control track (...)"``, ``"the last 3 healthy deployments (...)"``)."""
    notes: list[str]
    """How the verdict was reached where it matters: no earlier baseline, too few values,
    sources that could not be read."""
    changes: list[_ChangePoint]
    """When each metric that raised an alarm changed, located on its values."""

class _RollbackInfo(TypedDict):
    """What the rollback hook is called with."""

    session_id: str
    event: dict[str, Any]
    reason: str

# --- check configurations (the ``checks`` entries, and ``run_check``) -----------------------
# Durations are strings such as ``"500ms"``, ``"10s"``, ``"1m"``. Unknown keys are errors.

class _JsonExpect(TypedDict):
    """One JSON assertion: the value at ``pointer`` (RFC 6901) equals / exists / matches."""

    pointer: str
    equals: NotRequired[Any]
    exists: NotRequired[bool]
    regex: NotRequired[str]

class _HttpExpect(TypedDict, total=False):
    status: list[int | str]
    """Codes or ranges like ``"2xx"`` (default ``["2xx"]``)."""
    max_latency: str
    warn_latency: str
    body_contains: str
    body_regex: str
    json: list[_JsonExpect]
    headers: dict[str, str]

class _HttpCheck(TypedDict):
    """``{"type": "http"}``: a request, judged by ``expect``."""

    name: str
    type: Literal["http"]
    url: str
    method: NotRequired[str]
    headers: NotRequired[dict[str, str]]
    body: NotRequired[str]
    timeout: NotRequired[str]
    category: NotRequired[_Category]
    expect: NotRequired[_HttpExpect]
    max_redirects: NotRequired[int]
    max_body_bytes: NotRequired[int]
    insecure_skip_verify: NotRequired[bool]
    connection: NotRequired[Literal["fresh", "pooled"]]
    redact: NotRequired[list[str]]
    """More query parameter and header names whose values are secrets (beyond ``token``,
    ``api_key``, ``signature``...): shown as ``[redacted]`` in messages, evidence and history."""

class _TcpCheck(TypedDict):
    """``{"type": "tcp"}``: a connection, optionally sending ``send`` and expecting ``expect``
    in the answer (timeout default 5 s)."""

    name: str
    type: Literal["tcp"]
    host: str
    port: int
    send: NotRequired[str]
    expect: NotRequired[str]
    timeout: NotRequired[str]
    category: NotRequired[_Category]

class _DnsCheck(TypedDict):
    """``{"type": "dns"}``: resolves ``host``; every address in ``addresses`` must be in the
    answer (empty: any answer passes)."""

    name: str
    type: Literal["dns"]
    host: str
    addresses: NotRequired[list[str]]
    timeout: NotRequired[str]
    category: NotRequired[_Category]

class _PostgresCheck(TypedDict):
    """``{"type": "postgres"}``: connects and runs ``SELECT 1``. ``url`` is
    ``postgres://user@host[:port]/database`` without the password."""

    name: str
    type: Literal["postgres"]
    url: str
    password: NotRequired[str]
    tls: NotRequired[Literal["disable", "prefer", "require"]]
    timeout: NotRequired[str]
    category: NotRequired[_Category]

class _RedisCheck(TypedDict):
    """``{"type": "redis"}``: ``PING`` over the Redis protocol. ``url`` is
    ``redis://[user@]host[:port]`` without the password."""

    name: str
    type: Literal["redis"]
    url: str
    password: NotRequired[str]
    timeout: NotRequired[str]
    category: NotRequired[_Category]

class _CommandExpect(TypedDict, total=False):
    exit_code: int
    stdout_contains: str
    stdout_regex: str
    stderr_contains: str
    stderr_regex: str

class _CommandCheck(TypedDict):
    """``{"type": "command"}``: runs ``program`` with ``args`` (never through a shell unless
    ``shell`` is true); timeout default 30 s, expected exit code 0."""

    name: str
    type: Literal["command"]
    program: str
    args: NotRequired[list[str]]
    shell: NotRequired[bool]
    cwd: NotRequired[str]
    timeout: NotRequired[str]
    category: NotRequired[_Category]
    expect: NotRequired[_CommandExpect]

_CheckConfig = Union[_HttpCheck, _TcpCheck, _DnsCheck, _PostgresCheck, _RedisCheck, _CommandCheck]

# --- detectors -------------------------------------------------------------------------------

_DetectorType = Literal[
    "threshold", "baseline", "error_rate", "spike", "cusum", "ewma", "trend", "changepoint", "likelihood",
    "context",
]

class _DetectorConfig(TypedDict):
    """One entry of a monitor's ``detectors``: ``type``, ``metric``, optional ``name`` and
    ``severity``; every other key is a setting of that detector type (see the core docs)."""

    type: _DetectorType
    metric: str
    name: NotRequired[str]
    severity: NotRequired[dict[str, Any]]

class _MannWhitney(TypedDict):
    u: float
    z: float
    p_value: float
    method: str

class _HodgesLehmann(TypedDict):
    shift: float
    lower: float
    upper: float
    confidence: float

class _BrownForsythe(TypedDict):
    f: float
    p_value: float
    spread_x: float
    spread_y: float

class _TailTest(TypedDict):
    """Values beyond the baseline's ``quantile`` (below ``1 - quantile`` when ``lower``)."""

    quantile: float
    threshold: float
    lower: bool
    baseline_beyond: int
    current_beyond: int
    p_value: float

class _BaselineComparison(TypedDict):
    """What :func:`compare` found; ``finding`` is None when no rule fired."""

    n_baseline: int
    n_current: int
    baseline_median: float
    current_median: float
    margin: float
    location: _MannWhitney
    shift: _HodgesLehmann
    relative_change: float | None
    spread: _BrownForsythe | None
    level: float
    look: int
    tail: _TailTest | None
    location_alarm: bool
    spread_alarm: bool
    tail_alarm: bool
    finding: _Finding | None

class _Counts(TypedDict):
    errors: int
    requests: int

class _ErrorRateComparison(TypedDict):
    """What :func:`compare_error_rates` found; ``finding`` is None when it did not fire."""

    baseline: _Counts
    current: _Counts
    z: float
    p_value: float
    level: float
    look: int
    alarm: bool
    finding: _Finding | None

_Values = Union[Sequence[float], Buffer]

class _Sample(TypedDict):
    metric: str
    labels: dict[str, str]
    timestamp: float
    value: float

# --- alerts and history ----------------------------------------------------------------------

class _Notification(TypedDict):
    """A ``cased.notification/v1`` object, as the webhook channel posts it (absent optional
    fields are omitted)."""

    schema: Literal["cased.notification/v1"]
    id: str
    kind: Literal["group", "digest"]
    route: str
    group_key: str
    status: Literal["firing", "resolved"]
    severity: _Severity
    escalated: bool
    deployment: dict[str, Any]
    correlation_id: str
    alerts: list[dict[str, Any]]
    omitted: int
    omitted_keys: list[str]
    coalesced_groups: list[str]
    created_at: str

class _DeploymentRecord(TypedDict):
    session_id: str
    correlation_id: str
    deployment_request: str
    repository: str | None
    environment: str | None
    commit_sha: str | None
    git_ref: str | None
    started_at_unix_ms: int
    duration_ms: float | None
    verdict: _Verdict | None
    reason: str | None
    ended_by: _EndReason | None
    last_tick_verdict: _Verdict | None
    ticks: int
    findings: int
    alerts: int
    last_seen_unix_ms: int | None
    interrupted_at_unix_ms: int | None
    """Set when the session has no verdict and its process (on this host) is gone."""

class _StoredFinding(TypedDict):
    id: str
    """``"<session id>:<n>"``, for :meth:`History.deployment_of_finding`."""
    session_id: str
    seq: int
    tick: int | None
    elapsed_ms: float | None
    finding: _Finding

class _VerdictCounts(TypedDict):
    start_unix_ms: int
    healthy: int
    degraded: int
    unhealthy: int
    inconclusive: int
    unfinished: int
    total: int
    success_rate: float | None

class _TimeToDetect(TypedDict):
    session_id: str
    started_at_unix_ms: int
    time_to_detect_ms: float
    detected_by: Literal["critical_finding", "failed_tick"]
    tick: int

_CheckFn = Callable[[], Awaitable[_CheckResultLike]]
_NotifierFn = Callable[[_Notification], Union[Awaitable[None], None]]
_F = TypeVar("_F", bound=_CheckFn)
_RollbackFn = Callable[[_RollbackInfo], Union[Awaitable[None], None]]

@final
class DeploymentEvent:
    """A validated deployment event, the body of ``POST /api/v1/deployments/``.

    Keyword names are the wire names. Every value is validated by the core at once; all
    problems are raised together as one :class:`ValidationError`. A value JSON cannot hold
    (bytes, a datetime, NaN, ±inf, an integer beyond 64 bits, a string with a lone surrogate)
    is a :class:`ValidationError` naming its path (``event_metadata.score``). Instances are
    immutable and compare equal
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

    ``api_key`` defaults to ``$CASED_API_KEY``, ``base_url`` to ``$CASED_BASE_URL`` and then
    ``https://app.cased.com``, ``timeout`` (seconds per attempt) to 10, ``max_retries`` to 3. Connect errors and HTTP
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

    async def deployments(
        self,
        *,
        repository: str | None = None,
        environment: str | None = None,
        verdict: _Verdict | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> _DeploymentPage:
        """One page of deployments (``GET {base_url}/api/v1/deployments/``), newest first,
        filtered; needs a key with the read scope on ``cased serve``. Retried as
        ``create_deployment`` is.

        Raises:
            InvalidRequestError: a filter the server rejects (``status`` 400), e.g. a limit
                outside 1 to 500.
            UnauthorizedError, RateLimitedError, ServerError, TimeoutError, TransportError.
        """

    async def deployment(self, id: str) -> dict[str, Any]:
        """One deployment (``GET {base_url}/api/v1/deployments/{id}``): its event, ``events``,
        and ``session`` (record, ticks, findings with evidence, alerts).

        Raises:
            ValidationError: ``id`` is empty (nothing is sent).
            InvalidRequestError: no such deployment (``status`` 404).
            UnauthorizedError, RateLimitedError, ServerError, TimeoutError, TransportError.
        """

@final
class Monitor:
    """Starts monitoring sessions from one configuration, the same model as JSON and
    ``cased.toml``: ``{"schedule": {...}, "checks": [...], "verdict": {...}}``; every key is
    optional.

    ``config["sources"]`` lists what every session polls besides its checks, each point judged
    at its own index: ``{"type": "prometheus", "url", "queries", "counts", "control"}`` (PromQL
    range queries templated with ``{{repository}}``, ``{{environment}}``, ``{{commit_sha}}``,
    ``{{metadata.KEY}}``), ``{"type": "scrape", "url", "metrics", "counts", "control_url"}`` (the
    service's own ``/metrics`` page) and ``{"type": "host"}`` (the machine cased runs on); metrics
    are named ``<source>.<key>``. ``config["baseline"]`` (``{"pre_deploy": "1h", "previous": 5}``)
    says where comparison detectors find their baseline when none is given here: the control
    track read live, the window before the deployment, the last healthy deployments. The report's
    ``baselines`` names the one used per metric; its ``notes`` say when there was none.

    ``config["pushed"]`` lists the metrics the program pushes (``session.push("queue_depth",
    ...)``). A detector must watch a metric something produces: a check (``<check>.latency_ms``,
    ``<check>.success``, configured or custom), a source (``<source>.<key>``) or a ``pushed``
    metric; a monitor with none of these (push-only, or replay-only) is not held to the rule.
    As custom checks may still be added with :meth:`check`, the rule is applied by
    :meth:`start` and :meth:`run`.

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

    ``notifiers`` maps the names of ``"type": "custom"`` channels of ``config["alerts"]`` to
    callables (async or plain) called with each notification dict (``cased.notification/v1``)
    on the same loop; an exception is a failed attempt, retried by the channel's delivery
    policy, and a delivery that finally fails is listed in ``report["alert_failures"]``.

    ``history`` records every session (start, updates, report) in a :class:`History`.

    ``baselines`` maps metrics to baseline values (lists, ``array.array("d")``, numpy
    arrays) for the value detectors, or to counts — an ``(errors, requests)`` tuple or an
    ``{"errors": e, "requests": r}`` dict — for the ``error_rate`` detectors. A baseline given
    here takes precedence over the control track, the pre-deploy window and the store.

    ``baseline_store`` (a :class:`BaselineStore`) keeps every session's samples and outcome,
    keyed by repository, environment and metric: the ``baseline`` detectors of later sessions
    without a ``baselines`` entry judge against the last healthy deployments found there.

    Raises:
        ValidationError: naming each bad setting by its path (``schedule.intervals[1]``,
            ``verdikt``, ``checks[0].url``, ``checks`` for a name used twice).
            A value JSON cannot hold (bytes, NaN, ±inf, an integer beyond 64 bits...) is one too,
            named by its path.
        TypeError: for a check or hook that is not callable.
    """

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        on_rollback: _RollbackFn | None = None,
        checks: Mapping[str, _CheckFn] | None = None,
        notifiers: Mapping[str, _NotifierFn] | None = None,
        history: History | None = None,
        baselines: Mapping[str, _Values | tuple[int, int] | _Counts] | None = None,
        baseline_store: BaselineStore | None = None,
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
            ValidationError: listing every problem of a dict event, or a detector on a metric
                no check, source or ``pushed`` entry produces (``detectors[i].metric``, naming
                the detector and the metric).
        """

    async def run(self, event: DeploymentEvent | Mapping[str, Any]) -> _Report:
        """Start a session and return its report. Cancelling the awaiting task cancels the
        session. The session's own alerts are delivered (or have failed, which the report's
        ``alert_failures`` lists) before it returns, within 30 seconds."""

    async def close(self, grace: float = 10.0) -> dict[str, int]:
        """Flush and stop every alert channel of this monitor: untold changes are sent at once
        and the channels get up to ``grace`` seconds (at most an hour) to deliver; whatever is
        still undelivered then is counted as failed, never dropped silently. Call it (or use
        ``async with Monitor(...) as monitor:``) before the program exits: a session flushes
        its own alerts as it ends, but deliveries under way die with the process. Returns the
        channels' counters (``delivered``, ``failed``, ``retries``, ...), summed.

        Raises:
            ValidationError: for a negative or non-finite ``grace``.
        """

    async def __aenter__(self) -> Monitor: ...
    async def __aexit__(self, *exc: object) -> None:
        """Awaits ``close()``."""

    async def replay(self, event: DeploymentEvent | Mapping[str, Any], recording: _Recording) -> _Report:
        """Replay a recorded deployment through this monitor's pipeline on a virtual clock (no
        wall clock, no sleeping) and return the report it would have given. The recording's
        samples and counts stand in for the sources (those before ``started_at`` are the
        pre-deploy window), its check outcomes for the checks; nothing is sent or recorded.

        Raises:
            ValidationError: naming a bad field of the recording (``samples[3].value``), a
                value JSON cannot hold included.
        """

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

    def alerts(self, channel: str) -> Alerts:
        """Follow the in-app alert channel ``channel`` (a ``"type": "inapp"`` channel of
        ``config["alerts"]``): ``async for notification in session.alerts("app")``. Call it
        right after :meth:`Monitor.start`: only notifications delivered after that are seen.
        A monitor without Python callables shares its channels among its sessions, so filter
        on ``notification["correlation_id"]`` when several run at once.

        Raises:
            ValidationError: when there is no such in-app channel.
        """

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

    def push_counts(self, metric: str, errors: int, requests: int) -> None:
        """Add ``(errors, requests)`` counts of ``metric`` for its ``error_rate`` detectors
        (counts, not ratios, so the test knows how much evidence there is).

        Raises:
            ValidationError: on field ``metric`` (empty), ``errors`` (more than requests) or
                ``session`` (finished).
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

@final
class Alerts(AsyncIterator[Union[_Notification, _Skipped]]):
    """An in-app alert channel (from :meth:`Session.alerts`): notification dicts as they are
    delivered, ending when the monitor's alert manager shuts down. A listener that falls
    behind gets ``{"skipped": n}`` in place of the notifications it missed."""

    def __aiter__(self) -> Alerts: ...
    async def __anext__(self) -> _Notification | _Skipped: ...

@final
class Detector:
    """One anomaly detector from its configuration, the same dict as an entry of a monitor's
    ``detectors``: ``{"type": "spike", "metric": "latency", "window": 30}``. Types:
    ``threshold``, ``baseline`` (give it :meth:`set_baseline`), ``spike``, ``cusum``, ``ewma``,
    ``trend``, ``changepoint``, ``likelihood``, ``context``; ``error_rate`` judges counts: use :func:`compare_error_rates`.

    Raises:
        ValidationError: naming every bad setting (field ``config`` for unknown keys or wrong
            types, ``type`` for an unsupported type, the path of a value JSON cannot hold).
    """

    def __init__(self, config: _DetectorConfig | Mapping[str, Any]) -> None: ...
    @property
    def type(self) -> _DetectorType:
        """The detector's type."""

    @property
    def metric(self) -> str:
        """The metric its findings are about."""

    @property
    def name(self) -> str:
        """The name its findings carry (``config["name"]``, default the type)."""

    def config(self) -> dict[str, Any]:
        """The configuration, every default filled in."""

    def update(self, x: float) -> _DetectorFinding | None:
        """Feed one value; the finding it raises, or None.

        Raises:
            ValidationError: when ``x`` is NaN or infinite (the detector is unchanged).
        """

    def detect(self, values: _Values) -> list[_DetectorFinding]:
        """Feed every value in order, continuing the stream (the same findings as calling
        :meth:`update` on each). ``values`` is a sequence of numbers or a one-dimensional
        buffer (``array.array("d")``, a numpy ``float64`` array: copied once, never read
        element by element from Python); the work runs with the GIL released.

        Raises:
            ValidationError: on field ``values[i]`` for the first value that is not finite
                (the values before it were consumed).
            TypeError: for anything else.
        """

    def score(self) -> float:
        """The score of the last value: below 1 is normal, 1 or more an alarm."""

    def reset(self) -> None:
        """Forget every value seen; the configuration and a baseline stay."""

    def set_baseline(self, values: _Values) -> None:
        """Give a ``baseline`` or ``shift`` detector its baseline values (oldest first).

        Raises:
            ValidationError: for another type of detector, or empty or non-finite values.
        """

def compare(
    baseline: _Values,
    current: _Values,
    config: Mapping[str, Any] | None = None,
    *,
    metric: str = "value",
    look: int | None = None,
) -> _BaselineComparison:
    """Compare ``current`` with ``baseline`` once: the Mann–Whitney U test against the allowed
    change, the Hodges–Lehmann shift with its confidence interval, and the Brown–Forsythe
    spread test, at the full level α. ``config`` holds the ``baseline`` detector's settings
    (``direction``, ``allowed_change``, ``min_shift``, ``alpha``, ``min_samples``,
    ``confidence``, ``spread``, ``tail_quantile``; also ``name`` and ``severity`` for the finding). ``metric``
    names the metric in the finding's message. ``look`` (1-based) judges the call as that look
    of a session, at the share of α a session spends on it, so a loop of calls with looks 1, 2,
    3… keeps its false-alarm rate within α; None is one look at the full level α.

    Raises:
        ValidationError: for a bad setting, or a side that is non-finite or smaller than
            ``min_samples``.
    """

def compare_error_rates(
    baseline: tuple[int, int],
    current: tuple[int, int],
    config: Mapping[str, Any] | None = None,
    *,
    metric: str = "errors",
    look: int | None = None,
) -> _ErrorRateComparison:
    """Compare ``(errors, requests)`` counts once with the exact conditional (Poisson) test
    against the allowed change, at the full level α. ``config`` holds the ``error_rate``
    detector's settings (``allowed_change``, ``min_increase``, ``alpha``; also ``name`` and
    ``severity`` for the finding). ``look`` (1-based) judges the call as that look of a
    session, as for :func:`compare`.

    Raises:
        ValidationError: for a bad setting, more errors than requests, or a side without
            requests.
        TypeError: when a side is not a pair of non-negative integers.
    """

class _Segment(TypedDict):
    start: int
    end: int
    mean: float
    sd: float

class _Segmentation(TypedDict):
    changes: list[int]
    segments: list[_Segment]
    cost: Literal["normal_mean", "normal_meanvar", "poisson"]
    penalty: float
    autocorrelation: float
    total_cost: float

class _SegmentConfig(TypedDict, total=False):
    cost: Literal["normal_mean", "normal_meanvar", "poisson"]
    penalty: Literal["mbic", "bic"] | float
    min_size: int
    penalty_scale: float
    autocorrelation: bool

def segment(values: _Values, config: _SegmentConfig | None = None) -> _Segmentation:
    """Split a whole series into segments with PELT: the exact optimum of the penalised cost.
    ``cost``: ``"normal_meanvar"`` (default: mean and variance change), ``"normal_mean"`` (one
    variance, estimated from the first differences) or ``"poisson"`` (counts); ``penalty`` per
    change: ``"mbic"`` (default, (p + 2) · ln n), ``"bic"`` ((p + 1) · ln n) or a number;
    ``min_size``: the shortest segment (default 2); ``penalty_scale``: a factor on the penalty;
    ``autocorrelation=True``: scale the penalty by (1 + ρ)/(1 − ρ), ρ the lag-1 autocorrelation
    of the residuals of a first segmentation, and segment again (for real series whose noise
    wanders in runs). ``changes`` lists the index at which each change takes effect;
    ``segments`` their ``start``/``end`` (exclusive), ``mean`` and ``sd``.

    Raises:
        ValidationError: for a bad setting, or empty, non-finite or (for counts) negative
            values, naming ``values[i]``.
    """

def sign_webhook(secret: str, timestamp: str | int, body: bytes | bytearray | str) -> str:
    """The ``X-Cased-Signature`` value for ``body`` sent at ``timestamp`` (Unix seconds):
    ``"v1="`` and the hex HMAC-SHA256 of ``"{timestamp}.{body}"`` keyed with ``secret``."""

def verify_webhook_signature(
    secret: str,
    timestamp: str | int,
    body: bytes | bytearray | str,
    signature: str,
    tolerance: float = 300,
    now: float | None = None,
) -> None:
    """Check a received webhook: ``timestamp`` and ``signature`` are the ``X-Cased-Timestamp``
    and ``X-Cased-Signature`` headers, ``body`` the raw request body (not re-serialized JSON).
    Accepts when the timestamp is within ``tolerance`` seconds of ``now`` (Unix seconds,
    default the current time) and a ``v1=`` signature matches (compared in constant time).

    Raises:
        SignatureError: with ``.code`` ``"malformed_timestamp"``, ``"outside_tolerance"``,
            ``"malformed_signature"`` or ``"mismatch"``.
        ValidationError: for a negative ``tolerance`` or ``now``.
    """

@final
class PrometheusSource:
    """Reads samples from a Prometheus server (or anything speaking its HTTP API: Thanos,
    Mimir, VictoriaMetrics). ``bearer_token`` is sent as ``Authorization: Bearer <token>`` and
    never shown by ``repr``; ``timeout`` (seconds, default 30) bounds each query.

    Every series' point becomes one sample named ``metric``, with the series' labels (without
    ``__name__``); points that are NaN or infinite are dropped.

    Raises:
        ValidationError: when ``url`` is not an absolute http(s) URL, ``timeout`` is not
            positive, or the token cannot be sent as a header.
    """

    def __init__(self, url: str, *, bearer_token: str | None = None, timeout: float | None = None) -> None: ...
    async def query(self, metric: str, promql: str, time: float | None = None) -> list[_Sample]:
        """An instant query (``/api/v1/query``) at ``time`` (seconds since the epoch; now when
        None).

        Raises:
            QueryError: Prometheus rejected the query (``.error_type``, ``.status``).
            NoDataError: the query matched no series.
            UnauthorizedError, ServerError, TimeoutError, TransportError: as the API errors.
        """

    async def query_range(
        self, metric: str, promql: str, start: float, end: float, step_seconds: float
    ) -> list[_Sample]:
        """A range query (``/api/v1/query_range``) from ``start`` to ``end`` (seconds since the
        epoch) every ``step_seconds``.

        Raises:
            ValidationError: when ``end < start`` or ``step_seconds`` is not positive.
            QueryError, NoDataError: as :meth:`query`.
        """

@final
class HostSource:
    """CPU, memory and disk of the machine this process runs on: ``host_cpu_percent`` (from
    the second call on), ``host_memory_used_percent``, ``host_memory_used_bytes`` and, per
    mounted disk, ``host_disk_used_percent`` (label ``mount``)."""

    def __init__(self) -> None: ...
    def sample(self) -> list[_Sample]:
        """The host's samples now."""

@final
class BaselineStore:
    """Where sessions keep each deployment's samples and outcome, per repository, environment
    and metric: the baselines of the next deployments. Give it to :class:`Monitor`."""

    @staticmethod
    def sqlite(path: str | PathLike[str]) -> BaselineStore:
        """A store in the SQLite file at ``path`` (created when missing, WAL mode).

        Raises:
            StorageError: when the file cannot be opened or its schema created.
        """

    @staticmethod
    def in_memory() -> BaselineStore:
        """A store kept in memory, gone with the last reference."""

@final
class History:
    """The deployment history in a SQLite file (created with its directory when missing,
    WAL mode, safe for many sessions at once), or in memory with ``":memory:"``. Give it to
    :class:`Monitor` to record sessions; query it with the coroutines below.

    The ``**filter`` keywords of the queries: ``repository``, ``environment``,
    ``correlation_id``, ``verdict``, ``since_unix_ms``, ``until_unix_ms`` (exclusive),
    ``limit`` (for :meth:`deployments`).

    Raises:
        StorageError: when the file cannot be opened or created, is not a cased history, or
            was written by a newer version of cased.
    """

    def __init__(self, path: str | PathLike[str]) -> None: ...
    @staticmethod
    def in_memory() -> History:
        """A history kept in memory, gone with the last reference."""

    @property
    def path(self) -> Path | None:
        """The file, or None in memory."""

    async def deployments(
        self,
        *,
        repository: str | None = None,
        environment: str | None = None,
        correlation_id: str | None = None,
        verdict: _Verdict | None = None,
        since_unix_ms: int | None = None,
        until_unix_ms: int | None = None,
        limit: int | None = None,
    ) -> list[_DeploymentRecord]:
        """The deployments matching the filter, newest first.

        Raises:
            ValidationError: on field ``filter`` for an unknown keyword or a bad value.
            StorageError: when the database fails.
        """

    async def deployment(self, session_id: str) -> _DeploymentRecord | None:
        """One deployment by session id, or None."""

    async def report(self, session_id: str) -> _Report | None:
        """A session's final report, or None (unknown, or still running)."""

    async def ticks(self, session_id: str) -> list[_TickRecord]:
        """A session's recorded ticks, in order."""

    async def findings(self, session_id: str) -> list[_StoredFinding]:
        """A session's findings, with their ids and ticks."""

    async def alerts(self, session_id: str) -> list[dict[str, Any]]:
        """A session's recorded alerts."""

    async def verdict_counts(
        self,
        bucket: Literal["day", "week"] = "day",
        *,
        repository: str | None = None,
        environment: str | None = None,
        correlation_id: str | None = None,
        verdict: _Verdict | None = None,
        since_unix_ms: int | None = None,
        until_unix_ms: int | None = None,
    ) -> list[_VerdictCounts]:
        """Verdict counts per UTC day or ISO week, oldest first.

        Raises:
            ValidationError: on field ``bucket`` or ``filter``.
        """

    async def time_to_detect(
        self,
        *,
        repository: str | None = None,
        environment: str | None = None,
        correlation_id: str | None = None,
        verdict: _Verdict | None = None,
        since_unix_ms: int | None = None,
        until_unix_ms: int | None = None,
    ) -> list[_TimeToDetect]:
        """For each bad deployment matching the filter: how long from the deploy to the first
        critical finding or failed tick."""

    async def deployment_of_finding(self, finding_id: str) -> _DeploymentRecord | None:
        """The deployment a finding (``"<session id>:<n>"``) belongs to, or None."""

    async def deployment_of_alert(self, alert_id: str) -> _DeploymentRecord | None:
        """The deployment an alert belongs to, or None."""

    async def last_healthy(
        self,
        n: int,
        *,
        repository: str | None = None,
        environment: str | None = None,
        correlation_id: str | None = None,
        since_unix_ms: int | None = None,
        until_unix_ms: int | None = None,
    ) -> list[_DeploymentRecord]:
        """The last ``n`` healthy deployments matching the filter, newest first."""

    async def prune(self, before_unix_ms: int) -> int:
        """Delete the deployments started before ``before_unix_ms`` with everything recorded
        for them; returns how many."""

    async def checkpoint(self) -> None:
        """Move the write-ahead log (``history.db-wal``) into the database file, so the file
        alone holds every session: call it before copying or uploading the file. It also
        happens when the last reference to the history goes."""

    async def render_report(
        self, session_id: str, format: Literal["md", "markdown", "html", "json"] = "md"
    ) -> str | None:
        """A finished session's report rendered with its recorded context (finding ticks,
        alerts), or None when unknown or unfinished. See :func:`render_report`."""

def render_report(
    report: _Report | Mapping[str, Any] | str,
    format: Literal["md", "markdown", "html", "json"] = "md",
    context: Mapping[str, Any] | None = None,
) -> str:
    """Render a report (the dict :meth:`Session.wait` returns, or its JSON text): Markdown for
    a pull request or CI summary (verdict heading first), a self-contained HTML page (no
    script, no external URL, inline ``<svg>`` charts), or pretty JSON. ``context`` adds what
    the report alone lacks: ``{"baselines", "series", "finding_ticks", "alerts"}``.

    Raises:
        ValidationError: on field ``format``, ``report`` or ``context`` (or the path of a value
            JSON cannot hold).
    """

async def run_check(config: _CheckConfig | Mapping[str, Any]) -> _CheckOutcome:
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
    ``"rate_limited"``, ``"server"``, ``"timeout"``, ``"transport"``, ``"storage"``,
    ``"closed"``, ``"query"`` or ``"no_data"``; for :class:`SignatureError`, why the
    signature was rejected."""

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

class StorageError(CasedError):
    """The history store failed: the database could not be opened, read or written."""

class ClosedError(CasedError):
    """The object was shut down and takes no more work."""

class QueryError(CasedError):
    """A metrics source (Prometheus) rejected a query."""

    status: int
    """The HTTP status the source answered."""
    error_type: str
    """The source's error type (Prometheus ``errorType``, e.g. ``bad_data``)."""

class NoDataError(CasedError):
    """A query succeeded but returned no data."""

class SignatureError(CasedError):
    """A webhook signature was rejected; ``.code`` says why: ``"malformed_timestamp"``,
    ``"outside_tolerance"``, ``"malformed_signature"`` or ``"mismatch"``."""
