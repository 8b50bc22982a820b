//! The [`Monitor`]: a configuration, its checks and a rollback hook, from which sessions start.
//! It validates everything once into a [`Plan`] that every session runs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::alert::{AlertManager, AlertStats, InAppStream, Notifier};
use crate::check::HealthCheck;
use crate::collect::Collector;
use crate::config::MonitorConfig;
use crate::detect::{Counts, DetectorSet};
use crate::error::{Error, Result};
use crate::event::DeploymentEvent;
use crate::history::HistoryStore;
use crate::metrics::{BaselineStore, SourcePlan};
use crate::plan::{Plan, RollbackHook};
use crate::replay::Recording;
use crate::session::{Session, Start};
use crate::update::Report;

/// Starts monitoring sessions. Cheap to clone; build it with [`Monitor::new`] or
/// [`Monitor::builder`].
#[derive(Debug, Clone)]
pub struct Monitor {
    inner: Arc<Plan>,
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
            baseline_counts: HashMap::new(),
            baseline_store: None,
            notifiers: Vec::new(),
            sources: Vec::new(),
            checks_at_start: false,
        }
    }

    /// Starts a session for `event` on the current tokio runtime. The first tick runs at once.
    /// An event whose status is `failure` or `cancelled` gives a session that ends at once with
    /// that outcome.
    ///
    /// # Errors
    /// [`Error::Validation`] on field `runtime` when called outside a tokio runtime.
    pub fn start(&self, event: DeploymentEvent) -> Result<Session> {
        self.start_with(event, StartOptions::default())
    }

    /// [`start`](Self::start) with parts given for this session only, beside the plan built
    /// once: checks run after the monitor's, a rollback hook used instead of the monitor's, and
    /// notifiers for `"type": "custom"` channels (given any, the session gets an alert manager
    /// of its own). The bindings bind their callables to the caller's event loop this way.
    ///
    /// # Errors
    /// As [`start`](Self::start); [`Error::Validation`] on field `checks` for a check whose name
    /// is already used, and the alert manager's errors for the notifiers.
    pub fn start_with(&self, event: DeploymentEvent, options: StartOptions) -> Result<Session> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::invalid(
                "runtime",
                "Monitor::start must be called inside a tokio runtime",
            )
        })?;
        if self.inner.metrics_at_start {
            let mut names = self.check_names();
            names.extend(options.checks.iter().map(|c| c.name()));
            self.inner.check_detector_metrics(&names)?;
        }
        let mut checks = self.inner.checks.clone();
        for c in options.checks {
            if checks.iter().any(|k| k.name() == c.name()) {
                return Err(Error::invalid(
                    "checks",
                    format!("two checks are named {:?}", c.name()),
                ));
            }
            checks.push(c);
        }
        let alerts = {
            let _guard = handle.enter();
            if options.notifiers.is_empty() {
                self.inner.alert_manager()?
            } else {
                self.inner.alert_manager_with(&options.notifiers)?
            }
        };
        let start = Start {
            event,
            alerts,
            checks,
            sources: Collector::start_sources(&self.inner.sources),
            // Whole milliseconds, as the report keeps it: a replay of this session starts at the
            // very same instant.
            wall_start: (crate::metrics::unix_now() * 1000.0).floor() / 1000.0,
            completed_after: None,
            record: true,
            rollback: options.rollback.or_else(|| self.inner.rollback.clone()),
        };
        Ok(Session::spawn(&handle, Arc::clone(&self.inner), start))
    }

    /// Replays a recorded deployment through this monitor's pipeline on a virtual clock and
    /// returns the report it would have given (see [`Recording`]). Nothing is sent or recorded:
    /// no alert, no history, no baseline; the recording stands in for the checks and sources.
    ///
    /// # Errors
    /// [`Error::Validation`] naming a bad field of the recording, or on field `runtime` when
    /// called outside a tokio runtime.
    pub async fn replay(&self, event: DeploymentEvent, recording: Recording) -> Result<Report> {
        recording.validate()?;
        tokio::runtime::Handle::try_current().map_err(|_| {
            Error::invalid(
                "runtime",
                "Monitor::replay must be called inside a tokio runtime",
            )
        })?;
        let plan = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || replay_blocking(plan, event, &recording))
            .await
            .map_err(|e| Error::invalid("recording", format!("the replay failed: {e}")))?
    }

    /// [`replay`](Self::replay) for code that is not async (it runs its own virtual-clock
    /// runtime on this thread; do not call it from inside a tokio runtime).
    ///
    /// # Errors
    /// As [`replay`](Self::replay), without the runtime requirement.
    pub fn replay_blocking(&self, event: DeploymentEvent, recording: &Recording) -> Result<Report> {
        recording.validate()?;
        replay_blocking(Arc::clone(&self.inner), event, recording)
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

    /// Flushes and stops every alert channel of this monitor (the shared one and those of
    /// sessions started with their own notifiers): untold changes are sent at once and the
    /// channels get up to `grace` (at most an hour) to deliver; whatever is still undelivered
    /// then is reported as failed (in the returned counters and the delivery stream), never
    /// dropped silently. Call it before the program exits — sessions that end flush their own
    /// alerts, but a process that exits kills deliveries still under way. A session started
    /// afterwards gets fresh channels. Returns the counters of all the channels, summed.
    pub async fn close(&self, grace: Duration) -> AlertStats {
        let mut managers: Vec<AlertManager> = self
            .inner
            .session_alerts
            .lock()
            .expect("session alerts lock")
            .drain(..)
            .collect();
        managers.extend(self.inner.alerts.lock().expect("alerts lock").take());
        let all = futures::future::join_all(managers.iter().map(|m| m.shutdown(grace))).await;
        all.into_iter().fold(AlertStats::default(), |mut t, s| {
            t.fired += s.fired;
            t.deduplicated += s.deduplicated;
            t.unrouted += s.unrouted;
            t.resolved += s.resolved;
            t.escalated += s.escalated;
            t.notifications += s.notifications;
            t.delivered += s.delivered;
            t.failed += s.failed;
            t.coalesced += s.coalesced;
            t.retries += s.retries;
            t.queued += s.queued;
            t.max_queue_depth = t.max_queue_depth.max(s.max_queue_depth);
            t
        })
    }

    /// The names of the checks each tick runs.
    #[must_use]
    pub fn check_names(&self) -> Vec<&str> {
        self.inner.checks.iter().map(|c| c.name()).collect()
    }
}

