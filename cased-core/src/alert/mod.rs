//! Alerts: what is wrong with a deployment, told to people at the right severity.
//!
//! An [`Alert`] is raised by a session (or by the caller) and handed to an [`AlertManager`],
//! which routes it by severity and environment ([`AlertsConfig`]), drops duplicates by
//! [`Alert::key`] within a repeat interval, groups alerts per deployment (one message per group
//! wait, not one per finding), escalates critical alerts that stay firing, and delivers the
//! resulting [`Notification`]s through one queue per channel with retries. Every delivery ends
//! in a [`DeliveryReport`]: delivered, failed (with the last error) or coalesced (merged into a
//! later notification under pressure). Nothing is dropped silently.
//!
//! Channels are [`Notifier`]s: Slack incoming webhooks ([`SlackNotifier`]), signed JSON
//! webhooks ([`WebhookNotifier`], verified by receivers with [`verify_webhook_signature`]),
//! email over SMTP (`EmailNotifier`, feature `email`), PagerDuty's Events API v2
//! ([`PagerDutyNotifier`]) and in-app streams ([`InAppStream`]).
//! Any other `Notifier` implementation (a Python or JavaScript callable in the bindings) can be
//! registered with [`AlertManagerBuilder::notifier`].
//!
//! # The JSON shapes (`cased.alert/v1`, `cased.notification/v1`)
//!
//! A notification, as posted by the webhook channel and handed to in-app listeners, is one JSON
//! object; absent optional fields are omitted, never `null`:
//!
//! ```json
//! {
//!   "schema": "cased.notification/v1",
//!   "id": "3f9a0c1d2e4b5a69-2",          // unique per notification, the same on every retry
//!   "kind": "group",                      // "group" (one deployment) or "digest" (coalesced)
//!   "route": "default",
//!   "group_key": "deploy-42",             // the deployment's correlation id
//!   "status": "firing",                   // "firing" while any alert fires, else "resolved"
//!   "severity": "critical",               // highest severity of the firing alerts
//!   "escalated": false,                   // sent because a critical alert stayed firing
//!   "deployment": {"deployment_request": "Deploy v1.4.2", "repository": "acme/web",
//!                  "commit_sha": "9fceb02", "ref": "refs/heads/main",
//!                  "environment": "production", "external_url": "https://ci.example/run/7"},
//!   "correlation_id": "deploy-42",
//!   "alerts": [ /* cased.alert/v1 objects, firing first, most severe first */ ],
//!   "omitted": 0,                         // alerts left out of `alerts` (max_alerts)
//!   "omitted_keys": [],                   // their dedup keys, so nothing is lost
//!   "coalesced_groups": [],               // digest only: the group keys merged into it
//!   "created_at": "2025-01-01T12:00:00.000Z"
//! }
//! ```
//!
//! and each alert:
//!
//! ```json
//! {
//!   "schema": "cased.alert/v1",
//!   "key": "deploy-42/p99 latency",       // the dedup key: receivers drop repeats by it
//!   "severity": "critical",               // info, warning, critical, emergency
//!   "state": "firing",                    // "firing" or "resolved"
//!   "title": "p99 latency doubled",
//!   "summary": "p99 went from 180 ms to 410 ms after the deploy",
//!   "correlation_id": "deploy-42",
//!   "deployment": { /* as above */ },
//!   "findings": [ /* cased Finding objects: metric, detector, severity, message, evidence */ ],
//!   "escalated": false,
//!   "started_at": "2025-01-01T11:59:30.000Z",
//!   "updated_at": "2025-01-01T11:59:30.000Z",
//!   "resolved_at": "2025-01-01T12:10:00.000Z" // only once resolved
//! }
//! ```
//!
//! The schema names change only with incompatible changes; new optional fields may be added
//! within a version, so receivers must ignore fields they do not know.

use std::sync::Arc;
use std::time::SystemTime;

use serde::{Serialize, Serializer};

use crate::detect::Finding;
use crate::error::{Problems, Result};
use crate::event::DeploymentEvent;
use crate::severity::Severity;

mod alertmanager;
mod config;
mod delivery;
#[cfg(feature = "email")]
mod email;
mod inapp;
mod manager;
mod notifier;
mod pagerduty;
mod policy;
mod route;
mod slack;
mod webhook;

