//! The deployments API client: mirrors `cased_core::Client`.

use std::time::Duration;

use napi::bindgen_prelude::{FromNapiValue, JsValue, Object, PromiseRaw, Unknown};
use napi::{Env, Result, ValueType};
use napi_derive::napi;
use serde_json::Value;

use crate::errors::to_js_error;
use crate::event::DeploymentEvent;

/// The option names `new Client()` accepts; any other key is reported by name.
const OPTION_NAMES: [&str; 4] = ["apiKey", "baseUrl", "timeoutMs", "maxRetries"];

/// Options of `new Client(options)`; every key is optional, and a key not listed here is
/// rejected by name (a typo is never silently ignored). `null` counts as absent.
///
/// Problems with these values are reported together in one `validation` error: a key that is
/// not an option, or a value of the wrong kind, under the option's own name (`timeoutMs`); a
/// value the core rejects, under the core's name (`api_key`, `base_url`, `timeout`,
/// `max_retries`), as in Rust, Python and the CLI.
#[napi(object)]
#[derive(Debug, Clone, PartialEq)]
pub struct ClientOptions {
    /// The API key, sent as `Authorization: Bearer <key>`. When omitted, the `CASED_API_KEY`
    /// environment variable is read. It never appears in errors, logs or `util.inspect`.
    pub api_key: Option<String>,
    /// The API's base URL (default: the `CASED_BASE_URL` environment variable, then
    /// `https://app.cased.com`); a path prefix is kept. Events are posted to
    /// `<baseUrl>/api/v1/deployments/`.
    pub base_url: Option<String>,
    /// Timeout of one attempt, from connect to the last body byte, in milliseconds
    /// (default 10000). Must be greater than zero.
    pub timeout_ms: Option<f64>,
    /// Retries after the first attempt, on connect errors and HTTP 408, 429, 502, 503 and 504
    /// (default 3, at most 100; 0 never retries).
    pub max_retries: Option<u32>,
}

/// What the API answered to `createDeployment`.
#[napi(object)]
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentResponse {
    /// The HTTP status (2xx).
    pub status: u32,
    /// The body parsed as JSON; a body that is not JSON is kept as a string; absent when the
    /// body was empty.
    pub body: Option<Value>,
    /// How many attempts it took (1 = no retry).
    pub attempts: u32,
}

impl From<cased_core::ApiResponse> for DeploymentResponse {
    fn from(r: cased_core::ApiResponse) -> Self {
        Self {
            status: u32::from(r.status),
            body: r.body,
            attempts: r.attempts,
        }
    }
}

/// A client of the deployments API (`POST <baseUrl>/api/v1/deployments/`).
///
/// Retries connect errors and HTTP 408, 429, 502, 503 and 504 with exponential backoff and full
/// jitter, honouring `Retry-After`; never other 4xx. The API key lives in the native core only:
/// it is not a property of this object and never appears in `util.inspect(client)`.
///
/// ```js
/// const client = new Client({ apiKey: process.env.CASED_API_KEY, timeoutMs: 5000 })
/// const { status, body, attempts } = await client.createDeployment(event)
/// ```
#[napi]
#[derive(Debug, Clone)]
pub struct Client {
    inner: cased_core::Client,
}

#[napi]
impl Client {
    /// Validates the options and builds the client. Throws a `validation` error listing every
    /// bad option (see `ClientOptions`), e.g. a missing API key or a base URL that is not an
    /// absolute http(s) URL.
    #[napi(constructor, ts_args_type = "options?: ClientOptions")]
    pub fn new(env: &Env, options: Option<Unknown<'_>>) -> Result<Self> {
        let mut builder = cased_core::Client::builder();
        let mut problems = Vec::new();
        if let Some(options) = options {
            match options.get_type()? {
                ValueType::Null | ValueType::Undefined => {}
                ValueType::Object if !options.is_array()? => {
                    let options = Object::from_unknown(options)?;
                    builder = read_options(&options, builder, &mut problems)?;
                }
                _ => problems.push(cased_core::FieldError::new(
                    "options",
                    format!(
                        "must be an object such as {{ apiKey, baseUrl }}, got {}",
                        type_name(&options)?
                    ),
                )),
            }
        }
        let built = builder.build();
        if problems.is_empty() {
            return built
                .map(|inner| Self { inner })
                .map_err(|e| to_js_error(env, e));
        }
        if let Err(e) = &built {
            problems.extend(e.field_errors().iter().cloned());
        }
        let error = cased_core::Error::Validation(cased_core::ValidationErrors {
            subject: "client configuration".to_owned(),
            errors: problems,
        });
        Err(to_js_error(env, error))
    }

