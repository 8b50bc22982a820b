//! Health checks: the [`HealthCheck`] trait, what a check returns ([`CheckOutcome`]) and the
//! closure-backed [`FnCheck`] for custom checks written in code. Built-in check types live in
//! [`crate::checks`].

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The result class of one check run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// The service answered as expected.
    Pass,
    /// The service answered, but something is off (e.g. slower than the warning budget).
    Warn,
    /// The service answered wrongly or not at all.
    Fail,
    /// The check itself could not run (an error of the checker, not of the service).
    Error,
}

impl CheckStatus {
    /// The wire name (`"pass"`, `"warn"`, `"fail"`, `"error"`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Warn => "warn",
            Self::Fail => "fail",
            Self::Error => "error",
        }
    }
}

impl fmt::Display for CheckStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a check is about; reported in updates and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckCategory {
    /// Is the service up at all.
    #[default]
    Availability,
    /// Does an endpoint answer correctly.
    Endpoint,
    /// A database the service needs.
    Database,
    /// Another dependency (cache, queue, third-party API).
    Dependency,
}

/// What one run of a check found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckOutcome {
    /// Pass, warn, fail or error.
    pub status: CheckStatus,
    /// How long the check took.
    #[serde(rename = "latency_ms", serialize_with = "crate::duration::as_millis")]
    pub latency: Duration,
    /// One line for a person.
    pub message: String,
    /// What was expected and what came back, when the check says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Value>,
}

impl CheckOutcome {
    /// An outcome with this status and message, zero latency and no evidence.
    pub fn new(status: CheckStatus, message: impl Into<String>) -> Self {
        Self {
            status,
            latency: Duration::ZERO,
            message: message.into(),
            evidence: None,
        }
    }
    /// A `pass` outcome.
    pub fn pass(message: impl Into<String>) -> Self {
        Self::new(CheckStatus::Pass, message)
    }
    /// A `warn` outcome.
    pub fn warn(message: impl Into<String>) -> Self {
        Self::new(CheckStatus::Warn, message)
    }
    /// A `fail` outcome.
    pub fn fail(message: impl Into<String>) -> Self {
        Self::new(CheckStatus::Fail, message)
    }
    /// An `error` outcome.
    pub fn error(message: impl Into<String>) -> Self {
        Self::new(CheckStatus::Error, message)
    }
    /// Sets the latency.
    #[must_use]
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }
    /// Sets the evidence.
    #[must_use]
    pub fn with_evidence(mut self, evidence: Value) -> Self {
        self.evidence = Some(evidence);
        self
    }
}

/// A health check: one async method that never fails, because every fault of the service is an
/// outcome. Implement it for checks written in Rust, or use [`FnCheck`].
#[async_trait::async_trait]
pub trait HealthCheck: Send + Sync + fmt::Debug {
    /// The check's name, unique within a monitor.
    fn name(&self) -> &str;
    /// What the check is about.
    fn category(&self) -> CheckCategory {
        CheckCategory::Availability
    }
    /// The check's own timeout, if it has one. A session waits this long for the check, even
    /// past the next tick, and records a check that has not answered by then as a `fail`
    /// (`timed out after …`). Without one, the check is given the schedule's smallest interval
    /// and one that does not finish by then is an `error`.
    fn timeout(&self) -> Option<Duration> {
        None
    }
    /// Runs the check once.
    async fn check(&self) -> CheckOutcome;
}

type CheckFn = dyn Fn() -> BoxFuture<'static, CheckOutcome> + Send + Sync;

/// A custom check from an async closure.
///
/// ```
/// use cased_core::{CheckOutcome, FnCheck};
/// let check = FnCheck::new("queue-depth", || async { CheckOutcome::pass("12 messages") });
/// ```
#[derive(Clone)]
pub struct FnCheck {
    name: String,
    category: CheckCategory,
    timeout: Option<Duration>,
    f: Arc<CheckFn>,
}

impl FnCheck {
    /// A check named `name` that runs `f`.
    pub fn new<F, Fut>(name: impl Into<String>, f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = CheckOutcome> + Send + 'static,
    {
        Self {
            name: name.into(),
            category: CheckCategory::Availability,
            timeout: None,
            f: Arc::new(move || Box::pin(f())),
        }
    }
    /// Sets the category.
    #[must_use]
    pub fn category(mut self, category: CheckCategory) -> Self {
        self.category = category;
        self
    }
    /// Sets the check's timeout.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

impl fmt::Debug for FnCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnCheck")
            .field("name", &self.name)
            .field("category", &self.category)
            .finish()
    }
}

#[async_trait::async_trait]
impl HealthCheck for FnCheck {
    fn name(&self) -> &str {
        &self.name
    }
    fn category(&self) -> CheckCategory {
        self.category
    }
    fn timeout(&self) -> Option<Duration> {
        self.timeout
    }
    async fn check(&self) -> CheckOutcome {
        (self.f)().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest possible implementation of the trait.
    #[derive(Debug)]
    struct AlwaysUp;

    #[async_trait::async_trait]
    impl HealthCheck for AlwaysUp {
        fn name(&self) -> &str {
            "always-up"
        }
        async fn check(&self) -> CheckOutcome {
            CheckOutcome::pass("up")
        }
    }

    #[tokio::test]
    async fn a_trait_object_runs() {
        let checks: Vec<Box<dyn HealthCheck>> = vec![
            Box::new(AlwaysUp),
            Box::new(FnCheck::new("down", || async { CheckOutcome::fail("503") })),
        ];
        let mut got = Vec::new();
        for c in &checks {
            got.push((c.name().to_owned(), c.check().await.status));
        }
        assert_eq!(
            got,
            [
                ("always-up".into(), CheckStatus::Pass),
                ("down".into(), CheckStatus::Fail)
            ]
        );
        assert!(CheckStatus::Error > CheckStatus::Fail && CheckStatus::Fail > CheckStatus::Warn);
    }
}
