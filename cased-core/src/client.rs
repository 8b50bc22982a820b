//! The deployments API client: `POST {base_url}/api/v1/deployments/`.
//!
//! Retries connect errors and HTTP 408, 429, 502, 503 and 504 with exponential backoff and full
//! jitter, honouring `Retry-After` (seconds or HTTP-date); never retries other 4xx, 500 or a
//! request that timed out after it was sent (it may have been received). Attempts and total time
//! are capped by the [`RetryPolicy`].
//!
//! Each call of [`Client::create_deployment`] is one logical event: it carries an
//! [`IDEMPOTENCY_KEY_HEADER`] of its own, the same on every retry, so a server that received an
//! attempt whose answer was lost (a proxy's 502, a reset) gives the first answer again instead
//! of recording the deployment twice (`cased serve` does).
//!
//! [`Client::deployments`] and [`Client::deployment`] read the same API back (`GET`, a key with
//! the read scope on `cased serve`), with the same authentication, retries and 1 MiB cap.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::header::{self, HeaderMap, HeaderValue};
use serde_json::Value;
use tokio::time::Instant;
use tracing::Instrument;

use crate::error::{Error, Problems, Result};
use crate::event::DeploymentEvent;
use crate::secret::Secret;

/// The API used when no base URL is given.
pub const DEFAULT_BASE_URL: &str = "https://app.cased.com";
/// The environment variable read for the API key when the builder is given none.
pub const API_KEY_ENV: &str = "CASED_API_KEY";
/// The environment variable read for the base URL when the builder is given none.
pub const BASE_URL_ENV: &str = "CASED_BASE_URL";
/// The path deployment events are posted to, below the base URL.
pub const DEPLOYMENTS_PATH: &str = "api/v1/deployments/";
/// The header naming one logical request across its retries (a random 128-bit hex value per
/// [`Client::create_deployment`] call).
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";
/// Longest server message kept in an error, in characters.
const MAX_SERVER_MESSAGE: usize = 1000;

/// How failed requests are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 = never retry).
    pub max_retries: u32,
    /// Upper bound of the first backoff; doubled each retry.
    pub initial_backoff: Duration,
    /// Largest backoff upper bound.
    pub max_backoff: Duration,
    /// No retry starts after this much time since the first attempt.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
            max_elapsed: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The upper bound of the backoff before retry number `retry` (0-based):
    /// `min(max_backoff, initial_backoff * 2^retry)`.
    #[must_use]
    pub fn backoff_cap(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.min(31));
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }

    /// A "full jitter" backoff: uniform in `[0, backoff_cap(retry)]`.
    #[must_use]
    pub fn jittered_backoff(&self, retry: u32) -> Duration {
        let cap = self.backoff_cap(retry).as_nanos().min(u128::from(u64::MAX)) as u64;
        Duration::from_nanos(fastrand::u64(0..=cap))
    }
}

/// What the API answered to a successful request.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ApiResponse {
    /// The HTTP status (2xx).
    pub status: u16,
    /// The body parsed as JSON; a non-JSON body is kept as a JSON string; `None` when empty.
    pub body: Option<Value>,
    /// How many attempts it took (1 = no retry).
    pub attempts: u32,
}

/// Filters and paging of [`Client::deployments`]; every field is optional (`Default` is the
/// first page of everything, newest first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeploymentQuery {
    /// Only this repository (`owner/name`).
    pub repository: Option<String>,
    /// Only this environment.
    pub environment: Option<String>,
    /// Only this verdict: `healthy`, `degraded`, `unhealthy` or `inconclusive`.
    pub verdict: Option<String>,
    /// Page size (the server accepts 1 to 500; 50 when absent).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One page of [`Client::deployments`]: the deployments as the API shapes them, newest first.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DeploymentPage {
    /// The deployments of this page (each with `id`, `status`, `state`, `verdict`, its event...).
    pub deployments: Vec<Value>,
    /// Pass it as [`DeploymentQuery::cursor`] for the next page; `None` on the last.
    pub next_cursor: Option<String>,
}

/// What a request is, for its log lines and its errors.
#[derive(Debug, Clone, Copy)]
enum Call {
    Post,
    Read,
}

impl Call {
    fn accepted(self) -> &'static str {
        match self {
            Call::Post => "deployment event accepted",
            Call::Read => "deployments read",
        }
    }

    fn retrying(self) -> &'static str {
        match self {
            Call::Post => "retrying deployment event",
            Call::Read => "retrying deployments read",
        }
    }

    fn failed(self) -> &'static str {
        match self {
            Call::Post => "deployment event not delivered",
            Call::Read => "deployments not read",
        }
    }
}

