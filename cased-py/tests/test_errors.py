"""The exception hierarchy: one root, stable codes, the classes the stubs promise."""

from __future__ import annotations

import pytest

import cased

API_ERRORS = [
    cased.UnauthorizedError,
    cased.InvalidRequestError,
    cased.RateLimitedError,
    cased.ServerError,
    cased.TimeoutError,
    cased.TransportError,
]


OTHER_ERRORS = [
    cased.StorageError,
    cased.ClosedError,
    cased.QueryError,
    cased.NoDataError,
    cased.SignatureError,
]


def test_hierarchy() -> None:
    assert cased.CasedError.__bases__ == (Exception,)
    assert cased.ValidationError.__bases__ == (cased.CasedError,)
    assert cased.ApiError.__bases__ == (cased.CasedError,)
    for cls in API_ERRORS:
        assert cls.__bases__ == (cased.ApiError,), cls
    for cls in OTHER_ERRORS:
        assert cls.__bases__ == (cased.CasedError,), cls


@pytest.mark.parametrize(
    "cls", [cased.CasedError, cased.ValidationError, cased.ApiError, *API_ERRORS, *OTHER_ERRORS]
)
def test_exceptions_live_in_the_cased_namespace(cls: type) -> None:
    assert cls.__module__ == "cased"
    assert getattr(cased, cls.__name__) is cls
    assert cls.__doc__


def test_cased_timeout_is_not_the_builtin() -> None:
    assert cased.TimeoutError is not TimeoutError
    assert not issubclass(cased.TimeoutError, OSError)


def test_validation_error_is_catchable_as_the_root() -> None:
    with pytest.raises(cased.CasedError) as exc:
        cased.DeploymentEvent("", status="done")
    assert type(exc.value) is cased.ValidationError
    assert exc.value.code == "validation"
    assert sorted(e["field"] for e in exc.value.errors) == ["deployment_request", "status"]
    assert all(set(e) == {"field", "message"} for e in exc.value.errors)


def test_package_exports() -> None:
    exported = [n for n in dir(cased._cased) if not n.startswith("_") or n == "__version__"]
    assert sorted(cased.__all__) == sorted(exported)
    assert cased.__version__.count(".") == 2
