//! History: every session's event, ticks, check outcomes, findings, alerts and verdict, kept
//! by session id and correlation id, and the queries teams ask of it (deployments by
//! repository / environment / time, success rate over time, time to detect, which deployment a
//! finding or alert belongs to, the last healthy deployments that feed baselines).
//!
//! [`HistoryStore`] is the trait; [`SqliteHistory`] is the embedded default (one SQLite file,
//! WAL, versioned migrations). The trait is async so that a shared database with an async
//! driver (Postgres) can implement it without blocking, and so that the SQLite store can move
//! its blocking calls off the runtime's workers (`spawn_blocking`) when thousands of sessions
//! write at once. [`SqliteHistory`] also offers the same operations as plain blocking methods,
//! for tools and tests that have no runtime.
//!
//! # Writing a session
//! - [`HistoryStore::begin_session`] when the session starts (the event, the wall-clock start);
//! - [`HistoryStore::record_update`] after each [`StatusUpdate`]: the tick, its check results
//!   and its findings commit in one transaction, so a crash keeps every tick written so far;
//! - [`HistoryStore::record_alert`] whenever an alert fires or changes state;
//! - [`HistoryStore::record_report`] with the final [`Report`]: the verdict, and any tick or
//!   finding the updates missed (a lagging listener), written idempotently.
//!
//! [`Session::record_to`](crate::Session::record_to) does all of this for a running session
//! by following its updates.
//!
//! # Definitions
//! - **Success rate**: among finished deployments with a conclusive verdict,
//!   `(healthy + degraded) / (healthy + degraded + unhealthy)`: a degraded deployment was not
//!   rolled back; `inconclusive` counts as neither (it is reported in its own column).
//! - **Time to detect**: from the session's start (the deploy start) to the first finding of
//!   severity `critical` or worse whose tick is known; when there is none, to the first tick
//!   with a failed check. Deployments with neither were not detected and are left out.
//! - **Buckets**: UTC days, and ISO weeks starting on Monday 00:00 UTC.

mod owner;
mod sqlite;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::event::DeploymentEvent;
use crate::severity::Severity;
use crate::update::{EndReason, Finding, Report, StatusUpdate, TickRecord};
use crate::verdict::Verdict;

pub use sqlite::{SCHEMA_VERSION, SqliteHistory, SqliteOptions};

/// An alert as history keeps it: the fields queries need, plus the whole alert as JSON.
///
/// The alert model lives with the notifiers; any serializable alert can be kept by putting it
/// in [`payload`](Self::payload) (see [`AlertRecord::with_payload`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// The alert's id, unique across history (recording the same id again updates it).
    pub id: String,
    /// The dedup key receivers use to drop duplicates.
    pub dedup_key: String,
    /// How bad it is.
    pub severity: Severity,
    /// `firing` or `resolved` (free text, so the alert model can add states).
    pub state: String,
    /// A one-line title.
    pub title: String,
    /// When it first fired, milliseconds since the Unix epoch.
    pub created_at_unix_ms: u64,
    /// When it last changed, milliseconds since the Unix epoch.
    pub updated_at_unix_ms: u64,
    /// The whole alert, as its model serializes it (`null` when not given).
    #[serde(default)]
    pub payload: serde_json::Value,
}

impl AlertRecord {
    /// A firing alert created and updated at `at_unix_ms`, with no payload.
    pub fn new(
        id: impl Into<String>,
        dedup_key: impl Into<String>,
        severity: Severity,
        title: impl Into<String>,
        at_unix_ms: u64,
    ) -> Self {
        Self {
            id: id.into(),
            dedup_key: dedup_key.into(),
            severity,
            state: "firing".to_owned(),
            title: title.into(),
            created_at_unix_ms: at_unix_ms,
            updated_at_unix_ms: at_unix_ms,
            payload: serde_json::Value::Null,
        }
    }

    /// Sets the state (`firing`, `resolved`).
    #[must_use]
    pub fn with_state(mut self, state: impl Into<String>) -> Self {
        self.state = state.into();
        self
    }

