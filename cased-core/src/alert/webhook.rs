//! The generic webhook channel: the notification's JSON (`cased.notification/v1`) posted to a
//! URL, signed so that receivers can trust it and reject replays.
//!
//! Every attempt carries:
//! - `X-Cased-Timestamp`: the attempt's Unix time in seconds;
//! - `X-Cased-Signature`: `v1=` and the lowercase hex HMAC-SHA256, keyed with the channel's
//!   secret, of `"{timestamp}.{body}"` (several comma-separated `v1=` values may be accepted by
//!   receivers during a secret rotation);
//! - `X-Cased-Notification-Id`: the notification's id, the same on every retry, so receivers can
//!   drop duplicates (delivery is at least once); each alert in the body has its dedup `key`;
//! - `X-Cased-Event`: `firing` or `resolved`.
//!
//! Receivers check with [`verify_webhook_signature`]. A 2xx answer is success; 408, 429 (with
//! `Retry-After`) and 5xx answers, connection failures and timeouts are retried; other answers
//! are final failures.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{KeyInit, Mac};
use reqwest::header::{self, HeaderName, HeaderValue};

use super::Notification;
use super::notifier::Notifier;
use super::notifier::NotifyError;
use crate::error::{Error, Result};
use crate::secret::Secret;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The header holding the signature (`v1=<hex>`).
pub const SIGNATURE_HEADER: &str = "x-cased-signature";
/// The header holding the signed Unix timestamp, in seconds.
pub const TIMESTAMP_HEADER: &str = "x-cased-timestamp";
/// The header holding the notification's id, the same on every retry.
pub const NOTIFICATION_ID_HEADER: &str = "x-cased-notification-id";
/// The header holding `firing` or `resolved`.
pub const EVENT_HEADER: &str = "x-cased-event";

/// Longest receiver answer kept in an error, in characters.
const MAX_ANSWER: usize = 200;
/// Most bytes of a receiver's answer read.
const MAX_ANSWER_BYTES: usize = 4096;

/// Posts signed notifications to a URL.
#[derive(Clone)]
pub struct WebhookNotifier {
    http: reqwest::Client,
    url: url::Url,
    secret: Secret,
    headers: BTreeMap<String, Secret>,
}

impl fmt::Debug for WebhookNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookNotifier")
            .field("url", &super::config::redact_url(self.url.as_str()))
            .field("secret", &self.secret)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl WebhookNotifier {
    /// A notifier posting to `url`, signing with `secret`.
    ///
    /// # Errors
    /// [`Error::Validation`] when `url` is not an absolute http(s) URL or `secret` is empty.
    pub fn new(url: &str, secret: Secret) -> Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("cased/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Transport(format!("cannot build the HTTP client: {e}")))?;
        Self::with_client(http, url, secret)
    }

    pub(crate) fn with_client(http: reqwest::Client, url: &str, secret: Secret) -> Result<Self> {
        let url = match url::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => u,
            _ => {
                return Err(Error::invalid(
                    "url",
                    format!(
                        "{:?} is not an absolute http(s) URL",
                        super::config::redact_url(url)
                    ),
                ));
            }
        };
        if secret.expose().is_empty() {
            return Err(Error::invalid("secret", "must not be empty"));
        }
        Ok(Self {
            http,
            url,
            secret,
            headers: BTreeMap::new(),
        })
    }

    /// Extra headers sent with every request (their values are treated as secrets).
    #[must_use]
    pub fn headers(mut self, headers: BTreeMap<String, Secret>) -> Self {
        self.headers = headers;
        self
    }
}

#[async_trait::async_trait]
impl Notifier for WebhookNotifier {
    async fn notify(&self, n: &Notification) -> std::result::Result<(), NotifyError> {
        let body = n.to_json();
        let timestamp = unix_seconds(SystemTime::now()).to_string();
        let signature = sign_webhook(self.secret.expose(), &timestamp, body.as_bytes());
        let mut request = self
            .http
            .post(self.url.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, &timestamp)
            .header(SIGNATURE_HEADER, signature)
            .header(NOTIFICATION_ID_HEADER, &n.id)
            .header(EVENT_HEADER, n.status.as_str());
        for (k, v) in &self.headers {
            if let (Ok(name), Ok(mut value)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v.expose()),
            ) {
                value.set_sensitive(true);
                request = request.header(name, value);
            }
        }
        send(request.body(body), "the webhook").await
    }
}

