//! The HTTP check: one request, then the answer is judged on its status, latency, body, JSON
//! and headers.
//!
//! ```json
//! {"name": "api", "type": "http", "url": "https://api.example.test/health",
//!  "method": "GET", "headers": {"accept": "application/json"}, "timeout": "5s",
//!  "max_redirects": 5, "max_body_bytes": 1048576, "connection": "fresh",
//!  "expect": {"status": [200, "3xx"], "warn_latency": "300ms", "max_latency": "1s",
//!             "body_contains": "ok", "body_regex": "version\":\\s*\"\\d+",
//!             "json": [{"pointer": "/status", "equals": "ok"}, {"pointer": "/db", "exists": true},
//!                      {"pointer": "/version", "regex": "^2\\."}],
//!             "headers": {"content-type": "application/json"}}}
//! ```
//!
//! **Connections.** `connection: "fresh"` (the default) opens a new connection for every run:
//! the latency includes DNS, TCP connect and the TLS handshake, which is what a new user sees,
//! and a broken listener or certificate cannot hide behind a kept-alive connection. `"pooled"`
//! keeps connections between runs: cheaper, for checks that run often.
//!
//! **Timings.** The evidence carries `timings_ms.headers` (request sent until the status line
//! and headers arrived: connect + TLS + server time, i.e. time to first byte) and
//! `timings_ms.total` (until the body was read, up to the cap). reqwest does not expose the
//! DNS, connect and TLS phases separately: its connector is internal and a pooled request may
//! not connect at all, so those phases are not reported.
//!
//! **Faults** of the target are `fail` outcomes with evidence (refused, reset, a name that does
//! not exist, timeout, redirect loop, certificate, invalid JSON, wrong status...); a resolver
//! that does not answer is the monitor's fault, an `error` (`docs/checks.md`). The body is read in chunks and
//! never beyond `max_body_bytes`; expectations are judged on what was read.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{TIMEOUT_GRACE, error_chain, excerpt, ms, resolver_unavailable};
use crate::check::{CheckCategory, CheckOutcome, CheckStatus, HealthCheck};
use crate::duration;
use crate::error::{Error, Problems, Result};
use crate::secret::{is_secret_name, redact_url, scrub};

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
                if b.len() == 3
                    && (b'1'..=b'5').contains(&b[0])
                    && b[1..].eq_ignore_ascii_case(b"xx")
                {
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

/// One expectation on the JSON body: the value at `pointer` (RFC 6901, e.g. `/checks/0/status`)
/// `equals` a JSON value, `exists` (`true`) or is absent (`false`), or is a string matching
/// `regex` (other values are matched on their JSON text). Exactly one of the three is given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonExpect {
    /// A JSON pointer: `""` (the whole document) or `/a/b/0`.
    pub pointer: String,
    /// The value must equal this (`null` included).
    #[serde(
        default,
        deserialize_with = "super::some_value",
        skip_serializing_if = "Option::is_none"
    )]
    pub equals: Option<Value>,
    /// The value must exist (`true`) or be absent (`false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exists: Option<bool>,
    /// The value must match this regular expression (`regex` crate syntax).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}

