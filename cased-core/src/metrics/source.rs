//! Metric sources a session polls: the [`Source`] trait, what one poll returns ([`Polled`]) and
//! what it is told ([`PollContext`]).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::Sample;
use crate::detect::Counts;
use crate::error::Result;

/// `(errors, requests)` of one metric over an interval ending at `timestamp`.
#[derive(Debug, Clone, PartialEq)]
pub struct CountsSample {
    /// The metric's name.
    pub metric: String,
    /// End of the interval, in seconds since the Unix epoch.
    pub timestamp: f64,
    /// The counts.
    pub counts: Counts,
}

/// What one poll of a source returned.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Polled {
    /// Value samples of the monitored service.
    pub samples: Vec<Sample>,
    /// Counts for error-rate detectors.
    pub counts: Vec<CountsSample>,
    /// The same metrics read from the control (stable) track, if configured.
    pub control_samples: Vec<Sample>,
    /// Control counts.
    pub control_counts: Vec<CountsSample>,
}

impl Polled {
    /// Whether nothing was read.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
            && self.counts.is_empty()
            && self.control_samples.is_empty()
            && self.control_counts.is_empty()
    }

    /// Appends everything of `other`.
    pub fn extend(&mut self, other: Self) {
        self.samples.extend(other.samples);
        self.counts.extend(other.counts);
        self.control_samples.extend(other.control_samples);
        self.control_counts.extend(other.control_counts);
    }
}

/// What a source is told at each poll.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PollContext {
    /// Now, in seconds since the Unix epoch (the session's clock: virtual in a replay).
    pub now: f64,
    /// Template variables: `repository`, `environment`, `commit_sha`, `version` and
    /// `metadata.KEY` for every string metadata key of the event.
    pub vars: BTreeMap<String, String>,
}

/// A source of metric samples, one instance per session (it keeps what it needs between polls).
#[async_trait::async_trait]
pub trait Source: fmt::Debug + Send + Sync {
    /// Everything new since the previous poll.
    ///
    /// # Errors
    /// Any failure to read: the session records it and carries on.
    async fn poll(&mut self, ctx: &PollContext) -> Result<Polled>;

    /// The same metrics over `window` before `ctx.now`, for a pre-deploy baseline; `Ok(None)`
    /// when the source cannot look back.
    ///
    /// # Errors
    /// Any failure to read.
    async fn lookback(&mut self, ctx: &PollContext, window: Duration) -> Result<Option<Polled>>;
}

type StartFn = dyn Fn() -> Box<dyn Source> + Send + Sync;

/// A source as the monitor plans it once: its name, cadence and how to start one per session.
#[derive(Clone)]
pub struct SourcePlan {
    name: Arc<str>,
    every: Option<Duration>,
    start: Arc<StartFn>,
}

impl fmt::Debug for SourcePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourcePlan")
            .field("name", &self.name)
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

impl SourcePlan {
    /// A plan named `name` polled every `every` (`None`: at every tick), started with `start`.
    pub fn new(
        name: impl Into<Arc<str>>,
        every: Option<Duration>,
        start: impl Fn() -> Box<dyn Source> + Send + Sync + 'static,
    ) -> Self {
        Self {
            name: name.into(),
            every,
            start: Arc::new(start),
        }
    }

    /// Its name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its own cadence; `None` polls it at every tick.
    #[must_use]
    pub fn every(&self) -> Option<Duration> {
        self.every
    }

    /// A fresh source for one session.
    #[must_use]
    pub fn start(&self) -> Box<dyn Source> {
        (self.start)()
    }
}
