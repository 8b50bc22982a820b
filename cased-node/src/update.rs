//! What a session tells its listeners and leaves behind: mirrors `cased_core::update`.
//!
//! Status updates and reports reach JavaScript as the plain objects `JSON.parse` makes of the
//! core's JSON (snake_case keys, durations in milliseconds, absent values `null`): the same
//! objects Python and a webhook receiver get. These declarations only type them for TypeScript.

use napi::bindgen_prelude::Either;
use napi_derive::napi;
use serde_json::Value;

/// The deployment a session watches, as shown in updates.
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentInfo {
    /// `deployment_request` of the event.
    #[napi(js_name = "deployment_request")]
    pub deployment_request: String,
    /// `repository_full_name` of the event.
    #[napi(ts_type = "string | null")]
    pub repository: String,
    /// `commit_sha` of the event.
    #[napi(js_name = "commit_sha", ts_type = "string | null")]
    pub commit_sha: String,
    /// `event_metadata.environment`.
    #[napi(ts_type = "string | null")]
    pub environment: String,
    /// `event_metadata.correlation_id`, or the session id.
    #[napi(js_name = "correlation_id")]
    pub correlation_id: String,
}

/// One check's result within a tick.
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    /// The check's name.
    pub name: String,
    /// What the check is about.
    #[napi(ts_type = "'availability' | 'endpoint' | 'database' | 'dependency'")]
    pub category: String,
    /// Pass, warn, fail or error (see `CheckOutcome.status`).
    #[napi(ts_type = "'pass' | 'warn' | 'fail' | 'error'")]
    pub status: String,
    /// How long it took, in milliseconds.
    #[napi(js_name = "latency_ms")]
    pub latency_ms: f64,
    /// One line for a person.
    pub message: String,
    /// What was expected and what came back, when the check says (`null` otherwise).
    #[napi(ts_type = "unknown")]
    pub evidence: Value,
}

/// A detector's finding with its evidence: in updates and reports, and from `Detector`.
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// The metric it is about.
    pub metric: String,
    /// The detector that raised it (`baseline`, `spike`...), or its configured name.
    pub detector: String,
    /// How bad it is.
    #[napi(ts_type = "'info' | 'warning' | 'critical' | 'emergency'")]
    pub severity: String,
    /// Whether it opens an alarm or says that one cleared.
    #[napi(ts_type = "'alarm' | 'resolved'")]
    pub kind: String,
    /// The current value (the value, or the current window's median).
    pub current: f64,
    /// The baseline's value (the bound, the baseline median, the running level), when there is
    /// one.
    #[napi(ts_type = "number | null")]
    pub baseline: Option<f64>,
    /// The test statistic.
    pub statistic: f64,
    /// The p-value, for detectors that test a hypothesis.
    #[napi(js_name = "p_value", ts_type = "number | null")]
    pub p_value: Option<f64>,
    /// How sure (1 − p, a posterior probability, or 1 for hard rules).
    pub confidence: f64,
    /// The effect size the severity was read from.
    #[napi(js_name = "effect_size")]
    pub effect_size: f64,
    /// How many values the decision rests on.
    pub n: f64,
    /// The rule that fired.
    pub rule: String,
    /// A sentence a person can read.
    pub message: String,
    /// The position, in its metric's stream since the session started, of the value that
    /// raised it (absent for findings stated in code).
    #[napi(ts_type = "number | undefined")]
    pub index: Option<f64>,
    /// The session tick that raised it.
    #[napi(ts_type = "number | undefined")]
    pub tick: Option<f64>,
}

/// An alert a session raised (its deliveries run on the monitor's alert manager).
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct AlertSummary {
    /// Its dedup key.
    pub key: String,
    /// Its severity.
    #[napi(ts_type = "'info' | 'warning' | 'critical' | 'emergency'")]
    pub severity: String,
    /// Its title.
    pub title: String,
}

/// A delivery of a session's alert that finally failed.
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct AlertFailure {
    /// The channel.
    pub channel: String,
    /// The notification's id.
    #[napi(js_name = "notification_id")]
    pub notification_id: String,
    /// The dedup keys of the alerts it carried.
    pub keys: Vec<String>,
    /// Attempts made.
    pub attempts: u32,
    /// The last error.
    #[napi(ts_type = "string | null")]
    pub error: Option<String>,
}

