//! The [`Monitor`]: a configuration, its checks and a rollback hook, from which sessions start.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use std::collections::HashMap;

use crate::alert::{AlertManager, AlertsConfig, InAppStream, Notifier};
use crate::check::HealthCheck;
use crate::config::MonitorConfig;
use crate::detect::{DetectorConfig, DetectorSet};
use crate::error::{Error, Result};
use crate::event::DeploymentEvent;
use crate::history::HistoryStore;
use crate::metrics::BaselineStore;
use crate::schedule::Schedule;
use crate::session::Session;
use crate::update::Report;
use crate::verdict::VerdictConfig;

/// What the rollback hook is told.
#[derive(Debug, Clone)]
pub struct RollbackContext {
    /// The session's id.
    pub session_id: String,
    /// The deployment event.
    pub event: DeploymentEvent,
    /// Why the deployment is unhealthy.
    pub reason: String,
}

type RollbackFn =
    dyn Fn(RollbackContext) -> BoxFuture<'static, std::result::Result<(), String>> + Send + Sync;

/// A rollback hook: fired exactly once, when a session's verdict becomes unhealthy.
#[derive(Clone)]
pub struct RollbackHook {
    f: Arc<RollbackFn>,
    timeout: Duration,
}

impl RollbackHook {
    /// A hook running `f`; it is given 60 s before the session records it as timed out.
    pub fn new<F, Fut>(f: F) -> Self
    where
        F: Fn(RollbackContext) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = std::result::Result<(), String>> + Send + 'static,
    {
        Self {
            f: Arc::new(move |ctx| Box::pin(f(ctx))),
            timeout: Duration::from_secs(60),
        }
    }

    /// Sets how long the hook may run.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub(crate) async fn fire(&self, ctx: RollbackContext) -> Option<String> {
        match tokio::time::timeout(self.timeout, (self.f)(ctx)).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(_) => Some(format!(
                "the rollback hook did not finish within {} ms",
                self.timeout.as_millis()
            )),
        }
    }
}

impl fmt::Debug for RollbackHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RollbackHook")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Everything a session needs, shared by all sessions of a monitor.
#[derive(Debug)]
pub(crate) struct MonitorInner {
    pub(crate) schedule: Schedule,
    pub(crate) verdict: VerdictConfig,
    pub(crate) checks: Vec<Arc<dyn HealthCheck>>,
    pub(crate) rollback: Option<RollbackHook>,
    pub(crate) update_buffer: usize,
    pub(crate) sample_window: usize,
    pub(crate) history: Option<Arc<dyn HistoryStore>>,
    pub(crate) detectors: Vec<DetectorConfig>,
    /// The metrics some detector watches: pushed samples of other metrics are only summarised.
    pub(crate) watched: Arc<std::collections::HashSet<String>>,
    pub(crate) baselines: HashMap<String, Vec<f64>>,
    pub(crate) baseline_store: Option<Arc<dyn BaselineStore>>,
    alerts_config: AlertsConfig,
    notifiers: Vec<(String, Arc<dyn Notifier>)>,
    /// Built inside the runtime at the first `start` (its delivery tasks need one).
    alerts: std::sync::Mutex<Option<AlertManager>>,
}

impl MonitorInner {
    /// The alert manager, built at first use; `None` when no channel is configured.
    pub(crate) fn alert_manager(&self) -> Result<Option<AlertManager>> {
        if self.alerts_config.channels.is_empty() {
            return Ok(None);
        }
        let mut slot = self.alerts.lock().expect("alerts lock");
        if slot.is_none() {
            let mut b = AlertManager::builder(self.alerts_config.clone());
            for (name, n) in &self.notifiers {
                b = b.notifier(name.clone(), Arc::clone(n));
            }
            *slot = Some(b.build()?);
        }
        Ok(slot.clone())
    }

    /// A fresh detector set for one session (validated when the monitor was built).
    pub(crate) fn detector_set(&self) -> DetectorSet {
        DetectorSet::from_config(&self.detectors).expect("detectors were validated by the builder")
    }
}

/// Starts monitoring sessions. Cheap to clone; build it with [`Monitor::new`] or
/// [`Monitor::builder`].
#[derive(Debug, Clone)]
pub struct Monitor {
    inner: Arc<MonitorInner>,
}

