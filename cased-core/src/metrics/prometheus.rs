//! [`PrometheusSource`]: samples from Prometheus' HTTP API (`/api/v1/query`,
//! `/api/v1/query_range`), and the `prometheus` source a session polls
//! ([`PrometheusSourceConfig`]):
//!
//! ```json
//! {"type": "prometheus", "name": "prom", "url": "http://prometheus:9090", "step": "10s",
//!  "headers": {"Authorization": "Bearer ..."},
//!  "queries": {"p95_ms": "1000 * histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{job=\"{{repository}}\", track=\"{{track}}\"}[1m])))"},
//!  "counts": {"http": {"errors": "sum(increase(http_requests_total{code=~\"5..\", track=\"{{track}}\"}[10s]))",
//!                      "requests": "sum(increase(http_requests_total{track=\"{{track}}\"}[10s]))"}},
//!  "control": {"track": "stable"}}
//! ```
//!
//! **Polls** are range queries on a grid of `step` (points at multiples of `step` since the
//! epoch): the first poll returns the last point at or before `now - lag`, each later poll
//! every point after the previous poll's last one, so no point is returned twice (at most
//! 10,000 points per series per poll). **Lookback** is the same queries over the window before
//! now. **Counts** pair the `errors` and `requests` answers by time (and by labels when they
//! return several series), rounded to whole numbers, errors at most requests; an `errors`
//! query that returns nothing (no error series yet) counts 0 errors.
//!
//! **Templates**: `{{repository}}`, `{{environment}}`, `{{commit_sha}}`, `{{version}}`,
//! `{{metadata.KEY}}`, `{{track}}` and the keys of `canary` / `control`. Values are inserted
//! **verbatim**: inside a PromQL string (`"..."`) a value holding `"` or `\` would change the
//! query, so only use variables whose values are plain names (repositories, environments,
//! versions, SHAs are). An unknown variable is a configuration error; a known one without a
//! value for the deployment (e.g. `{{commit_sha}}` of an event without one) fails the poll,
//! naming it. **Control**: `control` maps variables to the stable track's values (e.g.
//! `{"track": "stable"}`); the same queries rendered with them fill `control_samples` and
//! `control_counts`. The canary side's values come from `canary` (`track` defaults to
//! `"canary"`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Counts;
use super::source::{
    BUILTIN_VARS, CountsSample, PollContext, Polled, Source, Template, check_headers, check_url,
    field, header_map, read_body, request_error, secret_map,
};
use super::{Labels, Sample};
use crate::duration;
use crate::error::{Error, Problems, Result, ValidationErrors};
use crate::secret::Secret;

/// Reads samples from a Prometheus server (or anything speaking its API: Thanos, Mimir,
/// VictoriaMetrics). Cheap to clone.
///
/// Results come back as [`Sample`]s named by the caller, the series' labels kept (without
/// `__name__`). Points whose value is `NaN` or infinite are dropped. An API error is
/// [`Error::Query`] with Prometheus' `errorType` and message; a query that matches nothing is
/// [`Error::NoData`]; 401/403 are [`Error::Unauthorized`], 5xx [`Error::Server`].
#[derive(Clone)]
pub struct PrometheusSource {
    http: reqwest::Client,
    base: url::Url,
    authorization: Option<Secret>,
    header_names: Vec<String>,
    max_bytes: u64,
}

impl fmt::Debug for PrometheusSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrometheusSource")
            .field("base", &self.base.as_str())
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "[redacted]"),
            )
            .field("headers", &self.header_names)
            .finish()
    }
}

/// Configures a [`PrometheusSource`].
#[must_use]
#[derive(Debug)]
pub struct PrometheusSourceBuilder {
    url: String,
    authorization: Option<Secret>,
    headers: BTreeMap<String, Secret>,
    timeout: Duration,
    max_bytes: u64,
}

impl PrometheusSourceBuilder {
    /// Sends `Authorization: <value>` (e.g. `"Basic dXNlcjpwYXNz"`) with every query.
    pub fn authorization(mut self, value: impl Into<Secret>) -> Self {
        self.authorization = Some(value.into());
        self
    }

    /// Sends `Authorization: Bearer <token>`.
    pub fn bearer_token(mut self, token: impl Into<Secret>) -> Self {
        let t: Secret = token.into();
        self.authorization = Some(Secret::new(format!("Bearer {}", t.expose())));
        self
    }

    /// Sends the header `name: value` with every query (e.g. `X-Scope-OrgID` for Mimir); the
    /// value is kept secret.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Secret>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// How long one query may take, answer included (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest answer read (default 32 MiB); a larger one is an error.
    pub fn max_bytes(mut self, max: u64) -> Self {
        self.max_bytes = max;
        self
    }

