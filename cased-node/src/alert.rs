//! Alerts: mirrors `cased_core::alert` — the in-app alert stream (`InAppStream`), the
//! notification's shape, and the webhook signature functions for receivers of cased's generic
//! webhook. Channels and routes are configured in the monitor's configuration (`alerts`);
//! custom notifiers are JavaScript functions given to `new Monitor(config, { notifiers })`.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cased_core::alert::{InAppEvent, InAppStream};
use napi::bindgen_prelude::{AsyncGenerator, Buffer, Either, ToNapiValue, TypeName};
use napi::tokio::sync::Mutex;
use napi::{Env, Result, ValueType, sys};
use napi_derive::napi;

use crate::errors::signature_error;
use crate::js::Json;
use crate::update::SkippedUpdates;

/// The tolerance `verifyWebhookSignature` uses when none is given: 5 minutes.
const DEFAULT_TOLERANCE_SECS: f64 = 300.0;

/// The bytes of a webhook body as given: a string's UTF-8 or a Buffer's bytes.
fn bytes(body: &Either<String, Buffer>) -> &[u8] {
    match body {
        Either::A(s) => s.as_bytes(),
        Either::B(b) => b,
    }
}

/// A timestamp header as given: its text, or a number of Unix seconds written as an integer.
fn timestamp_text(timestamp: Either<String, i64>) -> String {
    match timestamp {
        Either::A(s) => s,
        Either::B(n) => n.to_string(),
    }
}

/// Checks a webhook cased sent: `timestamp` and `signature` are the `X-Cased-Timestamp` and
/// `X-Cased-Signature` headers, `body` the raw request body as received (not re-serialized
/// JSON). Returns when the timestamp is within `toleranceSecs` (default 300) of `nowSecs`
/// (default: now), either way, and a `v1=` value of the signature matches; the comparison is in
/// constant time.
///
/// Otherwise throws an `Error` whose `code` says why: `malformed_timestamp`,
/// `outside_tolerance` (a replay, or a clock far off), `malformed_signature` or `mismatch`.
/// Receivers should also drop repeated `X-Cased-Notification-Id`s.
///
/// ```js
/// app.post('/cased', express.raw({ type: '*/*' }), (req, res) => {
///   try {
///     verifyWebhookSignature(secret, req.get('x-cased-timestamp'), req.body, req.get('x-cased-signature'))
///   } catch (e) {
///     return res.status(400).send(e.code)
///   }
///   // ...
/// })
/// ```
#[napi(
    ts_args_type = "secret: string, timestamp: string | number, body: string | Uint8Array, signature: string, toleranceSecs?: number | null, nowSecs?: number | null"
)]
pub fn verify_webhook_signature(
    env: &Env,
    secret: String,
    timestamp: Either<String, i64>,
    body: Either<String, Buffer>,
    signature: String,
    tolerance_secs: Option<f64>,
    now_secs: Option<f64>,
) -> Result<()> {
    let tolerance = Duration::try_from_secs_f64(tolerance_secs.unwrap_or(DEFAULT_TOLERANCE_SECS))
        .map_err(|_| {
        napi::Error::new(
            napi::Status::InvalidArg,
            "toleranceSecs must be a non-negative number",
        )
    })?;
    let now = match now_secs {
        None => SystemTime::now(),
        Some(s) => Duration::try_from_secs_f64(s)
            .ok()
            .and_then(|d| UNIX_EPOCH.checked_add(d))
            .ok_or_else(|| {
                napi::Error::new(
                    napi::Status::InvalidArg,
                    "nowSecs must be a non-negative number of Unix seconds",
                )
            })?,
    };
    cased_core::alert::verify_webhook_signature(
        &secret,
        &timestamp_text(timestamp),
        bytes(&body),
        &signature,
        tolerance,
        now,
    )
    .map_err(|e| signature_error(env, e))
}

/// The `X-Cased-Signature` value for `body` sent at `timestamp` (Unix seconds): `v1=` and the
/// lowercase hex HMAC-SHA256 of `"{timestamp}.{body}"` keyed with `secret` — for tests of a
/// receiver, and for relaying.
#[napi(ts_args_type = "secret: string, timestamp: string | number, body: string | Uint8Array")]
pub fn sign_webhook(
    secret: String,
    timestamp: Either<String, i64>,
    body: Either<String, Buffer>,
) -> String {
    cased_core::alert::sign_webhook(&secret, &timestamp_text(timestamp), bytes(&body))
}

/// A listener's view of an in-app alert channel, from `monitor.alerts(channel)`: use it with
/// `for await`. Each item is a `Notification` (the `cased.notification/v1` object a webhook
/// receiver gets), or `{ skipped: n }` when this listener fell behind and missed `n`.
///
/// ```js
/// const alerts = monitor.alerts('dashboard')
/// for await (const n of alerts) {
///   if ('skipped' in n) continue
///   for (const alert of n.alerts) console.log(alert.severity, alert.title, alert.summary)
/// }
/// ```
///
/// Breaking out of the loop stops following.
#[napi(async_iterator)]
#[derive(Debug)]
pub struct AlertStream {
    inner: Arc<Mutex<Option<InAppStream>>>,
    /// Set by `return()` (a `break` out of `for await`).
    closed: Arc<AtomicBool>,
}

impl From<InAppStream> for AlertStream {
    fn from(stream: InAppStream) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Some(stream))),
            closed: Arc::new(AtomicBool::new(false)),
        }
    }
}

