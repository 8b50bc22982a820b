"""cased: post-deployment monitoring.

Deployment events, the deployments API client and the exception hierarchy, backed by the Rust
core (``cased-core``). Everything here is re-exported from the compiled module ``cased._cased``.
"""

from ._cased import (
    ApiError,
    CasedError,
    Client,
    DeploymentEvent,
    InvalidRequestError,
    RateLimitedError,
    ServerError,
    TimeoutError,
    TransportError,
    UnauthorizedError,
    ValidationError,
    __version__,
    enable_logging,
)

__all__ = [
    "ApiError",
    "CasedError",
    "Client",
    "DeploymentEvent",
    "InvalidRequestError",
    "RateLimitedError",
    "ServerError",
    "TimeoutError",
    "TransportError",
    "UnauthorizedError",
    "ValidationError",
    "__version__",
    "enable_logging",
]