/// A delivery of a session's alert that succeeded only after a retry (delivered, not failed;
/// the receiver may have seen it more than once, with the same notification id).
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRetry {
    /// The channel.
    pub channel: String,
    /// The notification's id.
    #[napi(js_name = "notification_id")]
    pub notification_id: String,
    /// The dedup keys of the alerts it carried.
    pub keys: Vec<String>,
    /// Attempts made (the last one succeeded).
    pub attempts: u32,
    /// What happened first: `timed out, retried (delivered on attempt 2; attempt 1: …)`.
    pub note: String,
}

/// What a session publishes after every tick, and once more when it finishes (that last one has
/// `phase: 'finished'`, no checks and `next_tick_in_ms: null`).
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    /// The session's id.
    #[napi(js_name = "session_id")]
    pub session_id: String,
    /// The deployment watched.
    pub deployment: DeploymentInfo,
    /// The phase after this tick.
    #[napi(ts_type = "'pending' | 'active' | 'cooldown' | 'finished'")]
    pub phase: String,
    /// The tick number (1 = first); the finishing update repeats the last tick's number.
    pub tick: u32,
    /// Time since the session started, in milliseconds.
    #[napi(js_name = "elapsed_ms")]
    pub elapsed_ms: f64,
    /// Each check's result in this tick (empty in the finishing update).
    pub checks: Vec<CheckResult>,
    /// Findings raised in this tick.
    pub findings: Vec<Finding>,
    /// The verdict so far.
    #[napi(ts_type = "'healthy' | 'degraded' | 'unhealthy' | 'inconclusive'")]
    pub verdict: String,
    /// Why.
    pub reason: String,
    /// Milliseconds until the next tick; `null` once finished.
    #[napi(js_name = "next_tick_in_ms", ts_type = "number | null")]
    pub next_tick_in_ms: f64,
    /// Sources that could not be read at this tick.
    #[napi(
        js_name = "source_errors",
        ts_type = "Array<{ source: string; message: string }>"
    )]
    pub source_errors: Value,
}

/// Yielded instead of updates a listener fell too far behind to receive: it skipped `skipped`
/// of them (a slow listener never slows the checks). The report still has every tick.
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct SkippedUpdates {
    /// How many updates were dropped for this listener.
    pub skipped: u32,
}

/// One item of `session.updates()`: a status update, or notice of skipped ones (tell them
/// apart with `'skipped' in item`).
#[napi(js_name = "UpdateItem")]
pub type UpdateItemDecl = Either<StatusUpdate, SkippedUpdates>;

/// One tick in the report's timeline.
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct TickRecord {
    /// The tick number (1 = first).
    pub tick: u32,
    /// The phase the tick ran in.
    #[napi(ts_type = "'pending' | 'active' | 'cooldown' | 'finished'")]
    pub phase: String,
    /// When it started, in milliseconds from the session's start.
    #[napi(js_name = "elapsed_ms")]
    pub elapsed_ms: f64,
    /// How late it started against the schedule, in milliseconds.
    #[napi(js_name = "late_ms")]
    pub late_ms: f64,
    /// Each check's result.
    pub checks: Vec<CheckResult>,
    /// The verdict after it.
    #[napi(ts_type = "'healthy' | 'degraded' | 'unhealthy' | 'inconclusive'")]
    pub verdict: String,
}

/// The counters behind a verdict.
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct Counters {
    /// Ticks where at least one check measured the service (pass, warn or fail).
    #[napi(js_name = "measured_ticks")]
    pub measured_ticks: u32,
    /// Ticks with at least one failed check.
    #[napi(js_name = "failed_ticks")]
    pub failed_ticks: u32,
    /// Ticks with a warning and no failure.
    #[napi(js_name = "warned_ticks")]
    pub warned_ticks: u32,
    /// Check runs that ended in an error.
    pub errors: u32,
    /// Detector findings of severity `warning` (they make a deployment degraded at most).
    #[napi(js_name = "warning_findings")]
    pub warning_findings: u32,
}

/// A summary of the samples pushed for one metric (`session.push`).
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSummary {
    /// Samples pushed in all.
    pub count: f64,
    /// Samples kept in the window.
    pub window: u32,
    /// The last value.
    pub last: f64,
    /// Mean of the window.
    pub mean: f64,
    /// Median of the window; absent when the window is empty.
    pub median: Option<f64>,
}

