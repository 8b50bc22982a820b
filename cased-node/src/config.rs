//! The monitor's configuration: mirrors `cased_core::MonitorConfig` (with the schedule's and the
//! verdict's sections, `ScheduleConfig` and `VerdictConfig`).
//!
//! These declarations only type the object for TypeScript: at run time the object is handed to
//! the core as JSON and read there (`MonitorConfig::from_value`), so every default, rule and
//! message is the core's, the same as in Python and `cased.toml`.

use napi_derive::napi;
use serde_json::Value;

/// The configuration `new Monitor(config)` takes, with the wire (snake_case) keys of
/// `cased.toml`. Every key is optional; a key not listed here is rejected by name and path
/// (`schedule.cooldwn`), as is every bad value (`schedule.intervals[1]`).
///
/// ```js
/// new Monitor({
///   schedule: { intervals: ['10s', '30s', '1m', '5m'], cooldown: '30m', max_duration: '2h' },
///   checks: [{ name: 'web', type: 'http', url: 'https://example.test/health' }],
///   verdict: { failure_limit: 0, consecutive_error_limit: 4, min_samples: 5, no_data: 'inconclusive' },
/// })
/// ```
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorConfig {
    /// When checks run.
    pub schedule: Option<ScheduleConfig>,
    /// The checks run at every tick (custom checks in JavaScript are given in `MonitorOptions`).
    #[napi(ts_type = "Array<CheckConfig>")]
    pub checks: Option<Vec<Value>>,
    /// How the verdict is reached.
    pub verdict: Option<VerdictConfig>,
    /// Anomaly detectors over the session's samples (pushed and produced by checks), e.g.
    /// `{ type: 'baseline', metric: 'response_time_ms', allowed_change: 0.2 }`: see
    /// `DetectorConfig`. Their findings appear in updates and the report.
    #[napi(ts_type = "Array<DetectorConfig & Record<string, unknown>>")]
    pub detectors: Option<Vec<Value>>,
    /// Alert channels, routes and delivery settings (see `AlertsConfig`).
    pub alerts: Option<AlertsConfig>,
    /// Where baselines come from when none is given: the pre-deploy window read from the
    /// sources that can look back, and the previous healthy deployments in the baseline store.
    pub baseline: Option<BaselineConfig>,
    /// Metric sources every session polls, their samples named `<name>.<key>`:
    /// `{ type: 'prometheus', url, queries, counts, control }` (PromQL range queries templated
    /// from the event), `{ type: 'scrape', url, metrics, counts, control_url }` (the service's
    /// own `/metrics` page) or `{ type: 'host' }` (the machine cased runs on).
    #[napi(
        ts_type = "Array<{ type: 'prometheus' | 'scrape' | 'host'; name?: string; every?: string } & Record<string, unknown>>"
    )]
    pub sources: Option<Vec<Value>>,
    /// The metrics the program pushes (`session.push('queue_depth', …)`). A detector must watch
    /// a metric something produces — a check (`<check>.latency_ms`, `<check>.success`,
    /// configured or custom), a source (`<source>.<key>`) or a `pushed` metric — or the
    /// constructor throws a `validation` error on `detectors[i].metric` naming the detector and
    /// the metric. A monitor with none of these (push-only, or replay-only) is not held to the
    /// rule.
    pub pushed: Option<Vec<String>>,
}

/// The `baseline` section: `{ pre_deploy: '1h', previous: 5 }`.
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineConfig {
    /// How far before the deployment sources that can look back are read (default `'1h'`;
    /// `'0s'` turns the pre-deploy baseline off).
    pub pre_deploy: Option<String>,
    /// How many earlier healthy deployments make the `previous` baseline (default 5; 0 turns it
    /// off).
    pub previous: Option<u32>,
}

