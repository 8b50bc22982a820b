//! A monitoring session: the task that ticks on the schedule, and the [`Session`] handle the
//! caller holds (updates, complete / fail / cancel, push, wait).
//!
//! One tokio task per session and no thread: timers, a broadcast channel for updates (bounded;
//! a lagging listener is told how many it skipped, and never slows the checks) and a watch
//! channel for control and the final report.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::Stream;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use crate::alert::{Alert, AlertManager};
use crate::check::{CheckOutcome, CheckStatus, HealthCheck};
use crate::detect::{Counts, DetectorSet, Finding};
use crate::error::{Error, Result};
use crate::event::{DeploymentEvent, DeploymentStatus};
use crate::metrics::{Baseline, BaselineKey, Sample, WindowKind};
use crate::monitor::{MonitorInner, RollbackContext};
use crate::severity::Severity;
use crate::update::{
    AlertFailure, AlertSummary, CheckResult, DeploymentInfo, EndReason, MetricSummary, Phase,
    Report, RollbackRecord, StatusUpdate, TickRecord,
};
use crate::verdict::{Judgement, Verdict, VerdictTracker};

/// What the deployment has reported to the session so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Control {
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

/// A sample pushed by the caller, waiting for the next tick's detectors.
#[derive(Debug)]
enum Pending {
    Value(Box<str>, f64),
    Counts(Box<str>, Counts),
}

/// Most samples that may wait for one tick; more is refused with an error (never dropped).
const MAX_PENDING: usize = 100_000;

/// Samples pushed by the caller for one metric.
#[derive(Debug, Default)]
struct Window {
    values: VecDeque<f64>,
    count: u64,
}

/// State shared by the session task and every handle.
#[derive(Debug)]
struct Shared {
    id: Arc<str>,
    control: watch::Sender<Control>,
    updates: broadcast::Sender<Arc<StatusUpdate>>,
    latest: Mutex<Option<Arc<StatusUpdate>>>,
    report: watch::Sender<Option<Arc<Report>>>,
    pushed: Mutex<HashMap<Box<str>, Window>>,
    pending: Mutex<Vec<Pending>>,
    watched: Arc<std::collections::HashSet<String>>,
    sample_window: usize,
}

/// A handle on a running session. Cheap to clone; the session keeps running when every handle
/// is dropped.
#[derive(Debug, Clone)]
pub struct Session {
    shared: Arc<Shared>,
}

/// One item of an update stream.
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateEvent {
    /// A status update.
    Update(Arc<StatusUpdate>),
    /// The listener fell behind and this many updates were dropped for it.
    Skipped(u64),
}

/// A listener's view of a session's updates: the latest update first (if any), then every
/// later one, ending after the update whose phase is `finished`.
#[derive(Debug)]
pub struct Updates {
    rx: broadcast::Receiver<Arc<StatusUpdate>>,
    first: Option<Arc<StatusUpdate>>,
    last_tick: Option<(u32, Phase)>,
    done: bool,
}

impl Updates {
    /// The next item; `None` once the session has finished and its last update was given.
    pub async fn next(&mut self) -> Option<UpdateEvent> {
        if self.done {
            return None;
        }
        if let Some(first) = self.first.take() {
            return Some(self.give(first));
        }
        loop {
            match self.rx.recv().await {
                Ok(u) => {
                    // Skip what `first` already covered (subscribing and reading `latest` race).
                    if self.last_tick.is_some_and(|(t, p)| {
                        (u.tick, u.phase == Phase::Finished) <= (t, p == Phase::Finished)
                    }) {
                        continue;
                    }
                    return Some(self.give(u));
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    return Some(UpdateEvent::Skipped(n));
                }
                Err(broadcast::error::RecvError::Closed) => {
                    self.done = true;
                    return None;
                }
            }
        }
    }

    fn give(&mut self, u: Arc<StatusUpdate>) -> UpdateEvent {
        self.last_tick = Some((u.tick, u.phase));
        if u.phase == Phase::Finished {
            self.done = true;
        }
        UpdateEvent::Update(u)
    }

    /// The updates as a `futures::Stream`.
    pub fn into_stream(self) -> impl Stream<Item = UpdateEvent> + Send + Unpin {
        Box::pin(futures::stream::unfold(self, |mut u| async move {
            u.next().await.map(|e| (e, u))
        }))
    }
}

