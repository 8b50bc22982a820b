//! The [`Notifier`] trait every alert channel implements (Slack, webhook, email, in-app, custom),
//! and [`FnNotifier`], a notifier from an async closure. Notifiers depend on this file only;
//! the manager drives them.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use super::Notification;

/// Something that delivers notifications: Slack, a webhook, email, an in-app stream, or any
/// custom implementation (the bindings wrap Python and JavaScript callables in one).
///
/// `notify` is one attempt; the manager retries retryable errors, bounds each attempt by the
/// channel's timeout and reports the outcome. It must not log secrets, and its errors must not
/// contain them.
#[async_trait::async_trait]
pub trait Notifier: Send + Sync + fmt::Debug {
    /// Delivers one notification (one attempt).
    async fn notify(&self, notification: &Notification) -> std::result::Result<(), NotifyError>;
}

type NotifyFn = dyn Fn(Arc<Notification>) -> BoxFuture<'static, std::result::Result<(), NotifyError>>
    + Send
    + Sync;

/// A custom notifier from an async closure.
///
/// ```
/// use cased_core::alert::{FnNotifier, NotifyError};
/// let pager = FnNotifier::new("pager", |n| async move {
///     if n.alerts.is_empty() { Err(NotifyError::permanent("empty")) } else { Ok(()) }
/// });
/// ```
#[derive(Clone)]
pub struct FnNotifier {
    name: String,
    f: Arc<NotifyFn>,
}

impl FnNotifier {
    /// A notifier called `name` (for `Debug` and logs) that runs `f`.
    pub fn new<F, Fut>(name: impl Into<String>, f: F) -> Self
    where
        F: Fn(Arc<Notification>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<(), NotifyError>> + Send + 'static,
    {
        Self {
            name: name.into(),
            f: Arc::new(move |n| Box::pin(f(n))),
        }
    }
}

impl fmt::Debug for FnNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnNotifier")
            .field("name", &self.name)
            .finish()
    }
}

#[async_trait::async_trait]
impl Notifier for FnNotifier {
    async fn notify(&self, notification: &Notification) -> std::result::Result<(), NotifyError> {
        (self.f)(Arc::new(notification.clone())).await
    }
}

/// Why one delivery attempt failed, as a notifier tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyError {
    message: String,
    retryable: bool,
    retry_after: Option<Duration>,
    status: Option<u16>,
}

impl NotifyError {
    /// A failure worth retrying (connection refused, timeout, 5xx, 429...).
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
            retry_after: None,
            status: None,
        }
    }
    /// A failure that retrying cannot fix (the receiver rejected the message).
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
            retry_after: None,
            status: None,
        }
    }
    /// The receiver asked to wait this long before the next attempt.
    #[must_use]
    pub fn with_retry_after(mut self, delay: Option<Duration>) -> Self {
        self.retry_after = delay;
        self
    }
    /// The HTTP status the receiver answered.
    #[must_use]
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }
    /// What went wrong, for a person (never contains a secret).
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }
    /// Whether another attempt may succeed.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }
    /// The receiver's `Retry-After`, if it sent one.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
    /// The receiver's HTTP status, if it answered.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        self.status
    }
}

impl fmt::Display for NotifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for NotifyError {}
