//! The session's **alert** stage: which findings and verdicts become alerts, under which key.
//!
//! A warning-or-worse alarm of a detector that is not a dry run fires an alert keyed
//! `{correlation_id}/{metric}/{detector}`; an unhealthy verdict fires a critical
//! `{correlation_id}/verdict` alert; a healthy or degraded end resolves the deployment's group
//! (alerts still in their group wait are told first, then resolved: none is dropped).
//! Alerts are grouped by the pipeline's correlation id, so every tool that follows that
//! deployment (CI, the deployments API, receivers) sees the same id.

use std::sync::Arc;

use super::{Alert, AlertManager};
use crate::detect::{DetectionKind, Finding};
use crate::event::StoredEvent;
use crate::history::AlertRecord;
use crate::severity::Severity;
use crate::update::{AlertFailure, AlertSummary, DeploymentInfo};
use crate::verdict::{FindingRules, Judgement, Verdict};

/// The alert decisions of one session.
#[derive(Debug)]
pub(crate) struct AlertPolicy {
    manager: Option<AlertManager>,
    event: Arc<StoredEvent>,
    /// Its correlation id is the alerts' group.
    info: Arc<DeploymentInfo>,
    fired: Vec<AlertSummary>,
}

impl AlertPolicy {
    /// Alerts of the deployment `event` grouped under the correlation id of `info`, sent through
    /// `manager` (none: nothing is sent and nothing recorded).
    pub(crate) fn new(
        manager: Option<AlertManager>,
        event: Arc<StoredEvent>,
        info: Arc<DeploymentInfo>,
    ) -> Self {
        Self {
            manager,
            event,
            info,
            fired: Vec::new(),
        }
    }

    /// The group (correlation id) the alerts carry.
    pub(crate) fn group(&self) -> &str {
        &self.info.correlation_id
    }

    /// Fires the alert `f` calls for, if any; returns the record to keep in history.
    pub(crate) fn finding(&mut self, f: &Finding, rules: FindingRules) -> Option<AlertRecord> {
        if rules.dry_run || f.kind != DetectionKind::Alarm || f.severity < Severity::Warning {
            return None;
        }
        let key = format!("{}/{}/{}", self.info.correlation_id, f.metric, f.detector);
        self.fire(
            f.severity,
            format!("{}: {}", f.metric, f.detector),
            f.message.clone(),
            key,
            vec![f.clone()],
        )
    }

    /// At the end: an unhealthy verdict fires a critical alert with the critical findings; a
    /// healthy or degraded one resolves what fired during the deployment.
    pub(crate) fn verdict(&mut self, j: &Judgement, findings: &[Finding]) -> Option<AlertRecord> {
        match j.verdict {
            Verdict::Unhealthy => {
                let key = format!("{}/verdict", self.info.correlation_id);
                let critical = findings
                    .iter()
                    .filter(|f| f.severity >= Severity::Critical)
                    .cloned()
                    .collect();
                self.fire(
                    Severity::Critical,
                    "Deployment unhealthy".into(),
                    j.reason.clone(),
                    key,
                    critical,
                )
            }
            Verdict::Healthy | Verdict::Degraded => {
                if let Some(m) = &self.manager {
                    // Untold alerts are told before they are resolved (see `end_group`).
                    let _ = m.end_group(&self.info.correlation_id);
                }
                None
            }
            Verdict::Inconclusive => None,
        }
    }

    /// What fired, in order.
    pub(crate) fn take_fired(&mut self) -> Vec<AlertSummary> {
        std::mem::take(&mut self.fired)
    }

    /// The manager, to read delivery failures.
    pub(crate) fn manager(&self) -> Option<&AlertManager> {
        self.manager.as_ref()
    }

    /// Queues an alert; one that cannot be queued is logged (delivery failures are reported
    /// by the manager).
    fn fire(
        &mut self,
        severity: Severity,
        title: String,
        summary: String,
        key: String,
        findings: Vec<Finding>,
    ) -> Option<AlertRecord> {
        let manager = self.manager.as_ref()?;
        let alert = Alert::builder(severity, title.clone())
            .summary(summary)
            .key(key.clone())
            .event(&self.event.event())
            .correlation_id(self.info.correlation_id.clone())
            .findings(findings)
            .build();
        let alert = match alert {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e, "alert not built");
                return None;
            }
        };
        let now = crate::history::now_unix_ms();
        let record = AlertRecord::new(
            format!("{key}@{now}"),
            key.clone(),
            severity,
            title.clone(),
            now,
        )
        .with_payload(&alert)
        .ok();
        match manager.fire(alert) {
            Ok(()) => {
                self.fired.push(AlertSummary {
                    key,
                    severity,
                    title,
                });
                record
            }
            Err(e) => {
                tracing::error!(error = %e, "alert not queued");
                None
            }
        }
    }
}

impl From<&super::DeliveryReport> for crate::update::AlertRetry {
    fn from(r: &super::DeliveryReport) -> Self {
        Self {
            channel: r.channel.clone(),
            notification_id: r.notification_id.clone(),
            keys: r.keys.clone(),
            attempts: r.attempts,
            note: r.retried.clone().unwrap_or_default(),
        }
    }
}

impl From<&super::DeliveryReport> for AlertFailure {
    fn from(r: &super::DeliveryReport) -> Self {
        Self {
            channel: r.channel.clone(),
            notification_id: r.notification_id.clone(),
            keys: r.keys.clone(),
            attempts: r.attempts,
            error: r.error.clone(),
        }
    }
}