/// Sends a request and classifies the answer. Errors never contain the URL.
pub(crate) async fn send(
    request: reqwest::RequestBuilder,
    who: &str,
) -> std::result::Result<(), NotifyError> {
    let mut response = request.send().await.map_err(|e| transport_error(e, who))?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(crate::client::parse_retry_after);
    // Only the start of the answer is kept: a receiver cannot make us buffer a huge body.
    let mut bytes = Vec::new();
    while bytes.len() < MAX_ANSWER_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_ANSWER_BYTES)]);
    if (200..300).contains(&status) {
        return Ok(());
    }
    let answer: String = text.trim().chars().take(MAX_ANSWER).collect();
    let message = if answer.is_empty() {
        format!("{who} answered HTTP {status}")
    } else {
        format!("{who} answered HTTP {status}: {answer}")
    };
    let error = if matches!(status, 408 | 429) || status >= 500 {
        NotifyError::retryable(message).with_retry_after(retry_after)
    } else {
        NotifyError::permanent(message)
    };
    Err(error.with_status(status))
}

fn transport_error(e: reqwest::Error, who: &str) -> NotifyError {
    let timeout = e.is_timeout();
    let e = e.without_url();
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let text = s.to_string();
        if !detail.contains(&text) {
            detail.push_str(": ");
            detail.push_str(&text);
        }
        source = s.source();
    }
    let what = if timeout {
        "timed out"
    } else {
        "could not be reached"
    };
    NotifyError::retryable(format!("{who} {what}: {detail}"))
}

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn mac(secret: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The signature header value for `body` sent at `timestamp` (Unix seconds, as text):
/// `v1=` and the lowercase hex HMAC-SHA256 of `"{timestamp}.{body}"` keyed with `secret`.
#[must_use]
pub fn sign_webhook(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let bytes = mac(secret, timestamp, body).finalize().into_bytes();
    let mut out = String::with_capacity(3 + bytes.len() * 2);
    out.push_str("v1=");
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Why a webhook signature was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The timestamp header is not a Unix time in seconds.
    #[error("the timestamp is not a Unix time in seconds")]
    MalformedTimestamp,
    /// The timestamp is further from now than the tolerance: a replay, or a clock far off.
    #[error("the timestamp is outside the tolerance (replayed or clock skew)")]
    OutsideTolerance,
    /// The signature header holds no `v1=<64 hex digits>` value.
    #[error("the signature header holds no v1 signature")]
    MalformedSignature,
    /// No signature matches the body, timestamp and secret.
    #[error("the signature does not match")]
    Mismatch,
}

impl SignatureError {
    /// A stable code for the bindings (`"malformed_timestamp"`, `"outside_tolerance"`,
    /// `"malformed_signature"`, `"mismatch"`).
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Self::MalformedTimestamp => "malformed_timestamp",
            Self::OutsideTolerance => "outside_tolerance",
            Self::MalformedSignature => "malformed_signature",
            Self::Mismatch => "mismatch",
        }
    }
}

