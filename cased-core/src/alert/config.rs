//! The alerts configuration: channels, routes, delivery. The `alerts` section of a monitor's
//! configuration, the same in Rust, Python, Node and `cased.toml`:
//!
//! ```json
//! {
//!   "channels": [
//!     {"name": "ops", "type": "slack", "webhook_url_env": "SLACK_WEBHOOK_URL", "send_resolved": true},
//!     {"name": "hooks", "type": "webhook", "url": "https://hooks.example/cased", "secret_env": "CASED_WEBHOOK_SECRET"},
//!     {"name": "oncall", "type": "email", "host": "smtp.example.com", "tls": "starttls",
//!      "username": "alerts", "password_env": "SMTP_PASSWORD",
//!      "from": "cased <alerts@example.com>", "to": ["oncall@example.com"]},
//!     {"name": "dashboard", "type": "inapp"}
//!   ],
//!   "routes": [
//!     {"name": "default", "channels": ["ops", "hooks", "dashboard"], "min_severity": "warning",
//!      "environments": ["production", "staging"], "group_wait": "10s", "group_interval": "1m",
//!      "repeat_interval": "4h",
//!      "escalation": {"after": "15m", "route": "page", "raise_to_emergency": true}},
//!     {"name": "page", "channels": ["oncall"], "escalation_only": true}
//!   ],
//!   "delivery": {"timeout": "10s", "max_retries": 5, "initial_backoff": "500ms", "max_backoff": "1m",
//!                "max_elapsed": "10m", "queue_capacity": 256, "max_alerts": 50}
//! }
//! ```
//!
//! Secrets (`webhook_url`, `secret`, `password`, webhook `headers` values) may be given inline or,
//! better, by the name of an environment variable (`*_env`) read when the manager is built. They
//! serialize as `"[redacted]"` and never appear in `Debug`. With no `routes`, one route named
//! `default` sends every alert to every channel.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::client::RetryPolicy;
use crate::duration;
use crate::error::{Error, Problems, Result};
use crate::secret::Secret;
use crate::severity::Severity;

/// The alerts section: channels, routes and delivery defaults.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Where notifications go.
    pub channels: Vec<ChannelConfig>,
    /// Which alerts go to which channels, and when.
    pub routes: Vec<RouteConfig>,
    /// Queueing and retries, for every channel without its own `delivery`.
    pub delivery: DeliveryConfig,
}

/// One channel; `type` selects the kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[non_exhaustive]
pub enum ChannelConfig {
    /// A Slack incoming webhook.
    Slack(SlackChannelConfig),
    /// A signed JSON webhook.
    Webhook(WebhookChannelConfig),
    /// Email over SMTP (feature `email`).
    Email(EmailChannelConfig),
    /// PagerDuty's Events API v2 (`type = "pagerduty"`).
    Pagerduty(PagerDutyChannelConfig),
    /// A Prometheus Alertmanager's v2 API (`type = "alertmanager"`).
    Alertmanager(AlertmanagerChannelConfig),
    /// An in-app stream read with [`super::AlertManager::subscribe`].
    Inapp(CommonChannelConfig),
    /// A notifier given in code ([`super::AlertManagerBuilder::notifier`]) under this name.
    Custom(CommonChannelConfig),
}

/// What every channel has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommonChannelConfig {
    /// Unique among channels; routes refer to it.
    pub name: String,
    /// Also tell this channel when alerts resolve (opt-in).
    #[serde(default)]
    pub send_resolved: bool,
    /// This channel's own delivery settings instead of the section's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliveryConfig>,
}

/// A Slack incoming webhook channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackChannelConfig {
    /// Unique among channels.
    pub name: String,
    /// The incoming webhook URL (its path is a secret token).
    #[serde(default, with = "secret_opt", skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<Secret>,
    /// The environment variable holding the URL, instead of `webhook_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url_env: Option<String>,
    /// Also tell this channel when alerts resolve.
    #[serde(default)]
    pub send_resolved: bool,
    /// Findings listed in the message (default 5).
    #[serde(default = "default_max_findings")]
    pub max_findings: usize,
    /// This channel's own delivery settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliveryConfig>,
}

