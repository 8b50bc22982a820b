//! Health checks: mirrors `cased_core::check` and `cased_core::checks` — the outcome of a
//! check, custom checks written in JavaScript, and the one-off runner `runCheck`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cased_core::{CheckOutcome as CoreOutcome, CheckStatus, FnCheck};
use napi::bindgen_prelude::{Either6, FromNapiValue, JsValue, PromiseRaw, Unknown};
use napi::{Env, Result, ValueType, sys};
use napi_derive::napi;
use serde_json::Value;

use crate::errors::to_js_error;
use crate::js::{JsFn, Json, JsonArg};

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

/// One check as written in configuration; `type` selects the kind. Keys are the wire
/// (snake_case) names, as in `cased.toml`; unknown keys are rejected.
#[napi(js_name = "CheckConfig")]
pub type CheckConfigDecl = Either6<
    HttpCheckConfig,
    TcpCheckConfig,
    DnsCheckConfig,
    PostgresCheckConfig,
    RedisCheckConfig,
    CommandCheckConfig,
>;

/// An HTTP check (`"type": "http"`): a request, an expected answer, a latency budget.
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
    /// Request headers (their values never appear in logs).
    pub headers: Option<HashMap<String, String>>,
    /// Request body.
    pub body: Option<String>,
    /// Timeout of the whole check (connect, headers and body), a duration like `"10s"` or
    /// `"250ms"` (default `"10s"`).
    pub timeout: Option<String>,
    /// What the check is about. Default: `endpoint` when `expect` looks at the content (body,
    /// JSON or headers), `availability` otherwise.
    #[napi(ts_type = "'availability' | 'endpoint' | 'database' | 'dependency'")]
    pub category: Option<String>,
    /// What the answer must look like.
    pub expect: Option<HttpExpect>,
    /// Redirects followed (default 10; `0`: none, a 3xx is then the answer). A loop, or going
    /// past the limit, fails the check.
    #[napi(js_name = "max_redirects")]
    pub max_redirects: Option<u32>,
    /// Body bytes read at most (default 1 MiB); the rest is not read.
    #[napi(js_name = "max_body_bytes")]
    pub max_body_bytes: Option<f64>,
    /// Accept any certificate (self-signed, expired, wrong host). Off by default.
    #[napi(js_name = "insecure_skip_verify")]
    pub insecure_skip_verify: Option<bool>,
    /// `fresh` (default: a new connection every run, what a new user sees) or `pooled`
    /// (connections kept between runs: cheaper).
    #[napi(ts_type = "'fresh' | 'pooled'")]
    pub connection: Option<String>,
    /// More query parameter and header names whose values are secrets, beyond the built-in
    /// list (`token`, `api_key`, `signature`...): replaced by `[redacted]` wherever the URL is
    /// shown (messages, evidence, history, reports).
    pub redact: Option<Vec<String>>,
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
    /// Slower than this makes a passing check a `warn`.
    #[napi(js_name = "warn_latency")]
    pub warn_latency: Option<String>,
    /// The body (as read, up to the cap) must contain this text.
    #[napi(js_name = "body_contains")]
    pub body_contains: Option<String>,
    /// The body must match this regular expression (Rust `regex` syntax).
    #[napi(js_name = "body_regex")]
    pub body_regex: Option<String>,
    /// Expectations on the JSON body.
    pub json: Option<Vec<JsonExpect>>,
    /// Response headers that must be present with exactly this value (names are
    /// case-insensitive).
    pub headers: Option<HashMap<String, String>>,
}

/// One expectation on the JSON body: the value at `pointer` (RFC 6901, e.g.
/// `/checks/0/status`) `equals` a JSON value, `exists` (`true`) or is absent (`false`), or is a
/// string matching `regex`. Exactly one of the three is given.
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct JsonExpect {
    /// A JSON pointer: `""` (the whole document) or `/a/b/0`.
    pub pointer: String,
    /// The value must equal this (`null` included).
    #[napi(ts_type = "unknown")]
    pub equals: Option<Value>,
    /// The value must exist (`true`) or be absent (`false`).
    pub exists: Option<bool>,
    /// The value must match this regular expression.
    pub regex: Option<String>,
}

/// A TCP check (`"type": "tcp"`): a connection, optionally sending and expecting text.
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct TcpCheckConfig {
    /// The check's name, unique within a monitor.
    pub name: String,
    /// The kind of check.
    #[napi(js_name = "type", ts_type = "'tcp'")]
    pub kind: String,
    /// Host name or IP address.
    pub host: String,
    /// Port.
    pub port: u32,
    /// Text written after connecting.
    pub send: Option<String>,
    /// Text that must appear in what the server sends.
    pub expect: Option<String>,
    /// Timeout of the whole check (default `"5s"`).
    pub timeout: Option<String>,
    /// What the check is about (default `availability`).
    #[napi(ts_type = "'availability' | 'endpoint' | 'database' | 'dependency'")]
    pub category: Option<String>,
}