/// A client of the deployments API. Cheap to clone (an `Arc` inside); build it with
/// [`Client::builder`]. Its `Debug` never shows the API key.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    endpoint: url::Url,
    retry: RetryPolicy,
    /// The timeout of one attempt; a long poll's attempt gets its wait on top.
    timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.inner.endpoint.as_str())
            .field("api_key", &"[redacted]")
            .field("retry", &self.inner.retry)
            .finish()
    }
}

/// Configures a [`Client`]. `build()` validates everything at once.
#[derive(Debug, Clone)]
#[must_use]
pub struct ClientBuilder {
    api_key: Option<Secret>,
    base_url: Option<String>,
    timeout: Duration,
    connect_timeout: Duration,
    retry: RetryPolicy,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self {
            api_key: None,
            base_url: None,
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            retry: RetryPolicy::default(),
        }
    }
}

impl ClientBuilder {
    /// The API key; when not given, `CASED_API_KEY` is read at `build()`.
    pub fn api_key(mut self, key: impl Into<Secret>) -> Self {
        self.api_key = Some(key.into());
        self
    }
    /// The API's base URL; when not given, `CASED_BASE_URL` is read at `build()`, then
    /// [`DEFAULT_BASE_URL`]. A path prefix is kept.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }
    /// Timeout of one attempt, from connect to the last body byte (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    /// Timeout of establishing one connection (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
    /// Retries after the first attempt (default 3).
    pub fn max_retries(mut self, n: u32) -> Self {
        self.retry.max_retries = n;
        self
    }
    /// The whole retry policy.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Validates the configuration and builds the client.
    ///
    /// # Errors
    /// [`Error::Validation`] naming every bad setting: a missing or malformed API key (its value
    /// is never echoed), a base URL that is not absolute http(s), zero timeouts or backoffs.
    pub fn build(self) -> Result<Client> {
        let mut p = Problems::default();
        let key = self
            .api_key
            .or_else(|| std::env::var(API_KEY_ENV).ok().map(Secret::new));
        let auth = match key {
            None => {
                p.add(
                    "api_key",
                    format!("is required: pass it to the client or set {API_KEY_ENV}"),
                );
                None
            }
            Some(k) if k.expose().trim().is_empty() => {
                p.add("api_key", "must not be empty");
                None
            }
            Some(k) => match HeaderValue::from_str(&format!("Bearer {}", k.expose())) {
                Ok(mut v) if !k.expose().chars().any(char::is_whitespace) => {
                    v.set_sensitive(true);
                    Some(v)
                }
                _ => {
                    p.add(
                        "api_key",
                        "contains whitespace or characters not allowed in an HTTP header",
                    );
                    None
                }
            },
        };
        let from_env = self.base_url.is_none();
        let base = self
            .base_url
            .or_else(|| std::env::var(BASE_URL_ENV).ok().filter(|u| !u.is_empty()))
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        let endpoint = match url::Url::parse(&base) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                let mut u = u;
                if !u.path().ends_with('/') {
                    let path = format!("{}/", u.path());
                    u.set_path(&path);
                }
                u.join(DEPLOYMENTS_PATH).ok()
            }
            _ => None,
        };
        if endpoint.is_none() {
            let origin = if from_env {
                format!(" (from {BASE_URL_ENV})")
            } else {
                String::new()
            };
            p.add(
                "base_url",
                format!("{base:?}{origin} is not an absolute http(s) URL"),
            );
        }
        crate::limits::check_timeout(&mut p, "timeout", self.timeout);
        crate::limits::check_timeout(&mut p, "connect_timeout", self.connect_timeout);
        crate::limits::check_retry_span(&mut p, "retry.max_backoff", self.retry.max_backoff);
        crate::limits::check_retry_span(&mut p, "retry.max_elapsed", self.retry.max_elapsed);
        if self.retry.initial_backoff.is_zero()
            || self.retry.initial_backoff > self.retry.max_backoff
        {
            p.add(
                "retry.initial_backoff",
                "must be greater than zero and at most max_backoff",
            );
        }
        if self.retry.max_retries > 100 {
            p.add(
                "max_retries",
                format!("{} is more than 100", self.retry.max_retries),
            );
        }
        p.finish("client configuration")?;
        let (Some(auth), Some(endpoint)) = (auth, endpoint) else {
            unreachable!("problems were reported above");
        };

        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, auth);
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("cased/", env!("CARGO_PKG_VERSION")))
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .build()
            .map_err(|e| Error::Transport(format!("cannot build the HTTP client: {e}")))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                endpoint,
                retry: self.retry,
                timeout: self.timeout,
            }),
        })
    }
}