/// A PagerDuty channel: one Events API v2 event per alert, deduplicated by the alert's key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyChannelConfig {
    /// Unique among channels.
    pub name: String,
    /// The integration's routing key (a secret; `${NAME}` reads it from the environment).
    #[serde(default, with = "secret_opt", skip_serializing_if = "Option::is_none")]
    pub routing_key: Option<Secret>,
    /// The environment variable holding the routing key, instead of `routing_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_key_env: Option<String>,
    /// The Events API endpoint (default PagerDuty's, `https://events.pagerduty.com/v2/enqueue`).
    #[serde(default = "default_pagerduty_url")]
    pub url: String,
    /// Also resolve the incident when the alert resolves.
    #[serde(default)]
    pub send_resolved: bool,
    /// This channel's own delivery settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliveryConfig>,
}

fn default_pagerduty_url() -> String {
    super::pagerduty::PAGERDUTY_EVENTS_URL.to_owned()
}

/// An Alertmanager channel: each alert posted to `{url}/api/v2/alerts`, labelled so
/// Alertmanager's routes, silences and inhibitions apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerChannelConfig {
    /// Unique among channels.
    pub name: String,
    /// The Alertmanager's base URL (`http://alertmanager:9093`).
    pub url: String,
    /// A bearer token for an Alertmanager behind an authenticating proxy (a secret;
    /// `${NAME}` reads it from the environment).
    #[serde(default, with = "secret_opt", skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<Secret>,
    /// The environment variable holding the bearer token, instead of `bearer_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_env: Option<String>,
    /// Labels added to every alert (`team = "payments"`), for Alertmanager's routes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Post resolved alerts with their end time (default `true`; without it Alertmanager
    /// resolves them after its `resolve_timeout`).
    #[serde(default = "yes")]
    pub send_resolved: bool,
    /// This channel's own delivery settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliveryConfig>,
}

fn yes() -> bool {
    true
}

/// A generic JSON webhook channel, signed with HMAC-SHA256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookChannelConfig {
    /// Unique among channels.
    pub name: String,
    /// Where notifications are posted (absolute http(s) URL).
    pub url: String,
    /// The signing secret.
    #[serde(default, with = "secret_opt", skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
    /// The environment variable holding the secret, instead of `secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// Extra request headers (values are treated as secrets: they may hold tokens).
    #[serde(
        default,
        with = "secret_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub headers: BTreeMap<String, Secret>,
    /// Also tell this channel when alerts resolve.
    #[serde(default)]
    pub send_resolved: bool,
    /// This channel's own delivery settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliveryConfig>,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which is required (port 587 by default).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465 by default).
    Tls,
    /// No encryption, for local relays only (port 25 by default).
    None,
}

/// An email channel over SMTP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailChannelConfig {
    /// Unique among channels.
    pub name: String,
    /// The SMTP server.
    pub host: String,
    /// The port (default by `tls`: 587, 465 or 25).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// How the connection is secured (default `starttls`).
    #[serde(default)]
    pub tls: SmtpTls,
    /// The SMTP user, when the server wants authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The SMTP password.
    #[serde(default, with = "secret_opt", skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// The environment variable holding the password, instead of `password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// The sender, e.g. `"cased <alerts@example.com>"`.
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
    /// Put before every subject (default `"[cased]"`).
    #[serde(default = "default_subject_prefix")]
    pub subject_prefix: String,
    /// Also tell this channel when alerts resolve.
    #[serde(default)]
    pub send_resolved: bool,
    /// This channel's own delivery settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliveryConfig>,
}

/// Which alerts a route takes, which channels it tells, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouteConfig {
    /// Unique among routes (default `route-{index}`; `default` for the implicit route).
    pub name: String,
    /// The channels told, by name.
    pub channels: Vec<String>,
    /// Alerts below this severity are not taken (default `info`: all).
    pub min_severity: Severity,
    /// Only alerts of these environments are taken (empty: all, with or without environment).
    pub environments: Vec<String>,
    /// How long a new group (deployment) collects alerts before its first message.
    #[serde(with = "duration::human")]
    pub group_wait: Duration,
    /// After a message, how long before a message about changes in the group (new alerts,
    /// raised severities, resolutions).
    #[serde(with = "duration::human")]
    pub group_interval: Duration,
    /// How long before firing alerts that did not change are told again.
    #[serde(with = "duration::human")]
    pub repeat_interval: Duration,
    /// Re-notify another route when an alert of at least `critical` stays firing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escalation: Option<EscalationConfig>,
    /// Takes only alerts escalated to it, never alerts directly.
    pub escalation_only: bool,
}