impl Session {
    pub(crate) fn spawn(
        handle: &tokio::runtime::Handle,
        monitor: Arc<MonitorInner>,
        event: DeploymentEvent,
        alerts: Option<AlertManager>,
    ) -> Self {
        let id: Arc<str> = match event.correlation_id() {
            Some(c) => format!("{c}-{:08x}", fastrand::u32(..)).into(),
            None => format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)).into(),
        };
        let initial = match event.status() {
            DeploymentStatus::Pending | DeploymentStatus::Running => Control::Running,
            DeploymentStatus::Success => Control::Succeeded,
            DeploymentStatus::Failure => Control::Failed,
            DeploymentStatus::Cancelled => Control::Cancelled,
        };
        let shared = Arc::new(Shared {
            id,
            control: watch::channel(initial).0,
            updates: broadcast::channel(monitor.update_buffer).0,
            latest: Mutex::new(None),
            report: watch::channel(None).0,
            pushed: Mutex::new(HashMap::new()),
            pending: Mutex::new(Vec::new()),
            watched: Arc::clone(&monitor.watched),
            sample_window: monitor.sample_window,
        });
        let task = SessionTask::new(monitor, Arc::clone(&shared), event, alerts);
        handle.spawn(task.run());
        Self { shared }
    }

    /// The session's id (the event's correlation id plus a suffix, or a random id).
    #[must_use]
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// Follows the session's updates. Any number of listeners may follow at once.
    #[must_use]
    pub fn updates(&self) -> Updates {
        let rx = self.shared.updates.subscribe();
        let first = self.shared.latest.lock().expect("latest lock").clone();
        Updates {
            rx,
            first,
            last_tick: None,
            done: false,
        }
    }

    /// The deployment succeeded: the cool-down starts now (no effect once finished or when the
    /// cool-down already runs).
    pub fn complete(&self) {
        self.signal(Control::Succeeded);
    }

    /// The deployment failed: the session ends with that outcome.
    pub fn fail(&self) {
        self.signal(Control::Failed);
    }

    /// Stops the session: it ends as cancelled.
    pub fn cancel(&self) {
        self.signal(Control::Cancelled);
    }

    fn signal(&self, to: Control) {
        self.shared.control.send_if_modified(|c| {
            let allowed = matches!(
                (*c, to),
                (Control::Running, _) | (Control::Succeeded, Control::Failed | Control::Cancelled)
            );
            if allowed {
                *c = to;
            }
            allowed
        });
    }

    /// Adds a sample of `metric` (an APM number, a counter...). Kept in a bounded window per
    /// metric and summarised in the report.
    ///
    /// # Errors
    /// [`Error::Validation`] for an empty metric name, a value that is not finite, or a session
    /// that has already finished (the sample would be lost).
    pub fn push(&self, metric: &str, value: f64) -> Result<()> {
        if metric.trim().is_empty() {
            return Err(Error::invalid("metric", "must not be empty"));
        }
        if !value.is_finite() {
            return Err(Error::invalid(
                "value",
                format!("{value} is not a finite number"),
            ));
        }
        if self.is_finished() {
            return Err(Error::invalid(
                "session",
                "has finished; the sample was not recorded",
            ));
        }
        if self.shared.watched.contains(metric) {
            self.enqueue(Pending::Value(metric.into(), value))?;
        }
        let mut pushed = self.shared.pushed.lock().expect("pushed lock");
        let w = pushed.entry(metric.into()).or_default();
        if w.values.len() == self.shared.sample_window {
            w.values.pop_front();
        }
        w.values.push_back(value);
        w.count += 1;
        Ok(())
    }

    /// Adds `(errors, requests)` counts of `metric` for its error-rate detectors (counts, not
    /// ratios, so the test knows how much evidence there is).
    ///
    /// # Errors
    /// [`Error::Validation`] for an empty metric name, `errors > requests`, or a finished
    /// session.
    pub fn push_counts(&self, metric: &str, errors: u64, requests: u64) -> Result<()> {
        if metric.trim().is_empty() {
            return Err(Error::invalid("metric", "must not be empty"));
        }
        let counts = Counts::new(errors, requests)?;
        if self.is_finished() {
            return Err(Error::invalid(
                "session",
                "has finished; the counts were not recorded",
            ));
        }
        if !self.shared.watched.contains(metric) {
            return Err(Error::invalid(
                "metric",
                format!("{metric:?} has no error-rate detector; the counts would be ignored"),
            ));
        }
        self.enqueue(Pending::Counts(metric.into(), counts))
    }

    fn enqueue(&self, sample: Pending) -> Result<()> {
        let mut pending = self.shared.pending.lock().expect("pending lock");
        if pending.len() >= MAX_PENDING {
            return Err(Error::invalid(
                "value",
                format!(
                    "{MAX_PENDING} samples already wait for the next tick; this one was not recorded"
                ),
            ));
        }
        pending.push(sample);
        Ok(())
    }

    /// Waits for the session to end and returns its report.
    pub async fn wait(&self) -> Report {
        let mut rx = self.shared.report.subscribe();
        let report = rx
            .wait_for(Option::is_some)
            .await
            .expect("the report sender lives in Shared");
        Report::clone(report.as_ref().expect("waited for Some"))
    }

    /// The report, if the session has ended.
    #[must_use]
    pub fn report(&self) -> Option<Report> {
        self.shared.report.borrow().as_deref().cloned()
    }

    /// Whether the session has ended.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.shared.report.borrow().is_some()
    }
}

