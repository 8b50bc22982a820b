"""cased: post-deployment monitoring.

Deployment events, the deployments API client, monitoring sessions (``Monitor``, ``Session``),
custom and one-off health checks, and the exception hierarchy, backed by the Rust core
(``cased-core``). Everything here is re-exported from the compiled module ``cased._cased``.
"""

from ._cased import (
    ApiError,
    CasedError,
    Client,
    DeploymentEvent,
    InvalidRequestError,
    Monitor,
    RateLimitedError,
    ServerError,
    Session,
    TimeoutError,
    TransportError,
    UnauthorizedError,
    Updates,
    ValidationError,
    __version__,
    enable_logging,
    run_check,
)

__all__ = [
    "ApiError",
    "CasedError",
    "Client",
    "DeploymentEvent",
    "InvalidRequestError",
    "Monitor",
    "RateLimitedError",
    "ServerError",
    "Session",
    "TimeoutError",
    "TransportError",
    "UnauthorizedError",
    "Updates",
    "ValidationError",
    "__version__",
    "enable_logging",
    "run_check",
]
