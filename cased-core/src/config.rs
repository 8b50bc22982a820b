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
use crate::limits;
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
    /// The metrics the caller pushes into its sessions (`session.push("queue_depth", …)`),
    /// declared so that detectors may watch them: a monitor that has checks, sources or a
    /// `pushed` list refuses a detector on a metric none of them produces.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pushed: Vec<String>,
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
        let mut p = Problems::default();
        limits::check_value(&mut p, "", &value);
        p.finish("monitor configuration")?;
        let config: Self = serde_path_to_error::deserialize(value).map_err(path_error)?;
        config.check()?;
        Ok(config)
    }

    /// Reads a configuration from JSON text.
    ///
    /// # Errors
    /// As [`MonitorConfig::from_value`], plus malformed JSON.
    pub fn from_json(text: &str) -> Result<Self> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| Error::invalid("config", limits::shorten_message(&e.to_string())))?;
        Self::from_value(value)
    }

    /// Checks that every detector watches a metric something will produce: a check of the
    /// configuration (`<check>.latency_ms`, `<check>.success`), a source (`<source>.<key>`), a
    /// metric of `pushed`, or one of `extra_pushed`. A detector on anything else never gets
    /// data and makes every session inconclusive. [`Monitor`](crate::Monitor)'s `build` applies
    /// this rule itself (with custom checks and sources too); `cased monitor` calls it at load.
    ///
    /// # Errors
    /// [`Error::Validation`] with one problem per such detector, on `detectors[i].metric`,
    /// naming the detector and the metric.
    pub fn check_detector_metrics(&self, extra_pushed: &[&str]) -> Result<()> {
        let checks: Vec<&str> = self.checks.iter().map(CheckConfig::name).collect();
        let sources: Vec<&str> = self.sources.iter().map(SourceConfig::name).collect();
        let mut pushed: Vec<&str> = self.pushed.iter().map(String::as_str).collect();
        pushed.extend_from_slice(extra_pushed);
        detector_metrics(&self.detectors, &checks, &sources, &pushed)
    }

    fn check(&self) -> Result<()> {
        let mut p = Problems::default();
        let mut seen = std::collections::HashSet::new();
        for (field, n, max) in [
            ("checks", self.checks.len(), limits::MAX_CHECKS),
            ("sources", self.sources.len(), limits::MAX_SOURCES),
            ("detectors", self.detectors.len(), limits::MAX_DETECTORS),
            ("pushed", self.pushed.len(), limits::MAX_DETECTORS),
        ] {
            if n > max {
                p.add(field, format!("has {n} entries; at most {max} are allowed"));
            }
        }
        if !p.is_empty() {
            return p.finish("monitor configuration");
        }
        for (i, c) in self.checks.iter().enumerate() {
            limits::check_name(&mut p, &format!("checks[{i}].name"), c.name());
            if !seen.insert(c.name()) {
                p.add(
                    format!("checks[{i}].name"),
                    format!("{:?} is used by an earlier check", limits::echo(c.name())),
                );
            }
        }
        for (i, s) in self.sources.iter().enumerate() {
            limits::check_name(&mut p, &format!("sources[{i}].name"), s.name());
        }
        for (i, d) in self.detectors.iter().enumerate() {
            limits::check_name(&mut p, &format!("detectors[{i}].metric"), &d.metric);
        }
        for (i, m) in self.pushed.iter().enumerate() {
            if m.trim().is_empty() {
                p.add(format!("pushed[{i}]"), "must be a metric name, not blank");
            }
            limits::check_name(&mut p, &format!("pushed[{i}]"), m);
        }
        p.finish("monitor configuration")
    }
}

/// The detector-metric rule over given producers (see
/// [`MonitorConfig::check_detector_metrics`]).
pub(crate) fn detector_metrics(
    detectors: &[DetectorConfig],
    checks: &[&str],
    sources: &[&str],
    pushed: &[&str],
) -> Result<()> {
    let produced = |m: &str| {
        pushed.contains(&m)
            || m.rsplit_once('.').is_some_and(|(owner, key)| {
                (checks.contains(&owner) && (key == "latency_ms" || key == "success"))
                    || sources.contains(&owner)
            })
    };
    let mut p = Problems::default();
    for (i, d) in detectors.iter().enumerate() {
        if produced(&d.metric) {
            continue;
        }
        let hint = match d.metric.split_once('.') {
            Some((owner, _)) if checks.contains(&owner) => {
                format!("; the check {owner:?} gives {owner}.latency_ms and {owner}.success")
            }
            _ => String::new(),
        };
        p.add(
            format!("detectors[{i}].metric"),
            format!(
                "the {:?} detector watches {:?}, which no check or source produces and \
                 which is not declared as pushed{hint} (checks give <check>.latency_ms and \
                 <check>.success, sources <source>.<key>, `pushed` lists the metrics the \
                 caller pushes)",
                limits::echo(d.name()),
                limits::echo(&d.metric)
            ),
        );
    }
    p.finish("monitor configuration")
}