/// The outcome of one attempt that did not succeed.
struct Failure {
    error: Error,
    retryable: bool,
    retry_after: Option<Duration>,
}

impl Client {
    /// Starts a builder.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The full URL events are posted to.
    #[must_use]
    pub fn endpoint(&self) -> &str {
        self.inner.endpoint.as_str()
    }

    /// Posts a deployment event, retrying as the [`RetryPolicy`] says.
    ///
    /// # Errors
    /// [`Error::Unauthorized`], [`Error::InvalidRequest`] (with the server's message),
    /// [`Error::RateLimited`], [`Error::Server`], [`Error::Timeout`] or [`Error::Transport`]
    /// after the last attempt.
    pub async fn create_deployment(&self, event: &DeploymentEvent) -> Result<ApiResponse> {
        let span = tracing::info_span!(
            "create_deployment",
            repository = event.repository_full_name().unwrap_or(""),
            environment = event.environment().unwrap_or(""),
            correlation_id = event.correlation_id().unwrap_or(""),
            status = event.status().as_str(),
        );
        // Not a secret, only unique: one per logical event, kept across its retries.
        let key = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        let body = event.to_json();
        let http = &self.inner.http;
        let endpoint = &self.inner.endpoint;
        self.send_with_retries(Call::Post, || {
            http.post(endpoint.clone())
                .header(header::CONTENT_TYPE, "application/json")
                .header(IDEMPOTENCY_KEY_HEADER, key.as_str())
                .body(body.clone())
        })
        .instrument(span)
        .await
    }