/// When an alarmed metric changed: the located level shift with its likelihood interval.
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct ChangePoint {
    /// The metric.
    pub metric: String,
    /// The time of the first value at the new level, milliseconds since the Unix epoch.
    #[napi(js_name = "at_unix_ms")]
    pub at_unix_ms: f64,
    /// The change happened after this time...
    #[napi(js_name = "earliest_unix_ms")]
    pub earliest_unix_ms: f64,
    /// ...and at or before this one.
    #[napi(js_name = "latest_unix_ms")]
    pub latest_unix_ms: f64,
    /// `at_unix_ms` from the session's start (negative: before the rollout).
    #[napi(js_name = "after_start_ms")]
    pub after_start_ms: f64,
    /// The level before.
    pub before: f64,
    /// The level after.
    pub after: f64,
    /// Values of the metric the location rests on.
    pub n: u32,
    /// A sentence a person can read.
    pub message: String,
}

/// What happened when the rollback hook fired.
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct RollbackRecord {
    /// When it fired, in milliseconds from the session's start.
    #[napi(js_name = "elapsed_ms")]
    pub elapsed_ms: f64,
    /// `null` when the hook succeeded; otherwise what it threw or rejected with, or that it
    /// timed out.
    #[napi(ts_type = "string | null")]
    pub error: String,
}

/// The final report of a session (`session.wait()`, `monitor.run()`).
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The session's id.
    #[napi(js_name = "session_id")]
    pub session_id: String,
    /// The deployment event that started it, with its wire names.
    #[napi(ts_type = "DeploymentEventInit")]
    pub event: Value,
    /// The final verdict.
    #[napi(ts_type = "'healthy' | 'degraded' | 'unhealthy' | 'inconclusive'")]
    pub verdict: String,
    /// Why.
    pub reason: String,
    /// Why the session ended.
    #[napi(
        js_name = "ended_by",
        ts_type = "'cooldown_elapsed' | 'max_duration' | 'unhealthy' | 'error_limit' | 'deployment_failed' | 'cancelled' | 'internal_error'"
    )]
    pub ended_by: String,
    /// Wall-clock start, milliseconds since the Unix epoch.
    #[napi(js_name = "started_at_unix_ms")]
    pub started_at_unix_ms: f64,
    /// How long the session lasted, in milliseconds.
    #[napi(js_name = "duration_ms")]
    pub duration_ms: f64,
    /// When the cool-down started, in milliseconds from the session's start; `null` if it never
    /// did.
    #[napi(js_name = "cooldown_started_ms", ts_type = "number | null")]
    pub cooldown_started_ms: f64,
    /// Whether the no-data policy `extend` kept the session past its cool-down.
    pub extended: bool,
    /// The verdict's counters.
    pub counters: Counters,
    /// Every tick, in order.
    pub ticks: Vec<TickRecord>,
    /// Every finding, in order.
    pub findings: Vec<Finding>,
    /// Samples pushed by the caller, per metric.
    #[napi(ts_type = "Record<string, MetricSummary>")]
    pub metrics: Value,
    /// The rollback hook's firing; `null` if it did not fire.
    #[napi(ts_type = "RollbackRecord | null")]
    pub rollback: Value,
    /// Alerts raised by the session (delivery is asynchronous: see `alert_failures`).
    pub alerts: Vec<AlertSummary>,
    /// Deliveries of this session's alerts that had finally failed when it ended; later
    /// failures are reported by the monitor's alert manager.
    #[napi(js_name = "alert_failures")]
    pub alert_failures: Vec<AlertFailure>,
    /// Deliveries of this session's alerts that succeeded only after a retry ("timed out,
    /// retried"): delivered, not failed.
    #[napi(js_name = "alert_retries")]
    pub alert_retries: Vec<AlertRetry>,
    /// Metrics whose comparison detectors had no baseline or too few samples at the end.
    #[napi(js_name = "no_data")]
    pub no_data: Vec<String>,
    /// Which baseline judged each compared metric (`'the window before the deployment (360
    /// values)'`, `'the control track (...)'`, `'the last 3 healthy deployments (...)'`).
    #[napi(ts_type = "Record<string, string>")]
    pub baselines: Value,
    /// What to know about how the verdict was reached (no earlier baseline, too few values,
    /// sources that could not be read).
    pub notes: Vec<String>,
    /// When each metric that raised an alarm changed, located on its values.
    pub changes: Vec<ChangePoint>,
}
