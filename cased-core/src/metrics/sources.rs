//! The `sources` entries of a monitor's configuration: [`SourceConfig`] (one per entry, tagged
//! by `type`) and the [`SourcePlan`] the monitor validates it into once, which starts one
//! [`Source`] per session. The sources themselves live in `prometheus.rs`, `scrape.rs` and
//! `host.rs`; what they share (the trait, templates, HTTP helpers) in `source.rs`.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::prometheus::{PrometheusPlan, PrometheusSourceConfig};
use super::scrape::{ScrapePlan, ScrapeSourceConfig};
use super::source::{Source, field};
use crate::duration;
use crate::error::{Problems, Result};

/// One entry of `MonitorConfig.sources`; `type` selects the kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SourceConfig {
    /// PromQL range queries against a Prometheus-compatible server ([`PrometheusSourceConfig`]).
    Prometheus(PrometheusSourceConfig),
    /// The service's own `/metrics` page, read directly ([`ScrapeSourceConfig`]).
    Scrape(ScrapeSourceConfig),
    /// CPU, memory, disk and load of the machine cased runs on ([`HostSourceConfig`]).
    Host(HostSourceConfig),
}

impl SourceConfig {
    /// The source's name: its `name` key, else its type (`prometheus`, `scrape`, `host`).
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::Prometheus(c) => c.name.as_deref().unwrap_or("prometheus"),
            Self::Scrape(c) => c.name.as_deref().unwrap_or("scrape"),
            Self::Host(c) => c.name.as_deref().unwrap_or("host"),
        }
    }

    /// Its own polling cadence (`every`); `None` polls once per session tick.
    #[must_use]
    pub fn every(&self) -> Option<Duration> {
        match self {
            Self::Prometheus(c) => c.every,
            Self::Scrape(c) => c.every,
            Self::Host(c) => c.every,
        }
    }

    /// Reads one source from a JSON value.
    ///
    /// # Errors
    /// [`Error::Validation`] whose field is the path of the offending key.
    pub fn from_value(value: Value) -> Result<Self> {
        let c: Self = crate::error::deserialize_at(value, "input", "source")?;
        let mut p = Problems::default();
        c.check(&mut p, "");
        p.finish("source configuration")?;
        Ok(c)
    }

    /// Adds every problem of this entry to `p`, fields named under `prefix` (e.g.
    /// `sources[0]` gives `sources[0].url`).
    pub(crate) fn check(&self, p: &mut Problems, prefix: &str) {
        let name = self.name();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
        {
            p.add(
                field(prefix, "name"),
                format!("{name:?} must be letters, digits, `_` or `-` (it prefixes metric names)"),
            );
        }
        if self.every().is_some_and(|d| d.is_zero()) {
            p.add(field(prefix, "every"), "must be more than 0");
        }
        if let Some(every) = self.every() {
            crate::limits::check_retry_span(p, field(prefix, "every"), every);
        }
        match self {
            Self::Prometheus(c) => c.check(p, prefix),
            Self::Scrape(c) => c.check(p, prefix),
            Self::Host(c) => c.check(p, prefix),
        }
    }

    /// Validates the entry and builds what every session of a monitor shares (HTTP client,
    /// parsed templates, compiled label matchers).
    ///
    /// # Errors
    /// [`Error::Validation`] naming each bad field (paths start at the source).
    pub fn plan(&self) -> Result<SourcePlan> {
        let mut p = Problems::default();
        self.check(&mut p, "");
        p.finish("source configuration")?;
        let name: Arc<str> = self.name().into();
        let kind = match self {
            Self::Prometheus(c) => PlanKind::Prometheus(Arc::new(PrometheusPlan::new(&name, c)?)),
            Self::Scrape(c) => PlanKind::Scrape(Arc::new(ScrapePlan::new(&name, c)?)),
            Self::Host(c) => host_plan(c)?,
        };
        Ok(SourcePlan {
            name,
            every: self.every(),
            kind,
        })
    }
}

#[cfg(feature = "host")]
fn host_plan(c: &HostSourceConfig) -> Result<PlanKind> {
    Ok(PlanKind::Host(c.timeout))
}

#[cfg(not(feature = "host"))]
fn host_plan(_: &HostSourceConfig) -> Result<PlanKind> {
    Err(Error::invalid(
        "type",
        "the host source needs cased-core's `host` feature",
    ))
}

/// A validated source, shared by every session of a monitor. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SourcePlan {
    name: Arc<str>,
    every: Option<Duration>,
    kind: PlanKind,
}

#[derive(Clone, Debug)]
enum PlanKind {
    Prometheus(Arc<PrometheusPlan>),
    Scrape(Arc<ScrapePlan>),
    #[cfg(feature = "host")]
    Host(Duration),
    Custom(CustomStart),
}

type StartFn = dyn Fn() -> Box<dyn Source> + Send + Sync;

/// How a source written in code starts one per session.
#[derive(Clone)]
struct CustomStart(Arc<StartFn>);

impl std::fmt::Debug for CustomStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CustomStart")
    }
}