pub use alertmanager::{ALERTMANAGER_ALERTNAME, AlertmanagerNotifier, alertmanager_severity};
pub use config::{
    AlertmanagerChannelConfig, AlertsConfig, ChannelConfig, CommonChannelConfig, DeliveryConfig,
    EmailChannelConfig, EscalationConfig, PagerDutyChannelConfig, RouteConfig, SlackChannelConfig,
    SmtpTls, WebhookChannelConfig,
};
pub use delivery::{Deliveries, DeliveryEvent, DeliveryOutcome, DeliveryReport};
#[cfg(feature = "email")]
pub use email::EmailNotifier;
pub use inapp::{InAppEvent, InAppNotifier, InAppStream};
pub use manager::{AlertManager, AlertManagerBuilder, AlertStats};
pub use notifier::{FnNotifier, Notifier, NotifyError};
pub use pagerduty::{PAGERDUTY_EVENTS_URL, PagerDutyNotifier, pagerduty_severity};
pub(crate) use policy::AlertPolicy;
pub use slack::{SlackNotifier, slack_message};
pub use webhook::{
    EVENT_HEADER, NOTIFICATION_ID_HEADER, SIGNATURE_HEADER, SignatureError, TIMESTAMP_HEADER,
    WebhookNotifier, sign_webhook, verify_webhook_signature,
};

/// The schema name of an [`Alert`] in JSON.
pub const ALERT_SCHEMA: &str = "cased.alert/v1";
/// The schema name of a [`Notification`] in JSON.
pub const NOTIFICATION_SCHEMA: &str = "cased.notification/v1";

/// Whether an alert is still a problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// The problem is present.
    Firing,
    /// The problem cleared.
    Resolved,
}

impl AlertState {
    /// The wire name (`"firing"`, `"resolved"`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Resolved => "resolved",
        }
    }
}

/// The deployment an alert is about, as shown in messages.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct AlertDeployment {
    /// What is being deployed (`deployment_request` of the event).
    pub deployment_request: String,
    /// `owner/name` of the repository.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// The deployed commit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit_sha: Option<String>,
    /// The git ref (`ref` in JSON).
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    /// The environment (`event_metadata.environment`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Link to the pipeline or deployment page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_url: Option<String>,
}

impl AlertDeployment {
    /// The facts of a deployment event.
    #[must_use]
    pub fn of(event: &DeploymentEvent) -> Self {
        Self {
            deployment_request: event.deployment_request().to_owned(),
            repository: event.repository_full_name().map(str::to_owned),
            commit_sha: event.commit_sha().map(str::to_owned),
            git_ref: event.git_ref().map(str::to_owned),
            environment: event.environment().map(str::to_owned),
            external_url: event.external_url().map(str::to_owned),
        }
    }
}

/// One alert: a problem of one deployment, with its evidence. Build it with
/// [`Alert::builder`]; serializes as `cased.alert/v1` (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[allow(clippy::manual_non_exhaustive)] // the private field carries the schema name in JSON
pub struct Alert {
    #[serde(serialize_with = "alert_schema")]
    schema: (),
    /// The dedup key: alerts with the same key are one alert (default `"{correlation_id}/{title}"`).
    pub key: String,
    /// How bad it is.
    pub severity: Severity,
    /// Firing or resolved (set by the manager).
    pub state: AlertState,
    /// One line for a person.
    pub title: String,
    /// A few sentences for a person.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub summary: String,
    /// The session's correlation id; alerts are grouped per correlation id (per deployment).
    pub correlation_id: String,
    /// The deployment.
    pub deployment: AlertDeployment,
    /// The findings behind the alert, with their evidence.
    pub findings: Vec<Finding>,
    /// Whether the alert was escalated because it stayed firing (set by the manager).
    pub escalated: bool,
    /// When it started firing.
    #[serde(serialize_with = "rfc3339")]
    pub started_at: SystemTime,
    /// When it was last fired or changed.
    #[serde(serialize_with = "rfc3339")]
    pub updated_at: SystemTime,
    /// When it was resolved.
    #[serde(
        serialize_with = "rfc3339_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub resolved_at: Option<SystemTime>,
}