/// The session's own state, owned by its task.
struct SessionTask {
    monitor: Arc<MonitorInner>,
    shared: Arc<Shared>,
    event: DeploymentEvent,
    info: Arc<DeploymentInfo>,
    tracker: VerdictTracker,
    phase: Phase,
    tick: u32,
    ticks: Vec<TickRecord>,
    started: Instant,
    started_wall: SystemTime,
    cooldown_started: Option<Duration>,
    extended: bool,
    rollback: Option<RollbackRecord>,
    detectors: DetectorSet,
    findings: Vec<Finding>,
    /// Metrics whose comparison detectors had no data at the last look.
    no_data: Vec<String>,
    /// Samples seen, kept for the baseline store (only when there is one).
    observed: Vec<Sample>,
    alerts: Option<AlertManager>,
    fired: Vec<AlertSummary>,
}

impl SessionTask {
    fn new(
        monitor: Arc<MonitorInner>,
        shared: Arc<Shared>,
        event: DeploymentEvent,
        alerts: Option<AlertManager>,
    ) -> Self {
        let info = Arc::new(DeploymentInfo::of(&event, &shared.id));
        let tracker = VerdictTracker::new(monitor.verdict.clone(), monitor.checks.len());
        let detectors = monitor.detector_set();
        Self {
            detectors,
            findings: Vec::new(),
            no_data: Vec::new(),
            observed: Vec::new(),
            alerts,
            fired: Vec::new(),
            monitor,
            shared,
            event,
            info,
            tracker,
            phase: Phase::Pending,
            tick: 0,
            ticks: Vec::new(),
            started: Instant::now(),
            started_wall: SystemTime::now(),
            cooldown_started: None,
            extended: false,
            rollback: None,
        }
    }

    async fn run(mut self) {
        let span = tracing::info_span!(
            "session",
            session = &*self.shared.id,
            repository = self.info.repository.as_deref().unwrap_or(""),
            environment = self.info.environment.as_deref().unwrap_or(""),
            correlation_id = &*self.info.correlation_id,
        );
        let run = async {
            if let Some(h) = &self.monitor.history {
                let started = self
                    .started_wall
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                if let Err(e) = h.begin_session(&self.shared.id, &self.event, started).await {
                    tracing::warn!(error = %e, "history: cannot record the session start");
                }
            }
            self.load_baselines().await;
            let end = self.ticking().await;
            self.finish(end).await;
        };
        tracing::Instrument::instrument(run, span).await;
    }

    fn baseline_key(&self, metric: &str) -> BaselineKey {
        BaselineKey::new(
            self.info.repository.as_deref().unwrap_or(""),
            self.info.environment.as_deref().unwrap_or(""),
            metric,
        )
    }