    /// The full URL events are posted to.
    #[napi(getter)]
    pub fn endpoint(&self) -> String {
        self.inner.endpoint().to_owned()
    }

    /// Posts `event`, retrying as described on the class, and resolves with what the API
    /// answered. Rejects with an error whose `code` is `unauthorized` (401, 403),
    /// `invalid_request` (other 4xx; the server's message is kept), `rate_limited`, `server`,
    /// `timeout` or `transport` (see `CasedErrorInfo`; `status` holds the HTTP status).
    ///
    /// The request runs on cased's own runtime: the Node event loop is never blocked, and a
    /// promise nobody awaits any more settles (or is dropped at exit) without harm.
    // Not a `#[napi] async fn`: an async fn can only reject with an error built off the JS
    // thread from a napi `Status`, which would lose `code`, `fields` and `status`. The
    // completion callback below runs on the JS thread and builds the full error object.
    #[napi(ts_return_type = "Promise<DeploymentResponse>")]
    pub fn create_deployment<'env>(
        &self,
        env: &'env Env,
        event: &DeploymentEvent,
    ) -> Result<PromiseRaw<'env, DeploymentResponse>> {
        let client = self.inner.clone();
        let event = event.inner.clone();
        env.spawn_future_with_callback(
            async move { Ok(client.create_deployment(&event).await) },
            |env, outcome| {
                outcome
                    .map(DeploymentResponse::from)
                    .map_err(|e| to_js_error(env, e))
            },
        )
    }

    /// One page of deployments (`GET <baseUrl>/api/v1/deployments/`), newest first, filtered;
    /// needs a key with the read scope on `cased serve`. Retried as `createDeployment` is.
    /// Rejects with `code` `invalid_request` for a filter the server refuses (`status` 400),
    /// or as `createDeployment` does.
    #[napi(ts_return_type = "Promise<DeploymentPage>")]
    pub fn deployments<'env>(
        &self,
        env: &'env Env,
        query: Option<DeploymentQuery>,
    ) -> Result<PromiseRaw<'env, DeploymentPage>> {
        let client = self.inner.clone();
        let q = query.unwrap_or_default();
        let query = cased_core::DeploymentQuery {
            repository: q.repository,
            environment: q.environment,
            verdict: q.verdict,
            limit: q.limit,
            cursor: q.cursor,
        };
        env.spawn_future_with_callback(
            async move { Ok(client.deployments(&query).await) },
            |env, outcome| {
                outcome
                    .map(DeploymentPage::from)
                    .map_err(|e| to_js_error(env, e))
            },
        )
    }

    /// One deployment (`GET <baseUrl>/api/v1/deployments/<id>`): its event, `events`, and
    /// `session` (record, ticks, findings with evidence, alerts), as the API shapes them.
    /// Rejects with `code` `validation` for an empty id (nothing is sent), `invalid_request`
    /// with `status` 404 for an unknown one, or as `createDeployment` does.
    #[napi(ts_return_type = "Promise<Record<string, any>>")]
    pub fn deployment<'env>(&self, env: &'env Env, id: String) -> Result<PromiseRaw<'env, Value>> {
        let client = self.inner.clone();
        env.spawn_future_with_callback(
            async move { Ok(client.deployment(&id).await) },
            |env, outcome| outcome.map_err(|e| to_js_error(env, e)),
        )
    }
}