impl Monitor {
    /// A monitor from a configuration.
    ///
    /// # Errors
    /// [`Error::Validation`] naming each bad setting.
    pub fn new(config: MonitorConfig) -> Result<Self> {
        Self::builder(config).build()
    }

    /// A builder, to add checks written in code and a rollback hook.
    pub fn builder(config: MonitorConfig) -> MonitorBuilder {
        MonitorBuilder {
            config,
            checks: Vec::new(),
            rollback: None,
            update_buffer: 16,
            sample_window: 100,
            history: None,
            baselines: HashMap::new(),
            baseline_store: None,
            notifiers: Vec::new(),
        }
    }

    /// Starts a session for `event` on the current tokio runtime. The first tick runs at once.
    /// An event whose status is `failure` or `cancelled` gives a session that ends at once with
    /// that outcome.
    ///
    /// # Errors
    /// [`Error::Validation`] on field `runtime` when called outside a tokio runtime.
    pub fn start(&self, event: DeploymentEvent) -> Result<Session> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::invalid(
                "runtime",
                "Monitor::start must be called inside a tokio runtime",
            )
        })?;
        let alerts = {
            let _guard = handle.enter();
            self.inner.alert_manager()?
        };
        Ok(Session::spawn(
            &handle,
            Arc::clone(&self.inner),
            event,
            alerts,
        ))
    }

    /// Starts a session and waits for its report: the one-call form.
    ///
    /// # Errors
    /// As [`Monitor::start`].
    pub async fn run(&self, event: DeploymentEvent) -> Result<Report> {
        Ok(self.start(event)?.wait().await)
    }

    /// The in-app alert stream of the channel named `channel` (a `"type": "inapp"` channel of
    /// the `alerts` configuration), shared by every session of this monitor.
    ///
    /// # Errors
    /// [`Error::Validation`] when no such in-app channel exists, or outside a tokio runtime.
    pub fn alerts(&self, channel: &str) -> Result<InAppStream> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::invalid(
                "runtime",
                "Monitor::alerts must be called inside a tokio runtime",
            )
        })?;
        let _guard = handle.enter();
        match self.inner.alert_manager()? {
            Some(m) => m.subscribe(channel),
            None => Err(Error::invalid(
                "alerts.channels",
                "no alert channel is configured",
            )),
        }
    }

    /// The alert manager of this monitor (built at the first `start`), to follow deliveries
    /// or shut it down; `None` when no channel is configured or no session started yet.
    #[must_use]
    pub fn alert_manager(&self) -> Option<AlertManager> {
        self.inner.alerts.lock().expect("alerts lock").clone()
    }

    /// The names of the checks each tick runs.
    #[must_use]
    pub fn check_names(&self) -> Vec<&str> {
        self.inner.checks.iter().map(|c| c.name()).collect()
    }
}

/// Configures a [`Monitor`].
#[must_use]
#[derive(Debug)]
pub struct MonitorBuilder {
    config: MonitorConfig,
    checks: Vec<Arc<dyn HealthCheck>>,
    rollback: Option<RollbackHook>,
    update_buffer: usize,
    sample_window: usize,
    history: Option<Arc<dyn HistoryStore>>,
    baselines: HashMap<String, Vec<f64>>,
    baseline_store: Option<Arc<dyn BaselineStore>>,
    notifiers: Vec<(String, Arc<dyn Notifier>)>,
}

impl MonitorBuilder {
    /// Gives the baseline of `metric` directly (the caller's own history): the comparison
    /// detectors of that metric judge every session against these values.
    pub fn baseline(mut self, metric: impl Into<String>, values: impl Into<Vec<f64>>) -> Self {
        self.baselines.insert(metric.into(), values.into());
        self
    }

    /// Where baselines come from and go to: before each session the comparison detectors get
    /// the pre-deploy window or the last healthy deployments' samples of their metric (per
    /// repository and environment); after it, the session's samples and outcome are recorded.
    /// A baseline given with [`baseline`](Self::baseline) takes precedence.
    pub fn baseline_store(mut self, store: Arc<dyn BaselineStore>) -> Self {
        self.baseline_store = Some(store);
        self
    }