impl JsonExpect {
    /// The value at `pointer` must equal `value`.
    pub fn equals(pointer: impl Into<String>, value: Value) -> Self {
        Self {
            pointer: pointer.into(),
            equals: Some(value),
            exists: None,
            regex: None,
        }
    }
    /// The value at `pointer` must exist.
    pub fn exists(pointer: impl Into<String>) -> Self {
        Self {
            pointer: pointer.into(),
            equals: None,
            exists: Some(true),
            regex: None,
        }
    }
    /// The value at `pointer` must match `regex`.
    pub fn regex(pointer: impl Into<String>, regex: impl Into<String>) -> Self {
        Self {
            pointer: pointer.into(),
            equals: None,
            exists: None,
            regex: Some(regex.into()),
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
    /// Slower than this makes a passing check a `warn`.
    #[serde(with = "duration::human_opt", skip_serializing_if = "Option::is_none")]
    pub warn_latency: Option<Duration>,
    /// The body (as read, up to the cap; invalid UTF-8 replaced) must contain this text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// The body must match this regular expression.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_regex: Option<String>,
    /// Expectations on the JSON body.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub json: Vec<JsonExpect>,
    /// Response headers that must be present with exactly this value (names are
    /// case-insensitive; any of several same-named headers may match).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

impl Default for HttpExpect {
    fn default() -> Self {
        Self {
            status: vec![StatusSpec::Class(2)],
            max_latency: None,
            warn_latency: None,
            body_contains: None,
            body_regex: None,
            json: Vec::new(),
            headers: BTreeMap::new(),
        }
    }
}

impl HttpExpect {
    fn checks_content(&self) -> bool {
        self.body_contains.is_some()
            || self.body_regex.is_some()
            || !self.json.is_empty()
            || !self.headers.is_empty()
    }
}

/// Whether connections are kept between runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionMode {
    /// A new connection (DNS, TCP, TLS) for every run: measures what a new user sees. Default.
    #[default]
    Fresh,
    /// Connections are kept alive and reused between runs: cheaper.
    Pooled,
}

fn default_method() -> String {
    "GET".into()
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
/// Redirects followed by default.
pub const DEFAULT_MAX_REDIRECTS: usize = 10;
/// Body bytes read by default (1 MiB).
pub const DEFAULT_MAX_BODY_BYTES: u64 = 1 << 20;
fn default_max_redirects() -> usize {
    DEFAULT_MAX_REDIRECTS
}
fn default_max_body_bytes() -> u64 {
    DEFAULT_MAX_BODY_BYTES
}
fn is_false(b: &bool) -> bool {
    !*b
}

/// Configuration of an HTTP check (`"type": "http"`).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCheckConfig {
    /// The check's name.
    pub name: String,
    /// The URL to request (http or https).
    pub url: String,
    /// The method (default `GET`).
    #[serde(default = "default_method")]
    pub method: String,
    /// Request headers. Their values never appear in `Debug`; the values of secret headers
    /// (`authorization`, `cookie`, names like `x-api-key`: see [`crate::is_secret_name`], and the
    /// names in `redact`) serialize as `[redacted]`, so a stored configuration never holds them.
    #[serde(
        default,
        serialize_with = "serialize_headers",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub headers: BTreeMap<String, String>,
    /// More query parameter and header names whose values are secrets, beyond the built-in list
    /// ([`crate::SECRET_PARAMS`]: `token`, `api_key`, `signature`...). Their values are
    /// replaced by `[redacted]` wherever the URL is shown: messages, evidence, history, reports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redact: Vec<String>,
    /// Request body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Timeout of the whole check: connect, headers and body (default 10 s).
    #[serde(default = "default_timeout", with = "duration::human")]
    pub timeout: Duration,
    /// What the check is about. Default: `endpoint` when `expect` looks at the content (body,
    /// JSON or headers), `availability` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<CheckCategory>,
    /// What the answer must look like.
    #[serde(default)]
    pub expect: HttpExpect,
    /// Redirects followed (default 10; `0` = none: a 3xx is then the answer). Going around in a
    /// loop, or past the limit, fails the check.
    #[serde(default = "default_max_redirects")]
    pub max_redirects: usize,
    /// Body bytes read at most (default 1 MiB); the rest is not read.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: u64,
    /// Accept any certificate (self-signed, expired, wrong host). Off by default.
    #[serde(default, skip_serializing_if = "is_false")]
    pub insecure_skip_verify: bool,
    /// `fresh` (default) or `pooled` connections.
    #[serde(default)]
    pub connection: ConnectionMode,
}

impl fmt::Debug for HttpCheckConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpCheckConfig")
            .field("name", &self.name)
            .field("url", &redact_url(&self.url, &self.redact))
            .field("method", &self.method)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field(
                "body",
                &self.body.as_ref().map(|b| format!("{} bytes", b.len())),
            )
            .field("timeout", &self.timeout)
            .field("category", &self.category)
            .field("expect", &self.expect)
            .field("max_redirects", &self.max_redirects)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .field("connection", &self.connection)
            .field("redact", &self.redact)
            .finish()
    }
}