impl Alert {
    /// Starts an alert of `severity` titled `title`.
    pub fn builder(severity: Severity, title: impl Into<String>) -> AlertBuilder {
        AlertBuilder {
            severity,
            title: title.into(),
            ..AlertBuilder::default()
        }
    }

    /// Whether the alert is firing.
    #[must_use]
    pub fn is_firing(&self) -> bool {
        self.state == AlertState::Firing
    }

    /// The alert as JSON text.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("alerts always serialize")
    }
}

/// Builds an [`Alert`]; `build()` validates it.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct AlertBuilder {
    severity: Severity,
    title: String,
    summary: String,
    key: Option<String>,
    correlation_id: Option<String>,
    deployment: Option<AlertDeployment>,
    findings: Vec<Finding>,
}

impl AlertBuilder {
    /// A few sentences for a person.
    pub fn summary(mut self, summary: impl Into<String>) -> Self {
        self.summary = summary.into();
        self
    }
    /// The dedup key (default `"{correlation_id}/{title}"`).
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
    /// The correlation id (default: the event's `correlation_id`, else its `deployment_request`).
    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }
    /// The deployment, from its event.
    pub fn event(mut self, event: &DeploymentEvent) -> Self {
        self.deployment = Some(AlertDeployment::of(event));
        if self.correlation_id.is_none() {
            self.correlation_id = event.correlation_id().map(str::to_owned);
        }
        self
    }
    /// The deployment, given field by field.
    pub fn deployment(mut self, deployment: AlertDeployment) -> Self {
        self.deployment = Some(deployment);
        self
    }
    /// Adds a finding.
    pub fn finding(mut self, finding: Finding) -> Self {
        self.findings.push(finding);
        self
    }
    /// Adds findings.
    pub fn findings(mut self, findings: impl IntoIterator<Item = Finding>) -> Self {
        self.findings.extend(findings);
        self
    }

    /// Validates and builds the alert; it is firing, started now.
    ///
    /// # Errors
    /// [`crate::Error::Validation`] naming every problem: an empty title or key, no correlation id
    /// and no deployment to take one from.
    pub fn build(self) -> Result<Alert> {
        let mut p = Problems::default();
        if self.title.trim().is_empty() {
            p.add("title", "must not be empty");
        }
        let correlation_id = self
            .correlation_id
            .or_else(|| {
                self.deployment
                    .as_ref()
                    .map(|d| d.deployment_request.clone())
            })
            .unwrap_or_default();
        if correlation_id.trim().is_empty() {
            p.add(
                "correlation_id",
                "is required: give one or the deployment event",
            );
        }
        if self.key.as_deref().is_some_and(|k| k.trim().is_empty()) {
            p.add("key", "must not be empty");
        }
        p.finish("alert")?;
        let now = SystemTime::now();
        Ok(Alert {
            schema: (),
            key: self
                .key
                .unwrap_or_else(|| format!("{correlation_id}/{}", self.title)),
            severity: self.severity,
            state: AlertState::Firing,
            title: self.title,
            summary: self.summary,
            correlation_id,
            deployment: self.deployment.unwrap_or_default(),
            findings: self.findings,
            escalated: false,
            started_at: now,
            updated_at: now,
            resolved_at: None,
        })
    }
}

/// What a notification covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationKind {
    /// The alerts of one group (one deployment on one route).
    Group,
    /// Alerts of several groups merged because a channel's queue was full.
    Digest,
}

