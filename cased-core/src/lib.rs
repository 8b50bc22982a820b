#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod alert;
mod baselines;
mod changes;
mod check;
pub mod checks;
mod client;
mod collect;
mod config;
mod deep_json;
pub mod detect;
pub mod duration;
mod error;
mod event;
pub mod history;
pub mod limits;
pub mod logging;
pub mod metrics;
mod monitor;
mod plan;
mod replay;
pub mod report;
mod schedule;
mod secret;
mod session;
mod severity;
mod timeline;
mod update;
mod verdict;

pub use baselines::BaselineConfig;
pub use check::{CheckCategory, CheckOutcome, CheckStatus, FnCheck, HealthCheck};
pub use checks::{CheckConfig, run_check};
pub use client::{
    API_KEY_ENV, ApiResponse, BASE_URL_ENV, Client, ClientBuilder, DEFAULT_BASE_URL,
    DEPLOYMENTS_PATH, DeploymentPage, DeploymentQuery, IDEMPOTENCY_KEY_HEADER, MAX_RESPONSE_BYTES,
    RetryPolicy, parse_retry_after,
};
pub use config::MonitorConfig;
pub use detect::{
    BaselineComparisonDetector, ChangepointDetector, Counts, CusumDetector, DetectorConfig,
    DetectorSet, ErrorRateDetector, EwmaDetector, Finding, SeverityPolicy, SpikeDetector,
    ThresholdDetector, TrendDetector,
};
pub use error::{Error, ErrorKind, FieldError, Result, ValidationErrors};
pub use event::{
    DeploymentEvent, DeploymentEventBuilder, DeploymentStatus, MAX_COMMIT_MESSAGE_CHARS,
    MAX_DEPLOYMENT_REQUEST_CHARS, MAX_METADATA_BYTES, MAX_NAME_CHARS,
};
pub use history::{HistoryStore, SqliteHistory};
pub use metrics::{Baseline, BaselineSource, BaselineStore, Sample};
pub use monitor::{Monitor, MonitorBuilder, StartOptions};
pub use plan::{RollbackContext, RollbackHook};
pub use replay::{RecordedCheck, RecordedCounts, Recording};
pub use report::ReportContext;
pub use schedule::{Delays, MAX_SCHEDULE_SPAN, MIN_INTERVAL, Schedule, ScheduleConfig};
pub use secret::{SECRET_PARAMS, Secret, expand_env, is_secret_name, redact_url};
pub use session::{Recorded, Session, UpdateEvent, Updates, record_session};
pub use severity::Severity;
pub use update::{
    AlertFailure, AlertRetry, AlertSummary, ChangePoint, CheckResult, DeploymentInfo, EndReason,
    MetricSummary, Phase, Report, RollbackRecord, SourceError, StatusUpdate, TickRecord,
};
pub use verdict::{
    Counters, FindingRules, Judgement, NoDataPolicy, Verdict, VerdictConfig, VerdictTracker,
};

/// The repository's README, compiled as doctests: its Rust examples build as written.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
