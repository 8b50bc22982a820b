//! Metrics: mirrors `cased_core::metrics` — samples from Prometheus (`PrometheusSource`) and
//! from the host (`HostSource`), and the stores baselines are kept in (`BaselineStore`), which
//! a monitor is given as `new Monitor(config, { baselineStore })`.

use std::sync::Arc;
use std::time::Duration;

use cased_core::metrics::{self as core, BaselineStore as CoreStore};
use napi::bindgen_prelude::{FromNapiValue, JsValue, Object, PromiseRaw, Unknown};
use napi::{Env, Result, ValueType};
use napi_derive::napi;

use crate::client::{number, option, string, type_name};
use crate::errors::to_js_error;
use crate::js::Json;

/// The option names `new PrometheusSource(url, options)` accepts; any other key is reported.
const OPTION_NAMES: [&str; 2] = ["bearerToken", "timeoutMs"];

/// One observation of one metric (the core's `Sample`), as the sources resolve with it.
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric's name: the one the query was given, or `host_*` for the host.
    pub metric: String,
    /// The series' labels (Prometheus' without `__name__`; `mount` for a disk).
    #[napi(ts_type = "Record<string, string>")]
    pub labels: serde_json::Value,
    /// When, in seconds since the Unix epoch (fractions allowed).
    pub timestamp: f64,
    /// The value (always finite: `NaN` and infinite points are dropped).
    pub value: f64,
}

/// Options of `new PrometheusSource(url, options)`; every key is optional and a key not listed
/// here is rejected by name. `null` counts as absent.
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct PrometheusSourceOptions {
    /// Sent as `Authorization: Bearer <token>` with every query. It lives in the native core
    /// only: never a property of the source, never in errors, logs or `util.inspect`.
    pub bearer_token: Option<String>,
    /// How long one query may take, in milliseconds (default 30000). Must be greater than zero.
    pub timeout_ms: Option<f64>,
}

/// Samples from a Prometheus server's HTTP API (or anything speaking it: Thanos, Mimir,
/// VictoriaMetrics).
///
/// ```js
/// const prometheus = new PrometheusSource('http://prometheus:9090', { bearerToken, timeoutMs: 5000 })
/// const [p99] = await prometheus.query('p99_ms', 'histogram_quantile(0.99, rate(http_seconds_bucket[5m])) * 1000')
/// const series = await prometheus.queryRange('rps', 'rate(http_requests_total[1m])', start, end, 15)
/// ```
///
/// Results are `Sample`s named by the caller, the series' labels kept. Rejections carry the
/// core's codes: `query` (Prometheus answered with an error: `bad_data`, ...), `no_data` (the
/// query matched nothing), `unauthorized` (401, 403), `server` (5xx), `timeout`, `transport`.
#[napi]
#[derive(Debug, Clone)]
pub struct PrometheusSource {
    inner: core::PrometheusSource,
}

#[napi]
impl PrometheusSource {
    /// Builds a source for the server at `url` (e.g. `http://prometheus:9090`; a path prefix
    /// is kept). Throws one `validation` error listing every problem: a URL that is not an
    /// absolute http(s) URL, an unknown option, a value of the wrong kind (under the option's
    /// name), a zero timeout (`timeout`) or a token that cannot be sent as a header
    /// (`authorization`).
    #[napi(
        constructor,
        ts_args_type = "url: string, options?: PrometheusSourceOptions | null"
    )]
    pub fn new(env: &Env, url: String, options: Option<Unknown<'_>>) -> Result<Self> {
        let mut builder = core::PrometheusSource::builder(url);
        let mut problems = Vec::new();
        if let Some(options) = options {
            match options.get_type()? {
                ValueType::Null | ValueType::Undefined => {}
                ValueType::Object if !options.is_array()? => {
                    builder =
                        read_options(&Object::from_unknown(options)?, builder, &mut problems)?;
                }
                _ => problems.push(cased_core::FieldError::new(
                    "options",
                    format!(
                        "must be an object such as {{ bearerToken, timeoutMs }}, got {}",
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
        Err(to_js_error(
            env,
            cased_core::Error::Validation(cased_core::ValidationErrors {
                subject: "Prometheus source".to_owned(),
                errors: problems,
            }),
        ))
    }

    /// An instant query (`/api/v1/query`) at `time` (seconds since the Unix epoch; now when
    /// omitted): each series of the vector (or the scalar) becomes one sample of `metric`.
    /// Rejects with `code: 'no_data'` when the query matches no series.
    #[napi(
        ts_args_type = "metric: string, promql: string, time?: number | null",
        ts_return_type = "Promise<Array<Sample>>"
    )]
    pub fn query<'env>(
        &self,
        env: &'env Env,
        metric: String,
        promql: String,
        time: Option<f64>,
    ) -> Result<PromiseRaw<'env, Json>> {
        let source = self.inner.clone();
        samples(
            env,
            async move { source.query(&metric, &promql, time).await },
        )
    }

    /// A range query (`/api/v1/query_range`) from `start` to `end` (seconds since the Unix
    /// epoch) every `stepSeconds`. Rejects with `code: 'validation'` when `end` is before
    /// `start` or the step is not a positive number, `no_data` when nothing was returned.
    #[napi(ts_return_type = "Promise<Array<Sample>>")]
    pub fn query_range<'env>(
        &self,
        env: &'env Env,
        metric: String,
        promql: String,
        start: f64,
        end: f64,
        step_seconds: f64,
    ) -> Result<PromiseRaw<'env, Json>> {
        let source = self.inner.clone();
        samples(env, async move {
            let step = Duration::try_from_secs_f64(step_seconds).map_err(|_| {
                cased_core::Error::Validation(cased_core::ValidationErrors {
                    subject: "Prometheus range query".to_owned(),
                    errors: vec![cased_core::FieldError::new(
                        "stepSeconds",
                        "must be a positive number of seconds",
                    )],
                })
            })?;
            source.query_range(&metric, &promql, start, end, step).await
        })
    }
}