    /// The notifier of the `"type": "custom"` alert channel named `name` (a Python or JS
    /// callable in the bindings, any [`Notifier`] in Rust).
    pub fn notifier(mut self, name: impl Into<String>, notifier: Arc<dyn Notifier>) -> Self {
        self.notifiers.push((name.into(), notifier));
        self
    }

    /// Keeps every session's event, ticks and report in `store` as the session runs: each tick
    /// is committed on its own, so a crash loses nothing already written. A failing write is
    /// logged and never stops the session.
    pub fn history(mut self, store: Arc<dyn HistoryStore>) -> Self {
        self.history = Some(store);
        self
    }

    /// Adds a check written in code (after the configured ones).
    pub fn check(mut self, check: impl HealthCheck + 'static) -> Self {
        self.checks.push(Arc::new(check));
        self
    }

    /// Adds a shared check written in code.
    pub fn check_arc(mut self, check: Arc<dyn HealthCheck>) -> Self {
        self.checks.push(check);
        self
    }

    /// Sets the rollback hook.
    pub fn on_rollback(mut self, hook: RollbackHook) -> Self {
        self.rollback = Some(hook);
        self
    }

    /// How many updates a listener may fall behind before it is told it skipped some
    /// (default 16).
    pub fn update_buffer(mut self, n: usize) -> Self {
        self.update_buffer = n;
        self
    }

    /// How many pushed samples are kept per metric (default 100).
    pub fn sample_window(mut self, n: usize) -> Self {
        self.sample_window = n;
        self
    }

    /// Validates everything and builds the monitor.
    ///
    /// # Errors
    /// [`Error::Validation`] naming each bad setting, including check names used twice.
    pub fn build(self) -> Result<Monitor> {
        let schedule = crate::schedule::validate(&self.config.schedule)?;
        let mut checks = Vec::with_capacity(self.config.checks.len() + self.checks.len());
        let mut problems = Vec::new();
        if let Err(e) = DetectorSet::from_config(&self.config.detectors) {
            problems.extend(e.field_errors().iter().cloned());
        }
        if let Err(e) = self.config.alerts.validate() {
            problems.extend(e.field_errors().iter().map(|f| {
                let field = if f.field.starts_with("alerts") {
                    f.field.clone()
                } else {
                    format!("alerts.{}", f.field)
                };
                crate::FieldError::new(field, f.message.clone())
            }));
        }
        for (i, v) in self.baselines.values().enumerate() {
            if let Some(bad) = v.iter().find(|x| !x.is_finite()) {
                problems.push(crate::FieldError::new(
                    format!("baselines[{i}]"),
                    format!("{bad} is not a finite number"),
                ));
            }
        }
        for (i, c) in self.config.checks.iter().enumerate() {
            match c.build() {
                Ok(c) => checks.push(c),
                Err(e) => problems.extend(e.field_errors().iter().map(|f| {
                    crate::FieldError::new(format!("checks[{i}].{}", f.field), f.message.clone())
                })),
            }
        }
        checks.extend(self.checks);
        let mut seen = std::collections::HashSet::new();
        for c in &checks {
            if !seen.insert(c.name().to_owned()) {
                problems.push(crate::FieldError::new(
                    "checks",
                    format!("two checks are named {:?}", c.name()),
                ));
            }
        }
        if self.update_buffer == 0 {
            problems.push(crate::FieldError::new(
                "update_buffer",
                "must be at least 1",
            ));
        }
        if self.sample_window == 0 {
            problems.push(crate::FieldError::new(
                "sample_window",
                "must be at least 1",
            ));
        }
        if !problems.is_empty() {
            return Err(Error::Validation(crate::ValidationErrors {
                subject: "monitor configuration".into(),
                errors: problems,
            }));
        }
        Ok(Monitor {
            inner: Arc::new(MonitorInner {
                schedule,
                verdict: self.config.verdict,
                checks,
                rollback: self.rollback,
                update_buffer: self.update_buffer,
                sample_window: self.sample_window,
                history: self.history,
                watched: Arc::new(
                    self.config
                        .detectors
                        .iter()
                        .map(|d| d.metric.clone())
                        .collect(),
                ),
                detectors: self.config.detectors,
                baselines: self.baselines,
                baseline_store: self.baseline_store,
                alerts_config: self.config.alerts,
                notifiers: self.notifiers,
                alerts: std::sync::Mutex::new(None),
            }),
        })
    }
}
