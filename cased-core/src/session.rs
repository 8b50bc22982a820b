//! A monitoring session: the task that ticks on the schedule, and the [`Session`] handle the
//! caller holds (updates, complete / fail / cancel, push, wait).
//!
//! The session only ticks the schedule and moves data through the pipeline, one way:
//!
//! ```text
//! collect ──► detect ──► judge ──► alert ──► record
//! (collect.rs) (detect/,   (verdict.rs) (alert/   (history, baseline store)
//!  checks,      baselines.rs)            policy.rs)
//!  sources, pushes)
//! ```
//!
//! One tokio task per session and no thread: timers, a broadcast channel for updates (bounded;
//! a lagging listener is told how many it skipped, and never slows the checks) and one
//! mutex-guarded state with a `Notify` for control and the final report.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::{FutureExt, Stream};
use tokio::sync::{Notify, broadcast};
use tokio::time::Instant;

use crate::alert::{AlertManager, AlertPolicy};
use crate::baselines::{self, Control as ControlTrack};
use crate::changes::SeriesLog;
use crate::check::{CheckStatus, HealthCheck};
use crate::collect::{Collected, Collector, Pushed};
use crate::detect::{Counts, DetectorSet, Finding};
use crate::error::{Error, Result};
use crate::event::{DeploymentEvent, DeploymentStatus, StoredEvent};
use crate::history::HistoryStore;
use crate::metrics::{PollContext, Polled, Sample, Source, WindowKind};
use crate::plan::{Plan, RollbackContext};
use crate::timeline::Timeline;
use crate::update::{
    AlertFailure, CheckResult, DeploymentInfo, EndReason, MetricSummary, Phase, Report,
    RollbackRecord, StatusUpdate,
};
use crate::verdict::{FindingRules, Judgement, Unjudged, Verdict, VerdictTracker};

/// What the deployment has reported to the session so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Control {
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

/// What the session's timer was set for.
#[derive(Debug, Clone, Copy)]
enum Due {
    /// The next tick.
    Tick,
    /// A source with its own cadence.
    Source,
    /// The end of the cool-down (or of the session).
    End,
}

/// Most samples that may wait for one tick; more is refused with an error (never dropped).
const MAX_PENDING: usize = 100_000;

/// Samples pushed by the caller for one metric.
#[derive(Debug, Default)]
struct Window {
    values: VecDeque<f64>,
    count: u64,
}

/// What the deployment reported and, once the session has ended, its report.
#[derive(Debug)]
struct State {
    control: Control,
    report: Option<Arc<Report>>,
}

/// State shared by the session task and every handle.
#[derive(Debug)]
struct Shared {
    id: Arc<str>,
    /// Behind a mutex, with `changed` waking whoever waits for it: a tokio watch channel would
    /// cost about 350 bytes a session (it carries 8 `Notify`).
    state: Mutex<State>,
    changed: Notify,
    /// Made by the first listener: a session nobody follows keeps no update buffer.
    updates: OnceLock<broadcast::Sender<Arc<StatusUpdate>>>,
    latest: Mutex<Option<Arc<StatusUpdate>>>,
    /// Sorted by metric. A session has few; a hash map's smallest table holds 4.
    pushed: Mutex<Vec<(Box<str>, Window)>>,
    pending: Mutex<Vec<Pushed>>,
    /// The plan, for its update buffer, sample window and watched metrics.
    plan: Arc<Plan>,
    /// The alert manager delivering this session's alerts.
    alerts: Option<AlertManager>,
}

