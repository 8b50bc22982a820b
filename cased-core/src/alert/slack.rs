//! The Slack channel: an incoming webhook, posted a Block Kit message inside an attachment
//! whose colour says the severity. The webhook URL's path is a secret token: it never appears in
//! `Debug`, logs or errors. Every user-provided string (headline, titles, the deployment's facts,
//! findings) is escaped for mrkdwn (`&`, `<`, `>`), in the blocks and the fallback alike, so a
//! deployment named `<!channel>` cannot ping a channel or forge a link.

use std::fmt;

use serde_json::{Value, json};

use super::notifier::Notifier;
use super::notifier::NotifyError;
use super::{AlertState, Notification, NotificationKind};
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::severity::Severity;

/// Posts notifications to a Slack incoming webhook.
#[derive(Clone)]
pub struct SlackNotifier {
    http: reqwest::Client,
    url: Secret,
    max_findings: usize,
}

impl fmt::Debug for SlackNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackNotifier")
            .field("url", &super::config::redact_url(self.url.expose()))
            .field("max_findings", &self.max_findings)
            .finish()
    }
}

impl SlackNotifier {
    /// A notifier posting to `webhook_url` (`https://hooks.slack.com/services/...`).
    ///
    /// # Errors
    /// [`Error::Validation`] on field `webhook_url` when it is not an absolute http(s) URL (the
    /// value is not echoed).
    pub fn new(webhook_url: Secret) -> Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("cased/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Transport(format!("cannot build the HTTP client: {e}")))?;
        Self::with_client(http, webhook_url)
    }

    pub(crate) fn with_client(http: reqwest::Client, url: Secret) -> Result<Self> {
        match url::Url::parse(url.expose()) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            _ => {
                return Err(Error::invalid(
                    "webhook_url",
                    "is not an absolute http(s) URL",
                ));
            }
        }
        Ok(Self {
            http,
            url,
            max_findings: 5,
        })
    }

    /// Findings listed in a message (default 5).
    #[must_use]
    pub fn max_findings(mut self, n: usize) -> Self {
        self.max_findings = n;
        self
    }
}

#[async_trait::async_trait]
impl Notifier for SlackNotifier {
    async fn notify(&self, notification: &Notification) -> std::result::Result<(), NotifyError> {
        let body = slack_message(notification, self.max_findings);
        let request = self.http.post(self.url.expose()).json(&body);
        super::webhook::send(request, "Slack").await
    }
}

/// The colour of the attachment bar.
fn colour(n: &Notification) -> &'static str {
    if n.status == AlertState::Resolved {
        return "#2EB67D";
    }
    match n.severity {
        Severity::Info => "#439FE0",
        Severity::Warning => "#DAA038",
        Severity::Critical => "#D40E0D",
        Severity::Emergency => "#7A0019",
    }
}

fn emoji(n: &Notification) -> &'static str {
    if n.status == AlertState::Resolved {
        return ":white_check_mark:";
    }
    match n.severity {
        Severity::Info => ":information_source:",
        Severity::Warning => ":warning:",
        Severity::Critical => ":red_circle:",
        Severity::Emergency => ":rotating_light:",
    }
}

/// Slack's mrkdwn escaping of `&`, `<` and `>`.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Shortens already escaped text to `max` characters (an ellipsis last), never cutting an
/// entity (`&amp;`, `&lt;`, `&gt;`) in half.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    if let Some(amp) = out.rfind('&')
        && !out[amp..].contains(';')
    {
        out.truncate(amp);
    }
    out.push('…');
    out
}

fn mrkdwn(text: String) -> Value {
    json!({"type": "mrkdwn", "text": cut(&text, 3000)})
}

/// The message posted for a notification: `text` (the fallback shown in notifications) and one
/// attachment coloured by severity (green once resolved) holding the Block Kit blocks: a header,
/// the alerts, the deployment's facts, the top `max_findings` findings, a button to the
/// deployment's external URL and a context line with the correlation and notification ids.
#[must_use]
pub fn slack_message(n: &Notification, max_findings: usize) -> Value {
    // The headline holds the deployment's own strings (title, repository, environment): escaped
    // like every other user-provided string, so `<!channel>` or `<https://x|label>` stay text.
    let headline = esc(&n.headline());
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": cut(&format!("{} {}", emoji(n), headline), 150), "emoji": true}
    })];
    let lines: Vec<String> = n
        .alerts
        .iter()
        .map(|a| {
            let state = if a.is_firing() {
                a.severity.as_str().to_uppercase()
            } else {
                "RESOLVED".into()
            };
            let mut line = format!("• *{state}* {}", esc(&a.title));
            if !a.summary.is_empty() {
                line.push_str(&format!(" — {}", esc(&a.summary)));
            }
            line
        })
        .collect();
    let mut alerts_text = lines.join("\n");
    if n.omitted > 0 {
        alerts_text.push_str(&format!("\n_…and {} more_", n.omitted));
    }
    if n.kind == NotificationKind::Digest {
        alerts_text = format!(
            "*{} alerts from {} deployments were coalesced while the channel was busy.*\n{alerts_text}",
            n.alert_count(),
            n.coalesced_groups.len()
        );
    }
    blocks.push(json!({"type": "section", "text": mrkdwn(alerts_text)}));
    if let Some(d) = &n.deployment {
        let mut fields = vec![mrkdwn(format!(
            "*Deployment*\n{}",
            esc(&d.deployment_request)
        ))];
        if let Some(r) = &d.repository {
            fields.push(mrkdwn(format!("*Repository*\n{}", esc(r))));
        }
        if let Some(e) = &d.environment {
            fields.push(mrkdwn(format!("*Environment*\n{}", esc(e))));
        }
        if let Some(s) = &d.commit_sha {
            fields.push(mrkdwn(format!(
                "*Commit*\n`{}`",
                esc(&s.chars().take(12).collect::<String>())
            )));
        }
        if let Some(r) = &d.git_ref {
            fields.push(mrkdwn(format!("*Ref*\n{}", esc(r))));
        }
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    let mut findings: Vec<&crate::detect::Finding> = n
        .alerts
        .iter()
        .filter(|a| a.is_firing())
        .flat_map(|a| a.findings.iter())
        .collect();
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    if max_findings > 0 && !findings.is_empty() {
        let mut text = String::from("*Findings*");
        for f in findings.iter().take(max_findings) {
            text.push_str(&format!(
                "\n• *{}* ({}, {}): {}",
                esc(&f.metric),
                esc(&f.detector),
                f.severity,
                esc(&f.message)
            ));
        }
        if findings.len() > max_findings {
            text.push_str(&format!("\n_…and {} more_", findings.len() - max_findings));
        }
        blocks.push(json!({"type": "section", "text": mrkdwn(text)}));
    }
    if let Some(url) = n
        .deployment
        .as_ref()
        .and_then(|d| d.external_url.as_deref())
    {
        blocks.push(json!({
            "type": "actions",
            "elements": [{"type": "button", "text": {"type": "plain_text", "text": "View deployment"}, "url": url}]
        }));
    }
    let mut context = format!("cased · notification `{}`", esc(&n.id));
    if let Some(c) = &n.correlation_id {
        context.push_str(&format!(" · correlation `{}`", esc(c)));
    }
    if n.escalated {
        context.push_str(" · *escalated*");
    }
    blocks.push(json!({"type": "context", "elements": [mrkdwn(context)]}));
    json!({
        "text": headline,
        "attachments": [{"color": colour(n), "fallback": headline, "blocks": blocks}]
    })
}
