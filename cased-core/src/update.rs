//! What a session tells its listeners after every tick ([`StatusUpdate`]) and what it leaves
//! behind when it ends ([`Report`]). Both serialize to JSON, so they can be posted anywhere.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::check::{CheckCategory, CheckStatus};
use crate::duration::{as_millis, from_millis, millis_to_duration};
use crate::event::DeploymentEvent;
use crate::verdict::{Counters, Verdict};

fn opt_from_millis<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    Option::<f64>::deserialize(d)?
        .map(millis_to_duration)
        .transpose()
        .map_err(serde::de::Error::custom)
}

/// `null` (how JSON writes a NaN) reads back as NaN.
fn nan_if_null<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Started, no tick run yet.
    Pending,
    /// The deployment is running; checks run on the progressive schedule.
    Active,
    /// The deployment reported success; extended monitoring until the cool-down ends.
    Cooldown,
    /// Over; the report is ready.
    Finished,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The cool-down after a successful deployment is over.
    CooldownElapsed,
    /// The session reached `max_duration`.
    MaxDuration,
    /// The verdict became unhealthy (the rollback hook fired).
    Unhealthy,
    /// A check could not run more often in a row than `consecutive_error_limit` allows.
    ErrorLimit,
    /// The deployment reported failure.
    DeploymentFailed,
    /// The deployment or the caller cancelled the session.
    Cancelled,
    /// cased itself failed while monitoring (a panic inside the session was caught); the
    /// verdict is `inconclusive` and the reason carries the message.
    InternalError,
}

/// The deployment a session watches, as shown in updates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentInfo {
    /// `deployment_request` of the event.
    pub deployment_request: String,
    /// `repository_full_name` of the event.
    pub repository: Option<String>,
    /// `commit_sha` of the event.
    pub commit_sha: Option<String>,
    /// `event_metadata.environment`.
    pub environment: Option<String>,
    /// `event_metadata.correlation_id`, or the session id.
    pub correlation_id: String,
}

impl DeploymentInfo {
    pub(crate) fn of(event: &DeploymentEvent, session_id: &str) -> Self {
        Self {
            deployment_request: event.deployment_request().to_owned(),
            repository: event.repository_full_name().map(str::to_owned),
            commit_sha: event.commit_sha().map(str::to_owned),
            environment: event.environment().map(str::to_owned),
            correlation_id: event.correlation_id().unwrap_or(session_id).to_owned(),
        }
    }
}

/// One check's result within a tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The check's name.
    pub name: Arc<str>,
    /// What the check is about.
    pub category: CheckCategory,
    /// Pass, warn, fail or error.
    pub status: CheckStatus,
    /// How long it took.
    #[serde(
        rename = "latency_ms",
        serialize_with = "as_millis",
        deserialize_with = "from_millis"
    )]
    pub latency: Duration,
    /// One line for a person.
    pub message: String,
    /// What was expected and what came back, when the check says (`null` otherwise): HTTP
    /// timings, the status and headers seen, the JSON value at a pointer...
    #[serde(default)]
    pub evidence: serde_json::Value,
}

pub(crate) use crate::detect::Finding;

/// What a session publishes after every tick, and once more when it finishes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusUpdate {
    /// The session's id.
    pub session_id: Arc<str>,
    /// The deployment watched.
    pub deployment: Arc<DeploymentInfo>,
    /// The phase after this tick.
    pub phase: Phase,
    /// The tick number (1 = first); the finishing update repeats the last tick's number.
    pub tick: u32,
    /// Time since the session started.
    #[serde(
        rename = "elapsed_ms",
        serialize_with = "as_millis",
        deserialize_with = "from_millis"
    )]
    pub elapsed: Duration,
    /// Each check's result in this tick (empty in the finishing update).
    pub checks: Vec<CheckResult>,
    /// Findings raised in this tick.
    pub findings: Vec<Finding>,
    /// The verdict so far.
    pub verdict: Verdict,
    /// Why.
    pub reason: String,
    /// Time until the next tick; `None` once finished.
    #[serde(
        rename = "next_tick_in_ms",
        serialize_with = "opt_millis",
        deserialize_with = "opt_from_millis"
    )]
    pub next_tick_in: Option<Duration>,
    /// Sources that could not be read at this tick.
    #[serde(default)]
    pub source_errors: Vec<SourceError>,
}

fn opt_millis<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => as_millis(d, s),
        None => s.serialize_none(),
    }
}

impl StatusUpdate {
    /// The update as JSON text.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("status updates always serialize")
    }
}

/// One tick in the report's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TickRecord {
    /// The tick number (1 = first).
    pub tick: u32,
    /// The phase the tick ran in.
    pub phase: Phase,
    /// When it started, from the session's start.
    #[serde(
        rename = "elapsed_ms",
        serialize_with = "as_millis",
        deserialize_with = "from_millis"
    )]
    pub elapsed: Duration,
    /// How late it started against the schedule.
    #[serde(
        rename = "late_ms",
        serialize_with = "as_millis",
        deserialize_with = "from_millis"
    )]
    pub late: Duration,
    /// Each check's result.
    pub checks: Vec<CheckResult>,
    /// The verdict after it.
    pub verdict: Verdict,
}

/// A summary of the samples pushed for one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    /// Samples pushed in all.
    pub count: u64,
    /// Samples kept in the window.
    pub window: usize,
    /// The last value.
    #[serde(deserialize_with = "nan_if_null")]
    pub last: f64,
    /// Mean of the window.
    pub mean: f64,
    /// Median of the window (the mean of the middle two for an even count); absent when the
    /// window is empty, and in reports written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub median: Option<f64>,
}