    /// Builds the source.
    ///
    /// # Errors
    /// [`Error::Validation`] when the URL is not an absolute http(s) URL, the timeout or
    /// `max_bytes` is 0, or a header cannot be sent.
    pub fn build(self) -> Result<PrometheusSource> {
        let mut base = url::Url::parse(&self.url)
            .map_err(|e| Error::invalid("url", format!("not a URL: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(Error::invalid("url", "must be an http or https URL"));
        }
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        if let Some(m) = crate::limits::timeout_problem(self.timeout) {
            return Err(Error::invalid("timeout", m));
        }
        if self.max_bytes == 0 {
            return Err(Error::invalid("max_bytes", "must be more than 0"));
        }
        if let Some(a) = &self.authorization
            && reqwest::header::HeaderValue::from_str(a.expose()).is_err()
        {
            return Err(Error::invalid(
                "authorization",
                "is not a valid header value",
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .default_headers(header_map(&self.headers)?)
            .build()
            .map_err(|e| Error::invalid("client", e.to_string()))?;
        let header_names = self.headers.keys().cloned().collect();
        Ok(PrometheusSource {
            http,
            base,
            authorization: self.authorization,
            header_names,
            max_bytes: self.max_bytes,
        })
    }
}

impl PrometheusSource {
    /// A builder for the server at `url` (e.g. `http://prometheus:9090`).
    pub fn builder(url: impl Into<String>) -> PrometheusSourceBuilder {
        PrometheusSourceBuilder {
            url: url.into(),
            authorization: None,
            headers: BTreeMap::new(),
            timeout: Duration::from_secs(30),
            max_bytes: 32 << 20,
        }
    }

    /// An instant query (`/api/v1/query`) at `time` (seconds since the epoch; now when `None`).
    /// Each series of the vector (or the scalar) becomes one sample of `metric`.
    ///
    /// # Errors
    /// See the type's docs.
    pub async fn query(
        &self,
        metric: &str,
        promql: &str,
        time: Option<f64>,
    ) -> Result<Vec<Sample>> {
        let mut params = vec![("query", promql.to_owned())];
        if let Some(t) = time {
            params.push(("time", fmt_ts(t)));
        }
        let data = self.get("api/v1/query", &params).await?;
        let samples = parse_result(metric, &data)?;
        if samples.is_empty() {
            return Err(Error::NoData(format!(
                "the query {promql:?} matched no series"
            )));
        }
        Ok(samples)
    }

    /// A range query (`/api/v1/query_range`) from `start` to `end` (seconds since the epoch)
    /// every `step`.
    ///
    /// # Errors
    /// [`Error::Validation`] when `end < start` or `step` is 0; otherwise see the type's docs.
    pub async fn query_range(
        &self,
        metric: &str,
        promql: &str,
        start: f64,
        end: f64,
        step: Duration,
    ) -> Result<Vec<Sample>> {
        let samples = self
            .query_range_all(metric, promql, start, end, step)
            .await?;
        if samples.is_empty() {
            return Err(Error::NoData(format!(
                "the query {promql:?} returned no points between {} and {}",
                fmt_ts(start),
                fmt_ts(end)
            )));
        }
        Ok(samples)
    }

    /// As [`query_range`](Self::query_range), an empty answer being no error.
    pub(crate) async fn query_range_all(
        &self,
        metric: &str,
        promql: &str,
        start: f64,
        end: f64,
        step: Duration,
    ) -> Result<Vec<Sample>> {
        if !(start.is_finite() && end.is_finite() && end >= start) {
            return Err(Error::invalid("end", "must be a time at or after `start`"));
        }
        if step.is_zero() {
            return Err(Error::invalid("step", "must be more than 0"));
        }
        let params = [
            ("query", promql.to_owned()),
            ("start", fmt_ts(start)),
            ("end", fmt_ts(end)),
            ("step", format!("{}", step.as_secs_f64())),
        ];
        let data = self.get("api/v1/query_range", &params).await?;
        parse_result(metric, &data)
    }

    async fn get(&self, path: &str, params: &[(&str, String)]) -> Result<Value> {
        let mut url = self
            .base
            .join(path)
            .map_err(|e| Error::invalid("url", e.to_string()))?;
        url.query_pairs_mut()
            .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
        let mut req = self.http.get(url);
        if let Some(a) = &self.authorization {
            let mut v = reqwest::header::HeaderValue::from_str(a.expose())
                .map_err(|_| Error::invalid("authorization", "is not a valid header value"))?;
            v.set_sensitive(true);
            req = req.header(reqwest::header::AUTHORIZATION, v);
        }
        let what = format!("Prometheus at {}", self.base);
        let resp = req.send().await.map_err(|e| request_error(&e, &what))?;
        let status = resp.status().as_u16();
        let body = read_body(resp, self.max_bytes, &what).await?;
        answer(status, &body)
    }
}

/// What an HTTP answer of the query API says: its `data` on success, else the error it
/// carries (by status and by Prometheus's own `errorType`). Never panics, whatever the bytes.
pub(crate) fn answer(status: u16, body: &[u8]) -> Result<Value> {
    let text = String::from_utf8_lossy(body);
    let body: Option<Value> = serde_json::from_str(&text).ok();
    let api_error = body.as_ref().filter(|b| b["status"] == "error").map(|b| {
        (
            b["errorType"].as_str().unwrap_or("error").to_owned(),
            b["error"].as_str().unwrap_or("").to_owned(),
        )
    });
    match status {
        401 | 403 => Err(Error::Unauthorized {
            status,
            message: api_error.map_or_else(|| snippet(&text), |e| e.1),
        }),
        _ if api_error.is_some() => {
            let (error_type, message) = api_error.unwrap_or_default();
            Err(Error::Query {
                status,
                error_type,
                message,
            })
        }
        500..=599 => Err(Error::Server {
            status,
            message: snippet(&text),
        }),
        200 => match body {
            Some(mut b) if b["status"] == "success" => Ok(b["data"].take()),
            _ => Err(Error::Query {
                status,
                error_type: "bad_response".into(),
                message: format!("not a Prometheus answer: {}", snippet(&text)),
            }),
        },
        _ => Err(Error::InvalidRequest {
            status,
            message: snippet(&text),
        }),
    }
}

fn snippet(text: &str) -> String {
    let t: String = text.chars().take(200).collect();
    if t.is_empty() {
        "(empty body)".into()
    } else {
        t
    }
}

fn fmt_ts(t: f64) -> String {
    format!("{t:.3}")
}

fn point(metric: &str, labels: &Labels, p: &Value) -> Result<Option<Sample>> {
    let bad = || Error::Query {
        status: 200,
        error_type: "bad_response".into(),
        message: format!("malformed point {p}"),
    };
    let ts = p.get(0).and_then(Value::as_f64).ok_or_else(bad)?;
    let v: f64 = p
        .get(1)
        .and_then(Value::as_str)
        .ok_or_else(bad)?
        .parse()
        .map_err(|_| bad())?;
    Ok(v.is_finite().then(|| Sample {
        metric: metric.to_owned(),
        labels: labels.clone(),
        timestamp: ts,
        value: v,
    }))
}

fn labels_of(series: &Value) -> Labels {
    series["metric"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| *k != "__name__")
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn parse_result(metric: &str, data: &Value) -> Result<Vec<Sample>> {
    let mut out = Vec::new();
    match data["resultType"].as_str() {
        Some("vector") => {
            for s in data["result"].as_array().into_iter().flatten() {
                out.extend(point(metric, &labels_of(s), &s["value"])?);
            }
        }
        Some("matrix") => {
            for s in data["result"].as_array().into_iter().flatten() {
                let labels = labels_of(s);
                for p in s["values"].as_array().into_iter().flatten() {
                    out.extend(point(metric, &labels, p)?);
                }
            }
        }
        Some("scalar") => out.extend(point(metric, &Labels::new(), &data["result"])?),
        other => {
            return Err(Error::Query {
                status: 200,
                error_type: "unsupported".into(),
                message: format!("result type {} is not numeric", other.unwrap_or("(none)")),
            });
        }
    }
    Ok(out)
}

/// The `prometheus` source's configuration (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusSourceConfig {
    /// Prefix of the metrics (default `prometheus`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Own cadence (default: every session tick).
    #[serde(
        default,
        with = "duration::human_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub every: Option<Duration>,
    /// The server, e.g. `http://prometheus:9090` (a path prefix is kept).
    pub url: String,
    /// Headers sent with each query (`Authorization`, `X-Scope-OrgID`); the values are secrets
    /// (never shown, serialized as `[redacted]`).
    #[serde(
        default,
        with = "secret_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub headers: BTreeMap<String, Secret>,
    /// How long one query may take, answer included (default 10 s).
    #[serde(default = "default_timeout", with = "duration::human")]
    pub timeout: Duration,
    /// The range queries' resolution (default 10 s).
    #[serde(default = "default_step", with = "duration::human")]
    pub step: Duration,
    /// How far behind now the last point is taken, for scrapes still being ingested
    /// (default 0 s).
    #[serde(default, with = "duration::human")]
    pub lag: Duration,
    /// The largest answer read (default 32 MiB).
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// Value queries: metric key → PromQL (`<name>.<key>`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub queries: BTreeMap<String, String>,
    /// Count queries: key → `errors` and `requests` PromQL, each giving counts per step (e.g.
    /// `sum(increase(x[10s]))` with a 10 s step).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counts: BTreeMap<String, PrometheusCounts>,
    /// Variables of the canary (new) side; `track` defaults to `"canary"`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub canary: BTreeMap<String, String>,
    /// Variables of the control (stable) side, e.g. `{"track": "stable"}`: when set, every
    /// query is also run with them into `control_samples` / `control_counts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<BTreeMap<String, String>>,
}

/// Two PromQL queries whose answers pair into `(errors, requests)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusCounts {
    /// Failed requests per step.
    pub errors: String,
    /// All requests per step.
    pub requests: String,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_step() -> Duration {
    Duration::from_secs(10)
}

fn default_max_bytes() -> u64 {
    32 << 20
}

/// Points per series a poll asks for at most (Prometheus refuses more than 11,000).
const MAX_POINTS: f64 = 10_000.0;

impl PrometheusSourceConfig {
    pub(crate) fn check(&self, p: &mut Problems, prefix: &str) {
        check_url(p, field(prefix, "url"), &self.url);
        check_headers(p, prefix, &self.headers);
        for (name, d) in [("timeout", self.timeout), ("step", self.step)] {
            if d < Duration::from_millis(1) {
                p.add(field(prefix, name), "must be at least 1ms");
            }
        }
        if self.max_bytes == 0 {
            p.add(field(prefix, "max_bytes"), "must be more than 0");
        }
        if self.queries.is_empty() && self.counts.is_empty() {
            p.add(field(prefix, "queries"), "give at least one query or count");
        }
        let canary_knows = |v: &str| {
            BUILTIN_VARS.contains(&v)
                || v == "track"
                || self.canary.contains_key(v)
                || is_metadata(v)
        };
        let control = self.control.as_ref();
        let knows = |v: &str| canary_knows(v) || control.is_some_and(|c| c.contains_key(v));
        let mut control_used = false;
        let mut templates = Vec::new();
        for (key, q) in &self.queries {
            super::scrape::check_key(p, field(prefix, &format!("queries.{key}")), key);
            templates.push((format!("queries.{key}"), q));
        }
        for (key, c) in &self.counts {
            super::scrape::check_key(p, field(prefix, &format!("counts.{key}")), key);
            templates.push((format!("counts.{key}.errors"), &c.errors));
            templates.push((format!("counts.{key}.requests"), &c.requests));
        }
        for (at, q) in templates {
            match Template::parse(q) {
                Err(e) => p.add(field(prefix, &at), e),
                Ok(t) => {
                    for v in t.vars() {
                        if !knows(v) {
                            p.add(
                                field(prefix, &at),
                                format!("unknown variable {{{{{v}}}}} (known: repository, environment, commit_sha, version, track, metadata.KEY and the keys of `canary` / `control`)"),
                            );
                        }
                        control_used |= control.is_some_and(|c| c.contains_key(v));
                    }
                }
            }
        }
        if let Some(c) = control {
            for k in c.keys() {
                if !canary_knows(k) {
                    p.add(
                        field(prefix, &format!("control.{k}")),
                        "has no canary-side value: add it to `canary` too",
                    );
                }
            }
            if !control_used && !c.is_empty() {
                p.add(field(prefix, "control"), "no query uses a variable it sets: the control would read the same series as the canary");
            } else if c.is_empty() {
                p.add(field(prefix, "control"), "is empty: give the variables of the stable track, e.g. {\"track\": \"stable\"}");
            }
        }
    }
}

fn is_metadata(v: &str) -> bool {
    v.strip_prefix("metadata.").is_some_and(|k| !k.is_empty())
}

/// What a `prometheus` source shares between sessions.
#[derive(Debug)]
pub(crate) struct PrometheusPlan {
    name: String,
    source: PrometheusSource,
    step: Duration,
    lag: Duration,
    queries: Vec<(String, String, Template)>,
    counts: Vec<(String, String, Template, Template)>,
    canary: BTreeMap<String, String>,
    control: Option<BTreeMap<String, String>>,
}

impl PrometheusPlan {
    pub(crate) fn new(name: &str, c: &PrometheusSourceConfig) -> Result<Self> {
        let mut b = PrometheusSource::builder(c.url.clone())
            .timeout(c.timeout)
            .max_bytes(c.max_bytes);
        for (k, v) in &c.headers {
            b = b.header(k.clone(), v.clone());
        }
        let parse = |at: String, q: &str| Template::parse(q).map_err(|e| Error::invalid(at, e));
        let queries = c
            .queries
            .iter()
            .map(|(k, q)| {
                Ok((
                    format!("{name}.{k}"),
                    format!("queries.{k}"),
                    parse(format!("queries.{k}"), q)?,
                ))
            })
            .collect::<Result<_>>()?;
        let counts = c
            .counts
            .iter()
            .map(|(k, q)| {
                Ok((
                    format!("{name}.{k}"),
                    format!("counts.{k}"),
                    parse(format!("counts.{k}.errors"), &q.errors)?,
                    parse(format!("counts.{k}.requests"), &q.requests)?,
                ))
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            name: name.to_owned(),
            source: b.build()?,
            step: c.step,
            lag: c.lag,
            queries,
            counts,
            canary: c.canary.clone(),
            control: c.control.clone(),
        })
    }

    fn grid(&self, t: f64) -> f64 {
        let step = self.step.as_secs_f64();
        (t / step).floor() * step
    }

    /// Every query from `start` to `end`, on both sides.
    async fn range(&self, ctx: &PollContext, start: f64, end: f64) -> Result<Polled> {
        let canary = self.side(ctx, None, start, end);
        let control = async {
            match &self.control {
                Some(c) => self.side(ctx, Some(c), start, end).await.map(Some),
                None => Ok(None),
            }
        };
        let ((samples, counts), control) = futures::future::try_join(canary, control).await?;
        let (control_samples, control_counts) = control.unwrap_or_default();
        Ok(Polled {
            samples,
            counts,
            control_samples,
            control_counts,
        })
    }

    async fn side(
        &self,
        ctx: &PollContext,
        control: Option<&BTreeMap<String, String>>,
        start: f64,
        end: f64,
    ) -> Result<(Vec<Sample>, Vec<CountsSample>)> {
        let lookup = |v: &str| -> Option<String> {
            control
                .and_then(|c| c.get(v))
                .or_else(|| self.canary.get(v))
                .or_else(|| ctx.vars.get(v))
                .cloned()
                .or_else(|| (v == "track").then(|| "canary".to_owned()))
        };
        let mut missing = Vec::new();
        let mut render = |at: &str, t: &Template| {
            t.render(&lookup).unwrap_or_else(|v| {
                missing.push(crate::error::FieldError::new(
                    at,
                    format!("the variable {{{{{v}}}}} has no value for this deployment"),
                ));
                String::new()
            })
        };
        let queries: Vec<(&str, String)> = self
            .queries
            .iter()
            .map(|(m, at, t)| (m.as_str(), render(at, t)))
            .collect();
        let counts: Vec<(&str, String, String)> = self
            .counts
            .iter()
            .map(|(m, at, e, r)| {
                (
                    m.as_str(),
                    render(&format!("{at}.errors"), e),
                    render(&format!("{at}.requests"), r),
                )
            })
            .collect();
        if !missing.is_empty() {
            return Err(Error::Validation(ValidationErrors {
                subject: format!("query of source {:?}", self.name),
                errors: missing,
            }));
        }
        let step = self.step;
        let values = futures::future::try_join_all(
            queries
                .iter()
                .map(|(m, q)| self.source.query_range_all(m, q, start, end, step)),
        );
        let pairs = futures::future::try_join_all(counts.iter().map(|(m, e, r)| async move {
            let (e, r) = futures::future::try_join(
                self.source.query_range_all(m, e, start, end, step),
                self.source.query_range_all(m, r, start, end, step),
            )
            .await?;
            Ok::<_, Error>(pair_counts(m, e, r))
        }));
        let (values, pairs) = futures::future::try_join(values, pairs).await?;
        Ok((
            values.into_iter().flatten().collect(),
            pairs.into_iter().flatten().collect(),
        ))
    }
}

/// Pairs `errors` with `requests` points by time: when `requests` is one series, the errors of
/// all series at that time; when it is several (`sum by (route)`), the errors series with the
/// same labels. A missing errors point is 0 errors.
fn pair_counts(metric: &str, errors: Vec<Sample>, requests: Vec<Sample>) -> Vec<CountsSample> {
    let ms = |t: f64| (t * 1000.0).round() as i64;
    let one_series = |s: &[Sample]| s.windows(2).all(|w| w[0].labels == w[1].labels);
    let by_time = one_series(&requests);
    let mut errs: BTreeMap<(i64, Option<Labels>), f64> = BTreeMap::new();
    for e in errors {
        *errs
            .entry((ms(e.timestamp), (!by_time).then_some(e.labels)))
            .or_default() += e.value;
    }
    let count = |v: f64| {
        if v.is_finite() && v > 0.0 {
            v.round() as u64
        } else {
            0
        }
    };
    requests
        .into_iter()
        .map(|r| {
            let requests = count(r.value);
            let e = errs
                .get(&(ms(r.timestamp), (!by_time).then(|| r.labels.clone())))
                .copied()
                .unwrap_or(0.0);
            CountsSample {
                metric: metric.to_owned(),
                labels: r.labels,
                timestamp: r.timestamp,
                counts: Counts {
                    errors: count(e).min(requests),
                    requests,
                },
            }
        })
        .collect()
}

/// One session's `prometheus` source: remembers the last point it returned.
#[derive(Debug)]
pub(crate) struct PrometheusPoller {
    plan: Arc<PrometheusPlan>,
    last: Option<f64>,
}

impl PrometheusPoller {
    pub(crate) fn new(plan: Arc<PrometheusPlan>) -> Self {
        Self { plan, last: None }
    }
}

#[async_trait::async_trait]
impl Source for PrometheusPoller {
    async fn poll(&mut self, ctx: &PollContext) -> Result<Polled> {
        let p = &*self.plan;
        let step = p.step.as_secs_f64();
        let end = p.grid(ctx.now - p.lag.as_secs_f64());
        let start = self.last.map_or(end, |l| l + step);
        if start > end + step * 1e-6 {
            return Ok(Polled::default()); // no new point on the grid yet
        }
        let out = p
            .range(ctx, start.max(end - (MAX_POINTS - 1.0) * step), end)
            .await?;
        self.last = Some(end);
        Ok(out)
    }

    async fn lookback(&mut self, ctx: &PollContext, window: Duration) -> Result<Option<Polled>> {
        let p = &*self.plan;
        let step = p.step.as_secs_f64();
        let end = p.grid(ctx.now - p.lag.as_secs_f64());
        let start = (((ctx.now - window.as_secs_f64()) / step).ceil() * step)
            .max(end - (MAX_POINTS - 1.0) * step);
        if start > end {
            return Ok(Some(Polled::default()));
        }
        p.range(ctx, start, end).await.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mockito::Matcher;

    #[tokio::test]
    async fn instant_query_sends_promql_time_and_auth_and_parses_the_vector() {
        let mut server = mockito::Server::new_async().await;
        let m = server
            .mock("GET", "/prom/api/v1/query")
            .match_query(Matcher::AllOf(vec![
                Matcher::UrlEncoded(
                    "query".into(),
                    "rate(http_requests_total{job=\"web\"}[5m])".into(),
                ),
                Matcher::UrlEncoded("time".into(), "1700000000.500".into()),
            ]))
            .match_header("authorization", "Bearer s3cret")
            .with_body(
                r#"{"status":"success","data":{"resultType":"vector","result":[
                {"metric":{"__name__":"x","instance":"a"},"value":[1700000000.5,"12.5"]},
                {"metric":{"instance":"b"},"value":[1700000000.5,"NaN"]}]}}"#,
            )
            .create_async()
            .await;
        let src = PrometheusSource::builder(format!("{}/prom", server.url()))
            .bearer_token("s3cret")
            .build()
            .unwrap();
        assert!(!format!("{src:?}").contains("s3cret"));
        let got = src
            .query(
                "rps",
                "rate(http_requests_total{job=\"web\"}[5m])",
                Some(1_700_000_000.5),
            )
            .await
            .unwrap();
        m.assert_async().await;
        assert_eq!(got.len(), 1, "the NaN point is dropped");
        assert_eq!(got[0].metric, "rps");
        assert_eq!(got[0].value, 12.5);
        assert_eq!(got[0].labels.get("instance").map(String::as_str), Some("a"));
        assert!(!got[0].labels.contains_key("__name__"));
    }

    #[tokio::test]
    async fn range_query_sends_start_end_step_and_parses_the_matrix() {
        let mut server = mockito::Server::new_async().await;
        let m = server
            .mock("GET", "/api/v1/query_range")
            .match_query(Matcher::AllOf(vec![
                Matcher::UrlEncoded("query".into(), "up".into()),
                Matcher::UrlEncoded("start".into(), "100.000".into()),
                Matcher::UrlEncoded("end".into(), "160.000".into()),
                Matcher::UrlEncoded("step".into(), "30".into()),
            ]))
            .match_header("authorization", "Basic dTpw")
            .with_body(
                r#"{"status":"success","data":{"resultType":"matrix","result":[
                {"metric":{"job":"w"},"values":[[100,"1"],[130,"0"],[160,"1"]]}]}}"#,
            )
            .create_async()
            .await;
        let src = PrometheusSource::builder(server.url())
            .authorization("Basic dTpw")
            .build()
            .unwrap();
        let got = src
            .query_range("up", "up", 100.0, 160.0, Duration::from_secs(30))
            .await
            .unwrap();
        m.assert_async().await;
        assert_eq!(
            got.iter()
                .map(|s| (s.timestamp, s.value))
                .collect::<Vec<_>>(),
            [(100.0, 1.0), (130.0, 0.0), (160.0, 1.0)]
        );
    }