/// A recorded deployment for `Monitor.replay`: samples and counts with their times (those
/// before `started_at` are the pre-deploy window), and check outcomes by time since the start.
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    /// When the deployment started, in seconds since the Unix epoch: the session's time 0.
    pub started_at: f64,
    /// Seconds after `started_at` at which the deployment reported success (the cool-down
    /// starts then); absent: the event's status decides.
    pub completed_after: Option<f64>,
    /// Value samples: `{ metric, timestamp, value, labels? }`.
    #[napi(
        ts_type = "Array<{ metric: string; timestamp: number; value: number; labels?: Record<string, string> }>"
    )]
    pub samples: Option<Value>,
    /// Counts for error-rate detectors: `{ metric, timestamp, errors, requests }`.
    #[napi(
        ts_type = "Array<{ metric: string; timestamp: number; errors: number; requests: number }>"
    )]
    pub counts: Option<Value>,
    /// Samples of the control (stable) track.
    #[napi(
        ts_type = "Array<{ metric: string; timestamp: number; value: number; labels?: Record<string, string> }>"
    )]
    pub control_samples: Option<Value>,
    /// Counts of the control track.
    #[napi(
        ts_type = "Array<{ metric: string; timestamp: number; errors: number; requests: number }>"
    )]
    pub control_counts: Option<Value>,
    /// Check outcomes: `{ name, at (s after the start), status, latency_ms?, message?, category? }`.
    #[napi(
        ts_type = "Array<{ name: string; at: number; status: 'pass' | 'warn' | 'fail' | 'error'; latency_ms?: number; message?: string; category?: string }>"
    )]
    pub checks: Option<Value>,
}

/// The alerts section: where notifications go, which alerts go where, and how they are
/// delivered. With no `routes`, one route named `default` sends every alert to every channel.
///
/// ```js
/// alerts: {
///   channels: [
///     { name: 'hooks', type: 'webhook', url: 'https://hooks.example/cased', secret_env: 'CASED_WEBHOOK_SECRET' },
///     { name: 'dashboard', type: 'inapp' },
///     { name: 'pager', type: 'custom' }, // its notifier: new Monitor(config, { notifiers: { pager } })
///   ],
///   routes: [{ name: 'default', channels: ['hooks', 'dashboard', 'pager'], min_severity: 'warning' }],
/// }
/// ```
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct AlertsConfig {
    /// Where notifications go (each with its kind's own keys besides the common ones).
    #[napi(ts_type = "Array<AlertChannelConfig & Record<string, unknown>>")]
    pub channels: Option<Vec<Value>>,
    /// Which alerts go to which channels, and when.
    pub routes: Option<Vec<AlertRouteConfig>>,
    /// Queueing and retries, for every channel without its own `delivery`.
    pub delivery: Option<DeliveryConfig>,
}

/// One alert channel; `type` selects the kind, and each kind has its own keys (`slack`:
/// `webhook_url` / `webhook_url_env`, `max_findings`; `webhook`: `url`, `secret` /
/// `secret_env`, `headers`; `email`: `host`, `port`, `tls`, `username`, `password` /
/// `password_env`, `from`, `to`, `subject_prefix`; `inapp` and `custom`: none).
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct AlertChannelConfig {
    /// Unique among channels; routes refer to it.
    pub name: String,
    /// The kind of channel: `custom` is delivered by the notifier function of the same name.
    #[napi(
        js_name = "type",
        ts_type = "'slack' | 'webhook' | 'email' | 'inapp' | 'custom'"
    )]
    pub kind: String,
    /// Also tell this channel when alerts resolve (opt-in).
    #[napi(js_name = "send_resolved")]
    pub send_resolved: Option<bool>,
    /// This channel's own delivery settings.
    pub delivery: Option<DeliveryConfig>,
}