    /// Gives the comparison detectors their baselines: the caller's, else the store's
    /// pre-deploy window for this deployment (its correlation id), else the last 5 healthy
    /// deployments. Without one, the detector reports no data and the no-data policy decides.
    async fn load_baselines(&mut self) {
        let metrics: Vec<(String, &'static str)> = self
            .detectors
            .baseline_metrics()
            .into_iter()
            .map(|(m, t)| (m.to_owned(), t))
            .collect();
        for (metric, kind) in metrics {
            if kind != "baseline" {
                continue; // error-rate baselines are counts: given in code, not from samples.
            }
            let baseline = if let Some(values) = self.monitor.baselines.get(&metric) {
                Baseline::provided(values).ok()
            } else if let Some(store) = &self.monitor.baseline_store {
                let key = self.baseline_key(&metric);
                let id = self.info.correlation_id.clone();
                match store.pre_deploy(&key, &id).await {
                    Ok(Some(b)) => Some(b),
                    Ok(None) => store.last_healthy(&key, 5, Some(&id)).await.unwrap_or_else(|e| {
                        tracing::warn!(error = %e, metric, "baseline store: cannot read the last healthy deployments");
                        None
                    }),
                    Err(e) => {
                        tracing::warn!(error = %e, metric, "baseline store: cannot read the pre-deploy window");
                        None
                    }
                }
            } else {
                None
            };
            if let Some(b) = baseline
                && let Err(e) = self.detectors.set_baseline(&metric, &b)
            {
                tracing::warn!(error = %e, metric, "cannot use the baseline");
            }
        }
    }

    /// Feeds this tick's samples (check latencies and success, pushed values and counts) to
    /// the detectors and takes one look; returns the new findings.
    fn detect(&mut self, results: &[CheckResult]) -> Vec<Finding> {
        let now = crate::metrics::unix_now();
        let mut samples = Vec::with_capacity(results.len() * 2);
        for r in results.iter().filter(|r| r.status != CheckStatus::Error) {
            samples.push(Sample::at(
                format!("{}.latency_ms", r.name),
                now,
                r.latency.as_secs_f64() * 1000.0,
            ));
            let ok = matches!(r.status, CheckStatus::Pass | CheckStatus::Warn);
            samples.push(Sample::at(
                format!("{}.success", r.name),
                now,
                if ok { 1.0 } else { 0.0 },
            ));
        }
        let pending = std::mem::take(&mut *self.shared.pending.lock().expect("pending lock"));
        let mut findings = Vec::new();
        for p in pending {
            match p {
                Pending::Value(metric, value) => {
                    samples.push(Sample::at(metric.to_string(), now, value))
                }
                Pending::Counts(metric, counts) => {
                    if let Err(e) = self.detectors.observe_counts(&metric, counts) {
                        tracing::warn!(error = %e, %metric, "counts not used");
                    }
                }
            }
        }
        for sample in &samples {
            match self.detectors.observe(sample) {
                Ok(f) => findings.extend(f),
                Err(e) => tracing::warn!(error = %e, metric = %sample.metric, "sample not used"),
            }
        }
        if self.monitor.baseline_store.is_some() {
            self.observed.extend(samples);
        }
        let evaluation = self.detectors.evaluate();
        self.no_data = evaluation.no_data;
        findings.extend(evaluation.findings);
        findings
    }

    /// Raises an alert, if alerting is configured; an alert that cannot be queued is logged
    /// (delivery failures are reported by the alert manager).
    fn alert(
        &mut self,
        severity: Severity,
        title: String,
        summary: String,
        key: String,
        findings: Vec<Finding>,
    ) {
        let Some(manager) = &self.alerts else { return };
        let alert = Alert::builder(severity, title.clone())
            .summary(summary)
            .key(key.clone())
            .event(&self.event)
            .correlation_id(self.shared.id.to_string())
            .findings(findings)
            .build();
        match alert.and_then(|a| manager.fire(a)) {
            Ok(()) => self.fired.push(AlertSummary {
                key,
                severity,
                title,
            }),
            Err(e) => tracing::error!(error = %e, "alert not queued"),
        }
    }

    /// Writes an update to the history store, if there is one; failures are logged.
    async fn persist(&self, update: &StatusUpdate) {
        if let Some(h) = &self.monitor.history
            && let Err(e) = h.record_update(update).await
        {
            tracing::warn!(error = %e, tick = update.tick, "history: cannot record a tick");
        }
    }

    /// Ticks until the session must end, and says why.
    async fn ticking(&mut self) -> (EndReason, Judgement) {
        let schedule = self.monitor.schedule.clone();
        let mut delays = schedule.delays();
        let mut control = self.shared.control.subscribe();
        let deadline = self.started + schedule.max_duration();
        let mut cooldown_end: Option<Instant> = None;
        let mut next_tick = self.started;
        loop {
            let state = *control.borrow_and_update();
            match state {
                Control::Failed => {
                    return (
                        EndReason::DeploymentFailed,
                        self.judged(Verdict::Inconclusive, "the deployment reported failure"),
                    );
                }
                Control::Cancelled => {
                    return (
                        EndReason::Cancelled,
                        self.judged(Verdict::Inconclusive, "the session was cancelled"),
                    );
                }
                Control::Succeeded if cooldown_end.is_none() => {
                    let now = Instant::now();
                    cooldown_end = Some((now + schedule.cooldown()).min(deadline));
                    self.cooldown_started = Some(now - self.started);
                    self.phase = Phase::Cooldown;
                    tracing::info!(cooldown = ?schedule.cooldown(), "deployment succeeded; cool-down started");
                }
                _ => {}
            }
            let end_at = if self.extended {
                deadline
            } else {
                cooldown_end.unwrap_or(deadline)
            };
            tokio::select! {
                biased;
                changed = control.changed() => {
                    if changed.is_err() {
                        return (EndReason::Cancelled, self.judged(Verdict::Inconclusive, "the session was dropped"));
                    }
                }
                () = tokio::time::sleep_until(end_at), if next_tick > end_at => {
                    if end_at >= deadline {
                        return (EndReason::MaxDuration, self.tracker.conclude());
                    }
                    if !self.tracker.has_enough_data() && self.monitor.verdict.no_data == crate::NoDataPolicy::Extend {
                        tracing::info!("not enough data at the end of the cool-down; extending");
                        self.extended = true;
                        continue;
                    }
                    return (EndReason::CooldownElapsed, self.tracker.conclude());
                }
                () = tokio::time::sleep_until(next_tick), if next_tick <= end_at => {
                    let late = Instant::now().saturating_duration_since(next_tick);
                    let tick_started = Instant::now();
                    let delay = delays.next_delay();
                    next_tick = tick_started + delay;
                    self.run_tick(late, next_tick).await;
                    if let Some(j) = self.tracker.terminal().cloned() {
                        let reason = if j.verdict == Verdict::Unhealthy { EndReason::Unhealthy } else { EndReason::ErrorLimit };
                        if j.verdict == Verdict::Unhealthy {
                            self.fire_rollback(&j).await;
                        }
                        return (reason, j);
                    }
                    if self.extended && self.tracker.has_enough_data() {
                        return (EndReason::CooldownElapsed, self.tracker.conclude());
                    }
                }
            }
        }
    }

    fn judged(&self, verdict: Verdict, why: &str) -> Judgement {
        let c = self.tracker.counters();
        Judgement {
            verdict,
            reason: format!(
                "{why} after {} ticks ({} failed, {} measured)",
                self.tick, c.failed_ticks, c.measured_ticks
            ),
        }
    }

    async fn run_tick(&mut self, late: Duration, next_tick: Instant) {
        self.tick += 1;
        if self.phase == Phase::Pending {
            self.phase = Phase::Active;
        }
        let elapsed = Instant::now() - self.started;
        let cap = self.monitor.schedule.min_interval();
        let runs = self
            .monitor
            .checks
            .iter()
            .map(|c| run_one(Arc::clone(c), cap));
        let results: Vec<CheckResult> = futures::future::join_all(runs).await;
        let view: Vec<(&str, CheckStatus, &str)> = results
            .iter()
            .map(|r| (&*r.name, r.status, r.message.as_str()))
            .collect();
        self.tracker.record_tick(&view);
        let findings = self.detect(&results);
        for f in &findings {
            if f.severity >= Severity::Critical && f.kind == crate::detect::DetectionKind::Alarm {
                self.tracker.record_critical(format!(
                    "{} finding on {} ({}): {}",
                    f.severity, f.metric, f.detector, f.message
                ));
            } else if f.severity == Severity::Warning
                && f.kind == crate::detect::DetectionKind::Alarm
            {
                self.tracker.record_warning();
            }
            if f.severity >= Severity::Warning {
                let key = format!("{}/{}/{}", self.shared.id, f.metric, f.detector);
                self.alert(
                    f.severity,
                    format!("{}: {}", f.metric, f.detector),
                    f.message.clone(),
                    key,
                    vec![f.clone()],
                );
            }
        }
        self.findings.extend(findings.iter().cloned());
        let judgement = self.tracker.current();
        tracing::debug!(tick = self.tick, verdict = %judgement.verdict, "tick done");
        self.ticks.push(TickRecord {
            tick: self.tick,
            phase: self.phase,
            elapsed,
            late,
            checks: results.clone(),
            verdict: judgement.verdict,
        });
        let next_in = next_tick.saturating_duration_since(Instant::now());
        let update = self.publish(results, findings, judgement, Some(next_in));
        self.persist(&update).await;
    }

    fn publish(
        &self,
        checks: Vec<CheckResult>,
        findings: Vec<Finding>,
        judgement: Judgement,
        next_tick_in: Option<Duration>,
    ) -> Arc<StatusUpdate> {
        let update = Arc::new(StatusUpdate {
            session_id: Arc::clone(&self.shared.id),
            deployment: Arc::clone(&self.info),
            phase: self.phase,
            tick: self.tick,
            elapsed: Instant::now() - self.started,
            checks,
            findings,
            verdict: judgement.verdict,
            reason: judgement.reason,
            next_tick_in,
        });
        *self.shared.latest.lock().expect("latest lock") = Some(Arc::clone(&update));
        // No listener is fine: updates are also kept in the report's timeline.
        let _ = self.shared.updates.send(Arc::clone(&update));
        update
    }

    async fn fire_rollback(&mut self, judgement: &Judgement) {
        let Some(hook) = self.monitor.rollback.clone() else {
            return;
        };
        tracing::warn!(reason = %judgement.reason, "deployment unhealthy; firing the rollback hook");
        let ctx = RollbackContext {
            session_id: self.shared.id.to_string(),
            event: self.event.clone(),
            reason: judgement.reason.clone(),
        };
        let elapsed = Instant::now() - self.started;
        let error = hook.fire(ctx).await;
        if let Some(e) = &error {
            tracing::error!(error = %e, "the rollback hook failed");
        }
        self.rollback = Some(RollbackRecord { elapsed, error });
    }

    async fn finish(&mut self, (ended_by, judgement): (EndReason, Judgement)) {
        self.phase = Phase::Finished;
        tracing::info!(verdict = %judgement.verdict, reason = %judgement.reason, ?ended_by, "session finished");
        // What the checks and findings said, before a missing baseline made it inconclusive: a
        // first deployment with healthy checks is what the next ones are compared against.
        let checks_verdict = judgement.verdict;
        let judgement = self.apply_detector_no_data(&ended_by, judgement);
        if judgement.verdict == Verdict::Unhealthy {
            let key = format!("{}/verdict", self.shared.id);
            let findings = self
                .findings
                .iter()
                .filter(|f| f.severity >= Severity::Critical)
                .cloned()
                .collect();
            self.alert(
                Severity::Critical,
                "Deployment unhealthy".into(),
                judgement.reason.clone(),
                key,
                findings,
            );
        } else if matches!(judgement.verdict, Verdict::Healthy | Verdict::Degraded)
            && let Some(m) = &self.alerts
        {
            // The deployment came through: what fired during it is over.
            let _ = m.resolve_group(&self.shared.id);
        }
        let last = self.publish(Vec::new(), Vec::new(), judgement.clone(), None);
        self.persist(&last).await;
        let metrics = self
            .shared
            .pushed
            .lock()
            .expect("pushed lock")
            .iter()
            .map(|(k, w)| {
                let n = w.values.len();
                let mean = if n == 0 {
                    0.0
                } else {
                    w.values.iter().sum::<f64>() / n as f64
                };
                let last = w.values.back().copied().unwrap_or(f64::NAN);
                (
                    k.to_string(),
                    MetricSummary {
                        count: w.count,
                        window: n,
                        last,
                        mean,
                    },
                )
            })
            .collect::<BTreeMap<_, _>>();
        let report = Report {
            session_id: Arc::clone(&self.shared.id),
            event: self.event.clone(),
            verdict: judgement.verdict,
            reason: judgement.reason,
            ended_by,
            started_at_unix_ms: self
                .started_wall
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            duration: Instant::now() - self.started,
            cooldown_started: self.cooldown_started,
            extended: self.extended,
            counters: self.tracker.counters().clone(),
            ticks: std::mem::take(&mut self.ticks),
            findings: std::mem::take(&mut self.findings),
            metrics,
            rollback: self.rollback.take(),
            alerts: std::mem::take(&mut self.fired),
            alert_failures: self.alerts.as_ref().map_or_else(Vec::new, |m| {
                m.failures()
                    .iter()
                    .filter(|r| r.group_key == *self.shared.id)
                    .map(|r| AlertFailure::from(&**r))
                    .collect()
            }),
            no_data: self.no_data.clone(),
        };
        self.record_baselines(checks_verdict).await;
        // Stored before waiters see it, so a caller who got the report can query history for it.
        if let Some(h) = &self.monitor.history
            && let Err(e) = h.record_report(&report).await
        {
            tracing::warn!(error = %e, "history: cannot record the report");
        }
        self.shared.report.send_replace(Some(Arc::new(report)));
    }
}

impl SessionTask {
    /// Under the no-data policy, a normal end whose comparison detectors never had data is not
    /// healthy: `fail` makes it unhealthy, otherwise it is inconclusive, and the reason says so.
    fn apply_detector_no_data(&self, ended_by: &EndReason, j: Judgement) -> Judgement {
        let normal_end = matches!(
            ended_by,
            EndReason::CooldownElapsed | EndReason::MaxDuration
        );
        if !normal_end
            || self.no_data.is_empty()
            || !matches!(j.verdict, Verdict::Healthy | Verdict::Degraded)
        {
            return j;
        }
        let what = format!(
            "no baseline or too few samples for {}",
            self.no_data.join(", ")
        );
        match self.monitor.verdict.no_data {
            crate::NoDataPolicy::Fail => Judgement {
                verdict: Verdict::Unhealthy,
                reason: format!("{what} (no_data = fail)"),
            },
            policy => Judgement {
                verdict: Verdict::Inconclusive,
                reason: format!(
                    "{what} (no_data = {}); checks: {}",
                    if policy == crate::NoDataPolicy::Extend {
                        "extend"
                    } else {
                        "inconclusive"
                    },
                    j.reason
                ),
            },
        }
    }

