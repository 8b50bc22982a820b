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
    /// Anomaly detectors (not available yet: must be empty).
    #[napi(ts_type = "Array<never>")]
    pub detectors: Option<Vec<Value>>,
    /// Alert channels and routes (not available yet: must be empty).
    #[napi(ts_type = "Record<string, never>")]
    pub alerts: Option<Value>,
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