impl HttpCheckConfig {
    /// A `GET` of `url` expecting a 2xx, with every other setting at its default.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            url: url.into(),
            method: default_method(),
            headers: BTreeMap::new(),
            body: None,
            timeout: default_timeout(),
            category: None,
            expect: HttpExpect::default(),
            max_redirects: DEFAULT_MAX_REDIRECTS,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            insecure_skip_verify: false,
            connection: ConnectionMode::Fresh,
            redact: Vec::new(),
        }
    }
}

/// Whether a proxy may apply: one of the variables reqwest reads for its system proxy is set
/// (or the platform has proxy settings reqwest may read: macOS, Windows).
fn proxy_configured() -> bool {
    cfg!(any(target_os = "macos", windows))
        || [
            "ALL_PROXY",
            "all_proxy",
            "HTTP_PROXY",
            "http_proxy",
            "HTTPS_PROXY",
            "https_proxy",
        ]
        .iter()
        .any(|k| std::env::var_os(k).is_some())
}

/// Headers as configured, the values of those whose names look secret (see
/// [`is_secret_name`]) replaced by `[redacted]`.
fn serialize_headers<S: serde::Serializer>(
    headers: &BTreeMap<String, String>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.collect_map(headers.iter().map(|(k, v)| {
        if is_secret_name(k, &[]) {
            (k, crate::secret::REDACTED)
        } else {
            (k, v.as_str())
        }
    }))
}

#[derive(Debug)]
struct JsonRule {
    pointer: String,
    rule: JsonRuleKind,
}

#[derive(Debug)]
enum JsonRuleKind {
    Equals(Value),
    Exists(bool),
    Regex(regex::Regex),
}

/// A runnable HTTP check.
#[derive(Debug)]
pub struct HttpCheck {
    config: HttpCheckConfig,
    url: reqwest::Url,
    shown_url: String,
    method: reqwest::Method,
    headers: HeaderMap,
    body: Option<Bytes>,
    body_regex: Option<regex::Regex>,
    json: Vec<JsonRule>,
    expect_headers: Vec<(HeaderName, String)>,
    http: reqwest::Client,
}

/// The error a redirect policy gives up with.
#[derive(Debug)]
struct RedirectStop(String);
impl fmt::Display for RedirectStop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for RedirectStop {}