/// One message to one channel: a snapshot of a group of alerts. Serializes as
/// `cased.notification/v1` (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[allow(clippy::manual_non_exhaustive)] // the private field carries the schema name in JSON
pub struct Notification {
    #[serde(serialize_with = "notification_schema")]
    schema: (),
    /// Unique per notification and the same on every retry: receivers drop duplicates by it.
    pub id: String,
    /// A group or a digest.
    pub kind: NotificationKind,
    /// The route that produced it.
    pub route: String,
    /// The group: the deployment's correlation id (`"*"` for a digest).
    pub group_key: String,
    /// `firing` while any alert in it fires, else `resolved`.
    pub status: AlertState,
    /// The highest severity of the firing alerts (of all alerts when none fires).
    pub severity: Severity,
    /// Sent because a critical alert stayed firing past the escalation delay.
    pub escalated: bool,
    /// The deployment (absent for a digest of several deployments).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment: Option<AlertDeployment>,
    /// The correlation id (absent for a digest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// The alerts: firing first, most severe first, at most the channel's `max_alerts`.
    pub alerts: Vec<Arc<Alert>>,
    /// How many alerts were left out of `alerts`.
    pub omitted: usize,
    /// The dedup keys of the alerts left out.
    pub omitted_keys: Vec<String>,
    /// For a digest: the group keys merged into it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub coalesced_groups: Vec<String>,
    /// When it was made.
    #[serde(serialize_with = "rfc3339")]
    pub created_at: SystemTime,
}

impl Notification {
    /// A notification of `alerts` (sorted here), capped at `max_alerts`.
    pub(crate) fn new(
        id: String,
        route: &str,
        group_key: &str,
        mut alerts: Vec<Arc<Alert>>,
        max_alerts: usize,
    ) -> Self {
        sort_alerts(&mut alerts);
        let deployment = alerts
            .first()
            .map(|a| a.deployment.clone())
            .filter(|d| *d != AlertDeployment::default());
        let mut n = Self {
            schema: (),
            id,
            kind: NotificationKind::Group,
            route: route.to_owned(),
            group_key: group_key.to_owned(),
            status: AlertState::Resolved,
            severity: Severity::Info,
            escalated: false,
            deployment,
            correlation_id: Some(group_key.to_owned()),
            alerts,
            omitted: 0,
            omitted_keys: Vec::new(),
            coalesced_groups: Vec::new(),
            created_at: SystemTime::now(),
        };
        n.refresh(max_alerts);
        n
    }

    /// Recomputes status, severity and escalation, and moves alerts beyond `max_alerts` to
    /// `omitted_keys`.
    pub(crate) fn refresh(&mut self, max_alerts: usize) {
        sort_alerts(&mut self.alerts);
        let firing = self.alerts.iter().any(|a| a.is_firing());
        self.status = if firing {
            AlertState::Firing
        } else {
            AlertState::Resolved
        };
        self.severity = self
            .alerts
            .iter()
            .filter(|a| a.is_firing() || !firing)
            .map(|a| a.severity)
            .max()
            .unwrap_or(self.severity);
        self.escalated = self.alerts.iter().any(|a| a.escalated && a.is_firing());
        if self.alerts.len() > max_alerts {
            for a in self.alerts.drain(max_alerts..) {
                self.omitted_keys.push(a.key.clone());
                self.omitted += 1;
            }
        }
    }

    /// The dedup keys of every alert it covers (shown and omitted).
    #[must_use]
    pub fn keys(&self) -> Vec<String> {
        self.alerts
            .iter()
            .map(|a| a.key.clone())
            .chain(self.omitted_keys.iter().cloned())
            .collect()
    }

    /// How many alerts it covers (shown and omitted).
    #[must_use]
    pub fn alert_count(&self) -> usize {
        self.alerts.len() + self.omitted
    }

    /// The notification as JSON text (the webhook body).
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("notifications always serialize")
    }

    /// A one-line headline: `"[CRITICAL] p99 latency doubled — acme/web (production)"`.
    #[must_use]
    pub fn headline(&self) -> String {
        let what = match (self.alerts.first(), self.alert_count()) {
            (Some(a), 1) => a.title.clone(),
            (_, n) => format!("{n} alerts"),
        };
        let label = if self.status == AlertState::Resolved {
            "RESOLVED".to_owned()
        } else {
            self.severity.as_str().to_uppercase()
        };
        let mut out = format!("[{label}] {what}");
        if let Some(d) = &self.deployment {
            let repo = d.repository.as_deref().unwrap_or(&d.deployment_request);
            out.push_str(" — ");
            out.push_str(repo);
            if let Some(env) = &d.environment {
                out.push_str(&format!(" ({env})"));
            }
        } else if !self.coalesced_groups.is_empty() {
            out.push_str(&format!(
                " — {} deployments (coalesced)",
                self.coalesced_groups.len()
            ));
        }
        if self.escalated {
            out.push_str(" [escalated]");
        }
        out
    }
}