    /// Keeps `alert` (any serializable alert) as the payload.
    ///
    /// # Errors
    /// [`Error::Validation`](crate::Error::Validation) on field `payload` when it does not
    /// serialize to JSON.
    pub fn with_payload(mut self, alert: &impl Serialize) -> Result<Self> {
        self.payload = serde_json::to_value(alert)
            .map_err(|e| crate::Error::invalid("payload", e.to_string()))?;
        Ok(self)
    }
}

/// A finding as history keeps it: where it belongs and when it was raised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredFinding {
    /// `"<session id>:<n>"`, `n` counting the session's findings from 1 in the order raised.
    pub id: String,
    /// The session it belongs to.
    pub session_id: String,
    /// Its number within the session (from 1).
    pub seq: u32,
    /// The tick that raised it; `None` when it is known only from the final report.
    pub tick: Option<u32>,
    /// When it was raised, from the session's start (`None` as for `tick`).
    #[serde(rename = "elapsed_ms", with = "opt_ms")]
    pub elapsed: Option<Duration>,
    /// The finding itself.
    pub finding: Finding,
}

/// One deployment (one session) in history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    /// The session's id.
    pub session_id: String,
    /// The correlation id (the event's, or the session id).
    pub correlation_id: String,
    /// `deployment_request` of the event.
    pub deployment_request: String,
    /// `repository_full_name` of the event.
    pub repository: Option<String>,
    /// `event_metadata.environment` of the event.
    pub environment: Option<String>,
    /// `commit_sha` of the event.
    pub commit_sha: Option<String>,
    /// `ref` of the event.
    pub git_ref: Option<String>,
    /// When the session started, milliseconds since the Unix epoch.
    pub started_at_unix_ms: u64,
    /// How long it lasted; `None` while running (or when it never finished).
    #[serde(rename = "duration_ms", with = "opt_ms")]
    pub duration: Option<Duration>,
    /// The final verdict; `None` while running (or when it never finished).
    pub verdict: Option<Verdict>,
    /// The verdict's reason.
    pub reason: Option<String>,
    /// Why it ended.
    pub ended_by: Option<EndReason>,
    /// The verdict after the last recorded tick (the live verdict of a running session).
    pub last_tick_verdict: Option<Verdict>,
    /// Ticks recorded.
    pub ticks: u32,
    /// Findings recorded.
    pub findings: u32,
    /// Alerts recorded.
    pub alerts: u32,
    /// When the session was last heard from (its start, its last recorded tick, its report),
    /// milliseconds since the Unix epoch; `None` for sessions recorded before cased kept it.
    pub last_seen_unix_ms: Option<u64>,
    /// When the history found the session interrupted, milliseconds since the Unix epoch: it
    /// has no verdict and the process that ran it (on this host) is gone — killed (`kill -9`),
    /// crashed or powered off. Checked each time the history file is opened; the `reason`
    /// says when the session was last seen. `None` for a finished or still running session.
    pub interrupted_at_unix_ms: Option<u64>,
}

impl DeploymentRecord {
    /// Whether the final report was recorded.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.verdict.is_some()
    }

    /// Whether the session ended without a verdict because its process went away.
    #[must_use]
    pub fn is_interrupted(&self) -> bool {
        self.verdict.is_none() && self.interrupted_at_unix_ms.is_some()
    }
}

/// Which deployments a query is about. Every field is optional; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeploymentFilter {
    /// Exactly this repository.
    pub repository: Option<String>,
    /// Exactly this environment.
    pub environment: Option<String>,
    /// Exactly this correlation id.
    pub correlation_id: Option<String>,
    /// Only deployments with this final verdict.
    pub verdict: Option<Verdict>,
    /// Started at or after this time (ms since the Unix epoch).
    pub since_unix_ms: Option<u64>,
    /// Started before this time (ms since the Unix epoch; exclusive).
    pub until_unix_ms: Option<u64>,
    /// At most this many, newest first (for `deployments`; ignored by aggregates).
    pub limit: Option<usize>,
}

