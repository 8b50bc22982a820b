//! Health checks: mirrors `cased_core::check` and `cased_core::checks` — the outcome of a
//! check, custom checks written in JavaScript, and the one-off runner `runCheck`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cased_core::{CheckOutcome as CoreOutcome, CheckStatus, FnCheck};
use napi::bindgen_prelude::{FromNapiValue, JsValue, PromiseRaw, Unknown};
use napi::{Env, Result, ValueType, sys};
use napi_derive::napi;
use serde_json::{Value, json};

use crate::errors::to_js_error;
use crate::js::{JsFn, Json};

/// What one run of a check found, as `runCheck` resolves with it (the core's JSON).
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct CheckOutcome {
    /// `pass`: the service answered as expected; `warn`: it answered, but something is off;
    /// `fail`: it answered wrongly or not at all; `error`: the check itself could not run.
    #[napi(ts_type = "'pass' | 'warn' | 'fail' | 'error'")]
    pub status: String,
    /// How long the check took, in milliseconds.
    #[napi(js_name = "latency_ms")]
    pub latency_ms: f64,
    /// One line for a person.
    pub message: String,
    /// What was expected and what came back, when the check says (absent otherwise).
    #[napi(ts_type = "unknown")]
    pub evidence: Option<Value>,
}

/// What a custom check function returns (or resolves with).
///
/// ```js
/// const monitor = new Monitor(config, {
///   checks: {
///     queue: async () => {
///       const depth = await queueDepth()
///       return depth < 1000
///         ? { status: 'pass', message: `${depth} messages` }
///         : { status: 'fail', message: `${depth} messages`, evidence: { depth, limit: 1000 } }
///     },
///   },
/// })
/// ```
///
/// A check that throws, rejects, or returns anything else (no `status`, an unknown status or
/// key, a `latencyMs` that is not a non-negative number, evidence that is not JSON) gives an
/// `error` outcome whose message says why — the thrown `Error`'s own message when it threw.
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct CheckOutcomeInit {
    /// The result class (see `CheckOutcome.status`).
    #[napi(ts_type = "'pass' | 'warn' | 'fail' | 'error'")]
    pub status: String,
    /// One line for a person (default empty).
    pub message: Option<String>,
    /// What was expected and what came back: any JSON value.
    #[napi(ts_type = "unknown")]
    pub evidence: Option<Value>,
    /// How long the check took, in milliseconds; when absent, the time from the call until the
    /// result (or the Promise's settling) is used.
    pub latency_ms: Option<f64>,
}

/// One check as written in configuration (`type` selects the kind; only `http` so far).
#[napi(js_name = "CheckConfig")]
pub type CheckConfigDecl = HttpCheckConfig;

/// An HTTP check (`"type": "http"`): a request, an expected status, a latency budget. Keys are
/// the wire (snake_case) names, as in `cased.toml`.
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct HttpCheckConfig {
    /// The check's name, unique within a monitor.
    pub name: String,
    /// The kind of check.
    #[napi(js_name = "type", ts_type = "'http'")]
    pub kind: String,
    /// The URL to request: an absolute http(s) URL.
    pub url: String,
    /// The method (default `GET`).
    pub method: Option<String>,
    /// Timeout of the whole request, a duration like `"10s"` or `"250ms"` (default `"10s"`).
    pub timeout: Option<String>,
    /// What the check is about (default `availability`).
    #[napi(ts_type = "'availability' | 'endpoint' | 'database' | 'dependency'")]
    pub category: Option<String>,
    /// What the answer must look like.
    pub expect: Option<HttpExpect>,
}

/// What an HTTP answer must look like.
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct HttpExpect {
    /// Accepted statuses: codes (`200`) or classes (`"2xx"`); default `["2xx"]`.
    #[napi(ts_type = "Array<number | string>")]
    pub status: Option<Vec<Value>>,
    /// Slower than this fails the check: a duration like `"500ms"`.
    #[napi(js_name = "max_latency")]
    pub max_latency: Option<String>,
}

/// Runs one check once, from its configuration (a single check object such as
/// `{ name: 'web', type: 'http', url: 'http://127.0.0.1:8080/health' }`): the one-off runner.
///
/// Every fault of the target (refused, timed out, wrong status...) is an outcome, never a
/// rejection. The Promise rejects only for a configuration the core refuses: `code:
/// 'validation'`, with `fields` named from the check (`url`, `expect.status`, or `config` for
/// the object as a whole).
#[napi(ts_args_type = "config: CheckConfig", ts_return_type = "Promise<CheckOutcome>")]
pub fn run_check<'env>(env: &'env Env, config: Option<Value>) -> Result<PromiseRaw<'env, Json>> {
    let config = config.unwrap_or(Value::Null);
    env.spawn_future_with_callback(
        async move {
            Ok(match check_config(config) {
                Ok(config) => cased_core::run_check(&config).await,
                Err(e) => Err(e),
            })
        },
        |env, outcome| outcome.map(outcome_json).map_err(|e| to_js_error(env, e)),
    )
}

