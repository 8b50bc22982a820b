//! The PagerDuty channel: one event of PagerDuty's Events API v2 per alert, `trigger` while it
//! fires and `resolve` when it resolves (with `send_resolved`), deduplicated by the alert's key,
//! so a retried notification never opens a second incident.
//!
//! ```json
//! {"routing_key": "…", "event_action": "trigger", "dedup_key": "deploy-7/p95 latency",
//!  "client": "cased",
//!  "payload": {"summary": "checkout.latency_ms rose…", "source": "acme/checkout",
//!              "severity": "critical", "timestamp": "2026-12-04T14:03:20Z",
//!              "component": "acme/checkout", "group": "production", "class": "deployment",
//!              "custom_details": {"deployment": "Deploy v1.4.2", "commit_sha": "4f2a9c1",
//!                                 "summary": "…", "findings": ["…"]}},
//!  "links": [{"href": "https://ci.example/run/7", "text": "pipeline"}]}
//! ```
//!
//! Severities: emergency → `critical`, critical → `error`, warning → `warning`, info → `info`.
//! A 2xx answer is success; 429 and 5xx answers and connection failures are retried (PagerDuty
//! asks for it); other answers (400: a bad routing key) are final.

use std::fmt;

use reqwest::header;
use serde_json::{Value, json};

use super::notifier::{Notifier, NotifyError};
use super::{Alert, AlertState, Notification};
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::severity::Severity;

/// PagerDuty's Events API v2 endpoint.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// PagerDuty's limit on `payload.summary`, in characters.
const MAX_SUMMARY: usize = 1024;

/// Sends alerts to PagerDuty's Events API v2.
#[derive(Clone)]
pub struct PagerDutyNotifier {
    http: reqwest::Client,
    url: url::Url,
    routing_key: Secret,
}

impl fmt::Debug for PagerDutyNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PagerDutyNotifier")
            .field("url", &self.url.as_str())
            .field("routing_key", &self.routing_key)
            .finish()
    }
}

impl PagerDutyNotifier {
    pub(crate) fn with_client(
        http: reqwest::Client,
        url: &str,
        routing_key: Secret,
    ) -> Result<Self> {
        let url = match url::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => u,
            _ => {
                return Err(Error::invalid(
                    "url",
                    format!("{url:?} is not an absolute http(s) URL"),
                ));
            }
        };
        if routing_key.expose().trim().is_empty() {
            return Err(Error::invalid("routing_key", "must not be empty"));
        }
        Ok(Self {
            http,
            url,
            routing_key,
        })
    }

    /// The Events API v2 event of one alert.
    fn event(&self, alert: &Alert) -> Value {
        if alert.state == AlertState::Resolved {
            return json!({
                "routing_key": self.routing_key.expose(),
                "event_action": "resolve",
                "dedup_key": alert.key,
            });
        }
        let d = &alert.deployment;
        let summary: String = alert.title.chars().take(MAX_SUMMARY).collect();
        let source = d.repository.clone().unwrap_or_else(|| "cased".to_owned());
        let mut payload = json!({
            "summary": summary,
            "source": source,
            "severity": pagerduty_severity(alert.severity),
            "timestamp": humantime::format_rfc3339_seconds(alert.started_at).to_string(),
            "class": "deployment",
            "custom_details": {
                "deployment": d.deployment_request,
                "correlation_id": alert.correlation_id,
                "summary": alert.summary,
                "findings": alert.findings.iter().map(|f| f.message.as_str()).collect::<Vec<_>>(),
            },
        });
        if let Some(repo) = &d.repository {
            payload["component"] = json!(repo);
        }
        if let Some(env) = &d.environment {
            payload["group"] = json!(env);
        }
        if let Some(sha) = &d.commit_sha {
            payload["custom_details"]["commit_sha"] = json!(sha);
        }
        let mut event = json!({
            "routing_key": self.routing_key.expose(),
            "event_action": "trigger",
            "dedup_key": alert.key,
            "client": "cased",
            "payload": payload,
        });
        if let Some(link) = d
            .external_url
            .as_deref()
            .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
        {
            event["links"] = json!([{"href": link, "text": "pipeline"}]);
        }
        event
    }
}

/// PagerDuty's severity of a cased severity.
#[must_use]
pub fn pagerduty_severity(s: Severity) -> &'static str {
    match s {
        Severity::Emergency => "critical",
        Severity::Critical => "error",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

#[async_trait::async_trait]
impl Notifier for PagerDutyNotifier {
    async fn notify(&self, n: &Notification) -> std::result::Result<(), NotifyError> {
        // One event per alert; a retry resends them all, which PagerDuty deduplicates by key.
        for alert in &n.alerts {
            let request = self
                .http
                .post(self.url.clone())
                .header(header::CONTENT_TYPE, "application/json")
                .body(self.event(alert).to_string());
            super::webhook::send(request, "PagerDuty").await?;
        }
        Ok(())
    }
}