/// Filters and paging of `client.deployments()`; every key is optional (`null` counts as
/// absent).
#[napi(object)]
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeploymentQuery {
    /// Only this repository (`owner/name`).
    pub repository: Option<String>,
    /// Only this environment.
    pub environment: Option<String>,
    /// Only this verdict.
    #[napi(ts_type = "'healthy' | 'degraded' | 'unhealthy' | 'inconclusive'")]
    pub verdict: Option<String>,
    /// Page size, 1 to 500 (the server's default is 50).
    pub limit: Option<u32>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

/// One page of `client.deployments()`: the deployments as the API shapes them (snake_case
/// keys, as in the JSON), newest first.
#[napi(object)]
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentPage {
    /// The deployments of this page (each with `id`, `status`, `state`, `verdict`, `event`...).
    pub deployments: Vec<Value>,
    /// Pass it as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

impl From<cased_core::DeploymentPage> for DeploymentPage {
    fn from(p: cased_core::DeploymentPage) -> Self {
        Self {
            deployments: p.deployments,
            next_cursor: p.next_cursor,
        }
    }
}

/// Reads `options` into `builder`, collecting the problems of the binding's own making
/// (unknown keys, values of the wrong kind); the core checks the values themselves.
fn read_options(
    options: &Object<'_>,
    mut builder: cased_core::ClientBuilder,
    problems: &mut Vec<cased_core::FieldError>,
) -> Result<cased_core::ClientBuilder> {
    let mut problem = |field: &str, message: &str| {
        problems.push(cased_core::FieldError::new(field, message));
    };
    for key in Object::keys(options)? {
        if !OPTION_NAMES.contains(&key.as_str()) {
            let known = OPTION_NAMES.join(", ");
            problem(
                &cased_core::limits::field_segment(&key),
                &format!("unknown option (known options: {known})"),
            );
        }
    }
    // Strings are read only once their type is checked, so a mistyped key is never echoed.
    if let Some(v) = option(options, "apiKey")? {
        match string(v)? {
            Ok(key) => builder = builder.api_key(key),
            Err(got) => problem("apiKey", &format!("must be a string, got {got}")),
        }
    }
    if let Some(v) = option(options, "baseUrl")? {
        match string(v)? {
            Ok(url) => builder = builder.base_url(url),
            Err(got) => problem("baseUrl", &format!("must be a string, got {got}")),
        }
    }
    if let Some(v) = option(options, "timeoutMs")? {
        let timeout = number(v)?.map(|ms| {
            Some(ms)
                .filter(|ms| ms.is_finite() && *ms >= 0.0)
                .and_then(|ms| Duration::try_from_secs_f64(ms / 1000.0).ok())
        });
        match timeout {
            Ok(Some(t)) => builder = builder.timeout(t),
            Ok(None) => problem(
                "timeoutMs",
                "must be a finite, non-negative number of milliseconds",
            ),
            Err(got) => problem(
                "timeoutMs",
                &format!("must be a number of milliseconds, got {got}"),
            ),
        }
    }
    if let Some(v) = option(options, "maxRetries")? {
        match number(v)? {
            // Saturates: the core reports any count above its limit.
            Ok(n) if n.fract() == 0.0 && n >= 0.0 => {
                builder = builder.max_retries(n.min(f64::from(u32::MAX)) as u32);
            }
            Ok(_) => problem("maxRetries", "must be a whole number, at least 0"),
            Err(got) => problem("maxRetries", &format!("must be a number, got {got}")),
        }
    }
    Ok(builder)
}

/// The option `name`, unless it is absent, `undefined` or `null`.
pub(crate) fn option<'a>(options: &Object<'a>, name: &str) -> Result<Option<Unknown<'a>>> {
    match options.get::<Unknown<'a>>(name)? {
        Some(v) if v.get_type()? != ValueType::Null => Ok(Some(v)),
        _ => Ok(None),
    }
}

/// What `v` is, for a message (the value itself is never echoed: it may be a key).
pub(crate) fn type_name(v: &Unknown<'_>) -> Result<&'static str> {
    Ok(match v.get_type()? {
        ValueType::Null => "null",
        ValueType::Undefined => "undefined",
        ValueType::Object if v.is_array()? => "an array",
        ValueType::Object => "an object",
        ValueType::String => "a string",
        ValueType::Number => "a number",
        ValueType::Boolean => "a boolean",
        ValueType::BigInt => "a bigint",
        ValueType::Function => "a function",
        ValueType::Symbol => "a symbol",
        _ => "an unsupported value",
    })
}

/// The string `v`, or what it is instead.
pub(crate) fn string(v: Unknown<'_>) -> Result<std::result::Result<String, &'static str>> {
    if v.get_type()? == ValueType::String {
        String::from_unknown(v).map(Ok)
    } else {
        type_name(&v).map(Err)
    }
}

/// The number `v`, or what it is instead.
pub(crate) fn number(v: Unknown<'_>) -> Result<std::result::Result<f64, &'static str>> {
    if v.get_type()? == ValueType::Number {
        f64::from_unknown(v).map(Ok)
    } else {
        type_name(&v).map(Err)
    }
}
