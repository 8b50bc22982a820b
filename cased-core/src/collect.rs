//! The first stage of a session tick: **collect** what there is to judge — the checks' outcomes
//! (and their latency and success as samples), what the sources return, and what the caller
//! pushed. Every fault is an outcome: a check that does not answer within its timeout is a
//! `fail` result, a source that fails or hangs is a [`SourceError`], and one that panics is
//! caught and reported the same way: nothing panics the session.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tokio::time::Instant;

use crate::check::{CheckOutcome, CheckStatus, HealthCheck};
use crate::detect::Counts;
use crate::metrics::{CountsSample, PollContext, Polled, Sample, Source, SourcePlan};
use crate::update::{CheckResult, SourceError};

/// One source of a session and when it is next due.
#[derive(Debug)]
struct Slot {
    name: String,
    every: Option<Duration>,
    next: Option<Instant>,
    source: Box<dyn Source>,
}

/// What one collection gathered.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    pub(crate) checks: Vec<CheckResult>,
    pub(crate) polled: Polled,
    pub(crate) errors: Vec<SourceError>,
}

/// The checks and sources of one session.
#[derive(Debug)]
pub(crate) struct Collector {
    /// Each check with its name, made once (every result of the check shares it).
    checks: Vec<(Arc<str>, Arc<dyn HealthCheck>)>,
    slots: Vec<Slot>,
    /// No poll, and no check without a timeout of its own, may run longer than this (the
    /// schedule's smallest interval).
    cap: Duration,
    /// Data polled between ticks by sources with their own cadence, waiting for the next tick
    /// (boxed when there is some: most sessions have no such source).
    buffered: Option<Box<Buffered>>,
}

/// What sources with their own cadence polled since the last tick.
#[derive(Debug, Default)]
struct Buffered {
    polled: Polled,
    errors: Vec<SourceError>,
}

impl Collector {
    pub(crate) fn new(
        checks: Vec<Arc<dyn HealthCheck>>,
        sources: Vec<(String, Option<Duration>, Box<dyn Source>)>,
        cap: Duration,
    ) -> Self {
        let slots = sources
            .into_iter()
            .map(|(name, every, source)| Slot {
                name,
                every,
                next: None,
                source,
            })
            .collect();
        Self {
            checks: checks
                .into_iter()
                .map(|c| (Arc::from(c.name()), c))
                .collect(),
            slots,
            cap,
            buffered: None,
        }
    }

    /// Starts one source per plan.
    pub(crate) fn start_sources(
        plans: &[SourcePlan],
    ) -> Vec<(String, Option<Duration>, Box<dyn Source>)> {
        plans
            .iter()
            .map(|p| (p.name().to_owned(), p.every(), p.start()))
            .collect()
    }

    /// Whether there are sources to poll.
    pub(crate) fn has_sources(&self) -> bool {
        !self.slots.is_empty()
    }

    /// How many checks run at each tick.
    pub(crate) fn check_count(&self) -> usize {
        self.checks.len()
    }

    /// When the next source with its own cadence is due, if any.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.slots
            .iter()
            .filter(|s| s.every.is_some())
            .filter_map(|s| s.next)
            .min()
    }

    /// Reads the window before the deployment from every source that can look back.
    pub(crate) async fn lookback(
        &mut self,
        ctx: &PollContext,
        window: Duration,
    ) -> (Polled, Vec<SourceError>) {
        let mut out = Polled::default();
        let mut errors = Vec::new();
        if window.is_zero() {
            return (out, errors);
        }
        for slot in &mut self.slots {
            let look = std::panic::AssertUnwindSafe(slot.source.lookback(ctx, window));
            match tokio::time::timeout(self.cap.max(Duration::from_secs(1)), look.catch_unwind())
                .await
            {
                Ok(Ok(Ok(Some(p)))) => out.extend(p),
                Ok(Ok(Ok(None))) => {}
                Ok(Err(panic)) => errors.push(SourceError {
                    source: slot.name.clone(),
                    message: format!(
                        "cannot read the pre-deploy window: the source panicked: {}",
                        crate::error::panic_message(&*panic)
                    ),
                }),
                Ok(Ok(Err(e))) => errors.push(SourceError {
                    source: slot.name.clone(),
                    message: format!("cannot read the pre-deploy window: {e}"),
                }),
                Err(_) => errors.push(SourceError {
                    source: slot.name.clone(),
                    message: format!(
                        "the pre-deploy window was not read within {} ms",
                        self.cap.max(Duration::from_secs(1)).as_millis()
                    ),
                }),
            }
        }
        (out, errors)
    }

    /// Polls the sources with their own cadence that are due now; their data waits for the
    /// next tick.
    pub(crate) async fn poll_due(&mut self, ctx: &PollContext) {
        let now = Instant::now();
        let cap = self.cap;
        for slot in self
            .slots
            .iter_mut()
            .filter(|s| s.every.is_some() && s.next.is_some_and(|n| n <= now))
        {
            let (p, e) = poll_one(slot, ctx, cap).await;
            let buffered = self.buffered.get_or_insert_default();
            buffered.polled.extend(p);
            buffered.errors.extend(e);
            slot.next = Some(now + slot.every.unwrap_or(cap));
        }
    }

    /// Polls the sources that follow the ticks (and those with their own cadence that have not
    /// been polled yet).
    async fn poll_ticked(
        &mut self,
        ctx: &PollContext,
        polled: &mut Polled,
        errors: &mut Vec<SourceError>,
    ) {
        let cap = self.cap;
        let now = Instant::now();
        for slot in &mut self.slots {
            if slot.every.is_some() && slot.next.is_some() {
                continue;
            }
            let (p, e) = poll_one(slot, ctx, cap).await;
            polled.extend(p);
            errors.extend(e);
            if let Some(every) = slot.every {
                slot.next = Some(now + every);
            }
        }
    }

    /// One tick's collection: every check (concurrently), every source without its own cadence,
    /// and what was buffered since the last tick.
    pub(crate) async fn collect(&mut self, ctx: &PollContext, checks_too: bool) -> Collected {
        let cap = self.cap;
        let results: Vec<CheckResult> = if checks_too {
            futures::future::join_all(
                self.checks
                    .iter()
                    .map(|(name, c)| run_one(Arc::clone(name), Arc::clone(c), cap)),
            )
            .await
        } else {
            Vec::new()
        };
        let Buffered {
            mut polled,
            mut errors,
        } = self.buffered.take().map(|b| *b).unwrap_or_default();
        if self.has_sources() {
            // Boxed: a session without sources keeps no room for a poll in its task.
            Box::pin(self.poll_ticked(ctx, &mut polled, &mut errors)).await;
        }
        for r in results.iter().filter(|r| r.status != CheckStatus::Error) {
            polled.samples.push(Sample::at(
                format!("{}.latency_ms", r.name),
                ctx.now,
                r.latency.as_secs_f64() * 1000.0,
            ));
            let ok = matches!(r.status, CheckStatus::Pass | CheckStatus::Warn);
            polled.samples.push(Sample::at(
                format!("{}.success", r.name),
                ctx.now,
                if ok { 1.0 } else { 0.0 },
            ));
        }
        Collected {
            checks: results,
            polled,
            errors,
        }
    }
}