/// Parts of one session given at [`Monitor::start_with`], beside the monitor's plan.
#[derive(Debug, Default)]
#[must_use]
pub struct StartOptions {
    checks: Vec<Arc<dyn HealthCheck>>,
    rollback: Option<RollbackHook>,
    notifiers: Vec<(String, Arc<dyn Notifier>)>,
}

impl StartOptions {
    /// Adds a check for this session (after the monitor's).
    pub fn check(mut self, check: Arc<dyn HealthCheck>) -> Self {
        self.checks.push(check);
        self
    }

    /// The rollback hook of this session (instead of the monitor's).
    pub fn on_rollback(mut self, hook: RollbackHook) -> Self {
        self.rollback = Some(hook);
        self
    }

    /// The notifier of the `"type": "custom"` channel `name` for this session.
    pub fn notifier(mut self, name: impl Into<String>, notifier: Arc<dyn Notifier>) -> Self {
        self.notifiers.push((name.into(), notifier));
        self
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
    baseline_counts: HashMap<String, Counts>,
    baseline_store: Option<Arc<dyn BaselineStore>>,
    notifiers: Vec<(String, Arc<dyn Notifier>)>,
    sources: Vec<SourcePlan>,
    checks_at_start: bool,
}

impl MonitorBuilder {
    /// Gives the baseline of `metric` directly (the caller's own history): the comparison
    /// detectors of that metric judge every session against these values.
    pub fn baseline(mut self, metric: impl Into<String>, values: impl Into<Vec<f64>>) -> Self {
        self.baselines.insert(metric.into(), values.into());
        self
    }

    /// Gives the baseline counts `(errors, requests)` of the error-rate detectors of `metric`
    /// directly.
    pub fn baseline_counts(mut self, metric: impl Into<String>, counts: Counts) -> Self {
        self.baseline_counts.insert(metric.into(), counts);
        self
    }