/// Reads one check's configuration with the core's model. The core reads check configurations
/// only inside a monitor's (there is no `CheckConfig::from_value`), so the check is read as
/// `{"checks": [config]}` and the field paths are made relative to the check again.
fn check_config(config: Value) -> cased_core::Result<cased_core::CheckConfig> {
    match cased_core::MonitorConfig::from_value(json!({ "checks": [config] })) {
        Ok(mut monitor) => Ok(monitor.checks.remove(0)),
        Err(cased_core::Error::Validation(mut v)) => {
            for e in &mut v.errors {
                e.field = match e.field.strip_prefix("checks[0]") {
                    Some("") => "config".to_owned(),
                    Some(rest) => rest.trim_start_matches('.').to_owned(),
                    None => std::mem::take(&mut e.field),
                };
            }
            v.subject = "check configuration".to_owned();
            Err(cased_core::Error::Validation(v))
        }
        Err(e) => Err(e),
    }
}

fn outcome_json(outcome: CoreOutcome) -> Json {
    Json(serde_json::to_string(&outcome).expect("check outcomes always serialize"))
}

/// The settled result of a custom check function, read on the JavaScript thread. Reading never
/// fails: a malformed result is an `error` outcome saying what is wrong with it.
#[derive(Debug)]
pub(crate) struct JsOutcome {
    outcome: CoreOutcome,
    /// Whether the function gave `latencyMs` itself.
    timed: bool,
}

/// The keys a custom check's result may have.
const RESULT_KEYS: [&str; 4] = ["status", "message", "evidence", "latencyMs"];

impl FromNapiValue for JsOutcome {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        // SAFETY: `env` and `value` come from napi on the JavaScript thread.
        let unknown = unsafe { Unknown::from_napi_value(env, value)? };
        let kind = unknown.get_type()?;
        if kind != ValueType::Object || unknown.is_array()? {
            let what = crate::client::type_name(&unknown)?;
            return Ok(malformed(&format!(
                "it returned {what}, not an object like {{ status: 'pass' }}"
            )));
        }
        // SAFETY: as above.
        let read = unsafe { Value::from_napi_value(env, value) };
        Ok(match read {
            Ok(Value::Object(result)) => read_result(&result),
            Ok(_) => malformed("it returned an object that is not a plain object"),
            Err(e) => malformed(&format!("its result is not JSON: {}", e.reason)),
        })
    }
}

/// Converts a custom check's result object into the core's outcome.
fn read_result(result: &serde_json::Map<String, Value>) -> JsOutcome {
    if let Some(key) = result.keys().find(|k| !RESULT_KEYS.contains(&k.as_str())) {
        return malformed(&format!(
            "unknown key {key:?} (known keys: {})",
            RESULT_KEYS.join(", ")
        ));
    }
    let status = match result.get("status") {
        None | Some(Value::Null) => {
            return malformed("it has no status ('pass', 'warn', 'fail' or 'error')");
        }
        Some(s) => match serde_json::from_value::<CheckStatus>(s.clone()) {
            Ok(status) => status,
            Err(e) => return malformed(&format!("status: {e}")),
        },
    };
    let message = match result.get("message") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(m)) => m.clone(),
        Some(_) => return malformed("message must be a string"),
    };
    let latency = match result.get("latencyMs") {
        None | Some(Value::Null) => None,
        Some(ms) => match ms
            .as_f64()
            .filter(|ms| *ms >= 0.0)
            .and_then(|ms| Duration::try_from_secs_f64(ms / 1000.0).ok())
        {
            Some(latency) => Some(latency),
            None => return malformed("latencyMs must be a non-negative number of milliseconds"),
        },
    };
    let mut outcome = CoreOutcome::new(status, message);
    if let Some(evidence) = result.get("evidence").filter(|e| !e.is_null()) {
        outcome = outcome.with_evidence(evidence.clone());
    }
    if let Some(latency) = latency {
        outcome = outcome.with_latency(latency);
    }
    JsOutcome {
        outcome,
        timed: latency.is_some(),
    }
}

fn malformed(why: &str) -> JsOutcome {
    JsOutcome {
        outcome: CoreOutcome::error(format!("malformed check result: {why}")),
        timed: false,
    }
}

/// A custom check running the JavaScript function `f`: its result (or the Promise's value)
/// converts to the core's outcome; a throw or a rejection is an `error` outcome with the
/// message. The session's timeout applies as to every check, so a Promise that never settles
/// becomes an `error` outcome too.
pub(crate) fn custom_check(name: String, f: JsFn<(), JsOutcome>) -> FnCheck {
    let f = Arc::new(f);
    FnCheck::new(name, move || {
        let f = Arc::clone(&f);
        async move {
            let started = Instant::now();
            match f.call(()).await {
                Ok(JsOutcome { outcome, timed: true }) => outcome,
                Ok(JsOutcome { outcome, timed: false }) => outcome.with_latency(started.elapsed()),
                Err(message) => CoreOutcome::error(message).with_latency(started.elapsed()),
            }
        }
    })
}