    /// Lists deployments (`GET {base_url}/api/v1/deployments/`), newest first, filtered by
    /// `query`; retried as [`Client::create_deployment`] is.
    ///
    /// # Errors
    /// As [`Client::create_deployment`]; a filter the server rejects (an unknown verdict, a
    /// limit out of range) is [`Error::InvalidRequest`] with its message; an answer that is not
    /// a page of deployments is [`Error::Transport`].
    pub async fn deployments(&self, query: &DeploymentQuery) -> Result<DeploymentPage> {
        let mut url = self.inner.endpoint.clone();
        {
            let mut pairs = url.query_pairs_mut();
            let text = [
                ("repository", &query.repository),
                ("environment", &query.environment),
                ("verdict", &query.verdict),
                ("cursor", &query.cursor),
            ];
            for (name, value) in text {
                if let Some(v) = value {
                    pairs.append_pair(name, v);
                }
            }
            if let Some(limit) = query.limit {
                pairs.append_pair("limit", &limit.to_string());
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        let span = tracing::info_span!("deployments");
        let http = &self.inner.http;
        let response = self
            .send_with_retries(Call::Read, || http.get(url.clone()))
            .instrument(span)
            .await?;
        let body = response.body.unwrap_or(Value::Null);
        serde_json::from_value(body).map_err(|e| {
            Error::Transport(format!(
                "the API's answer is not a page of deployments: {e}"
            ))
        })
    }

    /// One deployment with its events and session (`GET {base_url}/api/v1/deployments/{id}`):
    /// ticks, findings with their evidence, alerts and their deliveries.
    ///
    /// # Errors
    /// [`Error::Validation`] for an empty `id` (nothing is sent); an unknown id is
    /// [`Error::InvalidRequest`] with status 404; otherwise as [`Client::create_deployment`].
    pub async fn deployment(&self, id: &str) -> Result<Value> {
        let url = self.deployment_url(id, None)?;
        let span = tracing::info_span!("deployment", id);
        let http = &self.inner.http;
        let response = self
            .send_with_retries(Call::Read, || http.get(url.clone()))
            .instrument(span)
            .await?;
        object_answer(response, "a deployment")
    }

    /// The gate (`GET {base_url}/api/v1/deployments/{id}/verdict?wait=…`): waits on the
    /// server up to `wait` (`cased serve` caps one wait at 10 minutes) for the verdict to be
    /// final, then answers `{"id", "final", "result", "state", "status", "verdict", "reason"}`
    /// where `result` is `pass`, `fail`, `inconclusive`, `unmonitored` or `pending` (not final:
    /// call again). Each attempt's timeout is the client's timeout plus `wait`.
    ///
    /// # Errors
    /// As [`Client::deployment`].
    pub async fn verdict(&self, id: &str, wait: Duration) -> Result<Value> {
        let mut url = self.deployment_url(id, Some("verdict"))?;
        if !wait.is_zero() {
            url.query_pairs_mut()
                .append_pair("wait", &format!("{}ms", wait.as_millis()));
        }
        let span = tracing::info_span!("verdict", id);
        let http = &self.inner.http;
        let timeout = self.inner.timeout.saturating_add(wait);
        let response = self
            .send_with_retries(Call::Read, || http.get(url.clone()).timeout(timeout))
            .instrument(span)
            .await?;
        object_answer(response, "a verdict")
    }

    /// `{endpoint}{id}` (and `/{below}`), the id percent-encoded so that one with `/` or `?`
    /// stays one segment; an empty id is refused before anything is sent.
    fn deployment_url(&self, id: &str, below: Option<&str>) -> Result<url::Url> {
        let mut p = Problems::default();
        if id.trim().is_empty() {
            p.add("id", "must not be empty");
        }
        p.finish("deployment id")?;
        let mut url = self.inner.endpoint.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push(id);
            if let Some(below) = below {
                segments.push(below);
            }
        }
        Ok(url)
    }

    async fn send_with_retries(
        &self,
        call: Call,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<ApiResponse> {
        let policy = self.inner.retry;
        let started = Instant::now();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let failure = match Self::attempt(call, request()).await {
                Ok((status, body)) => {
                    tracing::info!(status, attempt, "{}", call.accepted());
                    return Ok(ApiResponse {
                        status,
                        body,
                        attempts: attempt,
                    });
                }
                Err(f) => f,
            };
            let retries_done = attempt - 1;
            if !failure.retryable || retries_done >= policy.max_retries {
                tracing::warn!(attempt, error = %failure.error, "{}", call.failed());
                return Err(failure.error);
            }
            let delay = failure
                .retry_after
                .unwrap_or_else(|| policy.jittered_backoff(retries_done));
            // Checked: a `Retry-After` of 2^64 - 1 seconds must end the retries, not panic.
            if started
                .elapsed()
                .checked_add(delay)
                .is_none_or(|t| t > policy.max_elapsed)
            {
                tracing::warn!(attempt, ?delay, error = %failure.error, "retry budget exhausted");
                let mut error = failure.error;
                if let (Some(wait), Error::Server { message, .. }) =
                    (failure.retry_after, &mut error)
                {
                    message.push_str(&format!(
                        " (Retry-After {}s is beyond the retry budget of {})",
                        wait.as_secs(),
                        crate::duration::format(policy.max_elapsed)
                    ));
                }
                return Err(error);
            }
            tracing::debug!(attempt, ?delay, error = %failure.error, "{}", call.retrying());
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt(
        call: Call,
        request: reqwest::RequestBuilder,
    ) -> std::result::Result<(u16, Option<Value>), Failure> {
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Err(transport_failure(&e)),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(parse_retry_after);
        let success = (200..300).contains(&status);
        let (bytes, complete) = match read_capped(response, MAX_RESPONSE_BYTES).await {
            Ok(read) => read,
            Err(e) => return Err(transport_failure(&e)),
        };
        if success && !complete {
            // Not what the API sends: not read further, not retried and not printed.
            let after = match call {
                Call::Post => " (the event was probably received)",
                Call::Read => "",
            };
            return Err(Failure {
                error: Error::Transport(format!(
                    "the API answered HTTP {status} with a body over {MAX_RESPONSE_BYTES} bytes \
                     (1 MiB); it was not read{after}"
                )),
                retryable: false,
                retry_after: None,
            });
        }
        let text = String::from_utf8_lossy(&bytes);
        let body = parse_body(&text);
        if success {
            return Ok((status, body));
        }
        let message = server_message(status, body.as_ref());
        let (error, retryable) = match status {
            401 | 403 => (Error::Unauthorized { status, message }, false),
            429 => (
                Error::RateLimited {
                    retry_after,
                    message,
                },
                true,
            ),
            408 | 502 | 503 | 504 => (Error::Server { status, message }, true),
            500..=599 => (Error::Server { status, message }, false),
            _ => (Error::InvalidRequest { status, message }, false),
        };
        Err(Failure {
            error,
            retryable,
            retry_after,
        })
    }
}

/// Bytes of an answer's body read at most (1 MiB); a larger successful answer is an error, a
/// larger error answer is judged on its first MiB.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// Reads at most `cap` bytes of the body; `false` when there was more (the rest is not read:
/// dropping the response closes its connection).
/// The JSON object the API answered, or a transport error saying it was not `what`.
fn object_answer(response: ApiResponse, what: &str) -> Result<Value> {
    match response.body {
        Some(v @ Value::Object(_)) => Ok(v),
        other => Err(Error::Transport(format!(
            "the API's answer is not {what}: {}",
            other.unwrap_or(Value::Null)
        ))),
    }
}

async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> std::result::Result<(Vec<u8>, bool), reqwest::Error> {
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if out.len() + chunk.len() > cap {
            out.extend_from_slice(&chunk[..cap - out.len()]);
            return Ok((out, false));
        }
        out.extend_from_slice(&chunk);
    }
    Ok((out, true))
}

fn transport_failure(e: &reqwest::Error) -> Failure {
    // Connect errors never reached the server, so retrying cannot duplicate the event.
    let retryable = e.is_connect();
    let detail = error_chain(e);
    let error = if e.is_timeout() {
        Error::Timeout(detail)
    } else {
        Error::Transport(detail)
    };
    Failure {
        error,
        retryable,
        retry_after: None,
    }
}

/// `e` and its sources, joined, so "connection refused" is not hidden behind "error sending".
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

fn parse_body(text: &str) -> Option<Value> {
    if text.trim().is_empty() {
        None
    } else {
        Some(serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned())))
    }
}

