//! **Replay**: a recorded deployment ([`Recording`]) driven through the same session pipeline
//! on a virtual clock — no wall clock, no sleeping. The recording's samples and counts stand in
//! for the configured sources (those before `started_at` are the pre-deploy window), its check
//! outcomes for the configured checks; schedule, detectors, baselines and verdict rules come
//! from the monitor's configuration. It is how a policy is backtested on past deployments and
//! how detection quality is scored.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::check::{CheckCategory, CheckOutcome, CheckStatus, HealthCheck};
use crate::detect::Counts;
use crate::error::{Problems, Result};
use crate::metrics::{CountsSample, PollContext, Polled, Sample, Source};

/// Counts recorded for one metric at one time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedCounts {
    /// The metric (as the error-rate detectors name it).
    pub metric: String,
    /// End of the interval, in seconds since the Unix epoch.
    pub timestamp: f64,
    /// Failed requests in the interval.
    pub errors: u64,
    /// All requests in the interval.
    pub requests: u64,
}

/// One recorded check outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedCheck {
    /// The check's name.
    pub name: String,
    /// When it ran, in seconds after the deployment started.
    pub at: f64,
    /// What it found.
    pub status: CheckStatus,
    /// How long it took.
    #[serde(default)]
    pub latency_ms: f64,
    /// Its message.
    #[serde(default)]
    pub message: String,
    /// What it was about.
    #[serde(default)]
    pub category: CheckCategory,
    /// Its evidence (`null` when none).
    #[serde(default)]
    pub evidence: serde_json::Value,
}

impl RecordedCheck {
    /// The check outcomes of a session's ticks (a report's timeline, or history's), each at its
    /// tick's time.
    #[must_use]
    pub fn of_ticks(ticks: &[crate::update::TickRecord]) -> Vec<Self> {
        ticks
            .iter()
            .flat_map(|t| {
                t.checks.iter().map(|c| Self {
                    name: c.name.to_string(),
                    at: t.elapsed.as_secs_f64(),
                    status: c.status,
                    latency_ms: c.latency.as_secs_f64() * 1000.0,
                    message: c.message.clone(),
                    category: c.category,
                    evidence: c.evidence.clone(),
                })
            })
            .collect()
    }
}

/// A recorded deployment: what the sources and checks saw, with times.
///
/// ```json
/// {"started_at": 1764763200,
///  "samples": [{"metric": "api.p95_ms", "timestamp": 1764763190, "value": 41.0}],
///  "counts": [{"metric": "api.http", "timestamp": 1764763210, "errors": 3, "requests": 2000}],
///  "checks": [{"name": "web", "at": 0, "status": "pass", "latency_ms": 12.5}],
///  "completed_after": 0}
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recording {
    /// When the deployment started, in seconds since the Unix epoch: the session's time 0.
    pub started_at: f64,
    /// Seconds after `started_at` at which the deployment reported success (the cool-down
    /// starts then); absent: the event's own status decides, as in a live session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_after: Option<f64>,
    /// Value samples; those before `started_at` form the pre-deploy window.
    #[serde(default)]
    pub samples: Vec<Sample>,
    /// Counts for error-rate detectors; those before `started_at` form the pre-deploy window.
    #[serde(default)]
    pub counts: Vec<RecordedCounts>,
    /// Samples of the control (stable) track.
    #[serde(default)]
    pub control_samples: Vec<Sample>,
    /// Counts of the control track.
    #[serde(default)]
    pub control_counts: Vec<RecordedCounts>,
    /// Check outcomes; at each tick a check gives its latest outcome recorded at or before
    /// that time.
    #[serde(default)]
    pub checks: Vec<RecordedCheck>,
}