impl DeploymentFilter {
    /// Matches everything.
    #[must_use]
    pub fn all() -> Self {
        Self::default()
    }
    /// Only this repository.
    #[must_use]
    pub fn repository(mut self, v: impl Into<String>) -> Self {
        self.repository = Some(v.into());
        self
    }
    /// Only this environment.
    #[must_use]
    pub fn environment(mut self, v: impl Into<String>) -> Self {
        self.environment = Some(v.into());
        self
    }
    /// Only this correlation id.
    #[must_use]
    pub fn correlation_id(mut self, v: impl Into<String>) -> Self {
        self.correlation_id = Some(v.into());
        self
    }
    /// Only this final verdict.
    #[must_use]
    pub fn verdict(mut self, v: Verdict) -> Self {
        self.verdict = Some(v);
        self
    }
    /// Started in `[since, until)` (ms since the Unix epoch).
    #[must_use]
    pub fn between(mut self, since_unix_ms: u64, until_unix_ms: u64) -> Self {
        self.since_unix_ms = Some(since_unix_ms);
        self.until_unix_ms = Some(until_unix_ms);
        self
    }
    /// At most `n`, newest first.
    #[must_use]
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }
}

/// The width of a time bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bucket {
    /// A UTC day.
    Day,
    /// An ISO week (Monday 00:00 UTC to the next Monday).
    Week,
}

/// Verdict counts of the deployments started in one bucket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VerdictCounts {
    /// Start of the bucket, milliseconds since the Unix epoch.
    pub start_unix_ms: u64,
    /// Healthy deployments.
    pub healthy: u32,
    /// Degraded deployments.
    pub degraded: u32,
    /// Unhealthy deployments.
    pub unhealthy: u32,
    /// Inconclusive deployments.
    pub inconclusive: u32,
    /// Sessions without a final report (running, or interrupted).
    pub unfinished: u32,
    /// All of the above.
    pub total: u32,
    /// `(healthy + degraded) / (healthy + degraded + unhealthy)`; `None` without any of those.
    pub success_rate: Option<f64>,
}

/// What detected a bad deployment first (see the module docs for the definition).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectedBy {
    /// A finding of severity `critical` or worse.
    CriticalFinding,
    /// A tick with a failed check (no critical finding with a known tick).
    FailedTick,
}

/// The time to detect of one deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// The session's id.
    pub session_id: String,
    /// When the deployment started, ms since the Unix epoch.
    pub started_at_unix_ms: u64,
    /// Deploy start to detection.
    #[serde(rename = "time_to_detect_ms", with = "ms")]
    pub time_to_detect: Duration,
    /// What detected it.
    pub detected_by: DetectedBy,
    /// The tick of the detection.
    pub tick: u32,
}

/// Summary statistics of times to detect.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetectionSummary {
    /// Deployments detected.
    pub count: usize,
    /// Mean time to detect.
    #[serde(rename = "mean_ms", with = "ms")]
    pub mean: Duration,
    /// Median (the lower middle value for an even count).
    #[serde(rename = "median_ms", with = "ms")]
    pub median: Duration,
    /// Longest.
    #[serde(rename = "max_ms", with = "ms")]
    pub max: Duration,
}

impl DetectionSummary {
    /// Summarises `detections`; `None` when empty.
    #[must_use]
    pub fn of(detections: &[Detection]) -> Option<Self> {
        if detections.is_empty() {
            return None;
        }
        let mut d: Vec<Duration> = detections.iter().map(|d| d.time_to_detect).collect();
        d.sort_unstable();
        let total: Duration = d.iter().sum();
        Some(Self {
            count: d.len(),
            mean: total / d.len() as u32,
            median: d[(d.len() - 1) / 2],
            max: d[d.len() - 1],
        })
    }
}