/// A DNS check (`"type": "dns"`): a name resolution.
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct DnsCheckConfig {
    /// The check's name, unique within a monitor.
    pub name: String,
    /// The kind of check.
    #[napi(js_name = "type", ts_type = "'dns'")]
    pub kind: String,
    /// The host name to resolve.
    pub host: String,
    /// IP addresses that must all be in the answer (empty: any answer passes).
    pub addresses: Option<Vec<String>>,
    /// Timeout (default `"5s"`).
    pub timeout: Option<String>,
    /// What the check is about (default `dependency`).
    #[napi(ts_type = "'availability' | 'endpoint' | 'database' | 'dependency'")]
    pub category: Option<String>,
}

/// A Postgres check (`"type": "postgres"`): connect and `SELECT 1`.
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct PostgresCheckConfig {
    /// The check's name, unique within a monitor.
    pub name: String,
    /// The kind of check.
    #[napi(js_name = "type", ts_type = "'postgres'")]
    pub kind: String,
    /// `postgres://user@host[:port]/database`, without a password.
    pub url: String,
    /// The password (never serialized or logged).
    pub password: Option<String>,
    /// TLS mode: `disable` (default), `prefer` (TLS when offered) or `require`.
    #[napi(ts_type = "'disable' | 'prefer' | 'require'")]
    pub tls: Option<String>,
    /// Timeout of the whole check (default `"5s"`).
    pub timeout: Option<String>,
    /// What the check is about (default `database`).
    #[napi(ts_type = "'availability' | 'endpoint' | 'database' | 'dependency'")]
    pub category: Option<String>,
}

/// A Redis check (`"type": "redis"`): `PING` over the Redis protocol.
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct RedisCheckConfig {
    /// The check's name, unique within a monitor.
    pub name: String,
    /// The kind of check.
    #[napi(js_name = "type", ts_type = "'redis'")]
    pub kind: String,
    /// `redis://[user@]host[:port]` (port 6379 by default), without a password.
    pub url: String,
    /// The password sent with `AUTH` (never serialized or logged).
    pub password: Option<String>,
    /// Timeout of the whole check (default `"5s"`).
    pub timeout: Option<String>,
    /// What the check is about (default `dependency`).
    #[napi(ts_type = "'availability' | 'endpoint' | 'database' | 'dependency'")]
    pub category: Option<String>,
}

/// A command check (`"type": "command"`): a program run with arguments, never through a shell
/// unless `shell` is set.
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct CommandCheckConfig {
    /// The check's name, unique within a monitor.
    pub name: String,
    /// The kind of check.
    #[napi(js_name = "type", ts_type = "'command'")]
    pub kind: String,
    /// The program (looked up in `PATH` unless it contains a `/`), or with `shell` the script.
    pub program: String,
    /// Its arguments.
    pub args: Option<Vec<String>>,
    /// Run `program` as a `/bin/sh -c` script (default false).
    pub shell: Option<bool>,
    /// Working directory (default: the current one).
    pub cwd: Option<String>,
    /// Timeout; the program is killed when it runs longer (default `"30s"`).
    pub timeout: Option<String>,
    /// What the check is about (default `availability`).
    #[napi(ts_type = "'availability' | 'endpoint' | 'database' | 'dependency'")]
    pub category: Option<String>,
    /// What the program must do.
    pub expect: Option<CommandExpect>,
}

/// What a command check's program must do.
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct CommandExpect {
    /// The exit code (default 0).
    #[napi(js_name = "exit_code")]
    pub exit_code: Option<i32>,
    /// Text stdout must contain.
    #[napi(js_name = "stdout_contains")]
    pub stdout_contains: Option<String>,
    /// A regular expression stdout must match.
    #[napi(js_name = "stdout_regex")]
    pub stdout_regex: Option<String>,
    /// Text stderr must contain.
    #[napi(js_name = "stderr_contains")]
    pub stderr_contains: Option<String>,
    /// A regular expression stderr must match.
    #[napi(js_name = "stderr_regex")]
    pub stderr_regex: Option<String>,
}

/// Runs one check once, from its configuration (a single check object such as
/// `{ name: 'web', type: 'http', url: 'http://127.0.0.1:8080/health' }` or
/// `{ name: 'db', type: 'tcp', host: '127.0.0.1', port: 5432 }`): the one-off runner.
///
/// Every fault of the target (refused, timed out, wrong status, non-zero exit...) is an outcome,
/// never a rejection. The Promise rejects only for a configuration the core refuses: `code:
/// 'validation'`, with `fields` named by the core from the check (`url`, `expect.status`, or
/// `check` for the object as a whole).
#[napi(
    ts_args_type = "config: CheckConfig",
    ts_return_type = "Promise<CheckOutcome>"
)]
pub fn run_check<'env>(env: &'env Env, config: Option<JsonArg>) -> Result<PromiseRaw<'env, Json>> {
    let config = config.map_or(Value::Null, |j| j.0);
    env.spawn_future_with_callback(
        async move {
            Ok(match cased_core::CheckConfig::from_value(config) {
                Ok(config) => cased_core::run_check(&config).await,
                Err(e) => Err(e),
            })
        },
        |env, outcome| outcome.map(outcome_json).map_err(|e| to_js_error(env, e)),
    )
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
                Ok(JsOutcome {
                    outcome,
                    timed: true,
                }) => outcome,
                Ok(JsOutcome {
                    outcome,
                    timed: false,
                }) => outcome.with_latency(started.elapsed()),
                Err(message) => CoreOutcome::error(message).with_latency(started.elapsed()),
            }
        }
    })
}