impl Default for RouteConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            channels: Vec::new(),
            min_severity: Severity::Info,
            environments: Vec::new(),
            group_wait: Duration::from_secs(10),
            group_interval: Duration::from_secs(60),
            repeat_interval: Duration::from_secs(4 * 3600),
            escalation: None,
            escalation_only: false,
        }
    }
}

/// When and where an alert that stays firing is escalated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationConfig {
    /// How long the alert must stay firing.
    #[serde(with = "duration::human")]
    pub after: Duration,
    /// The route told (its filters do not apply to escalated alerts; its timers do).
    pub route: String,
    /// Only alerts at least this severe escalate (default `critical`).
    #[serde(default = "default_escalation_severity")]
    pub min_severity: Severity,
    /// Raise the escalated alert to `emergency`.
    #[serde(default)]
    pub raise_to_emergency: bool,
}

/// Queueing and retries of one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Timeout of one attempt.
    #[serde(with = "duration::human")]
    pub timeout: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Upper bound of the first backoff (full jitter), doubled each retry.
    #[serde(with = "duration::human")]
    pub initial_backoff: Duration,
    /// Largest backoff bound.
    #[serde(with = "duration::human")]
    pub max_backoff: Duration,
    /// No retry starts after this much time since the first attempt.
    #[serde(with = "duration::human")]
    pub max_elapsed: Duration,
    /// Groups queued at most; beyond, new groups are merged into one digest (and reported).
    pub queue_capacity: usize,
    /// Alerts shown in one notification at most; the keys of the others are listed.
    pub max_alerts: usize,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            max_retries: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            max_elapsed: Duration::from_secs(600),
            queue_capacity: 256,
            max_alerts: 50,
        }
    }
}

impl DeliveryConfig {
    /// The retry policy these settings describe.
    #[must_use]
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_retries: self.max_retries,
            initial_backoff: self.initial_backoff,
            max_backoff: self.max_backoff,
            max_elapsed: self.max_elapsed,
        }
    }

    fn check(&self, at: &str, p: &mut Problems) {
        crate::limits::check_timeout(p, format!("{at}.timeout"), self.timeout);
        crate::limits::check_retry_span(p, format!("{at}.max_backoff"), self.max_backoff);
        crate::limits::check_retry_span(p, format!("{at}.max_elapsed"), self.max_elapsed);
        if self.initial_backoff.is_zero() || self.initial_backoff > self.max_backoff {
            p.add(
                format!("{at}.initial_backoff"),
                "must be greater than zero and at most max_backoff",
            );
        }
        if self.max_retries > 100 {
            p.add(
                format!("{at}.max_retries"),
                format!("{} is more than 100", self.max_retries),
            );
        }
        if self.queue_capacity == 0 {
            p.add(format!("{at}.queue_capacity"), "must be at least 1");
        }
        if self.max_alerts == 0 {
            p.add(format!("{at}.max_alerts"), "must be at least 1");
        }
    }
}

fn default_max_findings() -> usize {
    5
}
fn default_subject_prefix() -> String {
    "[cased]".to_owned()
}
fn default_escalation_severity() -> Severity {
    Severity::Critical
}