impl HttpCheck {
    /// Validates the configuration and prepares the client.
    ///
    /// # Errors
    /// [`Error::Validation`] naming each bad field: `name`, `url`, `method`, `headers.<name>`,
    /// `timeout`, `max_body_bytes`, `expect.status`, `expect.warn_latency`, `expect.body_regex`,
    /// `expect.json[i].pointer`, `expect.json[i].regex`, `expect.json[i]`, `expect.headers.<name>`.
    pub fn new(config: HttpCheckConfig) -> Result<Self> {
        let mut p = Problems::default();
        if config.name.trim().is_empty() {
            p.add("name", "must not be empty");
        }
        let mut parsed = None;
        match url::Url::parse(&config.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                parsed = Some(u)
            }
            _ => p.add(
                "url",
                format!(
                    "{:?} is not an absolute http(s) URL",
                    redact_url(&config.url, &config.redact)
                ),
            ),
        }
        let method = reqwest::Method::from_bytes(config.method.to_ascii_uppercase().as_bytes());
        if method.is_err() {
            p.add(
                "method",
                format!("{:?} is not an HTTP method", config.method),
            );
        }
        let mut headers = HeaderMap::new();
        for (k, v) in &config.headers {
            match (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                (Ok(name), Ok(mut value)) => {
                    value.set_sensitive(true);
                    headers.append(name, value);
                }
                (Err(_), _) => p.add(format!("headers.{k}"), "is not a valid header name"),
                (_, Err(_)) => p.add(
                    format!("headers.{k}"),
                    "the value is not a valid header value",
                ),
            }
        }
        crate::limits::check_timeout(&mut p, "timeout", config.timeout);
        if config.max_body_bytes == 0 {
            p.add("max_body_bytes", "must be at least 1");
        }
        let e = &config.expect;
        if e.status.is_empty() {
            p.add("expect.status", "must list at least one status");
        }
        if let (Some(w), Some(m)) = (e.warn_latency, e.max_latency)
            && w >= m
        {
            p.add(
                "expect.warn_latency",
                "must be less than expect.max_latency",
            );
        }
        let body_regex = e
            .body_regex
            .as_ref()
            .and_then(|r| match regex::Regex::new(r) {
                Ok(r) => Some(r),
                Err(err) => {
                    p.add(
                        "expect.body_regex",
                        format!("is not a valid regular expression: {err}"),
                    );
                    None
                }
            });
        let mut json = Vec::new();
        for (i, j) in e.json.iter().enumerate() {
            if !(j.pointer.is_empty() || j.pointer.starts_with('/')) {
                p.add(
                    format!("expect.json[{i}].pointer"),
                    format!("{:?} is not a JSON pointer (\"\" or \"/a/b\")", j.pointer),
                );
            }
            let given = usize::from(j.equals.is_some())
                + usize::from(j.exists.is_some())
                + usize::from(j.regex.is_some());
            if given != 1 {
                p.add(
                    format!("expect.json[{i}]"),
                    "needs exactly one of `equals`, `exists`, `regex`",
                );
                continue;
            }
            let rule = if let Some(v) = &j.equals {
                JsonRuleKind::Equals(v.clone())
            } else if let Some(x) = j.exists {
                JsonRuleKind::Exists(x)
            } else {
                match regex::Regex::new(j.regex.as_deref().unwrap_or_default()) {
                    Ok(r) => JsonRuleKind::Regex(r),
                    Err(err) => {
                        p.add(
                            format!("expect.json[{i}].regex"),
                            format!("is not a valid regular expression: {err}"),
                        );
                        continue;
                    }
                }
            };
            json.push(JsonRule {
                pointer: j.pointer.clone(),
                rule,
            });
        }
        let mut expect_headers = Vec::new();
        for (k, v) in &e.headers {
            match HeaderName::from_bytes(k.as_bytes()) {
                Ok(name) => expect_headers.push((name, v.clone())),
                Err(_) => p.add(format!("expect.headers.{k}"), "is not a valid header name"),
            }
        }
        p.finish(&format!("http check {:?}", config.name))?;