    #[tokio::test]
    async fn errors_and_empty_results_are_surfaced_as_such() {
        let mut server = mockito::Server::new_async().await;
        let _bad = server
            .mock("GET", "/api/v1/query")
            .match_query(Matcher::UrlEncoded("query".into(), "rate(".into()))
            .with_status(400)
            .with_body(r#"{"status":"error","errorType":"bad_data","error":"parse error: unclosed left parenthesis"}"#)
            .create_async()
            .await;
        let _empty = server
            .mock("GET", "/api/v1/query")
            .match_query(Matcher::UrlEncoded("query".into(), "nothing".into()))
            .with_body(r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#)
            .create_async()
            .await;
        let _empty_range = server
            .mock("GET", "/api/v1/query_range")
            .match_query(Matcher::Any)
            .with_body(r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#)
            .create_async()
            .await;
        let _denied = server
            .mock("GET", "/api/v1/query")
            .match_query(Matcher::UrlEncoded("query".into(), "secret".into()))
            .with_status(401)
            .with_body("Unauthorized")
            .create_async()
            .await;
        let _down = server
            .mock("GET", "/api/v1/query")
            .match_query(Matcher::UrlEncoded("query".into(), "down".into()))
            .with_status(503)
            .with_body("Service Unavailable")
            .create_async()
            .await;
        let src = PrometheusSource::builder(server.url()).build().unwrap();
        let e = src.query("m", "rate(", None).await.unwrap_err();
        assert!(
            matches!(&e, Error::Query { status: 400, error_type, message } if error_type == "bad_data" && message.contains("unclosed")),
            "{e}"
        );
        assert_eq!(e.kind().code(), "query");
        let e = src.query("m", "nothing", None).await.unwrap_err();
        assert_eq!(e.kind().code(), "no_data");
        assert!(e.to_string().contains("matched no series"), "{e}");
        let e = src
            .query_range("m", "x", 0.0, 60.0, Duration::from_secs(15))
            .await
            .unwrap_err();
        assert_eq!(e.kind().code(), "no_data");
        assert_eq!(
            src.query("m", "secret", None).await.unwrap_err().status(),
            Some(401)
        );
        assert_eq!(
            src.query("m", "down", None)
                .await
                .unwrap_err()
                .kind()
                .code(),
            "server"
        );
        assert!(
            src.query_range("m", "x", 60.0, 0.0, Duration::from_secs(15))
                .await
                .is_err()
        );
        assert!(
            src.query_range("m", "x", 0.0, 60.0, Duration::ZERO)
                .await
                .is_err()
        );
        assert!(PrometheusSource::builder("ftp://x").build().is_err());
        assert!(
            PrometheusSource::builder("http://x")
                .authorization("bad\nvalue")
                .build()
                .is_err()
        );
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_transport_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let src = PrometheusSource::builder(format!("http://{addr}"))
            .build()
            .unwrap();
        assert_eq!(
            src.query("m", "up", None).await.unwrap_err().kind().code(),
            "transport"
        );
    }

    fn matrix(points: &[(f64, &str)]) -> String {
        let values: Vec<String> = points
            .iter()
            .map(|(t, v)| format!("[{t},\"{v}\"]"))
            .collect();
        format!(
            r#"{{"status":"success","data":{{"resultType":"matrix","result":[{{"metric":{{"job":"w"}},"values":[{}]}}]}}}}"#,
            values.join(",")
        )
    }

    fn range(query: &str, start: &str, end: &str) -> Matcher {
        Matcher::AllOf(vec![
            Matcher::UrlEncoded("query".into(), query.into()),
            Matcher::UrlEncoded("start".into(), start.into()),
            Matcher::UrlEncoded("end".into(), end.into()),
            Matcher::UrlEncoded("step".into(), "10".into()),
        ])
    }

    fn ctx(now: f64) -> PollContext {
        PollContext {
            now,
            vars: [("repository".to_owned(), "acme/web".to_owned())].into(),
        }
    }

    #[tokio::test]
    async fn polls_return_every_grid_point_once_on_both_tracks() {
        let mut server = mockito::Server::new_async().await;
        let canary = r#"lat{app="acme/web",track="canary"}"#;
        let stable = r#"lat{app="acme/web",track="stable"}"#;
        let errors = r#"sum(increase(err{track="canary"}[10s]))"#;
        let requests = r#"sum(increase(req{track="canary"}[10s]))"#;
        let stable_errors = r#"sum(increase(err{track="stable"}[10s]))"#;
        let stable_requests = r#"sum(increase(req{track="stable"}[10s]))"#;
        let mut mocks = Vec::new();
        for (q, start, end, body) in [
            (canary, "1000.000", "1000.000", matrix(&[(1000.0, "5")])),
            (stable, "1000.000", "1000.000", matrix(&[(1000.0, "4")])),
            (
                canary,
                "1010.000",
                "1030.000",
                matrix(&[(1010.0, "6"), (1020.0, "7"), (1030.0, "NaN")]),
            ),
            (
                stable,
                "1010.000",
                "1030.000",
                matrix(&[(1010.0, "4"), (1020.0, "4"), (1030.0, "4")]),
            ),
            (
                errors,
                "1000.000",
                "1000.000",
                r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#.to_owned(),
            ),
            (
                requests,
                "1000.000",
                "1000.000",
                matrix(&[(1000.0, "99.6")]),
            ),
            (
                errors,
                "1010.000",
                "1030.000",
                // Split by code: the two series add up (2.2 + 1 → 3; 40 + 10 → 50, capped at 20).
                r#"{"status":"success","data":{"resultType":"matrix","result":[
                    {"metric":{"code":"500"},"values":[[1020,"2.2"],[1030,"40"]]},
                    {"metric":{"code":"503"},"values":[[1020,"1"],[1030,"10"]]}]}}"#
                    .to_owned(),
            ),
            (
                requests,
                "1010.000",
                "1030.000",
                matrix(&[(1010.0, "10"), (1020.0, "10"), (1030.0, "20")]),
            ),
            (
                stable_errors,
                "1000.000",
                "1000.000",
                matrix(&[(1000.0, "1")]),
            ),
            (
                stable_requests,
                "1000.000",
                "1000.000",
                matrix(&[(1000.0, "100")]),
            ),
            (
                stable_errors,
                "1010.000",
                "1030.000",
                matrix(&[(1030.0, "1")]),
            ),
            (
                stable_requests,
                "1010.000",
                "1030.000",
                matrix(&[(1030.0, "100")]),
            ),
        ] {
            mocks.push(
                server
                    .mock("GET", "/api/v1/query_range")
                    .match_query(range(q, start, end))
                    .match_header("x-scope-orgid", "tenant-1")
                    .with_body(body)
                    .expect(1)
                    .create_async()
                    .await,
            );
        }
        let plan = crate::metrics::SourceConfig::from_value(serde_json::json!({
            "type": "prometheus", "name": "prom", "url": server.url(), "headers": {"X-Scope-OrgID": "tenant-1"},
            "queries": {"lat": "lat{app=\"{{repository}}\",track=\"{{ track }}\"}"},
            "counts": {"http": {"errors": "sum(increase(err{track=\"{{track}}\"}[10s]))", "requests": "sum(increase(req{track=\"{{track}}\"}[10s]))"}},
            "control": {"track": "stable"}
        }))
        .unwrap()
        .plan()
        .unwrap();
        assert!(plan.can_look_back());
        let mut src = plan.start();
        let first = src.poll(&ctx(1005.0)).await.unwrap();
        fn vals(s: &[Sample]) -> Vec<(&str, f64, f64)> {
            s.iter()
                .map(|s| (s.metric.as_str(), s.timestamp, s.value))
                .collect()
        }
        assert_eq!(vals(&first.samples), [("prom.lat", 1000.0, 5.0)]);
        assert_eq!(vals(&first.control_samples), [("prom.lat", 1000.0, 4.0)]);
        assert_eq!(first.counts.len(), 1);
        assert_eq!(
            (first.counts[0].metric.as_str(), first.counts[0].counts),
            (
                "prom.http",
                Counts {
                    errors: 0,
                    requests: 100
                }
            ),
            "no error series: 0 errors"
        );
        // Nothing new on the grid yet: no query at all.
        assert!(src.poll(&ctx(1009.9)).await.unwrap().is_empty());
        let second = src.poll(&ctx(1031.0)).await.unwrap();
        assert_eq!(
            vals(&second.samples),
            [("prom.lat", 1010.0, 6.0), ("prom.lat", 1020.0, 7.0)],
            "NaN dropped"
        );
        assert_eq!(second.control_samples.len(), 3);
        assert_eq!(
            first.control_counts[0].counts,
            Counts {
                errors: 1,
                requests: 100
            }
        );
        assert_eq!(second.control_counts.len(), 1);
        let counts: Vec<(f64, Counts)> = second
            .counts
            .iter()
            .map(|c| (c.timestamp, c.counts))
            .collect();
        assert_eq!(
            counts,
            [
                (
                    1010.0,
                    Counts {
                        errors: 0,
                        requests: 10
                    }
                ),
                (
                    1020.0,
                    Counts {
                        errors: 3,
                        requests: 10
                    }
                ),
                (
                    1030.0,
                    Counts {
                        errors: 20,
                        requests: 20
                    }
                )
            ]
        );
        for m in mocks {
            m.assert_async().await;
        }
    }