impl ChannelConfig {
    /// The channel's name.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::Slack(c) => &c.name,
            Self::Webhook(c) => &c.name,
            Self::Email(c) => &c.name,
            Self::Pagerduty(c) => &c.name,
            Self::Alertmanager(c) => &c.name,
            Self::Inapp(c) | Self::Custom(c) => &c.name,
        }
    }

    /// The kind's wire name (`"slack"`, `"webhook"`, ...).
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Slack(_) => "slack",
            Self::Webhook(_) => "webhook",
            Self::Email(_) => "email",
            Self::Pagerduty(_) => "pagerduty",
            Self::Alertmanager(_) => "alertmanager",
            Self::Inapp(_) => "inapp",
            Self::Custom(_) => "custom",
        }
    }

    /// Whether the channel is told about resolved alerts.
    #[must_use]
    pub fn send_resolved(&self) -> bool {
        match self {
            Self::Slack(c) => c.send_resolved,
            Self::Webhook(c) => c.send_resolved,
            Self::Email(c) => c.send_resolved,
            Self::Pagerduty(c) => c.send_resolved,
            Self::Alertmanager(c) => c.send_resolved,
            Self::Inapp(c) | Self::Custom(c) => c.send_resolved,
        }
    }

    /// The channel's own delivery settings, if any.
    #[must_use]
    pub fn delivery(&self) -> Option<&DeliveryConfig> {
        match self {
            Self::Slack(c) => c.delivery.as_ref(),
            Self::Webhook(c) => c.delivery.as_ref(),
            Self::Email(c) => c.delivery.as_ref(),
            Self::Pagerduty(c) => c.delivery.as_ref(),
            Self::Alertmanager(c) => c.delivery.as_ref(),
            Self::Inapp(c) | Self::Custom(c) => c.delivery.as_ref(),
        }
    }
}

impl AlertsConfig {
    /// Reads the section from a JSON value (a Python dict or a JS object passed through).
    ///
    /// # Errors
    /// [`Error::Validation`] whose field is the path of the offending key (e.g.
    /// `channels[0].webhook_url`, `routes[1].group_wait`), or every rule broken (see
    /// [`AlertsConfig::validate`]).
    pub fn from_value(value: Value) -> Result<Self> {
        let config: Self = crate::error::deserialize_at(value, "input", "alerts")?;
        config.validate()?;
        Ok(config)
    }