/// Which alerts a route takes, which channels it tells, and when. Durations are strings like
/// `"10s"`.
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRouteConfig {
    /// Unique among routes (default `route-<index>`).
    pub name: Option<String>,
    /// The channels told, by name.
    pub channels: Vec<String>,
    /// Alerts below this severity are not taken (default `info`: all).
    #[napi(
        js_name = "min_severity",
        ts_type = "'info' | 'warning' | 'critical' | 'emergency'"
    )]
    pub min_severity: Option<String>,
    /// Only alerts of these environments are taken (default: all).
    pub environments: Option<Vec<String>>,
    /// How long a new group (deployment) collects alerts before its first message (default
    /// `"10s"`).
    #[napi(js_name = "group_wait")]
    pub group_wait: Option<String>,
    /// After a message, how long before a message about changes in the group (default `"1m"`).
    #[napi(js_name = "group_interval")]
    pub group_interval: Option<String>,
    /// How long before firing alerts that did not change are told again (default `"4h"`).
    #[napi(js_name = "repeat_interval")]
    pub repeat_interval: Option<String>,
    /// Re-notify another route when a critical alert stays firing:
    /// `{ after, route, min_severity?, raise_to_emergency? }`.
    #[napi(
        ts_type = "{ after: string; route: string; min_severity?: 'warning' | 'critical' | 'emergency'; raise_to_emergency?: boolean }"
    )]
    pub escalation: Option<Value>,
    /// Takes only alerts escalated to it.
    #[napi(js_name = "escalation_only")]
    pub escalation_only: Option<bool>,
}

/// Queueing and retries of a channel.
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryConfig {
    /// Timeout of one attempt.
    pub timeout: Option<String>,
    /// Retries after the first attempt.
    #[napi(js_name = "max_retries")]
    pub max_retries: Option<u32>,
    /// Upper bound of the first backoff (full jitter), doubled each retry.
    #[napi(js_name = "initial_backoff")]
    pub initial_backoff: Option<String>,
    /// Largest backoff bound.
    #[napi(js_name = "max_backoff")]
    pub max_backoff: Option<String>,
    /// No retry starts after this much time since the first attempt.
    #[napi(js_name = "max_elapsed")]
    pub max_elapsed: Option<String>,
    /// Groups queued at most; beyond, new groups are merged into one digest (and reported).
    #[napi(js_name = "queue_capacity")]
    pub queue_capacity: Option<u32>,
    /// Alerts shown in one notification at most; the keys of the others are listed.
    #[napi(js_name = "max_alerts")]
    pub max_alerts: Option<u32>,
}

/// When checks run. Durations are strings like `"250ms"`, `"10s"`, `"1m"`, `"1h 30m"`.
///
/// The first tick runs at once; then the intervals follow in order, the last one repeating
/// while the deployment runs and through the cool-down after it succeeds.
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleConfig {
    /// Delays between ticks, each 1 ms to 7 days (default `["10s", "30s", "1m", "5m"]`). Each
    /// check is also given at most the smallest interval to finish.
    pub intervals: Option<Vec<String>>,
    /// Extended monitoring after the deployment reports success (default `"30m"`).
    pub cooldown: Option<String>,
    /// Hard limit of a session's length (default `"2h"`).
    #[napi(js_name = "max_duration")]
    pub max_duration: Option<String>,
    /// Each delay is lengthened by a random amount up to this (default `"0s"`; at most the
    /// smallest interval).
    pub jitter: Option<String>,
}

/// How the verdict is reached (Argo Rollouts' counters).
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct VerdictConfig {
    /// Failed ticks tolerated; one more makes the deployment unhealthy and fires the rollback
    /// hook (default 0).
    #[napi(js_name = "failure_limit")]
    pub failure_limit: Option<u32>,
    /// Consecutive errors of one check tolerated (a check that could not run is an error, not a
    /// failure); one more ends the session inconclusive (default 4).
    #[napi(js_name = "consecutive_error_limit")]
    pub consecutive_error_limit: Option<u32>,
    /// Measured ticks needed before a healthy or degraded verdict (default 5).
    #[napi(js_name = "min_samples")]
    pub min_samples: Option<u32>,
    /// What too little data means when the session ends: `fail` (unhealthy), `inconclusive`
    /// (the default) or `extend` (keep monitoring until there is enough or `max_duration`).
    #[napi(js_name = "no_data", ts_type = "'fail' | 'inconclusive' | 'extend'")]
    pub no_data: Option<String>,
}