#[napi]
impl AsyncGenerator for AlertStream {
    type Yield = AlertItem;
    type Next = ();
    type Return = ();

    fn next(
        &mut self,
        _value: Option<()>,
    ) -> impl Future<Output = Result<Option<AlertItem>>> + Send + 'static {
        let inner = Arc::clone(&self.inner);
        let closed = Arc::clone(&self.closed);
        async move {
            let mut stream = inner.lock().await;
            if closed.load(Ordering::Acquire) {
                *stream = None;
            }
            let Some(listener) = stream.as_mut() else {
                return Ok(None);
            };
            let item = listener.next().await;
            if item.is_none() || closed.load(Ordering::Acquire) {
                *stream = None;
            }
            Ok(item.map(|event| {
                AlertItem(Json(match event {
                    InAppEvent::Notification(n) => n.to_json(),
                    InAppEvent::Skipped(n) => serde_json::json!({ "skipped": n }).to_string(),
                }))
            }))
        }
    }

    fn complete(
        &mut self,
        _value: Option<()>,
    ) -> impl Future<Output = Result<Option<AlertItem>>> + Send + 'static {
        self.closed.store(true, Ordering::Release);
        if let Ok(mut stream) = self.inner.try_lock() {
            *stream = None;
        }
        async { Ok(None) }
    }
}

/// One notification to one channel (`cased.notification/v1`): what in-app listeners and custom
/// notifiers get, and what the webhook channel posts. Optional keys are absent, never `null`.
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// `"cased.notification/v1"`.
    #[napi(ts_type = "'cased.notification/v1'")]
    pub schema: String,
    /// Unique per notification and the same on every retry: receivers drop duplicates by it.
    pub id: String,
    /// `group` (one deployment) or `digest` (groups coalesced under pressure).
    #[napi(ts_type = "'group' | 'digest'")]
    pub kind: String,
    /// The route that produced it.
    pub route: String,
    /// The deployment's correlation id (`"*"` for a digest).
    #[napi(js_name = "group_key")]
    pub group_key: String,
    /// `firing` while any alert in it fires, else `resolved`.
    #[napi(ts_type = "'firing' | 'resolved'")]
    pub status: String,
    /// The highest severity of the firing alerts.
    #[napi(ts_type = "'info' | 'warning' | 'critical' | 'emergency'")]
    pub severity: String,
    /// Sent because a critical alert stayed firing past the escalation delay.
    pub escalated: bool,
    /// The deployment (absent for a digest): `deployment_request`, `repository`, `commit_sha`,
    /// `ref`, `environment`, `external_url`.
    #[napi(ts_type = "Record<string, string>")]
    pub deployment: Option<serde_json::Value>,
    /// The correlation id (absent for a digest).
    #[napi(js_name = "correlation_id")]
    pub correlation_id: Option<String>,
    /// The alerts (`cased.alert/v1`): firing first, most severe first.
    pub alerts: Vec<AlertPayload>,
    /// How many alerts were left out of `alerts`.
    pub omitted: u32,
    /// The dedup keys of the alerts left out.
    #[napi(js_name = "omitted_keys")]
    pub omitted_keys: Vec<String>,
    /// For a digest: the group keys merged into it.
    #[napi(js_name = "coalesced_groups")]
    pub coalesced_groups: Vec<String>,
    /// When it was made (RFC 3339).
    #[napi(js_name = "created_at")]
    pub created_at: String,
}

/// One alert of a notification (`cased.alert/v1`).
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct AlertPayload {
    /// `"cased.alert/v1"`.
    #[napi(ts_type = "'cased.alert/v1'")]
    pub schema: String,
    /// The dedup key: receivers drop repeats by it.
    pub key: String,
    /// Its severity.
    #[napi(ts_type = "'info' | 'warning' | 'critical' | 'emergency'")]
    pub severity: String,
    /// `firing` or `resolved`.
    #[napi(ts_type = "'firing' | 'resolved'")]
    pub state: String,
    /// One line.
    pub title: String,
    /// What happened, for a person.
    pub summary: String,
    /// The session's correlation id.
    #[napi(js_name = "correlation_id")]
    pub correlation_id: String,
    /// The deployment, as in the notification.
    #[napi(ts_type = "Record<string, string>")]
    pub deployment: serde_json::Value,
    /// The findings with their evidence.
    pub findings: Vec<crate::update::Finding>,
    /// Escalated.
    pub escalated: bool,
    /// When it started firing (RFC 3339).
    #[napi(js_name = "started_at")]
    pub started_at: String,
    /// When it last changed (RFC 3339).
    #[napi(js_name = "updated_at")]
    pub updated_at: String,
    /// When it resolved (RFC 3339; only once resolved).
    #[napi(js_name = "resolved_at")]
    pub resolved_at: Option<String>,
}

/// One item of an in-app alert stream: a `Notification`, or `{ skipped: n }` when the listener
/// fell behind.
#[napi(js_name = "AlertItem")]
pub type AlertItemDecl = Either<Notification, SkippedUpdates>;

/// One item of an in-app alert stream, as the core's JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertItem(Json);

impl TypeName for AlertItem {
    fn type_name() -> &'static str {
        "AlertItem"
    }

    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl ToNapiValue for AlertItem {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        // SAFETY: called by napi on the JavaScript thread with its `env`.
        unsafe { Json::to_napi_value(env, val.0) }
    }
}