/// Resolves when the deployment has reported failure or the session was cancelled.
async fn stopped(shared: &Shared) {
    loop {
        // Registered before the state is read, so a change from now on wakes it.
        let changed = shared.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        if matches!(shared.state().control, Control::Failed | Control::Cancelled) {
            return;
        }
        changed.await;
    }
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("state lock")
    }

    /// Changes the state with `f`, and wakes every waiter when `f` says it changed it.
    fn modify(&self, f: impl FnOnce(&mut State) -> bool) {
        let changed = f(&mut self.state());
        if changed {
            self.changed.notify_waiters();
        }
    }
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
    pub(crate) fn spawn(handle: &tokio::runtime::Handle, plan: Arc<Plan>, start: Start) -> Self {
        let event = &start.event;
        let id: Arc<str> = match event.correlation_id() {
            Some(c) => format!("{c}-{:08x}", fastrand::u32(..)).into(),
            None => format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)).into(),
        };
        let initial = match (event.status(), start.completed_after) {
            (DeploymentStatus::Failure, _) => Control::Failed,
            (DeploymentStatus::Cancelled, _) => Control::Cancelled,
            (_, Some(_)) | (DeploymentStatus::Pending | DeploymentStatus::Running, None) => {
                Control::Running
            }
            (DeploymentStatus::Success, None) => Control::Succeeded,
        };
        let shared = Arc::new(Shared {
            id,
            state: Mutex::new(State {
                control: initial,
                report: None,
            }),
            changed: Notify::new(),
            updates: OnceLock::new(),
            latest: Mutex::new(None),
            pushed: Mutex::new(Vec::new()),
            pending: Mutex::new(Vec::new()),
            plan: Arc::clone(&plan),
            alerts: start.alerts.clone(),
        });
        let completed_after = start.completed_after;
        let task = SessionTask::new(plan, Arc::clone(&shared), start);
        let session = Self { shared };
        handle.spawn(task.run());
        if let Some(after) = completed_after {
            let s = session.clone();
            handle.spawn(async move {
                tokio::time::sleep(after).await;
                s.complete();
            });
        }
        session
    }

    /// The session's id (the event's correlation id plus a suffix, or a random id).
    #[must_use]
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// Follows the session's updates. Any number of listeners may follow at once.
    #[must_use]
    pub fn updates(&self) -> Updates {
        let rx = self
            .shared
            .updates
            .get_or_init(|| broadcast::channel(self.shared.plan.update_buffer).0)
            .subscribe();
        let first = self.shared.latest.lock().expect("latest lock").clone();
        Updates {
            rx,
            first,
            last_tick: None,
            done: false,
        }
    }

    /// The in-app alert stream of the channel named `channel` of the manager delivering this
    /// session's alerts (the monitor's, or the session's own when it was started with custom
    /// notifiers). Subscribe right after starting: only later notifications are seen.
    ///
    /// # Errors
    /// [`Error::Validation`] when no such in-app channel exists.
    pub fn alerts(&self, channel: &str) -> Result<crate::alert::InAppStream> {
        match &self.shared.alerts {
            Some(m) => m.subscribe(channel),
            None => Err(Error::invalid(
                "alerts.channels",
                "no alert channel is configured",
            )),
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
        self.shared.modify(|s| {
            let allowed = matches!(
                (s.control, to),
                (Control::Running, _) | (Control::Succeeded, Control::Failed | Control::Cancelled)
            );
            if allowed {
                s.control = to;
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
        if self.shared.plan.watched.contains(metric) {
            self.enqueue(Pushed::Value(
                metric.into(),
                value,
                crate::metrics::unix_now(),
            ))?;
        }
        let mut pushed = self.shared.pushed.lock().expect("pushed lock");
        let i = match pushed.binary_search_by(|(m, _)| (**m).cmp(metric)) {
            Ok(i) => i,
            Err(i) => {
                if pushed.len() == pushed.capacity() {
                    // Doubling from one: most sessions push one metric or none.
                    let more = pushed.len().max(1);
                    pushed.reserve_exact(more);
                }
                pushed.insert(i, (metric.into(), Window::default()));
                i
            }
        };
        let w = &mut pushed[i].1;
        let window = self.shared.plan.sample_window;
        if w.values.len() == window {
            w.values.pop_front();
        } else if w.values.len() == w.values.capacity() {
            // Doubling, but never past the window (100 samples take 100 slots, not 128).
            let len = w.values.len();
            w.values.reserve_exact(len.max(4).min(window - len));
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
        if !self.shared.plan.watched.contains(metric) {
            return Err(Error::invalid(
                "metric",
                format!("{metric:?} has no error-rate detector; the counts would be ignored"),
            ));
        }
        self.enqueue(Pushed::Counts(
            metric.into(),
            counts,
            crate::metrics::unix_now(),
        ))
    }

    fn enqueue(&self, sample: Pushed) -> Result<()> {
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
        loop {
            // Registered before the report is read, so a report sent from now on wakes it.
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let report = self.shared.state().report.clone();
            if let Some(report) = report {
                return Report::clone(&report);
            }
            changed.await;
        }
    }

    /// The report, if the session has ended.
    #[must_use]
    pub fn report(&self) -> Option<Report> {
        let report = self.shared.state().report.clone();
        report.as_deref().cloned()
    }

    /// Whether the session has ended.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.shared.state().report.is_some()
    }
}

/// What one session starts with beside the plan: the event, and the parts a replay swaps in.
pub(crate) struct Start {
    pub(crate) event: DeploymentEvent,
    pub(crate) alerts: Option<AlertManager>,
    /// The checks run at each tick.
    pub(crate) checks: Vec<Arc<dyn HealthCheck>>,
    /// The sources polled: name, own cadence, the per-session source.
    pub(crate) sources: Vec<(String, Option<Duration>, Box<dyn Source>)>,
    /// Seconds since the Unix epoch at the session's time 0 (the wall clock, or a recording's
    /// start).
    pub(crate) wall_start: f64,
    /// The deployment reports success this long after the start (a replay's recorded
    /// completion).
    pub(crate) completed_after: Option<Duration>,
    /// Keep history and baselines (false in a replay: it judges again, it records nothing).
    pub(crate) record: bool,
    /// The rollback hook of this session (the plan's, or one given at start).
    pub(crate) rollback: Option<crate::plan::RollbackHook>,
}

/// The session's own state, owned by its task.
struct SessionTask {
    plan: Arc<Plan>,
    shared: Arc<Shared>,
    /// Shared with the alert policy.
    event: Arc<StoredEvent>,
    info: Arc<DeploymentInfo>,
    collector: Collector,
    tracker: VerdictTracker,
    phase: Phase,
    tick: u32,
    ticks: Timeline,
    started: Instant,
    wall_start: f64,
    cooldown_started: Option<Duration>,
    extended: bool,
    /// Boxed: most sessions never roll back.
    rollback: Option<Box<RollbackRecord>>,
    detectors: DetectorSet,
    /// Made at the first control data: most sessions have no control track.
    control: Option<Box<ControlTrack>>,
    /// Which baseline judged each compared metric.
    baselines: BTreeMap<String, String>,
    findings: Vec<Finding>,
    /// Metrics whose comparison detectors had no data at the last look.
    no_data: Vec<String>,
    notes: Vec<String>,
    /// Per source that could not be read: how many times, and the last error.
    source_failures: BTreeMap<String, (u32, String)>,
    /// Samples seen, kept for the baseline store (only when there is one).
    observed: Vec<Sample>,
    /// The watched metrics' values, to say when an alarmed one changed.
    series: SeriesLog,
    alerts: AlertPolicy,
    record: bool,
    rollback_hook: Option<crate::plan::RollbackHook>,
}

impl SessionTask {
    fn new(plan: Arc<Plan>, shared: Arc<Shared>, start: Start) -> Self {
        let info = Arc::new(DeploymentInfo::of(&start.event, &shared.id));
        let collector = Collector::new(start.checks, start.sources, plan.schedule.min_interval());
        let tracker = VerdictTracker::new(plan.verdict.clone(), collector.check_count());
        let detectors = plan.detector_set();
        let event = Arc::new(StoredEvent::new(start.event));
        let alerts = AlertPolicy::new(start.alerts, Arc::clone(&event), Arc::clone(&info));
        Self {
            detectors,
            control: None,
            baselines: BTreeMap::new(),
            findings: Vec::new(),
            no_data: Vec::new(),
            notes: Vec::new(),
            source_failures: BTreeMap::new(),
            observed: Vec::new(),
            series: SeriesLog::default(),
            alerts,
            record: start.record,
            rollback_hook: start.rollback,
            plan,
            shared,
            event,
            info,
            collector,
            tracker,
            phase: Phase::Pending,
            tick: 0,
            ticks: Timeline::default(),
            started: Instant::now(),
            wall_start: start.wall_start,
            cooldown_started: None,
            extended: false,
            rollback: None,
        }
    }

    /// The session from start to end. Not an `async fn`: the future is built once and
    /// instrumented in place (an `async fn` that instruments an inner future keeps room for it
    /// twice, about 1 KB per session).
    fn run(mut self) -> impl std::future::Future<Output = ()> + Send {
        let span = tracing::info_span!(
            "session",
            session = &*self.shared.id,
            repository = self.info.repository.as_deref().unwrap_or(""),
            environment = self.info.environment.as_deref().unwrap_or(""),
            correlation_id = &*self.info.correlation_id,
        );
        let run = async move {
            // Run once each: boxed, so the task's future is only as large as the tick loop.
            Box::pin(self.begin()).await;
            Box::pin(self.choose_baselines()).await;
            // A panic anywhere in the pipeline (a detector, a stage) ends the session with an
            // inconclusive verdict and a report, instead of leaving `wait()` pending forever.
            let end = match std::panic::AssertUnwindSafe(self.ticking())
                .catch_unwind()
                .await
            {
                Ok(end) => end,
                Err(panic) => {
                    let message = crate::error::panic_message(&*panic);
                    tracing::error!(panic = %message, "the session panicked; it ends inconclusive");
                    (
                        EndReason::InternalError,
                        self.judged(
                            Verdict::Inconclusive,
                            &format!("cased failed while monitoring: {message}"),
                        ),
                    )
                }
            };
            Box::pin(self.finish(end)).await;
        };
        tracing::Instrument::instrument(run, span)
    }

    /// Records the session's start in the history store, if there is one.
    async fn begin(&self) {
        if self.record
            && let Some(h) = &self.plan.history
            && let Err(e) = h
                .begin_session(
                    &self.shared.id,
                    &self.event.event(),
                    (self.wall_start * 1000.0) as u64,
                )
                .await
        {
            tracing::warn!(error = %e, "history: cannot record the session start");
        }
    }

    /// Now on the session's clock, in seconds since the Unix epoch (virtual in a replay).
    fn now_unix(&self) -> f64 {
        self.wall_start + (Instant::now() - self.started).as_secs_f64()
    }

    /// A tick's context: the full one when there are sources to poll, else only the time
    /// (the check samples' timestamp), so a tick without sources builds no variables.
    fn tick_context(&self) -> PollContext {
        if self.collector.has_sources() {
            self.poll_context()
        } else {
            PollContext {
                now: self.now_unix(),
                vars: Default::default(),
            }
        }
    }

    /// What sources are told: the time and the event's template variables (plus
    /// `correlation_id`).
    fn poll_context(&self) -> PollContext {
        let mut ctx = PollContext::from_event(&self.event.event(), self.now_unix());
        ctx.vars
            .insert("correlation_id".into(), self.info.correlation_id.clone());
        ctx
    }

    /// Gives the comparison detectors their baselines (see [`baselines`]).
    async fn choose_baselines(&mut self) {
        let ctx = self.poll_context();
        let (lookback, errors) = self
            .collector
            .lookback(&ctx, self.plan.baseline.pre_deploy)
            .await;
        for e in errors {
            self.notes
                .push(format!("source {}: {}", e.source, e.message));
        }
        let repository = self.info.repository.clone().unwrap_or_default();
        let environment = self.info.environment.clone().unwrap_or_default();
        let from = baselines::Sources {
            provided: &self.plan.baselines,
            provided_counts: &self.plan.baseline_counts,
            lookback: &lookback,
            store: self.plan.baseline_store.as_deref(),
            config: &self.plan.baseline,
            repository: &repository,
            environment: &environment,
            deployment: &self.info.correlation_id,
        };
        self.baselines = baselines::choose(&mut self.detectors, &from).await;
        self.series
            .record_before(&lookback.samples, &lookback.counts, &self.plan.watched);
        if self.record
            && let Some(store) = &self.plan.baseline_store
        {
            // The pre-deploy window read from the sources is kept as this deployment's own.
            let key = |m: &str| {
                crate::metrics::BaselineKey::new(repository.as_str(), environment.as_str(), m)
            };
            for (metric, samples) in group_samples(lookback.samples, &lookback.counts) {
                if let Err(e) = store
                    .record(
                        &key(&metric),
                        &self.info.correlation_id,
                        WindowKind::PreDeploy,
                        &samples,
                    )
                    .await
                {
                    tracing::warn!(error = %e, metric, "baseline store: cannot record the pre-deploy window");
                }
            }
        }
    }

    /// Ticks until the session must end, and says why.
    async fn ticking(&mut self) -> (EndReason, Judgement) {
        let plan = Arc::clone(&self.plan);
        let shared = Arc::clone(&self.shared);
        let schedule = &plan.schedule;
        let mut delays = schedule.delays();
        let deadline = self.started + schedule.max_duration();
        let mut cooldown_end: Option<Instant> = None;
        let mut next_tick = self.started;
        // One timer, reset to whatever is due first: a tick, a source's own poll or the end.
        let sleep = tokio::time::sleep_until(next_tick);
        tokio::pin!(sleep);
        loop {
            // Registered before the state is read, so a change from now on wakes the loop.
            let changed = shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let state = shared.state().control;
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
            // A source's own poll is only due first when it comes before the tick and the end.
            let source_due = self
                .collector
                .next_due()
                .filter(|&t| t < next_tick.min(end_at));
            let (wake, due) = match source_due {
                Some(t) => (t, Due::Source),
                None if next_tick <= end_at => (next_tick, Due::Tick),
                None => (end_at, Due::End),
            };
            sleep.as_mut().reset(wake);
            tokio::select! {
                biased;
                () = &mut changed => {}
                () = &mut sleep => match due {
                    Due::End => {
                        // What the sources saw since the last tick is judged before the end.
                        if let Some(end) = Box::pin(self.final_look()).await {
                            return end;
                        }
                        if end_at >= deadline {
                            return (EndReason::MaxDuration, self.tracker.conclude());
                        }
                        if !self.tracker.has_enough_data() && self.plan.verdict.no_data == crate::NoDataPolicy::Extend {
                            tracing::info!("not enough data at the end of the cool-down; extending");
                            self.extended = true;
                            continue;
                        }
                        return (EndReason::CooldownElapsed, self.tracker.conclude());
                    }
                    Due::Source => {
                        // Boxed: only sources with their own cadence poll between ticks.
                        Box::pin(self.poll_due()).await;
                    }
                    Due::Tick => {
                        let late = Instant::now().saturating_duration_since(next_tick);
                        let tick_started = Instant::now();
                        next_tick = tick_started + delays.next_delay();
                        // Boxed: what a tick holds while it waits (the checks' futures, the
                        // update being recorded) takes room only while the tick runs.
                        if let Some(end) = Box::pin(self.tick_once(tick_started, late, next_tick, deadline)).await {
                            return end;
                        }
                    }
                }
            }
        }
    }

    /// One tick: collect, run the pipeline over it, record; returns the session's end when it
    /// must end.
    async fn tick_once(
        &mut self,
        tick_started: Instant,
        late: Duration,
        next_tick: Instant,
        deadline: Instant,
    ) -> Option<(EndReason, Judgement)> {
        let ctx = self.tick_context();
        // A check's own timeout may be longer than the interval and is honoured, so a tick
        // can run past the next one; it never runs past `max_duration`, and a cancelled or
        // failed deployment stops it at once (its checks are dropped, their programs killed).
        let shared = Arc::clone(&self.shared);
        let collected = tokio::select! {
            biased;
            c = self.collector.collect(&ctx, true) => Some(c),
            () = tokio::time::sleep_until(deadline) => None,
            () = stopped(&shared) => return None,
        };
        drop(ctx);
        let Some(collected) = collected else {
            tracing::info!("max_duration reached during a tick; its checks were stopped");
            return Some((EndReason::MaxDuration, self.tracker.conclude()));
        };
        let (update, alerts) = self.run_tick(
            collected,
            tick_started - self.started,
            late,
            Some(next_tick),
        );
        self.persist(&update, &alerts).await;
        if let Some(end) = self.terminal().await {
            return Some(end);
        }
        if self.extended && self.tracker.has_enough_data() {
            return Some((EndReason::CooldownElapsed, self.tracker.conclude()));
        }
        None
    }

    /// Polls the sources with their own cadence that are due now.
    async fn poll_due(&mut self) {
        let ctx = self.poll_context();
        self.collector.poll_due(&ctx).await;
    }

    /// The session's end when the verdict became terminal (the rollback hook fired when
    /// unhealthy).
    async fn terminal(&mut self) -> Option<(EndReason, Judgement)> {
        let j = self.tracker.terminal().cloned()?;
        let reason = if j.verdict == Verdict::Unhealthy {
            EndReason::Unhealthy
        } else {
            EndReason::ErrorLimit
        };
        if j.verdict == Verdict::Unhealthy {
            Box::pin(self.fire_rollback(&j)).await;
        }
        Some((reason, j))
    }

    /// One last poll of the sources (no checks) when the session ends normally, so what they
    /// saw since the last tick is judged too.
    async fn final_look(&mut self) -> Option<(EndReason, Judgement)> {
        let ctx = self.poll_context();
        let mut collected = self.collector.collect(&ctx, false).await;
        Pushed::into_polled(
            std::mem::take(&mut *self.shared.pending.lock().expect("pending lock")),
            &mut collected.polled,
        );
        if collected.polled.is_empty() {
            return None;
        }
        let (update, alerts) = self.run_tick(
            collected,
            Instant::now() - self.started,
            Duration::ZERO,
            None,
        );
        self.persist(&update, &alerts).await;
        self.terminal().await
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

    /// The rules the detector behind `f` set for its findings.
    fn rules(&self, f: &Finding) -> FindingRules {
        self.plan
            .detector(&f.metric, &f.detector)
            .map(crate::plan::rules_of)
            .unwrap_or_default()
    }

    /// One pass of the pipeline over what was collected: detect, judge, alert, publish; returns
    /// the update and the alerts to record (see [`Self::persist`]). Synchronous, so the task's
    /// future keeps no room for what was collected while it waits.
    fn run_tick(
        &mut self,
        mut collected: Collected,
        elapsed: Duration,
        late: Duration,
        next_tick: Option<Instant>,
    ) -> (Arc<StatusUpdate>, Vec<crate::history::AlertRecord>) {
        self.tick += 1;
        if self.phase == Phase::Pending {
            self.phase = Phase::Active;
        }
        Pushed::into_polled(
            std::mem::take(&mut *self.shared.pending.lock().expect("pending lock")),
            &mut collected.polled,
        );
        // detect (a panicking detector loses this tick's findings, noted in the report)
        let polled = &collected.polled;
        let detected =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.detect(polled)));
        let mut findings = detected.unwrap_or_else(|panic| {
            let note = format!(
                "a detector panicked: {}",
                crate::error::panic_message(&*panic)
            );
            tracing::error!(tick = self.tick, "{note}");
            if !self.notes.contains(&note) {
                self.notes.push(note);
            }
            Vec::new()
        });
        for f in &mut findings {
            f.tick = Some(self.tick);
        }
        // judge
        let view: Vec<(&str, CheckStatus, &str)> = collected
            .checks
            .iter()
            .map(|r| (&*r.name, r.status, r.message.as_str()))
            .collect();
        let data = !collected.polled.samples.is_empty() || !collected.polled.counts.is_empty();
        self.tracker.record_tick_with(&view, data);
        for f in &findings {
            let rules = self.rules(f);
            self.tracker.record_finding(f, rules);
        }
        // alert
        let mut records = Vec::new();
        for f in &findings {
            let rules = self.rules(f);
            records.extend(self.alerts.finding(f, rules));
        }
        // record
        for e in &collected.errors {
            tracing::warn!(source = %e.source, error = %e.message, "source not read");
            let f = self
                .source_failures
                .entry(e.source.clone())
                .or_insert((0, String::new()));
            f.0 += 1;
            f.1.clone_from(&e.message);
        }
        self.findings.extend(findings.iter().cloned());
        let judgement = self.tracker.current();
        tracing::debug!(tick = self.tick, verdict = %judgement.verdict, "tick done");
        self.ticks.push(
            self.tick,
            self.phase,
            elapsed,
            late,
            &collected.checks,
            judgement.verdict,
        );
        let next_in = next_tick.map(|t| t.saturating_duration_since(Instant::now()));
        let update = self.publish(
            collected.checks,
            findings,
            judgement,
            next_in,
            collected.errors,
        );
        (update, records)
    }

    /// Feeds the tick's data to the detectors, in time order, control first, then takes one look
    /// per comparison detector; returns the new findings.
    fn detect(&mut self, polled: &Polled) -> Vec<Finding> {
        if self.control.is_none()
            && (!polled.control_samples.is_empty() || !polled.control_counts.is_empty())
        {
            self.control = Some(Box::default());
        }
        let control = self.control.as_deref_mut();
        for (metric, phrase) in control
            .map(|c| c.update(&mut self.detectors, polled))
            .unwrap_or_default()
        {
            self.baselines.insert(metric, phrase);
        }
        let mut samples: Vec<&Sample> = polled.samples.iter().collect();
        samples.sort_by(|a, b| a.timestamp.total_cmp(&b.timestamp));
        let mut findings = Vec::new();
        for sample in samples {
            if self.plan.watched.contains(&sample.metric) {
                self.series
                    .record(&sample.metric, sample.timestamp, sample.value);
            }
            match self.detectors.observe(sample) {
                Ok(f) => findings.extend(f),
                Err(e) => tracing::warn!(error = %e, metric = %sample.metric, "sample not used"),
            }
        }
        let mut counts: Vec<_> = polled.counts.iter().collect();
        counts.sort_by(|a, b| a.timestamp.total_cmp(&b.timestamp));
        for c in counts {
            if self.plan.watched.contains(&c.metric) {
                self.series.record_counts(c);
            }
            match self.detectors.observe_counts(&c.metric, c.counts) {
                // Each interval's counts are judged at their own index (the detector spaces its
                // looks by its `look_growth`).
                Ok(()) => findings.extend(self.detectors.evaluate_metric(&c.metric).findings),
                Err(e) => tracing::warn!(error = %e, metric = %c.metric, "counts not used"),
            }
        }
        if self.record && self.plan.baseline_store.is_some() {
            let watched = &self.plan.watched;
            self.observed.extend(
                polled
                    .samples
                    .iter()
                    .filter(|s| watched.contains(&s.metric))
                    .cloned(),
            );
            for (metric, samples) in group_samples(Vec::new(), &polled.counts) {
                self.observed.extend(samples.into_iter().map(|mut s| {
                    s.metric.clone_from(&metric);
                    s
                }));
            }
        }
        let evaluation = self.detectors.evaluate();
        self.no_data = evaluation.no_data;
        findings.extend(evaluation.findings);
        findings
    }

    /// Writes an update and its alerts to the history store, if there is one; failures are
    /// logged.
    async fn persist(&self, update: &StatusUpdate, alerts: &[crate::history::AlertRecord]) {
        if !self.record {
            return;
        }
        let Some(h) = &self.plan.history else { return };
        if let Err(e) = h.record_update(update).await {
            tracing::warn!(error = %e, tick = update.tick, "history: cannot record a tick");
        }
        for a in alerts {
            if let Err(e) = h.record_alert(&self.shared.id, a).await {
                tracing::warn!(error = %e, "history: cannot record an alert");
            }
        }
    }

    fn publish(
        &self,
        checks: Vec<CheckResult>,
        findings: Vec<Finding>,
        judgement: Judgement,
        next_tick_in: Option<Duration>,
        source_errors: Vec<crate::update::SourceError>,
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
            source_errors,
        });
        *self.shared.latest.lock().expect("latest lock") = Some(Arc::clone(&update));
        // No listener is fine: updates are also kept in the report's timeline.
        if let Some(tx) = self.shared.updates.get() {
            let _ = tx.send(Arc::clone(&update));
        }
        update
    }

    async fn fire_rollback(&mut self, judgement: &Judgement) {
        let Some(hook) = self.rollback_hook.clone() else {
            return;
        };
        tracing::warn!(reason = %judgement.reason, "deployment unhealthy; firing the rollback hook");
        let ctx = RollbackContext {
            session_id: self.shared.id.to_string(),
            event: self.event.event(),
            reason: judgement.reason.clone(),
        };
        let elapsed = Instant::now() - self.started;
        let error = hook.fire(ctx).await;
        if let Some(e) = &error {
            tracing::error!(error = %e, "the rollback hook failed");
        }
        self.rollback = Some(Box::new(RollbackRecord { elapsed, error }));
    }

    /// The compared metrics that could not be judged, and why.
    fn unjudged(&self) -> Vec<Unjudged> {
        self.no_data
            .iter()
            .map(|metric| Unjudged {
                metric: metric.clone(),
                no_baseline: !self.baselines.contains_key(metric),
                must_have_data: self
                    .plan
                    .detectors
                    .iter()
                    .filter(|d| &d.metric == metric)
                    .any(|d| crate::plan::rules_of(d).must_have_data),
            })
            .collect()
    }

    async fn finish(&mut self, (ended_by, judgement): (EndReason, Judgement)) {
        self.phase = Phase::Finished;
        tracing::info!(verdict = %judgement.verdict, reason = %judgement.reason, ?ended_by, "session finished");
        // What the checks and findings said, before a missing baseline changed it: a first
        // deployment with healthy checks is what the next ones are compared against.
        let checks_verdict = judgement.verdict;
        let normal_end = matches!(
            ended_by,
            EndReason::CooldownElapsed | EndReason::MaxDuration
        );
        let judgement = if normal_end {
            let (j, notes) = crate::verdict::judge_unjudged(
                judgement,
                &self.unjudged(),
                self.plan.verdict.no_data,
            );
            self.notes.extend(notes);
            j
        } else {
            judgement
        };
        for (source, (n, last)) in &self.source_failures {
            let times = if *n == 1 { "once" } else { "times" };
            let n = if *n == 1 {
                String::new()
            } else {
                format!("{n} ")
            };
            self.notes.push(format!(
                "source {source} could not be read {n}{times}; last: {last}"
            ));
        }
        let records: Vec<_> = self
            .alerts
            .verdict(&judgement, &self.findings)
            .into_iter()
            .collect();
        // The report holds the outcome of every alert of the session, the verdict's included.
        if let Some(m) = self.alerts.manager() {
            m.flush_group(self.alerts.group(), crate::limits::ALERT_FLUSH_GRACE)
                .await;
        }
        let last = self.publish(Vec::new(), Vec::new(), judgement.clone(), None, Vec::new());
        self.persist(&last, &records).await;
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
                let mut sorted: Vec<f64> = w.values.iter().copied().collect();
                sorted.sort_unstable_by(f64::total_cmp);
                let median = (n > 0).then(|| (sorted[(n - 1) / 2] + sorted[n / 2]) / 2.0);
                (
                    k.to_string(),
                    MetricSummary {
                        count: w.count,
                        window: n,
                        last,
                        mean,
                        median,
                    },
                )
            })
            .collect::<BTreeMap<_, _>>();
        let group = self.alerts.group().to_owned();
        let changes = self.series.locate(&self.findings, self.wall_start);
        let report = Report {
            session_id: Arc::clone(&self.shared.id),
            event: self.event.event(),
            verdict: judgement.verdict,
            reason: judgement.reason,
            ended_by,
            started_at_unix_ms: (self.wall_start * 1000.0) as u64,
            duration: Instant::now() - self.started,
            cooldown_started: self.cooldown_started,
            extended: self.extended,
            counters: self.tracker.counters().clone(),
            ticks: std::mem::take(&mut self.ticks).into_records(),
            findings: std::mem::take(&mut self.findings),
            metrics,
            rollback: self.rollback.take().map(|r| *r),
            alerts: self.alerts.take_fired(),
            alert_failures: self.alerts.manager().map_or_else(Vec::new, |m| {
                m.failures()
                    .iter()
                    .filter(|r| r.group_key == group)
                    .map(|r| AlertFailure::from(&**r))
                    .collect()
            }),
            alert_retries: self.alerts.manager().map_or_else(Vec::new, |m| {
                m.retried()
                    .iter()
                    .filter(|r| r.group_key == group)
                    .map(|r| crate::update::AlertRetry::from(&**r))
                    .collect()
            }),
            no_data: self.no_data.clone(),
            baselines: self.baselines.clone(),
            notes: std::mem::take(&mut self.notes),
            changes,
        };
        if self.record {
            self.record_baselines(checks_verdict).await;
            // Stored before waiters see it, so a caller who got the report can query history for it.
            if let Some(h) = &self.plan.history
                && let Err(e) = h.record_report(&report).await
            {
                tracing::warn!(error = %e, "history: cannot record the report");
            }
        }
        let report = Arc::new(report);
        self.shared.modify(|s| {
            s.report = Some(report);
            true
        });
    }

    /// Hands this deployment's samples and outcome to the baseline store, if there is one. The
    /// outcome is healthy when the checks and findings were (`verdict`, before the no-data
    /// rules), so the first deployment can become the baseline of the next.
    async fn record_baselines(&mut self, verdict: Verdict) {
        let Some(store) = self.plan.baseline_store.clone() else {
            return;
        };
        let id = self.info.correlation_id.clone();
        let repo = self.info.repository.clone().unwrap_or_default();
        let env = self.info.environment.clone().unwrap_or_default();
        let mut by_metric: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
        for s in std::mem::take(&mut self.observed) {
            by_metric.entry(s.metric.clone()).or_default().push(s);
        }
        for (metric, samples) in by_metric {
            let key =
                crate::metrics::BaselineKey::new(repo.as_str(), env.as_str(), metric.as_str());
            if let Err(e) = store
                .record(&key, &id, WindowKind::Deployment, &samples)
                .await
            {
                tracing::warn!(error = %e, metric, "baseline store: cannot record the samples");
            }
        }
        if let Err(e) = store
            .set_outcome(&repo, &env, &id, verdict == Verdict::Healthy)
            .await
        {
            tracing::warn!(error = %e, "baseline store: cannot record the outcome");
        }
    }
}