/// The server's explanation: `message`, `error` or `detail` of a JSON object, the whole JSON
/// otherwise, or the status reason when the body is empty.
fn server_message(status: u16, body: Option<&Value>) -> String {
    let text = match body {
        None => reqwest::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("no message")
            .to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(m)) => ["message", "error", "detail"]
            .iter()
            .find_map(|k| m.get(*k).and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| Value::Object(m.clone()).to_string()),
        Some(other) => other.to_string(),
    };
    if text.chars().count() > MAX_SERVER_MESSAGE {
        text.chars()
            .take(MAX_SERVER_MESSAGE)
            .chain(std::iter::once('…'))
            .collect()
    } else {
        text
    }
}

/// `Retry-After` as a delay: delta-seconds or an HTTP-date (a date in the past means now).
#[must_use]
pub fn parse_retry_after(value: &HeaderValue) -> Option<Duration> {
    let s = value.to_str().ok()?.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(s).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy {
            max_retries: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            max_elapsed: Duration::from_secs(60),
        };
        let caps: Vec<u128> = (0..6).map(|r| p.backoff_cap(r).as_millis()).collect();
        assert_eq!(caps, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(p.backoff_cap(u32::MAX), Duration::from_secs(1));
        for r in 0..6 {
            for _ in 0..200 {
                assert!(p.jittered_backoff(r) <= p.backoff_cap(r));
            }
        }
    }

    #[test]
    fn full_jitter_spreads_over_the_whole_range() {
        let p = RetryPolicy::default();
        let samples: Vec<Duration> = (0..2000).map(|_| p.jittered_backoff(2)).collect();
        let cap = p.backoff_cap(2);
        assert!(
            samples.iter().any(|d| *d < cap / 4),
            "no sample in the lowest quarter"
        );
        assert!(
            samples.iter().any(|d| *d > cap * 3 / 4),
            "no sample in the highest quarter"
        );
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(
            parse_retry_after(&HeaderValue::from_static("7")),
            Some(Duration::from_secs(7))
        );
        assert_eq!(parse_retry_after(&HeaderValue::from_static("soon")), None);
        let past = HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT");
        assert_eq!(parse_retry_after(&past), Some(Duration::ZERO));
        let future = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        let d = parse_retry_after(&HeaderValue::from_str(&future).unwrap()).unwrap();
        assert!(
            d > Duration::from_secs(110) && d <= Duration::from_secs(120),
            "{d:?}"
        );
    }

    #[test]
    fn server_message_prefers_message_keys() {
        let body = serde_json::json!({"detail": "bad sha", "code": 3});
        assert_eq!(server_message(422, Some(&body)), "bad sha");
        assert_eq!(server_message(404, None), "Not Found");
        let fields = serde_json::json!({"commit_sha": ["invalid"]});
        assert_eq!(
            server_message(400, Some(&fields)),
            r#"{"commit_sha":["invalid"]}"#
        );
    }
}