/// Checks a received webhook: `timestamp` and `signature` are the `X-Cased-Timestamp` and
/// `X-Cased-Signature` headers, `body` the raw request body (not re-serialized JSON). Accepts
/// when the timestamp is within `tolerance` of `now` (either way) and any `v1=` value of the
/// signature header matches; the comparison is in constant time. A tolerance of 5 minutes is
/// usual; receivers should also drop repeated `X-Cased-Notification-Id`s.
///
/// ```
/// use cased_core::alert::{sign_webhook, verify_webhook_signature, SignatureError};
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// let sig = sign_webhook("s3cret", "1700000000", b"{}");
/// assert!(verify_webhook_signature("s3cret", "1700000000", b"{}", &sig, Duration::from_secs(300), now).is_ok());
/// let later = now + Duration::from_secs(301);
/// assert_eq!(verify_webhook_signature("s3cret", "1700000000", b"{}", &sig, Duration::from_secs(300), later),
///            Err(SignatureError::OutsideTolerance));
/// ```
///
/// # Errors
/// The [`SignatureError`] saying why the webhook must be rejected.
pub fn verify_webhook_signature(
    secret: &str,
    timestamp: &str,
    body: &[u8],
    signature: &str,
    tolerance: Duration,
    now: SystemTime,
) -> std::result::Result<(), SignatureError> {
    let ts: u64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::MalformedTimestamp)?;
    let now = unix_seconds(now);
    if now.abs_diff(ts) > tolerance.as_secs() {
        return Err(SignatureError::OutsideTolerance);
    }
    let candidates: Vec<Vec<u8>> = signature
        .split(',')
        .filter_map(|part| part.trim().strip_prefix("v1="))
        .filter_map(decode_hex)
        .filter(|b| b.len() == 32)
        .collect();
    if candidates.is_empty() {
        return Err(SignatureError::MalformedSignature);
    }
    let expected = mac(secret, timestamp.trim(), body);
    if candidates
        .iter()
        .any(|c| expected.clone().verify_slice(c).is_ok())
    {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test";

    #[test]
    fn the_signature_is_hmac_sha256_over_timestamp_dot_body() {
        // Reference value from Python: hmac.new(b"whsec_test", b"1700000000.{}", hashlib.sha256).hexdigest()
        assert_eq!(
            sign_webhook(SECRET, "1700000000", b"{}"),
            "v1=35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91"
        );
    }

    #[test]
    fn verification_rejects_replays_tampering_and_garbage() {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let tol = Duration::from_secs(300);
        let body = br#"{"schema":"cased.notification/v1"}"#;
        let sig = sign_webhook(SECRET, "1700000000", body);
        assert_eq!(
            verify_webhook_signature(SECRET, "1700000000", body, &sig, tol, t),
            Ok(())
        );
        assert_eq!(
            verify_webhook_signature(
                SECRET,
                "1700000000",
                body,
                &sig,
                tol,
                t - Duration::from_secs(300)
            ),
            Ok(())
        );
        assert_eq!(
            verify_webhook_signature(
                SECRET,
                "1700000000",
                body,
                &sig,
                tol,
                t + Duration::from_secs(301)
            ),
            Err(SignatureError::OutsideTolerance)
        );
        assert_eq!(
            verify_webhook_signature(SECRET, "1700000000", b"{\"schema\":1}", &sig, tol, t),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_webhook_signature("other", "1700000000", body, &sig, tol, t),
            Err(SignatureError::Mismatch)
        );
        // The timestamp is signed: moving it breaks the signature.
        assert_eq!(
            verify_webhook_signature(SECRET, "1700000001", body, &sig, tol, t),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_webhook_signature(SECRET, "soon", body, &sig, tol, t),
            Err(SignatureError::MalformedTimestamp)
        );
        assert_eq!(
            verify_webhook_signature(SECRET, "1700000000", body, "sha256=ab", tol, t),
            Err(SignatureError::MalformedSignature)
        );
        assert_eq!(
            verify_webhook_signature(SECRET, "1700000000", body, "v1=zz", tol, t),
            Err(SignatureError::MalformedSignature)
        );
        // Rotation: any listed signature may match.
        let old = sign_webhook("old-secret", "1700000000", body);
        assert_eq!(
            verify_webhook_signature(SECRET, "1700000000", body, &format!("{old}, {sig}"), tol, t),
            Ok(())
        );
    }

    #[test]
    fn debug_never_shows_the_secret_or_the_path() {
        let mut h = BTreeMap::new();
        h.insert("authorization".to_owned(), Secret::new("Bearer hdr-token"));
        let n = WebhookNotifier::new(
            "https://hooks.example/in/p4th-token?k=q-token",
            Secret::new("whsec_zzz"),
        )
        .unwrap()
        .headers(h);
        let d = format!("{n:?}");
        for s in ["whsec_zzz", "hdr-token", "p4th-token", "q-token"] {
            assert!(!d.contains(s), "{s} in {d}");
        }
        let e = WebhookNotifier::new("ftp://hooks.example/in/p4th-token", Secret::new("x"))
            .unwrap_err();
        assert!(!e.to_string().contains("p4th-token"), "{e}");
    }
}
