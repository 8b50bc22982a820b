//! Metric samples, where they come from, and the baselines they are judged against.
//!
//! A [`Sample`] is `(metric, labels, timestamp, value)`. Sources: the checks themselves,
//! the host ([`HostSource`], feature `host`), Prometheus ([`PrometheusSource`]), the service's
//! own exposition page ([`Exposition`]) and samples the caller pushes. A session polls the
//! sources of its configuration ([`SourceConfig`] → [`SourcePlan`] → [`Source`]). A [`Baseline`] is what "normal" looked like for one metric, from a
//! [`BaselineStore`] ([`MemoryBaselineStore`], [`SqliteBaselineStore`] with feature `sqlite`) or
//! handed in by the caller.

#[cfg(feature = "host")]
mod host;
mod prometheus;
mod scrape;
mod source;
mod sources;
mod store;

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[cfg(feature = "host")]
pub use host::HostSource;
pub use prometheus::{
    PrometheusCounts, PrometheusSource, PrometheusSourceBuilder, PrometheusSourceConfig,
};
pub use scrape::{
    CounterSelector, Exposition, LabelMatch, MetricType, ParseError, ScrapeCounts, ScrapeMetric,
    ScrapeSourceConfig, Series,
};
pub use source::{CountsSample, PollContext, Polled, Source};
pub use sources::{HostSourceConfig, SourceConfig, SourcePlan};
#[cfg(feature = "sqlite")]
pub use store::SqliteBaselineStore;
pub use store::{BaselineKey, BaselineStore, MemoryBaselineStore, WindowKind};

/// Errors out of requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Counts {
    /// Failed requests.
    pub errors: u64,
    /// All requests (at least `errors`).
    pub requests: u64,
}

impl Counts {
    /// `errors` out of `requests`.
    ///
    /// # Errors
    /// [`Error::Validation`] when `errors > requests`.
    pub fn new(errors: u64, requests: u64) -> Result<Self> {
        if errors > requests {
            return Err(Error::invalid(
                "errors",
                format!(
                    "{errors} errors out of {requests} requests: errors must not exceed requests"
                ),
            ));
        }
        Ok(Self { errors, requests })
    }

    /// The error rate (0 when there were no requests).
    #[must_use]
    pub fn rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }

    /// Adds two counts.
    #[must_use]
    pub fn plus(self, other: Self) -> Self {
        Self {
            errors: self.errors + other.errors,
            requests: self.requests + other.requests,
        }
    }
}

/// Labels of a sample (`{"instance": "web-1", "route": "/login"}`), ordered.
pub type Labels = BTreeMap<String, String>;

/// One observation of one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    /// The metric's name, e.g. `response_time_ms`.
    pub metric: String,
    /// Its labels.
    #[serde(default)]
    pub labels: Labels,
    /// When, in seconds since the Unix epoch (fractions allowed).
    pub timestamp: f64,
    /// The value.
    pub value: f64,
}

impl Sample {
    /// A sample of `metric` taken now, without labels.
    #[must_use]
    pub fn new(metric: impl Into<String>, value: f64) -> Self {
        Self {
            metric: metric.into(),
            labels: Labels::new(),
            timestamp: unix_now(),
            value,
        }
    }

    /// A sample at `timestamp` (seconds since the Unix epoch).
    #[must_use]
    pub fn at(metric: impl Into<String>, timestamp: f64, value: f64) -> Self {
        Self {
            metric: metric.into(),
            labels: Labels::new(),
            timestamp,
            value,
        }
    }

    /// Adds a label.
    #[must_use]
    pub fn label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(name.into(), value.into());
        self
    }
}

/// Seconds since the Unix epoch, now.
#[must_use]
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Where a baseline came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BaselineSource {
    /// The window before the deployment (for sources that can look back, or recorded live).
    PreDeploy,
    /// The samples of the last healthy deployments.
    LastHealthy {
        /// How many deployments contributed.
        deployments: usize,
    },
    /// Handed in by the caller.
    Provided,
    /// The control (stable) track, read live beside the canary.
    Control,
}

impl BaselineSource {
    /// A phrase for reports: "the window before the deployment", "the last 3 healthy
    /// deployments", "a baseline provided by the caller".
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::PreDeploy => "the window before the deployment".into(),
            Self::LastHealthy { deployments: 1 } => "the last healthy deployment".into(),
            Self::LastHealthy { deployments } => {
                format!("the last {deployments} healthy deployments")
            }
            Self::Provided => "a baseline provided by the caller".into(),
            Self::Control => "the control track".into(),
        }
    }
}

/// What "normal" looked like for one metric: values and where they came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Where it came from.
    pub source: BaselineSource,
    /// The values.
    pub values: Vec<f64>,
}

impl Baseline {
    /// A baseline of `values` from `source`.
    #[must_use]
    pub fn new(source: BaselineSource, values: Vec<f64>) -> Self {
        Self { source, values }
    }

    /// A baseline the caller hands in (a list, a numpy array, a `Float64Array`).
    ///
    /// # Errors
    /// [`Error::Validation`](crate::Error) when `values` is empty or not finite.
    pub fn provided(values: &[f64]) -> crate::Result<Self> {
        if values.is_empty() {
            return Err(Error::invalid("baseline", "is empty"));
        }
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(
                format!("baseline[{i}]"),
                format!("must be a finite number, got {}", values[i]),
            ));
        }
        Ok(Self {
            source: BaselineSource::Provided,
            values: values.to_vec(),
        })
    }

    /// How many values it has.
    #[must_use]
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether it has no values.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}