impl Recording {
    /// Reads a recording from a JSON value (a dict or object passed through by a binding).
    ///
    /// # Errors
    /// [`Error::Validation`](crate::Error) naming the offending field, e.g. `samples[3].value`.
    pub fn from_value(value: serde_json::Value) -> Result<Self> {
        let r: Self = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." || path.is_empty() {
                "recording".to_owned()
            } else {
                path
            };
            crate::Error::invalid(field, e.inner().to_string())
        })?;
        r.validate()?;
        Ok(r)
    }

    /// Checks every value.
    ///
    /// # Errors
    /// [`Error::Validation`](crate::Error) naming every bad field.
    pub fn validate(&self) -> Result<()> {
        let mut p = Problems::default();
        if !(self.started_at.is_finite() && self.started_at >= 0.0) {
            p.add(
                "started_at",
                "must be a finite number of seconds since the Unix epoch",
            );
        }
        if let Some(c) = self.completed_after
            && !(c.is_finite() && (0.0..=crate::MAX_SCHEDULE_SPAN.as_secs_f64()).contains(&c))
        {
            p.add(
                "completed_after",
                "must be between 0 and 7 days, in seconds",
            );
        }
        for (field, samples) in [
            ("samples", &self.samples),
            ("control_samples", &self.control_samples),
        ] {
            for (i, s) in samples.iter().enumerate() {
                if s.metric.trim().is_empty() {
                    p.add(format!("{field}[{i}].metric"), "must not be empty");
                }
                if !s.timestamp.is_finite() {
                    p.add(format!("{field}[{i}].timestamp"), "must be a finite number");
                }
                if !s.value.is_finite() {
                    p.add(
                        format!("{field}[{i}].value"),
                        format!("{} is not a finite number", s.value),
                    );
                }
            }
        }
        for (field, counts) in [
            ("counts", &self.counts),
            ("control_counts", &self.control_counts),
        ] {
            for (i, c) in counts.iter().enumerate() {
                if c.metric.trim().is_empty() {
                    p.add(format!("{field}[{i}].metric"), "must not be empty");
                }
                if !c.timestamp.is_finite() {
                    p.add(format!("{field}[{i}].timestamp"), "must be a finite number");
                }
                if c.errors > c.requests {
                    p.add(
                        format!("{field}[{i}].errors"),
                        format!("{} errors out of {} requests", c.errors, c.requests),
                    );
                }
            }
        }
        for (i, c) in self.checks.iter().enumerate() {
            if c.name.trim().is_empty() {
                p.add(format!("checks[{i}].name"), "must not be empty");
            }
            if !(c.at.is_finite() && c.at >= 0.0) {
                p.add(
                    format!("checks[{i}].at"),
                    "must be a finite number of seconds ≥ 0",
                );
            }
            if !(c.latency_ms.is_finite() && c.latency_ms >= 0.0) {
                p.add(
                    format!("checks[{i}].latency_ms"),
                    "must be a finite number ≥ 0",
                );
            }
        }
        p.finish("recording")
    }

    /// The source standing in for the configured ones.
    pub(crate) fn source(&self) -> RecordedSource {
        let counts = |v: &[RecordedCounts]| {
            let mut out: Vec<CountsSample> = v
                .iter()
                .map(|c| CountsSample {
                    labels: Default::default(),
                    metric: c.metric.clone(),
                    timestamp: c.timestamp,
                    counts: Counts {
                        errors: c.errors,
                        requests: c.requests,
                    },
                })
                .collect();
            out.sort_by(|a, b| a.timestamp.total_cmp(&b.timestamp));
            out
        };
        let sorted = |v: &[Sample]| {
            let mut out = v.to_vec();
            out.sort_by(|a, b| a.timestamp.total_cmp(&b.timestamp));
            out
        };
        RecordedSource {
            started_at: self.started_at,
            data: Polled {
                samples: sorted(&self.samples),
                counts: counts(&self.counts),
                control_samples: sorted(&self.control_samples),
                control_counts: counts(&self.control_counts),
            },
            cursor: [0; 4],
        }
    }

    /// The checks standing in for the configured ones, one per recorded name, in first-seen
    /// order.
    pub(crate) fn checks(&self, start: Instant) -> Vec<Arc<dyn HealthCheck>> {
        let mut by_name: BTreeMap<&str, Vec<&RecordedCheck>> = BTreeMap::new();
        let mut order = Vec::new();
        for c in &self.checks {
            if !by_name.contains_key(c.name.as_str()) {
                order.push(c.name.as_str());
            }
            by_name.entry(&c.name).or_default().push(c);
        }
        order
            .into_iter()
            .map(|name| {
                let mut runs: Vec<RecordedCheck> =
                    by_name[name].iter().map(|c| (*c).clone()).collect();
                runs.sort_by(|a, b| a.at.total_cmp(&b.at));
                Arc::new(RecordedCheckRun {
                    name: name.to_owned(),
                    runs,
                    start: Mutex::new(start),
                }) as Arc<dyn HealthCheck>
            })
            .collect()
    }
}