    /// Adds a source written in code (after the configured ones), polled by every session.
    pub fn source(mut self, plan: SourcePlan) -> Self {
        self.sources.push(plan);
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

    /// Says that each session will also get checks at start ([`StartOptions::check`]): the
    /// rule that every detector watches a metric something produces is then applied at
    /// [`Monitor::start_with`], with those checks counted, instead of at build. The Python
    /// binding uses it (its decorator checks are added after the monitor is built).
    pub fn checks_at_start(mut self) -> Self {
        self.checks_at_start = true;
        self
    }

    /// Validates everything and builds the monitor.
    ///
    /// A detector must watch a metric something produces: a check (`<check>.latency_ms`,
    /// `<check>.success`, configured or custom), a source (`<source>.<key>`, configured or
    /// added with [`source`](Self::source)), or a metric of the configuration's `pushed` list.
    /// A monitor with none of these (push-only, or replay-only: a recording stands in for its
    /// checks) is not held to the rule.
    ///
    /// # Errors
    /// [`Error::Validation`] naming each bad setting, including check names used twice.
    pub fn build(self) -> Result<Monitor> {
        let schedule = crate::schedule::validate(&self.config.schedule)?;
        let mut checks = Vec::with_capacity(self.config.checks.len() + self.checks.len());
        let mut problems = Vec::new();
        {
            let mut p = crate::error::Problems::default();
            self.config.baseline.check(&mut p);
            if let Err(e) = p.finish("monitor configuration") {
                problems.extend(e.field_errors().iter().cloned());
            }
        }
        let mut sources = Vec::with_capacity(self.config.sources.len() + self.sources.len());
        for (i, c) in self.config.sources.iter().enumerate() {
            match c.plan() {
                Ok(plan) => sources.push(plan),
                Err(e) => problems.extend(e.field_errors().iter().map(|f| {
                    crate::FieldError::new(format!("sources[{i}].{}", f.field), f.message.clone())
                })),
            }
        }
        let configured_sources = sources.len();
        sources.extend(self.sources);
        for (metric, c) in &self.baseline_counts {
            if c.requests == 0 || c.errors > c.requests {
                problems.push(crate::FieldError::new(
                    format!("baseline_counts.{metric}"),
                    "needs requests > 0 and errors ≤ requests",
                ));
            }
        }
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
        let configured = checks.len();
        checks.extend(self.checks);
        if !self.checks_at_start {
            // Every check and source named, those with a bad setting included (not built, they
            // are reported on their own fields).
            let mut names: Vec<&str> = self.config.checks.iter().map(|c| c.name()).collect();
            names.extend(checks[configured..].iter().map(|c| c.name()));
            let mut source_names: Vec<&str> =
                self.config.sources.iter().map(|s| s.name()).collect();
            source_names.extend(sources[configured_sources..].iter().map(SourcePlan::name));
            if let Err(e) = crate::plan::detector_metrics(
                &self.config.detectors,
                &names,
                &source_names,
                &self.config.pushed,
            ) {
                problems.extend(e.field_errors().iter().cloned());
            }
        }
        let mut seen = std::collections::HashSet::new();
        {
            // Custom checks and sources (from Rust, Python, JavaScript) meet the same limits as
            // configured ones; configured ones were checked when the configuration was read.
            let mut p = crate::error::Problems::default();
            if checks.len() > crate::limits::MAX_CHECKS {
                p.add(
                    "checks",
                    format!(
                        "{} checks; at most {} are allowed",
                        checks.len(),
                        crate::limits::MAX_CHECKS
                    ),
                );
            }
            for c in &checks[configured..] {
                crate::limits::check_name(&mut p, "checks", c.name());
            }
            if sources.len() > crate::limits::MAX_SOURCES {
                p.add(
                    "sources",
                    format!(
                        "{} sources; at most {} are allowed",
                        sources.len(),
                        crate::limits::MAX_SOURCES
                    ),
                );
            }
            for s in &sources {
                crate::limits::check_name(&mut p, "sources", s.name());
            }
            if let Err(e) = p.finish("monitor configuration") {
                problems.extend(e.field_errors().iter().cloned());
            }
        }
        for c in &checks {
            if !seen.insert(c.name().to_owned()) {
                problems.push(crate::FieldError::new(
                    "checks",
                    format!("two checks are named {:?}", crate::limits::echo(c.name())),
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
            inner: Arc::new(Plan {
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
                pushed: self.config.pushed,
                metrics_at_start: self.checks_at_start,
                baselines: self.baselines,
                baseline_counts: self.baseline_counts,
                baseline_store: self.baseline_store,
                baseline: self.config.baseline,
                sources,
                alerts_config: self.config.alerts,
                notifiers: self.notifiers,
                alerts: std::sync::Mutex::new(None),
                session_alerts: std::sync::Mutex::new(Vec::new()),
            }),
        })
    }
}

/// Runs a replay on a fresh current-thread runtime whose clock is paused: time only moves when
/// every task waits, straight to the next timer.
fn replay_blocking(
    plan: Arc<Plan>,
    event: DeploymentEvent,
    recording: &Recording,
) -> Result<Report> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| Error::invalid("runtime", format!("cannot start the replay runtime: {e}")))?;
    let handle = rt.handle().clone();
    let session = {
        let _guard = handle.enter();
        let start = Start {
            event,
            alerts: None,
            checks: recording.checks(tokio::time::Instant::now()),
            sources: vec![(
                "recording".to_owned(),
                None,
                Box::new(recording.source()) as Box<dyn crate::metrics::Source>,
            )],
            wall_start: recording.started_at,
            completed_after: recording.completed_after.map(Duration::from_secs_f64),
            record: false,
            rollback: None,
        };
        Session::spawn(&handle, plan, start)
    };
    Ok(rt.block_on(session.wait()))
}
