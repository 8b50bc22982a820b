//! The [`Notifier`] trait every alert channel implements (Slack, webhook, email, in-app, custom),
//! and [`FnNotifier`], a notifier from an async closure. Notifiers depend on this file only;
//! the manager drives them.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;

use super::Notification;
use super::delivery::NotifyError;

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