impl SourcePlan {
    /// A source written in code, named `name`, polled every `every` (`None`: at every tick);
    /// `start` makes one per session.
    pub fn new(
        name: impl Into<Arc<str>>,
        every: Option<Duration>,
        start: impl Fn() -> Box<dyn Source> + Send + Sync + 'static,
    ) -> Self {
        Self {
            name: name.into(),
            every,
            kind: PlanKind::Custom(CustomStart(Arc::new(start))),
        }
    }

    /// The source's name (the prefix of its metrics).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its own cadence; `None` polls once per session tick.
    #[must_use]
    pub fn every(&self) -> Option<Duration> {
        self.every
    }

    /// Whether [`Source::lookback`] can return data (Prometheus only).
    #[must_use]
    pub fn can_look_back(&self) -> bool {
        matches!(self.kind, PlanKind::Prometheus(_) | PlanKind::Custom(_))
    }

    /// A fresh source for one session.
    #[must_use]
    pub fn start(&self) -> Box<dyn Source> {
        match &self.kind {
            PlanKind::Prometheus(p) => {
                Box::new(super::prometheus::PrometheusPoller::new(p.clone()))
            }
            PlanKind::Scrape(p) => Box::new(super::scrape::ScrapePoller::new(p.clone())),
            #[cfg(feature = "host")]
            PlanKind::Host(timeout) => {
                Box::new(super::host::HostPoller::new(self.name.clone(), *timeout))
            }
            PlanKind::Custom(start) => (start.0)(),
        }
    }
}

/// The `host` source: the machine **cased itself runs on** (not the monitored service, unless
/// they share it). Metrics `<name>.cpu_percent` (from the second poll on),
/// `<name>.memory_used_percent`, `<name>.disk_used_percent` (label `mount`) and
/// `<name>.load_1m`. Needs the `host` feature (on by default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSourceConfig {
    /// Prefix of the metrics (default `host`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Own cadence (default: every session tick).
    #[serde(
        default,
        with = "duration::human_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub every: Option<Duration>,
    /// How long one reading may take (default 5 s; a hung network mount cannot hang a poll).
    #[serde(default = "default_host_timeout", with = "duration::human")]
    pub timeout: Duration,
}

impl Default for HostSourceConfig {
    fn default() -> Self {
        Self {
            name: None,
            every: None,
            timeout: default_host_timeout(),
        }
    }
}

fn default_host_timeout() -> Duration {
    Duration::from_secs(5)
}

impl HostSourceConfig {
    fn check(&self, p: &mut Problems, prefix: &str) {
        crate::limits::check_timeout(p, field(prefix, "timeout"), self.timeout);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn configs_parse_with_defaults_and_name_bad_fields() {
        let c = SourceConfig::from_value(json!({"type": "host"})).unwrap();
        assert_eq!(c.name(), "host");
        assert_eq!(c.every(), None);
        let plan = c.plan();
        #[cfg(feature = "host")]
        assert_eq!(plan.unwrap().name(), "host");
        #[cfg(not(feature = "host"))]
        assert!(plan.is_err());
        let c = SourceConfig::from_value(json!({"type": "host", "name": "box", "every": "15s"}))
            .unwrap();
        assert_eq!(
            (c.name(), c.every()),
            ("box", Some(Duration::from_secs(15)))
        );
        let e = SourceConfig::from_value(json!({"type": "host", "evry": "15s"})).unwrap_err();
        assert!(e.to_string().contains("unknown field `evry`"), "{e}");
        let e = SourceConfig::from_value(json!({"type": "hots"})).unwrap_err();
        assert!(e.to_string().contains("hots"), "{e}");
        let e = SourceConfig::from_value(json!({"type": "host", "name": "a b", "every": "0s"}))
            .unwrap_err();
        let fields: Vec<&str> = e.field_errors().iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["name", "every"]);
        let mut p = Problems::default();
        SourceConfig::Host(HostSourceConfig {
            timeout: Duration::ZERO,
            ..HostSourceConfig::default()
        })
        .check(&mut p, "sources[2]");
        assert!(p.has("sources[2].timeout"));
    }

    #[test]
    fn header_values_are_redacted_when_serialized() {
        let c = SourceConfig::from_value(json!({
            "type": "scrape", "url": "http://127.0.0.1:1/metrics", "headers": {"authorization": "Bearer s3cret"},
            "metrics": {"up": {"gauge": "up"}}
        }))
        .unwrap();
        let text = serde_json::to_string(&c).unwrap();
        assert!(
            !text.contains("s3cret") && text.contains("[redacted]"),
            "{text}"
        );
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(!format!("{:?}", c.plan().unwrap()).contains("s3cret"));
        let e = SourceConfig::from_value(json!({
            "type": "scrape", "url": "http://127.0.0.1:1/metrics", "headers": {"authorization": "s3cret\n"},
            "metrics": {"up": {"gauge": "up"}}
        }))
        .unwrap_err();
        assert_eq!(e.field_errors()[0].field, "headers.authorization");
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }
}