        let max = config.max_redirects;
        let extra = config.redact.clone();
        let policy = if max == 0 {
            reqwest::redirect::Policy::none()
        } else {
            reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() > max {
                    let e = RedirectStop(format!("more than {max} redirects"));
                    attempt.error(e)
                } else if attempt.previous().contains(attempt.url()) {
                    let e = RedirectStop(format!(
                        "redirect loop: {} was already visited",
                        redact_url(attempt.url().as_str(), &extra)
                    ));
                    attempt.error(e)
                } else {
                    attempt.follow()
                }
            })
        };
        let mut builder = reqwest::Client::builder()
            .redirect(policy)
            .user_agent(concat!("cased-check/", env!("CARGO_PKG_VERSION")))
            .tls_danger_accept_invalid_certs(config.insecure_skip_verify)
            // A check is one request. reqwest's default policy retries only HTTP/2 protocol
            // NACKs, which cannot happen without its `http2` feature, yet its retry layer
            // clones every request (headers, URI, extensions) in case it does.
            .retry(reqwest::retry::never().max_retries_per_request(0));
        if !proxy_configured() {
            // What reqwest's system proxy would resolve to; skips its proxy matcher (run
            // twice per request) when no proxy variable is set.
            builder = builder.no_proxy();
        }
        if config.connection == ConnectionMode::Fresh {
            builder = builder.pool_max_idle_per_host(0);
        }
        let http = builder
            .build()
            .map_err(|e| Error::Transport(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            url: parsed.expect("checked above"),
            shown_url: redact_url(&config.url, &config.redact),
            method: method.expect("checked above"),
            headers,
            body: config.body.clone().map(Bytes::from),
            body_regex,
            json,
            expect_headers,
            config,
            http,
        })
    }

    /// The configuration this check was built from.
    #[must_use]
    pub fn config(&self) -> &HttpCheckConfig {
        &self.config
    }

    fn transport_failure(
        &self,
        e: &reqwest::Error,
        phase: &str,
        elapsed: Duration,
    ) -> CheckOutcome {
        // The top-level message names the URL (which may hold a password): start at its source.
        let detail = match std::error::Error::source(e) {
            Some(src) => scrub(&error_chain(src), self.url.as_str(), &self.config.redact),
            None => {
                if e.is_timeout() {
                    "operation timed out".to_owned()
                } else {
                    "request failed".to_owned()
                }
            }
        };
        let kind = if e.is_redirect() {
            if detail.contains("redirect loop") {
                "redirect_loop"
            } else {
                "too_many_redirects"
            }
        } else if e.is_timeout() {
            "timeout"
        } else if (e.is_dns() || detail.contains("dns error")) && resolver_unavailable(&detail) {
            "resolver_unavailable"
        } else if e.is_dns() || detail.contains("dns error") {
            "dns"
        } else if detail.contains("certificate")
            || detail.contains("InvalidCertificate")
            || detail.contains("tls")
        {
            "tls"
        } else if detail.contains("refused") {
            "connection_refused"
        } else if detail.contains("reset")
            || detail.contains("closed")
            || detail.contains("incomplete")
        {
            "connection_reset"
        } else if e.is_connect() {
            "connect"
        } else if e.is_body() || e.is_decode() {
            "body"
        } else {
            "request"
        };
        let what = match kind {
            "redirect_loop" => "redirect loop",
            "too_many_redirects" => "too many redirects",
            "timeout" => "timed out",
            "dns" => "name does not resolve",
            "resolver_unavailable" => "the monitor's resolver did not answer",
            "tls" => "TLS handshake failed",
            "connection_refused" => "connection refused",
            "connection_reset" => "connection closed before a complete answer",
            "connect" => "cannot connect",
            "body" => "cannot read the body",
            _ => "request failed",
        };
        // A request that could not be built, or a resolver that did not answer, is a fault of
        // the monitor: nothing was learned about the target.
        let status = if e.is_builder() || kind == "resolver_unavailable" {
            CheckStatus::Error
        } else {
            CheckStatus::Fail
        };
        CheckOutcome::new(
            status,
            format!("{} {}: {what} ({detail})", self.method, self.shown_url),
        )
        .with_latency(elapsed)
        .with_evidence(json!({
            "url": self.shown_url, "method": self.method.as_str(), "phase": phase, "error": kind,
            "detail": detail, "expected": "an HTTP response",
            "timings_ms": {"total": ms(elapsed)},
        }))
    }

    fn timeout_failure(&self, phase: &str, read: usize, elapsed: Duration) -> CheckOutcome {
        let when = if phase == "body" {
            format!("reading the body ({read} bytes read)")
        } else {
            "waiting for the response headers".into()
        };
        CheckOutcome::fail(format!(
            "{} {}: timed out after {} ms {when}",
            self.method,
            self.shown_url,
            self.config.timeout.as_millis()
        ))
        .with_latency(elapsed)
        .with_evidence(json!({
            "url": self.shown_url, "method": self.method.as_str(), "phase": phase, "error": "timeout",
            "expected": format!("a complete answer within {} ms", self.config.timeout.as_millis()),
            "body_bytes": read, "timings_ms": {"total": ms(elapsed)},
        }))
    }
}

/// What one request got, up to where it stopped.
#[derive(Default)]
struct Exchange {
    headers_at: Option<Duration>,
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
    truncated: bool,
}

