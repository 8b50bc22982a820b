//! The one configuration model of a monitor, the same in Rust, Python, Node and `cased.toml`:
//!
//! ```json
//! {
//!   "schedule": {"intervals": ["10s", "30s", "1m", "5m"], "cooldown": "30m", "max_duration": "2h", "jitter": "0s"},
//!   "checks":   [{"name": "web", "type": "http", "url": "https://example.test/health"}],
//!   "verdict":  {"failure_limit": 0, "consecutive_error_limit": 4, "min_samples": 5, "no_data": "inconclusive"},
//!   "detectors": [], "alerts": {}
//! }
//! ```
//! Every key is optional; unknown keys are errors naming the key and its path.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::alert::AlertsConfig;
use crate::baselines::BaselineConfig;
use crate::checks::CheckConfig;
use crate::detect::DetectorConfig;
use crate::error::{Error, Problems, Result};
use crate::metrics::SourceConfig;
use crate::schedule::ScheduleConfig;
use crate::verdict::VerdictConfig;

/// A monitor's configuration.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorConfig {
    /// When checks run.
    pub schedule: ScheduleConfig,
    /// The checks run at every tick.
    pub checks: Vec<CheckConfig>,
    /// How the verdict is reached.
    pub verdict: VerdictConfig,
    /// Anomaly detectors over the samples (check latencies `<check>.latency_ms`, check
    /// success `<check>.success`, and pushed metrics).
    pub detectors: Vec<DetectorConfig>,
    /// Alert channels and routes; with no channel, nothing is sent.
    pub alerts: AlertsConfig,
    /// Where baselines come from when none is handed in (pre-deploy window, previous healthy
    /// deployments).
    pub baseline: BaselineConfig,
    /// Metric sources every session polls (`prometheus`, `scrape`, `host`); their samples are
    /// named `<source>.<key>`.
    pub sources: Vec<SourceConfig>,
}

impl MonitorConfig {
    /// Reads a configuration from a JSON value (a Python dict or a JS object passed through).
    ///
    /// # Errors
    /// [`Error::Validation`] whose field is the path of the offending key, e.g.
    /// `schedule.intervals[1]` or `checks[0]`.
    pub fn from_value(value: Value) -> Result<Self> {
        if !value.is_object() {
            return Err(Error::invalid("config", "must be an object"));
        }
        if crate::limits::json_depth(&value) > crate::limits::MAX_JSON_DEPTH {
            return Err(Error::invalid("config", crate::limits::too_deep_message()));
        }
        let config: Self = serde_path_to_error::deserialize(value).map_err(path_error)?;
        config.check()?;
        Ok(config)
    }

    /// Reads a configuration from JSON text.
    ///
    /// # Errors
    /// As [`MonitorConfig::from_value`], plus malformed JSON.
    pub fn from_json(text: &str) -> Result<Self> {
        if let Ok(value) = serde_json::from_str::<Value>(text)
            && crate::limits::json_depth(&value) > crate::limits::MAX_JSON_DEPTH
        {
            return Err(Error::invalid("config", crate::limits::too_deep_message()));
        }
        let mut de = serde_json::Deserializer::from_str(text);
        let config: Self = serde_path_to_error::deserialize(&mut de).map_err(path_error)?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<()> {
        let mut p = Problems::default();
        let mut seen = std::collections::HashSet::new();
        for (i, c) in self.checks.iter().enumerate() {
            if !seen.insert(c.name()) {
                p.add(
                    format!("checks[{i}].name"),
                    format!("{:?} is used by an earlier check", c.name()),
                );
            }
        }
        p.finish("monitor configuration")
    }
}

fn path_error<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> Error {
    let path = e.path().to_string();
    let field = if path == "." || path.is_empty() {
        "config".to_owned()
    } else {
        path
    };
    Error::invalid(field, e.inner().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_documented_shape_parses() {
        let c = MonitorConfig::from_value(json!({
            "schedule": {"intervals": ["10s", "30s", "1m", "5m"], "cooldown": "30m", "max_duration": "2h", "jitter": "0s"},
            "checks": [{"name": "web", "type": "http", "url": "https://example.test/health"}],
            "verdict": {"failure_limit": 0, "consecutive_error_limit": 4, "min_samples": 5, "no_data": "inconclusive"},
            "detectors": [], "alerts": {}
        }))
        .unwrap();
        assert_eq!(c.checks.len(), 1);
        assert_eq!(
            MonitorConfig::from_value(json!({})).unwrap(),
            MonitorConfig::default()
        );
    }

    #[test]
    fn unknown_keys_are_named_with_their_path() {
        let e =
            MonitorConfig::from_value(json!({"schedule": {"intervals": ["1s"], "cooldwn": "1m"}}))
                .unwrap_err();
        assert_eq!(e.field_errors()[0].field, "schedule.cooldwn");
        assert!(e.to_string().contains("unknown field `cooldwn`"), "{e}");
        let e = MonitorConfig::from_value(json!({"verdikt": {}})).unwrap_err();
        assert!(e.to_string().contains("unknown field `verdikt`"), "{e}");
        let e = MonitorConfig::from_value(json!({"schedule": {"intervals": ["1s", "fast"]}}))
            .unwrap_err();
        assert_eq!(e.field_errors()[0].field, "schedule.intervals");
        assert!(e.to_string().contains("\"fast\""), "{e}");
        let e = MonitorConfig::from_value(
            json!({"checks": [{"name": "a", "type": "http", "url": "http://x", "urll": 1}]}),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("checks[0]") && e.to_string().contains("urll"),
            "{e}"
        );
        let e = MonitorConfig::from_value(json!({"verdict": {"no_data": "maybe"}})).unwrap_err();
        assert_eq!(e.field_errors()[0].field, "verdict.no_data");
    }

    #[test]
    fn duplicate_check_names_are_rejected() {
        let e = MonitorConfig::from_value(json!({
            "checks": [{"name": "a", "type": "http", "url": "http://x"}, {"name": "a", "type": "http", "url": "http://y"}],
        }))
        .unwrap_err();
        let fields: Vec<&str> = e.field_errors().iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["checks[1].name"]);
    }

    #[test]
    fn detectors_and_alerts_are_read_with_their_paths() {
        let c = MonitorConfig::from_value(json!({
            "detectors": [{"type": "spike", "metric": "web.latency_ms"}],
            "alerts": {"channels": [{"name": "app", "type": "inapp"}]}
        }))
        .unwrap();
        assert_eq!(c.detectors.len(), 1);
        assert_eq!(c.alerts.channels.len(), 1);
        let e = MonitorConfig::from_value(
            json!({"detectors": [{"type": "spike", "metric": "m", "windw": 3}]}),
        )
        .unwrap_err();
        assert!(e.field_errors()[0].field.starts_with("detectors[0]"), "{e}");
    }
}