    #[tokio::test]
    async fn a_failed_poll_keeps_its_place_and_lookback_covers_the_window() {
        let mut server = mockito::Server::new_async().await;
        let down = server
            .mock("GET", "/api/v1/query_range")
            .match_query(range("up", "1010.000", "1020.000"))
            .with_status(503)
            .expect(1)
            .create_async()
            .await;
        let first = server
            .mock("GET", "/api/v1/query_range")
            .match_query(range("up", "1000.000", "1000.000"))
            .with_body(matrix(&[(1000.0, "1")]))
            .create_async()
            .await;
        let c: PrometheusSourceConfig = serde_json::from_value(
            serde_json::json!({"url": server.url(), "queries": {"up": "up"}}),
        )
        .unwrap();
        let plan = Arc::new(PrometheusPlan::new("p", &c).unwrap());
        let mut src = PrometheusPoller::new(plan);
        src.poll(&ctx(1000.0)).await.unwrap();
        assert_eq!(
            src.poll(&ctx(1020.0)).await.unwrap_err().kind().code(),
            "server"
        );
        down.assert_async().await;
        let retry = server
            .mock("GET", "/api/v1/query_range")
            .match_query(range("up", "1010.000", "1030.000"))
            .with_body(matrix(&[(1010.0, "1")]))
            .expect(1)
            .create_async()
            .await;
        assert_eq!(src.poll(&ctx(1030.0)).await.unwrap().samples.len(), 1);
        retry.assert_async().await;
        let back = server
            .mock("GET", "/api/v1/query_range")
            .match_query(range("up", "940.000", "1000.000"))
            .with_body(matrix(&[(940.0, "1"), (1000.0, "1")]))
            .expect(1)
            .create_async()
            .await;
        let got = src
            .lookback(&ctx(1005.0), Duration::from_secs(65))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.samples.len(), 2);
        back.assert_async().await;
        first.assert_async().await;
    }

    #[tokio::test]
    async fn a_variable_without_a_value_fails_the_poll_by_name() {
        let c: PrometheusSourceConfig = serde_json::from_value(serde_json::json!({
            "url": "http://127.0.0.1:1", "queries": {"a": "up{sha=\"{{commit_sha}}\"}", "b": "up{r=\"{{metadata.region}}\"}"}
        }))
        .unwrap();
        let mut src = PrometheusPoller::new(Arc::new(PrometheusPlan::new("p", &c).unwrap()));
        let e = src.poll(&ctx(1000.0)).await.unwrap_err();
        let fields: Vec<(&str, &str)> = e
            .field_errors()
            .iter()
            .map(|f| (f.field.as_str(), f.message.as_str()))
            .collect();
        assert_eq!(fields.len(), 2, "{e}");
        assert_eq!(fields[0].0, "queries.a");
        assert!(
            fields[0].1.contains("{{commit_sha}}") && fields[1].1.contains("{{metadata.region}}"),
            "{e}"
        );
        assert!(e.to_string().contains("source \"p\""), "{e}");
    }

    #[test]
    fn config_errors_name_their_fields_and_never_show_secrets() {
        let c: PrometheusSourceConfig = serde_json::from_value(serde_json::json!({
            "url": "prometheus:9090", "step": "0s", "headers": {"Authorization": "Bearer s3cret\u{7f}"},
            "queries": {"a": "up{x=\"{{repo}}\"}", "b": "up{x=\"{{track}}\"", "c": "x{{"},
            "counts": {"d": {"errors": "e{z=\"{{zone}}\"}", "requests": "r"}},
            "canary": {"zone": "a"},
            "control": {"cluster": "blue"}
        }))
        .unwrap();
        let mut p = Problems::default();
        c.check(&mut p, "sources[0]");
        let text = format!("{p:?}");
        for f in [
            "url",
            "step",
            "headers.Authorization",
            "queries.a",
            "queries.c",
            "control.cluster",
            "control",
        ] {
            assert!(p.has(&format!("sources[0].{f}")), "{f}: {text}");
        }
        assert!(
            !p.has("sources[0].queries.b") && !p.has("sources[0].counts.d.errors"),
            "{text}"
        );
        assert!(
            text.contains("{{repo}}") && !text.contains("s3cret"),
            "{text}"
        );
        let e = serde_json::from_value::<PrometheusSourceConfig>(
            serde_json::json!({"url": "http://x", "queries": {}, "count": {}}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("count"), "{e}");
    }

    #[tokio::test]
    async fn answers_over_the_size_limit_are_refused() {
        let mut server = mockito::Server::new_async().await;
        let _m = server
            .mock("GET", "/api/v1/query")
            .match_query(Matcher::Any)
            .with_body("x".repeat(2000))
            .create_async()
            .await;
        let src = PrometheusSource::builder(server.url())
            .max_bytes(1000)
            .build()
            .unwrap();
        let e = src.query("m", "up", None).await.unwrap_err();
        assert!(e.to_string().contains("more than 1000 bytes"), "{e}");
        assert!(
            PrometheusSource::builder(server.url())
                .max_bytes(0)
                .build()
                .is_err()
        );
    }

    #[test]
    fn counts_grouped_by_a_label_pair_series_by_series() {
        let at = |route: &str, t: f64, v: f64| Sample::at("m", t, v).label("route", route);
        let requests = vec![
            at("/a", 10.0, 100.0),
            at("/b", 10.0, 50.0),
            at("/a", 20.0, 100.0),
        ];
        let errors = vec![
            at("/b", 10.0, 5.4),
            at("/a", 20.0, 150.0),
            at("/c", 20.0, 9.0),
        ];
        let got: Vec<(String, f64, Counts)> = pair_counts("p.http", errors, requests)
            .into_iter()
            .map(|c| (c.labels["route"].clone(), c.timestamp, c.counts))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "/a".into(),
                    10.0,
                    Counts {
                        errors: 0,
                        requests: 100
                    }
                ),
                (
                    "/b".into(),
                    10.0,
                    Counts {
                        errors: 5,
                        requests: 50
                    }
                ),
                (
                    "/a".into(),
                    20.0,
                    Counts {
                        errors: 100,
                        requests: 100
                    }
                ),
            ]
        );
    }

    /// Property test of the answer parser (RELIABILITY.md): any status and any body, JSON
    /// shaped like a Prometheus answer or not, is data or an error that says what is wrong,
    /// never a panic; every sample parsed is finite. `CASED_FUZZ_CASES` sets the budget.
    mod answers {
        use super::super::{answer, parse_result};
        use proptest::prelude::*;
        use serde_json::{Value, json};

        fn cases() -> u32 {
            std::env::var("CASED_FUZZ_CASES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(1000)
        }

        fn scalar() -> impl Strategy<Value = Value> {
            prop_oneof![
                Just(Value::Null),
                any::<f64>().prop_map(|f| json!(f)),
                any::<i64>().prop_map(|n| json!(n)),
                prop::sample::select(&["1.5", "NaN", "+Inf", "-Inf", "1e999", "", "x", "-0"][..])
                    .prop_map(|s| json!(s)),
                ".{0,10}".prop_map(Value::String),
            ]
        }

        fn point() -> impl Strategy<Value = Value> {
            prop_oneof![
                (scalar(), scalar()).prop_map(|(t, v)| json!([t, v])),
                prop::collection::vec(scalar(), 0..4).prop_map(Value::Array),
                scalar(),
            ]
        }

        fn series() -> impl Strategy<Value = Value> {
            (
                prop::collection::btree_map(".{0,6}", scalar(), 0..3),
                point(),
                prop::collection::vec(point(), 0..5),
            )
                .prop_map(|(labels, value, values)| {
                    json!({"metric": labels, "value": value, "values": values})
                })
        }

        fn body() -> impl Strategy<Value = Vec<u8>> {
            let data = (
                prop::sample::select(&["vector", "matrix", "scalar", "string", ""][..]),
                prop_oneof![
                    prop::collection::vec(series(), 0..4).prop_map(Value::Array),
                    point(),
                ],
            )
                .prop_map(|(kind, result)| json!({"resultType": kind, "result": result}));
            let answer = (
                prop::sample::select(&["success", "error", "ok"][..]),
                prop_oneof![data, scalar()],
                prop::option::of(".{0,10}"),
            )
                .prop_map(|(status, data, error)| {
                    json!({"status": status, "data": data, "errorType": "bad_data", "error": error})
                        .to_string()
                        .into_bytes()
                });
            prop_oneof![
                3 => answer,
                1 => prop::collection::vec(any::<u8>(), 0..200),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig {
                cases: cases(),
                failure_persistence: None,
                ..ProptestConfig::default()
            })]

            #[test]
            fn any_answer_is_data_or_an_error_never_a_panic(
                status in prop_oneof![
                    prop::sample::select(&[200u16, 400, 401, 403, 422, 500, 503][..]),
                    any::<u16>(),
                ],
                body in body(),
            ) {
                match answer(status, &body).and_then(|d| parse_result("m", &d)) {
                    Ok(samples) => {
                        for s in samples {
                            prop_assert!(s.value.is_finite(), "{s:?}");
                            prop_assert_eq!(s.metric.as_str(), "m");
                        }
                    }
                    Err(e) => prop_assert!(!e.to_string().trim().is_empty(), "{e:?}"),
                }
            }
        }
    }
}
