//! The exception hierarchy, rooted at `cased.CasedError`, and the one conversion of core errors
//! into it. Every exception carries `.code`, the core's stable [`ErrorKind::code`].

use cased_core::{Error, ErrorKind, FieldError, ValidationErrors};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pythonize::pythonize;

create_exception!(
    cased,
    CasedError,
    PyException,
    "Base class of every error raised by cased."
);
create_exception!(
    cased,
    ValidationError,
    CasedError,
    "Input failed validation; `.errors` lists every problem as `{\"field\": ..., \"message\": ...}`."
);
create_exception!(
    cased,
    ApiError,
    CasedError,
    "A call to the deployments API failed; `.status` is the HTTP status, or None."
);
create_exception!(
    cased,
    UnauthorizedError,
    ApiError,
    "The API rejected the credentials (HTTP 401 or 403)."
);
create_exception!(
    cased,
    InvalidRequestError,
    ApiError,
    "The API rejected the request (HTTP 400, 404, 422, ...); the message is the server's."
);
create_exception!(
    cased,
    RateLimitedError,
    ApiError,
    "The API kept answering 429; `.retry_after` is its last Retry-After in seconds, or None."
);
create_exception!(
    cased,
    ServerError,
    ApiError,
    "The API kept failing with a server error (5xx or 408)."
);
create_exception!(
    cased,
    TimeoutError,
    ApiError,
    "A request to the API did not complete within its timeout."
);
create_exception!(
    cased,
    TransportError,
    ApiError,
    "The API could not be reached (connection refused, DNS, TLS, reset...)."
);

create_exception!(
    cased,
    StorageError,
    CasedError,
    "The history store failed: the database could not be opened, read or written."
);
create_exception!(
    cased,
    ClosedError,
    CasedError,
    "The object was shut down and takes no more work."
);
create_exception!(
    cased,
    QueryError,
    CasedError,
    "A metrics source (Prometheus) rejected a query."
);
create_exception!(
    cased,
    NoDataError,
    CasedError,
    "A query succeeded but returned no data."
);
create_exception!(
    cased,
    SignatureError,
    CasedError,
    "A webhook signature was rejected; `.code` says why (`mismatch`, `outside_tolerance`, ...)."
);

/// A core error on its way to Python: `result.map_err(CoreError)?` raises the matching
/// exception (a newtype, as the orphan rule forbids `From<cased_core::Error> for PyErr`).
#[derive(Debug)]
pub(crate) struct CoreError(pub(crate) Error);

impl From<CoreError> for PyErr {
    fn from(CoreError(err): CoreError) -> Self {
        Python::attach(|py| to_exception(py, &err).unwrap_or_else(|e| e))
    }
}

/// The exception for `err`, with its attributes set.
fn to_exception(py: Python<'_>, err: &Error) -> PyResult<PyErr> {
    let kind = err.kind();
    let message = err.to_string();
    let (exc, api) = match kind {
        ErrorKind::Validation => (ValidationError::new_err(message), false),
        ErrorKind::Unauthorized => (UnauthorizedError::new_err(message), true),
        ErrorKind::InvalidRequest => (InvalidRequestError::new_err(message), true),
        ErrorKind::RateLimited => (RateLimitedError::new_err(message), true),
        ErrorKind::Server => (ServerError::new_err(message), true),
        ErrorKind::Timeout => (TimeoutError::new_err(message), true),
        ErrorKind::Transport => (TransportError::new_err(message), true),
        ErrorKind::Storage => (StorageError::new_err(message), false),
        ErrorKind::Closed => (ClosedError::new_err(message), false),
        ErrorKind::Query => (QueryError::new_err(message), false),
        ErrorKind::NoData => (NoDataError::new_err(message), false),
        _ => (CasedError::new_err(message), false),
    };
    let value = exc.value(py);
    value.setattr("code", kind.code())?;
    if kind == ErrorKind::Validation {
        value.setattr("errors", pythonize(py, err.field_errors())?)?;
    }
    if api {
        value.setattr("status", err.status())?;
    }
    if let Error::RateLimited { retry_after, .. } = err {
        value.setattr("retry_after", retry_after.map(|d| d.as_secs_f64()))?;
    }
    if let Error::Query {
        status, error_type, ..
    } = err
    {
        value.setattr("status", status)?;
        value.setattr("error_type", error_type)?;
    }
    Ok(exc)
}

impl CoreError {
    /// A validation error of one field of `subject`, for values the core takes already typed
    /// (a check's category, a check configuration that does not deserialize).
    pub(crate) fn invalid(subject: &str, field: &str, message: impl std::fmt::Display) -> Self {
        Self(Error::Validation(ValidationErrors {
            subject: subject.to_owned(),
            errors: vec![FieldError::new(field, message.to_string())],
        }))
    }
}

/// A rejected webhook signature as `cased.SignatureError`, its `.code` the core's.
pub(crate) fn signature_error(py: Python<'_>, err: cased_core::alert::SignatureError) -> PyErr {
    let exc = SignatureError::new_err(err.to_string());
    match exc.value(py).setattr("code", err.code()) {
        Ok(()) => exc,
        Err(e) => e,
    }
}

/// An exception raised by user code (a custom check, the rollback hook), as one line for a
/// report: `"RuntimeError: database is down"`, or the type's name when the message is empty.
pub(crate) fn describe(py: Python<'_>, err: &PyErr) -> String {
    let name = err
        .get_type(py)
        .name()
        .map_or_else(|_| "Exception".to_owned(), |n| n.to_string());
    match err.value(py).str() {
        Ok(message) if !message.to_string().is_empty() => format!("{name}: {message}"),
        _ => name,
    }
}