/// Where sessions' histories are kept. Implementations must be safe for many sessions
/// writing at once; writes are idempotent (recording the same tick, finding, alert or report
/// twice keeps one copy, the last written).
#[async_trait::async_trait]
pub trait HistoryStore: Send + Sync + fmt::Debug {
    /// Records that a session started for `event` at `started_at_unix_ms`. Does nothing when
    /// the session is already recorded.
    async fn begin_session(
        &self,
        session_id: &str,
        event: &DeploymentEvent,
        started_at_unix_ms: u64,
    ) -> Result<()>;

    /// Records one status update: its tick and check results (none for the finishing update)
    /// and its findings, in one transaction. A session not begun is begun from the update's
    /// deployment facts.
    async fn record_update(&self, update: &StatusUpdate) -> Result<()>;

    /// Records an alert of `session_id`, or updates it when its id is known.
    ///
    /// The session must have been begun.
    async fn record_alert(&self, session_id: &str, alert: &AlertRecord) -> Result<()>;

    /// Records the final report: the verdict, and every tick and finding (ticks and findings
    /// already recorded are updated, keeping the tick at which each finding was raised).
    async fn record_report(&self, report: &Report) -> Result<()>;

    /// Deployments matching `filter`, newest first.
    async fn deployments(&self, filter: &DeploymentFilter) -> Result<Vec<DeploymentRecord>>;

    /// One deployment by session id.
    async fn deployment(&self, session_id: &str) -> Result<Option<DeploymentRecord>>;

    /// The final report of a session; `None` when unknown or not finished.
    async fn report(&self, session_id: &str) -> Result<Option<Report>>;

    /// The event that started a session.
    async fn event(&self, session_id: &str) -> Result<Option<DeploymentEvent>>;

    /// The ticks recorded for a session, in order (a running or interrupted session too).
    async fn ticks(&self, session_id: &str) -> Result<Vec<TickRecord>>;

    /// The findings recorded for a session, in order.
    async fn findings(&self, session_id: &str) -> Result<Vec<StoredFinding>>;

    /// The alerts recorded for a session, oldest first.
    async fn alerts(&self, session_id: &str) -> Result<Vec<AlertRecord>>;

    /// Verdict counts and success rate per bucket, oldest first; buckets without deployments
    /// are left out. `filter.limit` is ignored.
    async fn verdict_counts(
        &self,
        filter: &DeploymentFilter,
        bucket: Bucket,
    ) -> Result<Vec<VerdictCounts>>;

    /// The time to detect of every matching deployment that was detected, oldest first.
    /// `filter.limit` is ignored.
    async fn time_to_detect(&self, filter: &DeploymentFilter) -> Result<Vec<Detection>>;

    /// The deployment a finding (by [`StoredFinding::id`]) belongs to.
    async fn deployment_of_finding(&self, finding_id: &str) -> Result<Option<DeploymentRecord>>;

    /// The deployment an alert (by [`AlertRecord::id`]) belongs to.
    async fn deployment_of_alert(&self, alert_id: &str) -> Result<Option<DeploymentRecord>>;

    /// The last `n` healthy deployments matching `filter` (its verdict and limit are
    /// replaced), newest first: what baselines are built from.
    async fn last_healthy(
        &self,
        filter: &DeploymentFilter,
        n: usize,
    ) -> Result<Vec<DeploymentRecord>> {
        let mut f = filter.clone();
        f.verdict = Some(Verdict::Healthy);
        f.limit = Some(n);
        self.deployments(&f).await
    }

    /// Deletes the deployments started before `before_unix_ms`, with everything recorded for
    /// them; returns how many.
    async fn prune(&self, before_unix_ms: u64) -> Result<u64>;
}

/// A store shared by many sessions.
pub type SharedHistory = Arc<dyn HistoryStore>;

pub(crate) fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Durations as fractional milliseconds.
pub(crate) mod ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        crate::duration::as_millis(d, s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        crate::duration::millis_to_duration(f64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// Optional durations as fractional milliseconds.
pub(crate) mod opt_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => crate::duration::as_millis(d, s),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Option::<f64>::deserialize(d)?
            .map(crate::duration::millis_to_duration)
            .transpose()
            .map_err(serde::de::Error::custom)
    }
}
