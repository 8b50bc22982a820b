//! The HTTP check: a request, an expected status, a latency budget.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::time::Instant;

use crate::check::{CheckCategory, CheckOutcome, HealthCheck};
use crate::duration;
use crate::error::{Error, Problems, Result};

/// An expected status: a code (`200`) or a class (`"2xx"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "serde_json::Value", into = "serde_json::Value")]
pub enum StatusSpec {
    /// Exactly this code.
    Code(u16),
    /// Any code of this class (2 = `2xx`).
    Class(u8),
}

impl StatusSpec {
    /// Whether `status` matches.
    #[must_use]
    pub fn matches(self, status: u16) -> bool {
        match self {
            Self::Code(c) => c == status,
            Self::Class(c) => status / 100 == u16::from(c),
        }
    }
}

impl TryFrom<serde_json::Value> for StatusSpec {
    type Error = String;
    fn try_from(v: serde_json::Value) -> std::result::Result<Self, String> {
        match &v {
            serde_json::Value::Number(n) => match n.as_u64() {
                Some(c @ 100..=599) => Ok(Self::Code(c as u16)),
                _ => Err(format!("{n} is not an HTTP status code (100..599)")),
            },
            serde_json::Value::String(s) => {
                let b = s.as_bytes();
                if b.len() == 3 && (b'1'..=b'5').contains(&b[0]) && b[1..].eq_ignore_ascii_case(b"xx") {
                    Ok(Self::Class(b[0] - b'0'))
                } else if let Ok(c @ 100..=599) = s.parse::<u16>() {
                    Ok(Self::Code(c))
                } else {
                    Err(format!("{s:?} is not a status code or class like \"2xx\""))
                }
            }
            _ => Err(format!("{v} is not a status code or class like \"2xx\"")),
        }
    }
}

impl From<StatusSpec> for serde_json::Value {
    fn from(s: StatusSpec) -> Self {
        match s {
            StatusSpec::Code(c) => json!(c),
            StatusSpec::Class(c) => json!(format!("{c}xx")),
        }
    }
}

impl fmt::Display for StatusSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Code(c) => write!(f, "{c}"),
            Self::Class(c) => write!(f, "{c}xx"),
        }
    }
}

/// What an HTTP answer must look like.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpExpect {
    /// Accepted statuses (default `["2xx"]`).
    pub status: Vec<StatusSpec>,
    /// Slower than this fails the check.
    #[serde(with = "duration::human_opt", skip_serializing_if = "Option::is_none")]
    pub max_latency: Option<Duration>,
}

impl Default for HttpExpect {
    fn default() -> Self {
        Self { status: vec![StatusSpec::Class(2)], max_latency: None }
    }
}

fn default_method() -> String {
    "GET".into()
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// Configuration of an HTTP check (`"type": "http"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCheckConfig {
    /// The check's name.
    pub name: String,
    /// The URL to request.
    pub url: String,
    /// The method (default `GET`).
    #[serde(default = "default_method")]
    pub method: String,
    /// Timeout of the whole request (default 10 s).
    #[serde(default = "default_timeout", with = "duration::human")]
    pub timeout: Duration,
    /// What the check is about (default `availability`).
    #[serde(default)]
    pub category: CheckCategory,
    /// What the answer must look like.
    #[serde(default)]
    pub expect: HttpExpect,
}

impl HttpCheckConfig {
    /// A `GET` of `url` expecting a 2xx.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            url: url.into(),
            method: default_method(),
            timeout: default_timeout(),
            category: CheckCategory::default(),
            expect: HttpExpect::default(),
        }
    }
}

/// A runnable HTTP check.
#[derive(Debug)]
pub struct HttpCheck {
    config: HttpCheckConfig,
    method: reqwest::Method,
    http: reqwest::Client,
}

impl HttpCheck {
    /// Validates the configuration and prepares the client.
    ///
    /// # Errors
    /// [`Error::Validation`] naming `name`, `url`, `method`, `timeout` or `expect.status`.
    pub fn new(config: HttpCheckConfig) -> Result<Self> {
        let mut p = Problems::default();
        if config.name.trim().is_empty() {
            p.add("name", "must not be empty");
        }
        match url::Url::parse(&config.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            _ => p.add("url", format!("{:?} is not an absolute http(s) URL", config.url)),
        }
        let method = reqwest::Method::from_bytes(config.method.to_ascii_uppercase().as_bytes());
        if method.is_err() {
            p.add("method", format!("{:?} is not an HTTP method", config.method));
        }
        if config.timeout.is_zero() {
            p.add("timeout", "must be greater than zero");
        }
        if config.expect.status.is_empty() {
            p.add("expect.status", "must list at least one status");
        }
        p.finish(&format!("http check {:?}", config.name))?;
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("cased-check/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Transport(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { method: method.expect("checked above"), config, http })
    }
}

#[async_trait::async_trait]
impl HealthCheck for HttpCheck {
    fn name(&self) -> &str {
        &self.config.name
    }
    fn category(&self) -> CheckCategory {
        self.config.category
    }
    fn timeout(&self) -> Option<Duration> {
        Some(self.config.timeout)
    }
    async fn check(&self) -> CheckOutcome {
        let started = Instant::now();
        let sent = self.http.request(self.method.clone(), &self.config.url).send().await;
        let outcome = match sent {
            Err(e) => {
                let what = if e.is_timeout() { "timed out" } else { "unreachable" };
                CheckOutcome::fail(format!("{} {what}: {e}", self.config.url))
            }
            Ok(resp) => {
                let status = resp.status().as_u16();
                // Drain the body so the latency covers the whole answer.
                let _ = resp.bytes().await;
                let expected = &self.config.expect.status;
                if expected.iter().any(|s| s.matches(status)) {
                    CheckOutcome::pass(format!("HTTP {status}"))
                } else {
                    let want: Vec<String> = expected.iter().map(ToString::to_string).collect();
                    CheckOutcome::fail(format!("HTTP {status}, expected {}", want.join(" or ")))
                        .with_evidence(json!({"expected_status": want, "status": status}))
                }
            }
        };
        let latency = started.elapsed();
        let outcome = match self.config.expect.max_latency {
            Some(max) if latency > max && outcome.status < crate::CheckStatus::Fail => CheckOutcome::fail(format!(
                "{} took {} ms, budget {} ms",
                outcome.message,
                latency.as_millis(),
                max.as_millis()
            )),
            _ => outcome,
        };
        outcome.with_latency(latency)
    }
}