/// Gives the recorded samples as a source would have: each poll returns what was recorded up
/// to the session's (virtual) now; a look back returns the window before `started_at`.
#[derive(Debug)]
pub(crate) struct RecordedSource {
    started_at: f64,
    data: Polled,
    /// Next unread position in samples, counts, control samples, control counts.
    cursor: [usize; 4],
}

fn take_until<T: Clone>(
    v: &[T],
    cursor: &mut usize,
    now: f64,
    from: f64,
    ts: impl Fn(&T) -> f64,
) -> Vec<T> {
    while *cursor < v.len() && ts(&v[*cursor]) < from {
        *cursor += 1;
    }
    let begin = *cursor;
    while *cursor < v.len() && ts(&v[*cursor]) <= now {
        *cursor += 1;
    }
    v[begin..*cursor].to_vec()
}

fn window<T: Clone>(v: &[T], start: f64, end: f64, ts: impl Fn(&T) -> f64) -> Vec<T> {
    v.iter()
        .filter(|x| ts(x) >= start && ts(x) < end)
        .cloned()
        .collect()
}

#[async_trait::async_trait]
impl Source for RecordedSource {
    async fn poll(&mut self, ctx: &PollContext) -> Result<Polled> {
        let (from, now) = (self.started_at, ctx.now);
        let [a, b, c, d] = &mut self.cursor;
        Ok(Polled {
            samples: take_until(&self.data.samples, a, now, from, |s| s.timestamp),
            counts: take_until(&self.data.counts, b, now, from, |s| s.timestamp),
            control_samples: take_until(&self.data.control_samples, c, now, from, |s| s.timestamp),
            control_counts: take_until(&self.data.control_counts, d, now, from, |s| s.timestamp),
        })
    }

    async fn lookback(&mut self, _ctx: &PollContext, span: Duration) -> Result<Option<Polled>> {
        let (start, end) = (self.started_at - span.as_secs_f64(), self.started_at);
        let p = Polled {
            samples: window(&self.data.samples, start, end, |s| s.timestamp),
            counts: window(&self.data.counts, start, end, |s| s.timestamp),
            control_samples: Vec::new(),
            control_counts: Vec::new(),
        };
        Ok((!p.is_empty()).then_some(p))
    }
}

/// A recorded check: at each run, the latest outcome recorded at or before the session's time.
#[derive(Debug)]
struct RecordedCheckRun {
    name: String,
    runs: Vec<RecordedCheck>,
    start: Mutex<Instant>,
}

#[async_trait::async_trait]
impl HealthCheck for RecordedCheckRun {
    fn name(&self) -> &str {
        &self.name
    }

    fn category(&self) -> CheckCategory {
        self.runs.first().map(|r| r.category).unwrap_or_default()
    }

    async fn check(&self) -> CheckOutcome {
        let start = *self.start.lock().expect("start lock");
        let at = Instant::now()
            .saturating_duration_since(start)
            .as_secs_f64();
        match self.runs.iter().rev().find(|r| r.at <= at + 1e-9) {
            Some(r) => {
                let outcome = match r.status {
                    CheckStatus::Pass => CheckOutcome::pass(r.message.clone()),
                    CheckStatus::Warn => CheckOutcome::warn(r.message.clone()),
                    CheckStatus::Fail => CheckOutcome::fail(r.message.clone()),
                    CheckStatus::Error => CheckOutcome::error(r.message.clone()),
                };
                let outcome = outcome.with_latency(Duration::from_secs_f64(r.latency_ms / 1000.0));
                if r.evidence.is_null() {
                    outcome
                } else {
                    outcome.with_evidence(r.evidence.clone())
                }
            }
            None => CheckOutcome::error(format!(
                "no outcome of {:?} was recorded before {at:.1} s",
                self.name
            )),
        }
    }
}