    /// Hands this deployment's samples and outcome to the baseline store, if there is one. The
    /// outcome is healthy when the checks and findings were (`verdict`, before the no-data
    /// policy), so the first deployment can become the baseline of the next.
    async fn record_baselines(&mut self, verdict: Verdict) {
        let Some(store) = self.monitor.baseline_store.clone() else {
            return;
        };
        let id = self.info.correlation_id.clone();
        let mut by_metric: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
        for s in std::mem::take(&mut self.observed) {
            by_metric.entry(s.metric.clone()).or_default().push(s);
        }
        for (metric, samples) in by_metric {
            if let Err(e) = store
                .record(
                    &self.baseline_key(&metric),
                    &id,
                    WindowKind::Deployment,
                    &samples,
                )
                .await
            {
                tracing::warn!(error = %e, metric, "baseline store: cannot record the samples");
            }
        }
        let repo = self.info.repository.as_deref().unwrap_or("");
        let env = self.info.environment.as_deref().unwrap_or("");
        if let Err(e) = store
            .set_outcome(repo, env, &id, verdict == Verdict::Healthy)
            .await
        {
            tracing::warn!(error = %e, "baseline store: cannot record the outcome");
        }
    }
}

/// Runs one check under its timeout, capped at the schedule's smallest interval so a hanging
/// check never delays the next tick. A check that does not finish is an `error` outcome.
async fn run_one(check: Arc<dyn HealthCheck>, cap: Duration) -> CheckResult {
    let limit = check.timeout().map_or(cap, |t| t.min(cap));
    let started = Instant::now();
    let outcome = match tokio::time::timeout(limit, check.check()).await {
        Ok(o) => o,
        Err(_) => CheckOutcome::error(format!(
            "the check did not finish within {} ms",
            limit.as_millis()
        ))
        .with_latency(started.elapsed()),
    };
    CheckResult {
        name: check.name().into(),
        category: check.category(),
        status: outcome.status,
        latency: outcome.latency,
        message: outcome.message,
    }
}