impl HttpCheck {
    /// Sends the request and reads the body up to the cap, recording progress in `x`.
    async fn exchange(
        &self,
        started: Instant,
        x: &mut Exchange,
    ) -> std::result::Result<(), reqwest::Error> {
        let mut req = self.http.request(self.method.clone(), self.url.clone());
        if !self.headers.is_empty() {
            req = req.headers(self.headers.clone());
        }
        if let Some(b) = &self.body {
            req = req.body(b.clone());
        }
        let mut resp = req.send().await?;
        x.headers_at = Some(started.elapsed());
        x.status = resp.status().as_u16();
        let cap = usize::try_from(self.config.max_body_bytes).unwrap_or(usize::MAX);
        let hint = resp
            .content_length()
            .map_or(8 << 10, |n| usize::try_from(n).unwrap_or(usize::MAX));
        x.body.reserve(hint.min(cap).min(64 << 10));
        while let Some(chunk) = resp.chunk().await? {
            let room = cap - x.body.len();
            if chunk.len() > room {
                x.body.extend_from_slice(&chunk[..room]);
                x.truncated = true;
                break;
            }
            x.body.extend_from_slice(&chunk);
        }
        // Dropping an unfinished response closes its connection: nothing more is read.
        x.headers = std::mem::take(resp.headers_mut());
        Ok(())
    }
}

/// One unmet expectation.
struct Miss {
    message: String,
    evidence: Value,
}

impl HttpCheck {
    fn judge(&self, status: u16, headers: &HeaderMap, body: &[u8], truncated: bool) -> Vec<Miss> {
        let e = &self.config.expect;
        let mut misses = Vec::new();
        if !e.status.iter().any(|s| s.matches(status)) {
            let want: Vec<String> = e.status.iter().map(ToString::to_string).collect();
            misses.push(Miss {
                message: format!("HTTP {status}, expected {}", want.join(" or ")),
                evidence: json!({"check": "status", "expected": want, "got": status, "body_excerpt": excerpt(body, 256)}),
            });
        }
        for (name, want) in &self.expect_headers {
            let got: Vec<String> = headers
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect();
            if !got.iter().any(|g| g.trim() == want.trim()) {
                misses.push(Miss {
                    message: format!("header {name} is {}, expected {want:?}", if got.is_empty() { "absent".to_owned() } else { format!("{:?}", got.join(", ")) }),
                    evidence: json!({"check": format!("header {name}"), "expected": want, "got": got}),
                });
            }
        }
        // Decoded only when an expectation reads the text (bodies run up to `max_body_bytes`).
        let text = if e.body_contains.is_some() || self.body_regex.is_some() {
            String::from_utf8_lossy(body)
        } else {
            std::borrow::Cow::Borrowed("")
        };
        if let Some(want) = &e.body_contains
            && !text.contains(want.as_str())
        {
            misses.push(Miss {
                message: format!("the body does not contain {want:?}"),
                evidence: json!({"check": "body_contains", "expected": want, "got": excerpt(body, 256), "body_truncated": truncated}),
            });
        }
        if let Some(re) = &self.body_regex
            && !re.is_match(&text)
        {
            misses.push(Miss {
                message: format!("the body does not match /{}/", re.as_str()),
                evidence: json!({"check": "body_regex", "expected": re.as_str(), "got": excerpt(body, 256), "body_truncated": truncated}),
            });
        }
        if !self.json.is_empty() {
            match serde_json::from_slice::<Value>(body) {
                Err(err) => misses.push(Miss {
                    message: format!(
                        "the body is not valid JSON ({err}{})",
                        if truncated { "; it was cut at max_body_bytes" } else { "" }
                    ),
                    evidence: json!({"check": "json", "expected": "a JSON body", "got": excerpt(body, 256),
                                     "error": err.to_string(), "body_truncated": truncated}),
                }),
                Ok(doc) => {
                    for r in &self.json {
                        let got = doc.pointer(&r.pointer);
                        let ok = match (&r.rule, got) {
                            (JsonRuleKind::Equals(want), Some(got)) => want == got,
                            (JsonRuleKind::Exists(want), got) => *want == got.is_some(),
                            (JsonRuleKind::Regex(re), Some(Value::String(s))) => re.is_match(s),
                            (JsonRuleKind::Regex(re), Some(v)) => re.is_match(&v.to_string()),
                            (_, None) => false,
                        };
                        if !ok {
                            let (expected, what) = match &r.rule {
                                JsonRuleKind::Equals(v) => (v.clone(), format!("to equal {v}")),
                                JsonRuleKind::Exists(true) => (json!("present"), "to exist".to_owned()),
                                JsonRuleKind::Exists(false) => (json!("absent"), "to be absent".to_owned()),
                                JsonRuleKind::Regex(re) => (json!(re.as_str()), format!("to match /{}/", re.as_str())),
                            };
                            let shown = got.map_or_else(|| "absent".to_owned(), ToString::to_string);
                            misses.push(Miss {
                                message: format!("JSON {:?} is {}, expected {what}", r.pointer, excerpt(shown.as_bytes(), 120)),
                                evidence: json!({"check": "json", "pointer": r.pointer, "expected": expected, "got": got}),
                            });
                        }
                    }
                }
            }
        }
        misses
    }
}