    /// The routes in effect: the configured ones, or one `default` route to every channel.
    #[must_use]
    pub fn effective_routes(&self) -> Vec<RouteConfig> {
        if !self.routes.is_empty() || self.channels.is_empty() {
            return self
                .routes
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let mut r = r.clone();
                    if r.name.is_empty() {
                        r.name = format!("route-{i}");
                    }
                    r
                })
                .collect();
        }
        vec![RouteConfig {
            name: "default".to_owned(),
            channels: self.channels.iter().map(|c| c.name().to_owned()).collect(),
            ..RouteConfig::default()
        }]
    }

    /// Checks the rules serde cannot: unique names, known channels and routes, sane durations
    /// and sizes, well-formed URLs and addresses, and a secret (inline or by environment
    /// variable) for each channel that needs one. Environment variables are read later, when the
    /// manager is built.
    ///
    /// # Errors
    /// [`Error::Validation`] naming every problem.
    pub fn validate(&self) -> Result<()> {
        let mut p = Problems::default();
        let mut names = HashSet::new();
        self.delivery.check("delivery", &mut p);
        for (i, c) in self.channels.iter().enumerate() {
            let at = format!("channels[{i}]");
            if c.name().trim().is_empty() {
                p.add(format!("{at}.name"), "must not be empty");
            } else if !names.insert(c.name()) {
                p.add(
                    format!("{at}.name"),
                    format!("{:?} is used by an earlier channel", c.name()),
                );
            }
            if let Some(d) = c.delivery() {
                d.check(&format!("{at}.delivery"), &mut p);
            }
            match c {
                ChannelConfig::Slack(s) => {
                    one_of(
                        &mut p,
                        &at,
                        "webhook_url",
                        s.webhook_url.is_some(),
                        s.webhook_url_env.is_some(),
                    );
                    if let Some(u) = &s.webhook_url
                        && !is_http_url(u.expose())
                    {
                        // Never echo the value: the path is the token.
                        p.add(
                            format!("{at}.webhook_url"),
                            "is not an absolute http(s) URL",
                        );
                    }
                }
                ChannelConfig::Webhook(w) => {
                    if !is_http_url(&w.url) {
                        p.add(
                            format!("{at}.url"),
                            format!("{:?} is not an absolute http(s) URL", redact_url(&w.url)),
                        );
                    }
                    one_of(
                        &mut p,
                        &at,
                        "secret",
                        w.secret.is_some(),
                        w.secret_env.is_some(),
                    );
                    if w.secret.as_ref().is_some_and(|s| s.expose().is_empty()) {
                        p.add(format!("{at}.secret"), "must not be empty");
                    }
                    for (k, v) in &w.headers {
                        if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err()
                            || reqwest::header::HeaderValue::from_str(v.expose()).is_err()
                        {
                            p.add(
                                format!("{at}.headers.{k}"),
                                "is not a valid HTTP header (name or value)",
                            );
                        }
                    }
                }
                ChannelConfig::Email(e) => check_email(e, &at, &mut p),
                ChannelConfig::Pagerduty(d) => {
                    if !is_http_url(&d.url) {
                        p.add(
                            format!("{at}.url"),
                            format!("{:?} is not an absolute http(s) URL", redact_url(&d.url)),
                        );
                    }
                    one_of(
                        &mut p,
                        &at,
                        "routing_key",
                        d.routing_key.is_some(),
                        d.routing_key_env.is_some(),
                    );
                    if d.routing_key
                        .as_ref()
                        .is_some_and(|k| k.expose().trim().is_empty())
                    {
                        p.add(format!("{at}.routing_key"), "must not be empty");
                    }
                }
                ChannelConfig::Alertmanager(a) => {
                    if !is_http_url(&a.url) {
                        p.add(
                            format!("{at}.url"),
                            format!("{:?} is not an absolute http(s) URL", redact_url(&a.url)),
                        );
                    }
                    if a.bearer_token.is_some() && a.bearer_token_env.is_some() {
                        p.add(
                            format!("{at}.bearer_token"),
                            "give bearer_token or bearer_token_env, not both",
                        );
                    }
                }
                ChannelConfig::Inapp(_) | ChannelConfig::Custom(_) => {}
            }
        }
        let routes = self.effective_routes();
        let mut route_names = HashSet::new();
        for (i, r) in self.routes.iter().enumerate() {
            let at = format!("routes[{i}]");
            let name = &routes[i].name;
            if !route_names.insert(name.as_str()) {
                p.add(
                    format!("{at}.name"),
                    format!("{name:?} is used by an earlier route"),
                );
            }
            if r.channels.is_empty() {
                p.add(format!("{at}.channels"), "must name at least one channel");
            }
            for (j, c) in r.channels.iter().enumerate() {
                if !self.channels.iter().any(|ch| ch.name() == c) {
                    p.add(
                        format!("{at}.channels[{j}]"),
                        format!("{c:?} is not a configured channel"),
                    );
                }
            }
            if r.group_interval.is_zero() {
                p.add(format!("{at}.group_interval"), "must be greater than zero");
            }
            for (key, d) in [
                ("group_wait", r.group_wait),
                ("group_interval", r.group_interval),
                ("repeat_interval", r.repeat_interval),
            ] {
                crate::limits::check_span(&mut p, format!("{at}.{key}"), d);
            }
            if r.repeat_interval < r.group_interval {
                p.add(
                    format!("{at}.repeat_interval"),
                    "must be at least group_interval",
                );
            }
        }
        for (i, r) in routes.iter().enumerate() {
            let Some(e) = &r.escalation else { continue };
            let at = format!("routes[{i}].escalation");
            if e.route == r.name {
                p.add(format!("{at}.route"), "must name another route");
            } else if !routes.iter().any(|o| o.name == e.route) {
                p.add(
                    format!("{at}.route"),
                    format!("{:?} is not a configured route", e.route),
                );
            }
            if e.after.is_zero() {
                p.add(format!("{at}.after"), "must be greater than zero");
            }
            crate::limits::check_span(&mut p, format!("{at}.after"), e.after);
        }
        p.finish("alerts configuration")
    }
}

fn one_of(p: &mut Problems, at: &str, key: &str, inline: bool, env: bool) {
    match (inline, env) {
        (false, false) => p.add(
            format!("{at}.{key}"),
            format!("is required (or {key}_env, the variable holding it)"),
        ),
        (true, true) => p.add(
            format!("{at}.{key}"),
            format!("give either {key} or {key}_env, not both"),
        ),
        _ => {}
    }
}

