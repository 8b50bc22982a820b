//! The plan a [`Monitor`](crate::Monitor) builds once and every session runs: the schedule,
//! checks, sources, detectors, baselines, verdict rules, alert channels and stores, validated
//! up front. Sessions read it; it knows nothing of sessions. The rollback hook lives here too.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use crate::alert::{AlertManager, AlertsConfig, Notifier};
use crate::baselines::BaselineConfig;
use crate::check::HealthCheck;
use crate::detect::{Counts, DetectorConfig, DetectorSet};
use crate::error::Result;
use crate::event::DeploymentEvent;
use crate::history::HistoryStore;
use crate::metrics::{BaselineStore, SourcePlan};
use crate::schedule::Schedule;
use crate::verdict::{FindingRules, VerdictConfig};

/// What the rollback hook is told.
#[derive(Debug, Clone)]
pub struct RollbackContext {
    /// The session's id.
    pub session_id: String,
    /// The deployment event.
    pub event: DeploymentEvent,
    /// Why the deployment is unhealthy.
    pub reason: String,
}

type RollbackFn =
    dyn Fn(RollbackContext) -> BoxFuture<'static, std::result::Result<(), String>> + Send + Sync;

/// A rollback hook: fired exactly once, when a session's verdict becomes unhealthy.
#[derive(Clone)]
pub struct RollbackHook {
    f: Arc<RollbackFn>,
    timeout: Duration,
}

impl RollbackHook {
    /// A hook running `f`; it is given 60 s before the session records it as timed out.
    pub fn new<F, Fut>(f: F) -> Self
    where
        F: Fn(RollbackContext) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = std::result::Result<(), String>> + Send + 'static,
    {
        Self {
            f: Arc::new(move |ctx| Box::pin(f(ctx))),
            timeout: Duration::from_secs(60),
        }
    }

    /// Sets how long the hook may run.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub(crate) async fn fire(&self, ctx: RollbackContext) -> Option<String> {
        match tokio::time::timeout(self.timeout, (self.f)(ctx)).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(_) => Some(format!(
                "the rollback hook did not finish within {} ms",
                self.timeout.as_millis()
            )),
        }
    }
}

impl fmt::Debug for RollbackHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RollbackHook")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Everything a session needs, built and validated once by the monitor and shared by all its
/// sessions.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) schedule: Schedule,
    pub(crate) verdict: VerdictConfig,
    pub(crate) checks: Vec<Arc<dyn HealthCheck>>,
    pub(crate) rollback: Option<RollbackHook>,
    pub(crate) update_buffer: usize,
    pub(crate) sample_window: usize,
    pub(crate) history: Option<Arc<dyn HistoryStore>>,
    pub(crate) detectors: Vec<DetectorConfig>,
    /// The metrics the caller declared it pushes (`pushed` of the configuration).
    pub(crate) pushed: Vec<String>,
    /// The detector-metric rule is applied at start (checks come with each session).
    pub(crate) metrics_at_start: bool,
    /// The metrics some detector watches: pushed samples of other metrics are only summarised.
    pub(crate) watched: Arc<std::collections::HashSet<String>>,
    /// The sources polled by every session.
    pub(crate) sources: Vec<SourcePlan>,
    /// Baselines handed in by the caller, per metric.
    pub(crate) baselines: HashMap<String, Vec<f64>>,
    /// Baseline counts handed in by the caller, per metric.
    pub(crate) baseline_counts: HashMap<String, Counts>,
    pub(crate) baseline_store: Option<Arc<dyn BaselineStore>>,
    /// Where baselines come from when none is handed in.
    pub(crate) baseline: BaselineConfig,
    pub(crate) alerts_config: AlertsConfig,
    pub(crate) notifiers: Vec<(String, Arc<dyn Notifier>)>,
    /// Built inside the runtime at the first `start` (its delivery tasks need one).
    pub(crate) alerts: std::sync::Mutex<Option<AlertManager>>,
    /// The alert managers of sessions started with their own notifiers, for `Monitor::close`.
    pub(crate) session_alerts: std::sync::Mutex<Vec<AlertManager>>,
}

impl Plan {
    /// The alert manager, built at first use; `None` when no channel is configured.
    /// The detector-metric rule at start, with the names of every check of the session.
    pub(crate) fn check_detector_metrics(&self, checks: &[&str]) -> Result<()> {
        let sources: Vec<&str> = self.sources.iter().map(SourcePlan::name).collect();
        detector_metrics(&self.detectors, checks, &sources, &self.pushed)
    }

    pub(crate) fn alert_manager(&self) -> Result<Option<AlertManager>> {
        if self.alerts_config.channels.is_empty() {
            return Ok(None);
        }
        let mut slot = self.alerts.lock().expect("alerts lock");
        if slot.is_none() {
            let mut b = AlertManager::builder(self.alerts_config.clone());
            for (name, n) in &self.notifiers {
                b = b.notifier(name.clone(), Arc::clone(n));
            }
            *slot = Some(b.build()?);
        }
        Ok(slot.clone())
    }

    /// A fresh alert manager with `notifiers` for the custom channels (one session's own; the
    /// monitor's notifiers fill the channels not given).
    pub(crate) fn alert_manager_with(
        &self,
        notifiers: &[(String, Arc<dyn Notifier>)],
    ) -> Result<Option<AlertManager>> {
        if self.alerts_config.channels.is_empty() {
            return Ok(None);
        }
        let mut b = AlertManager::builder(self.alerts_config.clone());
        for (name, n) in self
            .notifiers
            .iter()
            .filter(|(name, _)| !notifiers.iter().any(|(m, _)| m == name))
        {
            b = b.notifier(name.clone(), Arc::clone(n));
        }
        for (name, n) in notifiers {
            b = b.notifier(name.clone(), Arc::clone(n));
        }
        let manager = b.build()?;
        let mut kept = self.session_alerts.lock().expect("session alerts lock");
        // Managers already shut down (their monitor was closed) are forgotten.
        kept.retain(|m| !m.is_closed());
        kept.push(manager.clone());
        Ok(Some(manager))
    }

    /// A fresh detector set for one session (validated when the monitor was built).
    pub(crate) fn detector_set(&self) -> DetectorSet {
        DetectorSet::from_config(&self.detectors).expect("detectors were validated by the builder")
    }

    /// The configuration of the detector named `name` on `metric`.
    pub(crate) fn detector(&self, metric: &str, name: &str) -> Option<&DetectorConfig> {
        self.detectors
            .iter()
            .find(|d| d.metric == metric && d.name() == name)
    }
}

/// How the findings of the detector `d` count toward the verdict.
pub(crate) fn rules_of(d: &DetectorConfig) -> FindingRules {
    FindingRules {
        dry_run: d.dry_run,
        critical: d.critical,
        must_have_data: d.must_have_data,
    }
}

/// The rule that every detector watches a metric a check, a source or the caller's `pushed`
/// list produces; not applied to a monitor with none of them (push-only or replay-only).
pub(crate) fn detector_metrics(
    detectors: &[DetectorConfig],
    checks: &[&str],
    sources: &[&str],
    pushed: &[String],
) -> Result<()> {
    if checks.is_empty() && sources.is_empty() && pushed.is_empty() {
        return Ok(());
    }
    let pushed: Vec<&str> = pushed.iter().map(String::as_str).collect();
    crate::config::detector_metrics(detectors, checks, sources, &pushed)
}