fn sort_alerts(alerts: &mut [Arc<Alert>]) {
    alerts.sort_by(|a, b| {
        b.is_firing()
            .cmp(&a.is_firing())
            .then(b.severity.cmp(&a.severity))
            .then(a.started_at.cmp(&b.started_at))
    });
}

fn alert_schema<S: Serializer>(_: &(), s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(ALERT_SCHEMA)
}

fn notification_schema<S: Serializer>(_: &(), s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(NOTIFICATION_SCHEMA)
}

pub(crate) fn format_time(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn rfc3339<S: Serializer>(t: &SystemTime, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&format_time(*t))
}

fn rfc3339_opt<S: Serializer>(
    t: &Option<SystemTime>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match t {
        Some(t) => rfc3339(t, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> DeploymentEvent {
        DeploymentEvent::builder("Deploy v1.4.2")
            .repository("acme/web")
            .commit_sha("9fceb02")
            .git_ref("refs/heads/main")
            .external_url("https://ci.example/run/7")
            .environment("production")
            .correlation_id("deploy-42")
            .build()
            .unwrap()
    }

    #[test]
    fn an_alert_serializes_as_the_documented_schema() {
        let f = Finding::new("latency_p99", "baseline", Severity::Critical, "p99 doubled");
        let a = Alert::builder(Severity::Critical, "p99 latency doubled")
            .summary("from 180 ms to 410 ms")
            .event(&event())
            .finding(f)
            .build()
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&a.to_json()).unwrap();
        assert_eq!(v["schema"], ALERT_SCHEMA);
        assert_eq!(v["key"], "deploy-42/p99 latency doubled");
        assert_eq!(v["severity"], "critical");
        assert_eq!(v["state"], "firing");
        assert_eq!(v["correlation_id"], "deploy-42");
        assert_eq!(v["deployment"]["ref"], "refs/heads/main");
        assert_eq!(v["deployment"]["external_url"], "https://ci.example/run/7");
        assert_eq!(v["findings"][0]["detector"], "baseline");
        assert!(v.get("resolved_at").is_none());
        assert!(v["started_at"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn an_alert_needs_a_title_and_a_correlation_id() {
        let e = Alert::builder(Severity::Info, " ")
            .key("")
            .build()
            .unwrap_err();
        let fields: Vec<&str> = e.field_errors().iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["title", "correlation_id", "key"]);
        let a = Alert::builder(Severity::Info, "x")
            .deployment(AlertDeployment::of(&event()))
            .build()
            .unwrap();
        assert_eq!(a.correlation_id, "Deploy v1.4.2");
    }

    #[test]
    fn a_notification_sorts_caps_and_keeps_the_keys_it_leaves_out() {
        let mk = |s, t: &str| Arc::new(Alert::builder(s, t).correlation_id("c").build().unwrap());
        let mut resolved = (*mk(Severity::Emergency, "gone")).clone();
        resolved.state = AlertState::Resolved;
        let alerts = vec![
            mk(Severity::Info, "a"),
            Arc::new(resolved),
            mk(Severity::Critical, "b"),
            mk(Severity::Warning, "c"),
        ];
        let n = Notification::new("n1".into(), "default", "c", alerts, 2);
        assert_eq!(n.status, AlertState::Firing);
        assert_eq!(
            n.severity,
            Severity::Critical,
            "resolved alerts do not raise a firing notification"
        );
        let titles: Vec<&str> = n.alerts.iter().map(|a| a.title.as_str()).collect();
        assert_eq!(titles, ["b", "c"]);
        assert_eq!(
            (n.omitted, n.omitted_keys.clone()),
            (2, vec!["c/a".to_owned(), "c/gone".to_owned()])
        );
        assert_eq!(n.alert_count(), 4);
        assert_eq!(n.headline(), "[CRITICAL] 4 alerts");
        let v: serde_json::Value = serde_json::from_str(&n.to_json()).unwrap();
        assert_eq!(v["schema"], NOTIFICATION_SCHEMA);
        assert_eq!(v["kind"], "group");
        assert!(v.get("coalesced_groups").is_none());
    }
}