#[async_trait::async_trait]
impl HealthCheck for HttpCheck {
    fn name(&self) -> &str {
        &self.config.name
    }
    fn category(&self) -> CheckCategory {
        self.config
            .category
            .unwrap_or(if self.config.expect.checks_content() {
                CheckCategory::Endpoint
            } else {
                CheckCategory::Availability
            })
    }
    /// The configured timeout plus a short grace, so that the check's own timeout (a `fail`
    /// with evidence) fires before a caller's.
    fn timeout(&self) -> Option<Duration> {
        Some(self.config.timeout.saturating_add(TIMEOUT_GRACE))
    }
    async fn check(&self) -> CheckOutcome {
        let started = Instant::now();
        // One timer for the whole exchange; `x` keeps what was got when it fires.
        let mut x = Exchange::default();
        let ran = tokio::time::timeout_at(
            started
                .checked_add(self.config.timeout)
                .unwrap_or_else(|| started + crate::limits::MAX_TIMEOUT),
            self.exchange(started, &mut x),
        )
        .await;
        let phase = if x.headers_at.is_some() {
            "body"
        } else {
            "headers"
        };
        match ran {
            Err(_) => return self.timeout_failure(phase, x.body.len(), started.elapsed()),
            Ok(Err(e)) => {
                let mut o = self.transport_failure(&e, phase, started.elapsed());
                if let (Some(Value::Object(m)), true) = (&mut o.evidence, x.headers_at.is_some()) {
                    m.insert("status".into(), json!(x.status));
                    m.insert("body_bytes".into(), json!(x.body.len()));
                }
                return o;
            }
            Ok(Ok(())) => {}
        }
        let Exchange {
            headers_at,
            status,
            headers: resp_headers,
            body,
            truncated,
        } = x;
        let headers_at = headers_at.unwrap_or_default();
        let latency = started.elapsed();
        let misses = self.judge(status, &resp_headers, &body, truncated);
        let mut evidence = json!({
            "url": self.shown_url, "method": self.method.as_str(), "status": status,
            "body_bytes": body.len(), "body_truncated": truncated,
            "timings_ms": {"headers": ms(headers_at), "total": ms(latency)},
        });
        let outcome = if let Some(first) = misses.first() {
            let more = if misses.len() > 1 {
                format!(" (and {} more)", misses.len() - 1)
            } else {
                String::new()
            };
            let message = format!("{}{more}", first.message);
            evidence["failures"] = Value::Array(misses.into_iter().map(|m| m.evidence).collect());
            CheckOutcome::fail(message)
        } else {
            let e = &self.config.expect;
            match (e.max_latency, e.warn_latency) {
                (Some(max), _) if latency > max => {
                    evidence["failures"] = json!([{"check": "max_latency", "expected": format!("<= {} ms", max.as_millis()), "got": ms(latency)}]);
                    CheckOutcome::fail(format!(
                        "HTTP {status} in {} ms, over the {} ms budget",
                        latency.as_millis(),
                        max.as_millis()
                    ))
                }
                (_, Some(warn)) if latency > warn => {
                    evidence["failures"] = json!([{"check": "warn_latency", "expected": format!("<= {} ms", warn.as_millis()), "got": ms(latency)}]);
                    CheckOutcome::warn(format!(
                        "HTTP {status} in {} ms, over the {} ms warning level",
                        latency.as_millis(),
                        warn.as_millis()
                    ))
                }
                _ => CheckOutcome::pass(format!("HTTP {status} in {} ms", latency.as_millis())),
            }
        };
        outcome.with_latency(latency).with_evidence(evidence)
    }
}