/// Runs a query on napi's runtime; the samples become the core's JSON, an error is converted
/// on the JavaScript thread.
fn samples<'env, F>(env: &'env Env, fut: F) -> Result<PromiseRaw<'env, Json>>
where
    F: std::future::Future<Output = cased_core::Result<Vec<core::Sample>>> + Send + 'static,
{
    env.spawn_future_with_callback(async move { Ok(fut.await) }, |env, r| {
        r.map(|s| to_json(&s)).map_err(|e| to_js_error(env, e))
    })
}

fn to_json(samples: &[core::Sample]) -> Json {
    Json(serde_json::to_string(samples).expect("samples always serialize"))
}

/// Reads `options` into `builder`, collecting the problems of the binding's own making.
fn read_options(
    options: &Object<'_>,
    mut builder: core::PrometheusSourceBuilder,
    problems: &mut Vec<cased_core::FieldError>,
) -> Result<core::PrometheusSourceBuilder> {
    for key in Object::keys(options)? {
        if !OPTION_NAMES.contains(&key.as_str()) {
            let known = OPTION_NAMES.join(", ");
            problems.push(cased_core::FieldError::new(
                cased_core::limits::field_segment(&key),
                format!("unknown option (known options: {known})"),
            ));
        }
    }
    // The token is read only once its type is checked, so a mistyped one is never echoed.
    if let Some(v) = option(options, "bearerToken")? {
        match string(v)? {
            Ok(token) => builder = builder.bearer_token(token),
            Err(got) => problems.push(cased_core::FieldError::new(
                "bearerToken",
                format!("must be a string, got {got}"),
            )),
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
            Ok(None) => problems.push(cased_core::FieldError::new(
                "timeoutMs",
                "must be a finite, non-negative number of milliseconds",
            )),
            Err(got) => problems.push(cased_core::FieldError::new(
                "timeoutMs",
                format!("must be a number of milliseconds, got {got}"),
            )),
        }
    }
    Ok(builder)
}

/// Samples the machine Node runs on: `host_cpu_percent` (all cores), `host_memory_used_percent`,
/// `host_memory_used_bytes`, and per mounted disk `host_disk_used_percent` (label `mount`).
///
/// CPU usage is measured between two calls: the first `sample()` gives no CPU sample, later
/// ones the usage since the previous call.
///
/// ```js
/// const host = new HostSource()
/// for (const s of host.sample()) session.push(s.metric, s.value)
/// ```
#[napi]
#[derive(Debug)]
pub struct HostSource {
    inner: core::HostSource,
}

#[napi]
impl HostSource {
    /// A source for this host.
    #[napi(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self {
            inner: core::HostSource::new(),
        }
    }

    /// Takes the host's samples now (synchronously; it reads the kernel's counters).
    #[napi(ts_return_type = "Array<Sample>")]
    pub fn sample(&mut self) -> Json {
        to_json(&self.inner.sample())
    }
}

/// Where baselines are kept between sessions: per repository, environment and metric, each
/// deployment's samples and whether it turned out healthy. A monitor given one
/// (`new Monitor(config, { baselineStore })`) compares every `baseline` detector's metric with
/// the last healthy deployments of the same repository and environment, and records each
/// session's samples for the next.
///
/// ```js
/// const baselineStore = BaselineStore.sqlite('.cased/baselines.db')
/// const monitor = new Monitor(
///   { detectors: [{ type: 'baseline', metric: 'web.latency_ms' }] },
///   { checks: { web }, baselineStore },
/// )
/// ```
#[napi]
#[derive(Debug, Clone)]
pub struct BaselineStore {
    inner: Arc<dyn CoreStore>,
    path: Option<String>,
}

#[napi]
impl BaselineStore {
    /// Opens (or creates) the SQLite store at `path` (WAL mode). Throws `code: 'storage'`
    /// when the file cannot be opened or its schema created.
    #[napi(factory)]
    pub fn sqlite(env: &Env, path: String) -> Result<Self> {
        core::SqliteBaselineStore::open(&path)
            .map(|s| Self {
                inner: Arc::new(s),
                path: Some(path),
            })
            .map_err(|e| to_js_error(env, e))
    }

    /// A store in memory, gone with the process (tests, one-off runs).
    #[napi(factory)]
    pub fn in_memory() -> Self {
        Self {
            inner: Arc::new(core::MemoryBaselineStore::new()),
            path: None,
        }
    }

    /// The SQLite file's path, as given; `null` in memory.
    #[napi(getter)]
    pub fn path(&self) -> Option<String> {
        self.path.clone()
    }
}

impl BaselineStore {
    /// The store a monitor uses.
    pub(crate) fn store(&self) -> Arc<dyn CoreStore> {
        Arc::clone(&self.inner)
    }
}