/// Samples per metric for the baseline store, counts as two series (`<metric>:errors`,
/// `<metric>:requests`).
fn group_samples(
    samples: Vec<Sample>,
    counts: &[crate::metrics::CountsSample],
) -> BTreeMap<String, Vec<Sample>> {
    let mut out: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
    for s in samples {
        out.entry(s.metric.clone()).or_default().push(s);
    }
    for c in counts {
        let (e, r) = baselines::count_series(&c.metric);
        out.entry(e.clone())
            .or_default()
            .push(Sample::at(e, c.timestamp, c.counts.errors as f64));
        out.entry(r.clone()).or_default().push(Sample::at(
            r,
            c.timestamp,
            c.counts.requests as f64,
        ));
    }
    out
}

/// What [`Session::record_to`] leaves: the session's report and the writes that failed.
#[derive(Debug)]
pub struct Recorded {
    /// The session's final report.
    pub report: Report,
    /// Every write that failed (logged as they happened); empty when all were kept.
    pub errors: Vec<crate::Error>,
}

/// Follows `session` to its end, writing its start, every update and its final report to
/// `store`, and returns the report. A failed write is logged and collected, never fatal: the
/// session goes on, and the final report write fills in what the updates missed.
///
/// Call it right after [`Monitor::start`](crate::Monitor::start) with the same event (a monitor
/// built with [`MonitorBuilder::history`](crate::MonitorBuilder::history) records by itself).
pub async fn record_session(
    store: &dyn HistoryStore,
    session: &Session,
    event: &DeploymentEvent,
) -> Recorded {
    let mut errors = Vec::new();
    let keep = |r: Result<()>, errors: &mut Vec<crate::Error>| {
        if let Err(e) = r {
            tracing::warn!(session = session.id(), error = %e, "history write failed");
            errors.push(e);
        }
    };
    let mut updates = session.updates();
    let started = crate::history::now_unix_ms();
    keep(
        store.begin_session(session.id(), event, started).await,
        &mut errors,
    );
    while let Some(item) = updates.next().await {
        if let UpdateEvent::Update(u) = item {
            keep(store.record_update(&u).await, &mut errors);
        }
    }
    let report = session.wait().await;
    keep(store.record_report(&report).await, &mut errors);
    Recorded { report, errors }
}

impl Session {
    /// Records this session in `store` as it runs; see [`record_session`].
    pub async fn record_to(&self, store: &dyn HistoryStore, event: &DeploymentEvent) -> Recorded {
        record_session(store, self, event).await
    }
}