async fn poll_one(slot: &mut Slot, ctx: &PollContext, cap: Duration) -> (Polled, Vec<SourceError>) {
    let poll = std::panic::AssertUnwindSafe(slot.source.poll(ctx)).catch_unwind();
    match tokio::time::timeout(cap, poll).await {
        Ok(Err(panic)) => (
            Polled::default(),
            vec![SourceError {
                source: slot.name.clone(),
                message: format!(
                    "the poll panicked: {}",
                    crate::error::panic_message(&*panic)
                ),
            }],
        ),
        Ok(Ok(Ok(p))) => (p, Vec::new()),
        Ok(Ok(Err(e))) => (
            Polled::default(),
            vec![SourceError {
                source: slot.name.clone(),
                message: e.to_string(),
            }],
        ),
        Err(_) => (
            Polled::default(),
            vec![SourceError {
                source: slot.name.clone(),
                message: format!("the poll did not finish within {} ms", cap.as_millis()),
            }],
        ),
    }
}

/// A pushed value or counts, waiting for the next tick.
#[derive(Debug)]
pub(crate) enum Pushed {
    Value(Box<str>, f64, f64),
    Counts(Box<str>, Counts, f64),
}

impl Pushed {
    /// Adds the pushed data to a collection.
    pub(crate) fn into_polled(items: Vec<Self>, polled: &mut Polled) {
        for p in items {
            match p {
                Self::Value(metric, value, at) => {
                    polled
                        .samples
                        .push(Sample::at(metric.to_string(), at, value))
                }
                Self::Counts(metric, counts, at) => polled.counts.push(CountsSample {
                    labels: Default::default(),
                    metric: metric.to_string(),
                    timestamp: at,
                    counts,
                }),
            }
        }
    }
}

/// Runs one check under its own timeout, honoured in full even when it is longer than the
/// schedule's intervals (the tick waits for it; the next tick starts late). A check that does
/// not answer within its timeout is a `fail` (`timed out after …`): the target did not answer.
/// A check without a timeout of its own (a custom check) is given the schedule's smallest
/// interval; one that does not finish by then is an `error`, as cased cannot tell whether the
/// target or the check's own code hung.
async fn run_one(name: Arc<str>, check: Arc<dyn HealthCheck>, cap: Duration) -> CheckResult {
    let own = check.timeout();
    let limit = own.unwrap_or(cap);
    let started = Instant::now();
    // A panicking check is an `error` outcome of that check; the session goes on.
    let run = std::panic::AssertUnwindSafe(check.check()).catch_unwind();
    let outcome = match tokio::time::timeout(limit, run).await {
        Ok(Ok(o)) => o,
        Ok(Err(panic)) => {
            let message = crate::error::panic_message(&*panic);
            CheckOutcome::error(format!("the check panicked: {message}"))
                .with_evidence(serde_json::json!({"error": "panic", "panic": message}))
                .with_latency(started.elapsed())
        }
        // The check's own timeout: the target did not answer in time.
        Err(_) if own.is_some() => {
            CheckOutcome::fail(format!("timed out after {} ms", limit.as_millis()))
                .with_latency(started.elapsed())
                .with_evidence(serde_json::json!({
                    "error": "timeout",
                    "expected": format!("an answer within {} ms", limit.as_millis()),
                    "got": "no answer",
                    "elapsed_ms": started.elapsed().as_secs_f64() * 1000.0,
                }))
        }
        Err(_) => CheckOutcome::error(format!(
            "the check did not finish within {} ms",
            limit.as_millis()
        ))
        .with_latency(started.elapsed()),
    };
    CheckResult {
        name,
        category: check.category(),
        status: outcome.status,
        latency: outcome.latency,
        message: outcome.message,
        evidence: outcome.evidence.unwrap_or_default(),
    }
}