fn path_error<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> Error {
    let path = e.path().to_string();
    let field = if path == "." || path.is_empty() {
        "config".to_owned()
    } else {
        path.split('.')
            .map(limits::field_segment)
            .collect::<Vec<_>>()
            .join(".")
    };
    Error::invalid(field, limits::shorten_message(&e.inner().to_string()))
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
    fn limits_are_enforced_naming_the_key() {
        let checks: Vec<Value> = (0..=limits::MAX_CHECKS)
            .map(
                |i| json!({"name": format!("c{i}"), "type": "tcp", "host": "127.0.0.1", "port": 1}),
            )
            .collect();
        let e = MonitorConfig::from_value(json!({ "checks": checks })).unwrap_err();
        assert_eq!(e.field_errors()[0].field, "checks");
        assert!(e.to_string().contains("at most 1000"), "{e}");

        let long = "n".repeat(limits::MAX_CONFIG_NAME_CHARS + 1);
        for (name, field) in [
            (long.as_str(), "checks[0].name"),
            ("a\0b", "checks[0].name"),
        ] {
            let e = MonitorConfig::from_value(
                json!({"checks": [{"name": name, "type": "tcp", "host": "h", "port": 1}]}),
            )
            .unwrap_err();
            assert_eq!(e.field_errors()[0].field, field, "{e}");
        }
        let e = MonitorConfig::from_value(
            json!({"detectors": [{"type": "spike", "metric": "m\u{1}"}]}),
        )
        .unwrap_err();
        assert_eq!(e.field_errors()[0].field, "detectors[0].metric");

        // A huge unknown key is refused quickly, echoed cut short.
        let key = "k".repeat(2_000_000);
        let e = MonitorConfig::from_value(json!({ key.clone(): 1 })).unwrap_err();
        let text = e.to_string();
        assert!(
            text.len() < 500 && text.contains(&"k".repeat(64)),
            "{}",
            text.len()
        );
        let e =
            MonitorConfig::from_json(&format!("{{\"schedule\": {{\"{}\": 1}}}}", "q".repeat(200)))
                .unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("unknown field") && !text.contains(&"q".repeat(65)),
            "{text}"
        );

        let big = "x".repeat(limits::MAX_STRING_BYTES + 1);
        let e = MonitorConfig::from_value(
            json!({"checks": [{"name": "a", "type": "http", "url": "http://h/", "body": big}]}),
        )
        .unwrap_err();
        assert_eq!(e.field_errors()[0].field, "checks[0].body");
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

    #[test]
    fn a_detector_on_a_metric_nothing_produces_is_refused_naming_detector_and_metric() {
        let config = MonitorConfig::from_value(json!({
            "checks": [{"name": "web", "type": "http", "url": "http://127.0.0.1:9/"}],
            "sources": [{"type": "host"}],
            "detectors": [
                {"type": "spike", "metric": "web.latency_ms"},
                {"type": "spike", "metric": "host.cpu_percent"},
                {"type": "spike", "metric": "web.latency", "name": "slow-web"},
                {"type": "spike", "metric": "queue_depth"},
            ],
        }))
        .unwrap();
        let e = config.check_detector_metrics(&[]).unwrap_err();
        let fields: Vec<&str> = e.field_errors().iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["detectors[2].metric", "detectors[3].metric"]);
        let first = &e.field_errors()[0].message;
        assert!(
            first.contains("\"slow-web\" detector watches \"web.latency\""),
            "{first}"
        );
        assert!(first.contains("web.latency_ms"), "{first}");
        assert!(
            !first.contains("  "),
            "no run of spaces in the message: {first}"
        );
        // Declared as pushed, it is accepted.
        let e = config.check_detector_metrics(&["queue_depth"]).unwrap_err();
        assert_eq!(e.field_errors().len(), 1);
        config
            .check_detector_metrics(&["queue_depth", "web.latency"])
            .unwrap();
    }
}
