//! The one error type of cased-core, and the stable kind the bindings match on.

use std::fmt;
use std::time::Duration;

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in cased-core.
///
/// Faults of the *monitored service* are never errors: they are check outcomes. These are errors
/// of the caller's input or of cased's own calls (the deployments API).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Input failed validation; every problem found is listed, not only the first.
    #[error("{0}")]
    Validation(ValidationErrors),
    /// The API rejected the credentials (HTTP 401 or 403).
    #[error("unauthorized (HTTP {status}): {message}")]
    Unauthorized {
        /// HTTP status code.
        status: u16,
        /// The server's message, or the status reason.
        message: String,
    },
    /// The API rejected the request as invalid (HTTP 400, 404, 422 and other non-retryable 4xx).
    #[error("invalid request (HTTP {status}): {message}")]
    InvalidRequest {
        /// HTTP status code.
        status: u16,
        /// The server's message, or the status reason.
        message: String,
    },
    /// The API kept answering 429 until the retry budget ran out.
    #[error("rate limited (HTTP 429){}: {message}", .retry_after.map(|d| format!(", retry after {}s", d.as_secs())).unwrap_or_default())]
    RateLimited {
        /// The server's last `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
        /// The server's message, or the status reason.
        message: String,
    },
    /// The API kept failing with a server error (5xx, or 408) until the retry budget ran out.
    #[error("server error (HTTP {status}): {message}")]
    Server {
        /// HTTP status code.
        status: u16,
        /// The server's message, or the status reason.
        message: String,
    },
    /// A request to the API did not complete within its timeout.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The API could not be reached (connection refused, DNS, TLS, reset...).
    #[error("transport error: {0}")]
    Transport(String),
    /// The history store failed (the database could not be opened, read or written, or was
    /// written by a newer version of cased).
    #[error("storage error: {0}")]
    Storage(String),
    /// The object was shut down and takes no more work (an alert manager after `shutdown`).
    #[error("closed: {0}")]
    Closed(String),
    /// A metrics source (Prometheus) rejected a query: bad PromQL, a timeout on its side...
    #[error("query failed (HTTP {status}, {error_type}): {message}")]
    Query {
        /// HTTP status code.
        status: u16,
        /// The source's error type (Prometheus `errorType`, e.g. `bad_data`).
        error_type: String,
        /// The source's message.
        message: String,
    },
    /// A query succeeded but returned no data (no series, or no points in the range).
    #[error("no data: {0}")]
    NoData(String),
}

/// The stable category of an [`Error`], used by the bindings to pick an exception class
/// (Python) or an error `code` (Node).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// See [`Error::Validation`].
    Validation,
    /// See [`Error::Unauthorized`].
    Unauthorized,
    /// See [`Error::InvalidRequest`].
    InvalidRequest,
    /// See [`Error::RateLimited`].
    RateLimited,
    /// See [`Error::Server`].
    Server,
    /// See [`Error::Timeout`].
    Timeout,
    /// See [`Error::Transport`].
    Transport,
    /// See [`Error::Storage`].
    Storage,
    /// See [`Error::Closed`].
    Closed,
    /// See [`Error::Query`].
    Query,
    /// See [`Error::NoData`].
    NoData,
}

impl ErrorKind {
    /// The stable, machine-readable code of this kind (`"validation"`, `"unauthorized"`, ...).
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Self::Validation => "validation",
            Self::Unauthorized => "unauthorized",
            Self::InvalidRequest => "invalid_request",
            Self::RateLimited => "rate_limited",
            Self::Server => "server",
            Self::Timeout => "timeout",
            Self::Transport => "transport",
            Self::Storage => "storage",
            Self::Closed => "closed",
            Self::Query => "query",
            Self::NoData => "no_data",
        }
    }
}

impl Error {
    /// The stable category of this error.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Validation(_) => ErrorKind::Validation,
            Self::Unauthorized { .. } => ErrorKind::Unauthorized,
            Self::InvalidRequest { .. } => ErrorKind::InvalidRequest,
            Self::RateLimited { .. } => ErrorKind::RateLimited,
            Self::Server { .. } => ErrorKind::Server,
            Self::Timeout(_) => ErrorKind::Timeout,
            Self::Transport(_) => ErrorKind::Transport,
            Self::Storage(_) => ErrorKind::Storage,
            Self::Closed(_) => ErrorKind::Closed,
            Self::Query { .. } => ErrorKind::Query,
            Self::NoData(_) => ErrorKind::NoData,
        }
    }

    /// The field problems of a validation error (empty for other kinds).
    #[must_use]
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            Self::Validation(v) => &v.errors,
            _ => &[],
        }
    }

    /// The HTTP status the API answered, for API errors.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Unauthorized { status, .. }
            | Self::InvalidRequest { status, .. }
            | Self::Server { status, .. }
            | Self::Query { status, .. } => Some(*status),
            Self::RateLimited { .. } => Some(429),
            _ => None,
        }
    }

    /// A validation error with a single problem.
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(ValidationErrors {
            subject: String::from("input"),
            errors: vec![FieldError::new(field, message)],
        })
    }
}

/// Deserializes `value` as `T`; a bad key is a validation error of `subject` whose field is the
/// key's path (`root` for the value itself), e.g. `checks[0].timeout`.
pub(crate) fn deserialize_at<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
    subject: &str,
    root: &str,
) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." || path.is_empty() {
            root.to_owned()
        } else {
            path.split('.')
                .map(crate::limits::field_segment)
                .collect::<Vec<_>>()
                .join(".")
        };
        Error::Validation(ValidationErrors {
            subject: subject.to_owned(),
            errors: vec![FieldError::new(field, e.inner().to_string())],
        })
    })
}

/// The message of a caught panic (`panic!("...")` payloads are `&str` or `String`).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

/// One problem with one field: its (dotted) path and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// The field's name or path, e.g. `commit_sha` or `event_metadata.environment`.
    pub field: String,
    /// What is wrong with it, for a person.
    pub message: String,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every problem found while validating one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationErrors {
    /// What was validated (`deployment event`, `client configuration`, ...).
    pub subject: String,
    /// The problems, in field order.
    pub errors: Vec<FieldError>,
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        write!(
            f,
            "invalid {} ({n} problem{}): ",
            self.subject,
            if n == 1 { "" } else { "s" }
        )?;
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Collects field problems so that validation reports all of them at once.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<FieldError>);

impl Problems {
    pub(crate) fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn has(&self, field: &str) -> bool {
        self.0.iter().any(|p| p.field == field)
    }

    pub(crate) fn extend_from(&mut self, error: &Error) {
        self.0.extend(error.field_errors().iter().cloned());
    }

    pub(crate) fn finish(self, subject: &str) -> Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation(ValidationErrors {
                subject: subject.to_owned(),
                errors: self.0,
            }))
        }
    }
}