/// When an alarmed metric changed: the located level shift with its likelihood interval (see
/// `cased_core::detect::locate_change`). Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangePoint {
    /// The metric.
    pub metric: String,
    /// The time of the first value at the new level.
    pub at_unix_ms: u64,
    /// The change happened after this time (the value before the interval's first) ...
    pub earliest_unix_ms: u64,
    /// ... and at or before this one (the interval's last value).
    pub latest_unix_ms: u64,
    /// `at_unix_ms` from the session's start, in milliseconds (negative: before the rollout).
    pub after_start_ms: i64,
    /// The level before (the mean before the change, or the baseline's level).
    pub before: f64,
    /// The level after (the mean from the change on).
    pub after: f64,
    /// Values of the metric the location rests on (before the deploy included).
    pub n: usize,
    /// A sentence a person can read: `"checkout.latency_ms rose from 120 to 180 at
    /// 2026-12-04T14:03:20Z ± 10s, 40s after the rollout started."`
    pub message: String,
}

/// What happened when the rollback hook fired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackRecord {
    /// When it fired, from the session's start.
    #[serde(
        rename = "elapsed_ms",
        serialize_with = "as_millis",
        deserialize_with = "from_millis"
    )]
    pub elapsed: Duration,
    /// `None` when the hook succeeded, otherwise its error.
    pub error: Option<String>,
}

/// An alert a session raised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertSummary {
    /// Its dedup key.
    pub key: String,
    /// Its severity.
    pub severity: crate::Severity,
    /// Its title.
    pub title: String,
}

/// A delivery of a session's alert that finally failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertFailure {
    /// The channel.
    pub channel: String,
    /// The notification's id.
    pub notification_id: String,
    /// The dedup keys of the alerts it carried.
    pub keys: Vec<String>,
    /// Attempts made.
    pub attempts: u32,
    /// The last error.
    pub error: Option<String>,
}

/// A source poll that failed, as reported in updates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceError {
    /// The source's name.
    pub source: String,
    /// What went wrong.
    pub message: String,
}

/// A delivery of a session's alert that succeeded only after a retry: not a failure, but the
/// receiver may have seen it more than once (same notification id on every attempt).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRetry {
    /// The channel.
    pub channel: String,
    /// The notification's id.
    pub notification_id: String,
    /// The dedup keys of the alerts it carried.
    pub keys: Vec<String>,
    /// Attempts made (the last one succeeded).
    pub attempts: u32,
    /// What happened first: `timed out, retried (delivered on attempt 2; attempt 1: …)`.
    pub note: String,
}

/// The final report of a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The session's id.
    pub session_id: Arc<str>,
    /// The deployment event that started it.
    pub event: DeploymentEvent,
    /// The final verdict.
    pub verdict: Verdict,
    /// Why.
    pub reason: String,
    /// Why the session ended.
    pub ended_by: EndReason,
    /// Wall-clock start, milliseconds since the Unix epoch.
    pub started_at_unix_ms: u64,
    /// How long the session lasted.
    #[serde(
        rename = "duration_ms",
        serialize_with = "as_millis",
        deserialize_with = "from_millis"
    )]
    pub duration: Duration,
    /// When the cool-down started, from the session's start.
    #[serde(
        rename = "cooldown_started_ms",
        serialize_with = "opt_millis",
        deserialize_with = "opt_from_millis"
    )]
    pub cooldown_started: Option<Duration>,
    /// Whether the no-data policy `extend` kept the session past its cool-down.
    pub extended: bool,
    /// The verdict's counters.
    pub counters: Counters,
    /// Every tick, in order.
    pub ticks: Vec<TickRecord>,
    /// Every finding, in order.
    pub findings: Vec<Finding>,
    /// Samples pushed by the caller, per metric.
    pub metrics: BTreeMap<String, MetricSummary>,
    /// The rollback hook's firing, if it fired.
    pub rollback: Option<RollbackRecord>,
    /// Alerts raised by the session (delivery is asynchronous: see `alert_failures`).
    #[serde(default)]
    pub alerts: Vec<AlertSummary>,
    /// Deliveries of this session's alerts that had finally failed when it ended; later
    /// failures are reported by the monitor's alert manager.
    #[serde(default)]
    pub alert_failures: Vec<AlertFailure>,
    /// Deliveries of this session's alerts that succeeded only after a retry ("timed out,
    /// retried"): delivered, not failed.
    #[serde(default)]
    pub alert_retries: Vec<AlertRetry>,
    /// Metrics whose comparison detectors had no baseline or too few samples at the end.
    #[serde(default)]
    pub no_data: Vec<String>,
    /// Which baseline judged each compared metric (`"latency_ms": "the window before the
    /// deployment (360 values)"`).
    #[serde(default)]
    pub baselines: BTreeMap<String, String>,
    /// What a person should know about how the verdict was reached (no earlier baseline, too
    /// few values, source failures...).
    #[serde(default)]
    pub notes: Vec<String>,
    /// When each metric that raised an alarm changed, located on its values.
    #[serde(default)]
    pub changes: Vec<ChangePoint>,
}

impl Report {
    /// The report as JSON text.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("reports always serialize")
    }

    /// A report from the JSON [`to_json`](Self::to_json) wrote.
    ///
    /// # Errors
    /// [`Error::Validation`](crate::Error::Validation) on field `report` when the text is not such
    /// a report.
    pub fn from_json(text: &str) -> crate::Result<Self> {
        // Any nesting a stored report holds (deep event metadata or check evidence) is read.
        crate::deep_json::from_str(text).map_err(|e| crate::Error::invalid("report", e.to_string()))
    }
}
