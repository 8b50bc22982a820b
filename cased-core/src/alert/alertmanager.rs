//! The Alertmanager channel: cased's alerts posted to a Prometheus Alertmanager
//! (`POST {url}/api/v2/alerts`), so they go through the routing, silences, inhibition and
//! receivers a team already runs.
//!
//! ```json
//! [{"labels": {"alertname": "CasedDeployment", "severity": "critical",
//!              "cased_key": "deploy-7/p95 latency", "repository": "acme/checkout",
//!              "environment": "production", "correlation_id": "deploy-7"},
//!   "annotations": {"summary": "checkout.latency_ms rose…", "description": "…",
//!                   "deployment": "Deploy v1.4.2", "commit_sha": "4f2a9c1",
//!                   "findings": "…"},
//!   "startsAt": "2026-12-04T14:03:20Z",
//!   "generatorURL": "https://ci.example/run/7"}]
//! ```
//!
//! Alertmanager identifies an alert by its labels, so they hold only what stays the same for
//! the alert's life (its key, the deployment's place) plus its severity; the rest goes in
//! annotations. A resolved alert is posted again with `endsAt` (with `send_resolved`, the
//! default here: otherwise Alertmanager resolves it after its `resolve_timeout`). Posting the
//! same alert twice is harmless (Alertmanager merges it), so a retried notification is safe.
//! A 2xx answer is success; 429, 5xx and connection failures are retried; other answers are
//! final.

use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

use reqwest::header;
use serde_json::{Value, json};

use super::notifier::{Notifier, NotifyError};
use super::{Alert, AlertState, Notification};
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::severity::Severity;

/// The `alertname` label of every alert cased posts.
pub const ALERTMANAGER_ALERTNAME: &str = "CasedDeployment";

/// Posts alerts to an Alertmanager's v2 API.
#[derive(Clone)]
pub struct AlertmanagerNotifier {
    http: reqwest::Client,
    /// `{url}/api/v2/alerts`.
    endpoint: url::Url,
    bearer_token: Option<Secret>,
    /// Labels added to every alert (the channel's `labels`).
    labels: BTreeMap<String, String>,
}

impl fmt::Debug for AlertmanagerNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlertmanagerNotifier")
            .field("endpoint", &self.endpoint.as_str())
            .field("bearer_token", &self.bearer_token)
            .field("labels", &self.labels)
            .finish()
    }
}

impl AlertmanagerNotifier {
    pub(crate) fn with_client(
        http: reqwest::Client,
        url: &str,
        bearer_token: Option<Secret>,
        labels: BTreeMap<String, String>,
    ) -> Result<Self> {
        let endpoint = match url::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                let base = u.as_str().trim_end_matches('/').to_owned();
                url::Url::parse(&format!("{base}/api/v2/alerts"))
                    .map_err(|e| Error::invalid("url", e.to_string()))?
            }
            _ => {
                return Err(Error::invalid(
                    "url",
                    format!("{url:?} is not an absolute http(s) URL"),
                ));
            }
        };
        if let Some((k, _)) = labels.iter().find(|(k, _)| !is_label_name(k)) {
            return Err(Error::invalid(
                format!("labels.{k}"),
                "is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)",
            ));
        }
        Ok(Self {
            http,
            endpoint,
            bearer_token,
            labels,
        })
    }

    /// The Alertmanager alert of one cased alert.
    fn alert(&self, alert: &Alert, now: SystemTime) -> Value {
        let d = &alert.deployment;
        let mut labels = self.labels.clone();
        labels.insert("alertname".into(), ALERTMANAGER_ALERTNAME.into());
        labels.insert(
            "severity".into(),
            alertmanager_severity(alert.severity).into(),
        );
        labels.insert("cased_key".into(), alert.key.clone());
        labels.insert("correlation_id".into(), alert.correlation_id.clone());
        if let Some(repo) = &d.repository {
            labels.insert("repository".into(), repo.clone());
        }
        if let Some(env) = &d.environment {
            labels.insert("environment".into(), env.clone());
        }
        let mut annotations = json!({
            "summary": alert.title,
            "description": alert.summary,
            "deployment": d.deployment_request,
        });
        if let Some(sha) = &d.commit_sha {
            annotations["commit_sha"] = json!(sha);
        }
        if !alert.findings.is_empty() {
            let findings: Vec<&str> = alert.findings.iter().map(|f| f.message.as_str()).collect();
            annotations["findings"] = json!(findings.join("\n"));
        }
        let mut out = json!({
            "labels": labels,
            "annotations": annotations,
            "startsAt": rfc3339(alert.started_at),
        });
        if alert.state == AlertState::Resolved {
            out["endsAt"] = json!(rfc3339(alert.resolved_at.unwrap_or(now)));
        }
        if let Some(link) = d
            .external_url
            .as_deref()
            .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
        {
            out["generatorURL"] = json!(link);
        }
        out
    }
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// Whether `s` is a Prometheus label name.
fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The `severity` label of a cased severity (the names Prometheus alerting rules use).
#[must_use]
pub fn alertmanager_severity(s: Severity) -> &'static str {
    match s {
        Severity::Emergency => "page",
        Severity::Critical => "critical",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

#[async_trait::async_trait]
impl Notifier for AlertmanagerNotifier {
    async fn notify(&self, n: &Notification) -> std::result::Result<(), NotifyError> {
        let now = SystemTime::now();
        let alerts: Vec<Value> = n.alerts.iter().map(|a| self.alert(a, now)).collect();
        let mut request = self
            .http
            .post(self.endpoint.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Value::Array(alerts).to_string());
        if let Some(token) = &self.bearer_token {
            request = request.bearer_auth(token.expose());
        }
        super::webhook::send(request, "Alertmanager").await
    }
}