fn check_email(e: &EmailChannelConfig, at: &str, p: &mut Problems) {
    if e.host.trim().is_empty() {
        p.add(format!("{at}.host"), "must not be empty");
    }
    if e.to.is_empty() {
        p.add(format!("{at}.to"), "must name at least one recipient");
    }
    if e.password.is_some() && e.password_env.is_some() {
        p.add(
            format!("{at}.password"),
            "give either password or password_env, not both",
        );
    }
    let has_password = e.password.is_some() || e.password_env.is_some();
    if has_password != e.username.is_some() {
        p.add(
            format!("{at}.username"),
            "username and password (or password_env) go together",
        );
    }
    if has_password && e.tls == SmtpTls::None && !is_loopback(&e.host) {
        p.add(format!("{at}.tls"), "\"none\" would send the password in clear text; use starttls or tls (plain is for loopback relays)");
    }
    #[cfg(feature = "email")]
    {
        if e.from.parse::<lettre::message::Mailbox>().is_err() {
            p.add(
                format!("{at}.from"),
                format!("{:?} is not an email address", e.from),
            );
        }
        for (j, t) in e.to.iter().enumerate() {
            if t.parse::<lettre::message::Mailbox>().is_err() {
                p.add(
                    format!("{at}.to[{j}]"),
                    format!("{t:?} is not an email address"),
                );
            }
        }
    }
    #[cfg(not(feature = "email"))]
    p.add(
        format!("{at}.type"),
        "email channels need cased-core's `email` feature, which this build lacks",
    );
}

pub(crate) fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn is_http_url(s: &str) -> bool {
    url::Url::parse(s).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

/// A URL safe to show: scheme, host and port only, the path and query replaced by `[redacted]`
/// when present (webhook paths and queries often carry tokens).
pub(crate) fn redact_url(s: &str) -> String {
    match url::Url::parse(s) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("");
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            let rest = if (u.path().is_empty() || u.path() == "/") && u.query().is_none() {
                ""
            } else {
                "/[redacted]"
            };
            format!("{}://{host}{port}{rest}", u.scheme())
        }
        Err(_) => "[unparsable URL]".to_owned(),
    }
}

/// Reads a secret given inline or by environment variable.
pub(crate) fn resolve_secret(
    inline: Option<&Secret>,
    env: Option<&str>,
    field: &str,
) -> Result<Secret> {
    if let Some(s) = inline {
        return Ok(s.clone());
    }
    let Some(var) = env else {
        return Err(Error::invalid(field, "is required"));
    };
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Ok(Secret::new(v)),
        _ => Err(Error::invalid(
            format!("{field}_env"),
            format!("the environment variable {var} is not set"),
        )),
    }
}

const REDACTED: &str = "[redacted]";

mod secret_opt {
    use super::*;

