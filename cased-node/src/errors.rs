//! The one conversion from [`cased_core::Error`] to the JavaScript error cased throws or
//! rejects with (the core's `error` module, seen from Node).

use napi::bindgen_prelude::JsValue;
use napi::{Env, Status};
use napi_derive::napi;

/// One problem with one field: an item of `error.fields`.
#[napi(object)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field's name or dotted path, as the core names it: the wire name for an event
    /// (`commit_sha`, `event_metadata.environment`); for a client, see `ClientOptions`.
    pub field: String,
    /// What is wrong with it, for a person.
    pub message: String,
}

impl From<&cased_core::FieldError> for FieldError {
    fn from(e: &cased_core::FieldError) -> Self {
        Self {
            field: e.field.clone(),
            message: e.message.clone(),
        }
    }
}

/// The properties of every error cased throws or rejects with.
///
/// Each such error is a plain `Error` (`message` lists every problem for a person) with these
/// own properties added, in Node's own style (`err.code` like `ECONNREFUSED`):
///
/// ```ts
/// try {
///   new DeploymentEvent({ deployment_request: '', commit_sha: 'xyz' })
/// } catch (e) {
///   const err = e as Error & CasedErrorInfo
///   if (err.code === 'validation') for (const f of err.fields) console.log(f.field, f.message)
/// }
/// ```
///
/// The field list is a real property rather than JSON inside the message, so callers never parse
/// text; the message stays readable. A wrongly typed argument (a number where a string is
/// declared) is rejected by napi-rs itself, before cased runs, with napi's own `code`
/// (`InvalidArg`, `StringExpected`, ...).
#[napi(object)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CasedErrorInfo {
    /// The stable code of the core's error kind: `validation`, `unauthorized`,
    /// `invalid_request`, `rate_limited`, `server`, `timeout`, `transport`, `storage` (the
    /// history database failed), `closed` (used after closing), `query` (a history query that
    /// cannot be answered, or Prometheus answered with an error) or `no_data` (nothing to
    /// answer with, such as a Prometheus query matching no series). A rejected webhook signature
    /// (`verifyWebhookSignature`) has its own codes: `malformed_timestamp`,
    /// `outside_tolerance`, `malformed_signature`, `mismatch`.
    pub code: String,
    /// Every field problem of a `validation` error, all at once; empty for other codes.
    pub fields: Vec<FieldError>,
    /// The HTTP status the API answered (`unauthorized`, `invalid_request`, `rate_limited`,
    /// `server`); absent otherwise.
    pub status: Option<u32>,
}

impl From<&cased_core::Error> for CasedErrorInfo {
    fn from(e: &cased_core::Error) -> Self {
        Self {
            code: e.kind().code().to_owned(),
            fields: e.field_errors().iter().map(FieldError::from).collect(),
            status: e.status().map(u32::from),
        }
    }
}

/// Converts a core error into the JS `Error` described by [`CasedErrorInfo`].
///
/// The returned `napi::Error` holds a reference to the finished JS object, so napi-rs throws it
/// (synchronous calls) or rejects with it (Promises) as it is, properties included. It must be
/// called on the JavaScript thread, which is why async calls convert their error in the
/// completion callback of `Env::spawn_future_with_callback`.
pub(crate) fn to_js_error(env: &Env, err: cased_core::Error) -> napi::Error {
    let message = err.to_string();
    build(env, &err, &message).unwrap_or_else(|_| {
        // Only when the environment is shutting down: keep the code at least.
        napi::Error::new(
            Status::GenericFailure,
            format!("[{}] {message}", err.kind().code()),
        )
    })
}

fn build(env: &Env, err: &cased_core::Error, message: &str) -> napi::Result<napi::Error> {
    let info = CasedErrorInfo::from(err);
    let mut object = env.create_error(napi::Error::from_reason(message))?;
    object.set("code", info.code)?;
    object.set("fields", info.fields)?;
    if let Some(status) = info.status {
        object.set("status", status)?;
    }
    Ok(napi::Error::from(object.to_unknown()))
}

/// Converts a rejected webhook signature into a JS `Error` with the same shape: `code` is the
/// core's stable code (`malformed_timestamp`, `outside_tolerance`, `malformed_signature`,
/// `mismatch`), `fields` is empty. Called on the JavaScript thread.
pub(crate) fn signature_error(env: &Env, err: cased_core::alert::SignatureError) -> napi::Error {
    let message = format!("webhook signature rejected: {err}");
    let built = (|| -> napi::Result<napi::Error> {
        let mut object = env.create_error(napi::Error::from_reason(message.as_str()))?;
        object.set("code", err.code())?;
        object.set("fields", Vec::<FieldError>::new())?;
        Ok(napi::Error::from(object.to_unknown()))
    })();
    built.unwrap_or_else(|_| {
        napi::Error::new(
            Status::GenericFailure,
            format!("[{}] {message}", err.code()),
        )
    })
}
