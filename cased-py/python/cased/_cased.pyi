"""Type stubs of ``cased._cased``, the compiled core of the ``cased`` package."""

from collections.abc import Mapping
from typing import Any, Literal, TypedDict, final

__version__: str

_Status = Literal["pending", "running", "success", "failure", "cancelled"]

class _FieldProblem(TypedDict):
    field: str
    message: str

class _DeploymentResponse(TypedDict):
    status: int
    body: Any
    attempts: int

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