    pub(super) fn serialize<S: Serializer>(
        v: &Option<Secret>,
        s: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        match v {
            Some(_) => s.serialize_str(REDACTED),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<Option<Secret>, D::Error> {
        // Through `Secret`'s own reader: `${NAME}` is read from the environment.
        Option::<Secret>::deserialize(d)
    }
}

mod secret_map {
    use super::*;

    pub(super) fn serialize<S: Serializer>(
        v: &BTreeMap<String, Secret>,
        s: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        s.collect_map(v.keys().map(|k| (k, REDACTED)))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<BTreeMap<String, Secret>, D::Error> {
        BTreeMap::<String, Secret>::deserialize(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_documented_shape_parses_and_secrets_serialize_redacted() {
        let c = AlertsConfig::from_value(json!({
            "channels": [
                {"name": "ops", "type": "slack", "webhook_url": "https://hooks.slack.com/services/T0/B0/tok3n", "send_resolved": true},
                {"name": "hooks", "type": "webhook", "url": "https://hooks.example/cased", "secret": "s3cret", "headers": {"Authorization": "Bearer t0k"}},
                {"name": "oncall", "type": "email", "host": "smtp.example.com", "tls": "starttls",
                 "username": "alerts", "password": "pa55", "from": "cased <alerts@example.com>", "to": ["oncall@example.com"]},
                {"name": "dashboard", "type": "inapp"}
            ],
            "routes": [
                {"name": "default", "channels": ["ops", "hooks", "dashboard"], "min_severity": "warning",
                 "environments": ["production"], "group_wait": "10s", "group_interval": "1m", "repeat_interval": "4h",
                 "escalation": {"after": "15m", "route": "page", "raise_to_emergency": true}},
                {"name": "page", "channels": ["oncall"], "escalation_only": true}
            ],
            "delivery": {"timeout": "5s", "max_retries": 2}
        }))
        .unwrap();
        assert_eq!(
            c.routes[0].escalation.as_ref().unwrap().after,
            Duration::from_secs(900)
        );
        assert_eq!(c.delivery.timeout, Duration::from_secs(5));
        assert_eq!(c.delivery.queue_capacity, 256);
        let text = serde_json::to_string(&c).unwrap();
        let debug = format!("{c:?}");
        for secret in ["tok3n", "s3cret", "t0k", "pa55"] {
            assert!(!text.contains(secret), "{secret} in {text}");
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
        assert!(text.contains("\"group_wait\":\"10s\""), "{text}");
    }

    #[test]
    fn unknown_keys_are_named_with_their_path() {
        let e = AlertsConfig::from_value(
            json!({"channels": [{"name": "a", "type": "inapp", "sendresolved": true}]}),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("channels[0]") && e.to_string().contains("sendresolved"),
            "{e}"
        );
        let e = AlertsConfig::from_value(
            json!({"routes": [{"channels": ["a"], "group_wait": "soon"}]}),
        )
        .unwrap_err();
        assert_eq!(e.field_errors()[0].field, "routes[0].group_wait");
        let e = AlertsConfig::from_value(json!({"channels": [{"name": "a", "type": "pager"}]}))
            .unwrap_err();
        assert!(e.to_string().contains("pager"), "{e}");
    }

    #[test]
    fn every_rule_is_checked_at_once() {
        let e = AlertsConfig::from_value(json!({
            "channels": [
                {"name": "ops", "type": "slack", "webhook_url": "hooks.slack.com/services/T0/B0/tok3n"},
                {"name": "ops", "type": "webhook", "url": "ftp://x"},
                {"name": "mail", "type": "email", "host": "smtp.example.com", "tls": "none", "username": "u", "password": "pa55",
                 "from": "not an address", "to": []}
            ],
            "routes": [
                {"channels": ["ops", "nope"], "group_interval": "0s", "escalation": {"after": "1m", "route": "missing"}},
                {"name": "route-0", "channels": []}
            ],
            "delivery": {"queue_capacity": 0}
        }))
        .unwrap_err();
        let fields: Vec<&str> = e.field_errors().iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "delivery.queue_capacity",
                "channels[0].webhook_url",
                "channels[1].name",
                "channels[1].url",
                "channels[1].secret",
                "channels[2].to",
                "channels[2].tls",
                "channels[2].from",
                "routes[0].channels[1]",
                "routes[0].group_interval",
                "routes[1].name",
                "routes[1].channels",
                "routes[0].escalation.route",
            ]
        );
        assert!(!e.to_string().contains("tok3n"), "{e}");
    }

    #[test]
    fn without_routes_every_channel_gets_every_alert() {
        let c = AlertsConfig::from_value(
            json!({"channels": [{"name": "a", "type": "inapp"}, {"name": "b", "type": "custom"}]}),
        )
        .unwrap();
        let r = c.effective_routes();
        assert_eq!(
            (r.len(), r[0].name.as_str(), r[0].channels.clone()),
            (1, "default", vec!["a".to_owned(), "b".to_owned()])
        );
        assert_eq!(
            AlertsConfig::from_value(json!({})).unwrap(),
            AlertsConfig::default()
        );
    }

    #[test]
    fn urls_are_redacted_to_their_origin() {
        assert_eq!(
            redact_url("https://hooks.slack.com/services/T0/B0/tok"),
            "https://hooks.slack.com/[redacted]"
        );
        assert_eq!(
            redact_url("http://127.0.0.1:8080/"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(redact_url("http://h/x?token=1"), "http://h/[redacted]");
    }
}
