//! The `scrape` source: the service's own Prometheus text exposition (`/metrics`), read
//! directly without a Prometheus server, and [`Exposition`], the parser it uses.
//!
//! ```json
//! {"type": "scrape", "name": "app", "url": "http://127.0.0.1:8080/metrics",
//!  "control_url": "http://127.0.0.1:8081/metrics",
//!  "metrics": {
//!    "inflight":   {"gauge": "http_requests_in_flight"},
//!    "rps":        {"counter": "http_requests_total", "match": {"route": "/login"}},
//!    "p95_ms":     {"histogram": "http_request_duration_seconds", "quantile": 0.95, "scale": 1000}},
//!  "counts": {"http": {"errors":   {"counter": "http_requests_total", "match": {"code": {"regex": "5.."}}},
//!                      "requests": {"counter": "http_requests_total"}}}}
//! ```
//!
//! * `gauge`: one sample per matching series, labels kept.
//! * `counter`: the per-second rate between two consecutive scrapes, summed over the matching
//!   series (a counter that went down was reset: its whole value is the increase; a series
//!   that appears between two scrapes counts from 0, as client libraries create labelled
//!   counters on first use).
//! * `histogram`: the `quantile` of the observations made between two scrapes (bucket deltas
//!   summed over the matching series), interpolated linearly inside the bucket as PromQL's
//!   `histogram_quantile`; no sample when nothing was observed.
//! * `counts`: the `(errors, requests)` deltas between two scrapes, for error-rate detectors.
//!
//! A counter or histogram of which no series is selected gives no sample (no data, rather than
//! a made-up 0); an `errors` counter with no series counts 0 errors (client libraries create it
//! on the first error), a `requests` counter with none gives no counts.
//!
//! `match` maps a label to a value (`"route": "/login"`, an absent label matches `""`) or to
//! `{"not": v}`, `{"regex": r}` or `{"not_regex": r}` (anchored, as in PromQL). `scale`
//! multiplies the result (seconds → ms). The first poll only records counters (gauges are
//! reported at once). Samples are stamped with the poll's time.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Counts;
use super::source::{
    CountsSample, PollContext, Polled, Source, check_headers, check_url, field, header_map,
    read_body, request_error, secret_map,
};
use super::{Labels, Sample};
use crate::duration;
use crate::error::{Error, Problems, Result};
use crate::secret::Secret;

/// The `scrape` source's configuration (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeSourceConfig {
    /// Prefix of the metrics (default `scrape`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Own cadence (default: every session tick).
    #[serde(
        default,
        with = "duration::human_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub every: Option<Duration>,
    /// The exposition page of the service (the canary, when `control_url` is set).
    pub url: String,
    /// The control (stable) track's page, read the same way into `control_*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_url: Option<String>,
    /// Headers sent with each request; the values are secrets (never shown, serialized as
    /// `[redacted]`).
    #[serde(
        default,
        with = "secret_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub headers: BTreeMap<String, Secret>,
    /// How long one request may take, body included (default 5 s).
    #[serde(default = "default_timeout", with = "duration::human")]
    pub timeout: Duration,
    /// The largest page read (default 10 MiB); a larger one fails the poll.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// Value metrics, by key (`<name>.<key>`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, ScrapeMetric>,
    /// Error/request counts, by key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counts: BTreeMap<String, ScrapeCounts>,
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_max_bytes() -> u64 {
    10 << 20
}

/// One value metric read from the page: exactly one of `gauge`, `counter`, `histogram`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeMetric {
    /// A gauge's name: its value, one sample per matching series.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gauge: Option<String>,
    /// A counter's name (with or without `_total`): its per-second rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counter: Option<String>,
    /// A histogram's name (without `_bucket`): the `quantile` of the new observations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram: Option<String>,
    /// Label matchers selecting the series.
    #[serde(default, rename = "match", skip_serializing_if = "BTreeMap::is_empty")]
    pub matchers: BTreeMap<String, LabelMatch>,
    /// For `histogram`: the quantile, in (0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantile: Option<f64>,
    /// Multiplies the result (e.g. 1000 for seconds → milliseconds; default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
}

/// `(errors, requests)` from two counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeCounts {
    /// The failed requests.
    pub errors: CounterSelector,
    /// All requests.
    pub requests: CounterSelector,
}

/// A counter and the series of it to sum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CounterSelector {
    /// The counter's name (with or without `_total`).
    pub counter: String,
    /// Label matchers selecting the series.
    #[serde(default, rename = "match", skip_serializing_if = "BTreeMap::is_empty")]
    pub matchers: BTreeMap<String, LabelMatch>,
}

/// How one label is matched: written as a plain string (equal) or `{"not": v}`,
/// `{"regex": r}`, `{"not_regex": r}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelMatch {
    /// The label equals the value (an absent label is `""`).
    Equal(String),
    /// The label differs from the value.
    NotEqual(String),
    /// The whole label matches the regular expression.
    Regex(String),
    /// The whole label does not match the regular expression.
    NotRegex(String),
}

impl Serialize for LabelMatch {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let (k, v) = match self {
            Self::Equal(v) => return s.serialize_str(v),
            Self::NotEqual(v) => ("not", v),
            Self::Regex(v) => ("regex", v),
            Self::NotRegex(v) => ("not_regex", v),
        };
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry(k, v)?;
        m.end()
    }
}

impl<'de> Deserialize<'de> for LabelMatch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = LabelMatch;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a label value, or an object with one of `not`, `regex`, `not_regex`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<LabelMatch, E> {
                Ok(LabelMatch::Equal(v.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<LabelMatch, A::Error> {
                let Some((k, v)) = map.next_entry::<String, String>()? else {
                    return Err(serde::de::Error::custom(
                        "an empty object: give one of `not`, `regex`, `not_regex`",
                    ));
                };
                let m = match k.as_str() {
                    "not" => LabelMatch::NotEqual(v),
                    "regex" => LabelMatch::Regex(v),
                    "not_regex" => LabelMatch::NotRegex(v),
                    other => {
                        return Err(serde::de::Error::unknown_field(
                            other,
                            &["not", "regex", "not_regex"],
                        ));
                    }
                };
                if map.next_key::<String>()?.is_some() {
                    return Err(serde::de::Error::custom(
                        "give only one of `not`, `regex`, `not_regex`",
                    ));
                }
                Ok(m)
            }
        }
        d.deserialize_any(V)
    }
}

impl ScrapeSourceConfig {
    pub(crate) fn check(&self, p: &mut Problems, prefix: &str) {
        check_url(p, field(prefix, "url"), &self.url);
        if let Some(u) = &self.control_url {
            check_url(p, field(prefix, "control_url"), u);
        }
        check_headers(p, prefix, &self.headers);
        crate::limits::check_timeout(p, field(prefix, "timeout"), self.timeout);
        if self.max_bytes == 0 {
            p.add(field(prefix, "max_bytes"), "must be more than 0");
        }
        if self.metrics.is_empty() && self.counts.is_empty() {
            p.add(
                field(prefix, "metrics"),
                "give at least one metric or count to read",
            );
        }
        for (key, m) in &self.metrics {
            let at = |f: &str| field(prefix, &format!("metrics.{key}{f}"));
            check_key(p, at(""), key);
            let kinds = [
                m.gauge.is_some(),
                m.counter.is_some(),
                m.histogram.is_some(),
            ]
            .into_iter()
            .filter(|b| *b)
            .count();
            if kinds != 1 {
                p.add(
                    at(""),
                    "give exactly one of `gauge`, `counter`, `histogram`",
                );
            }
            for name in [&m.gauge, &m.counter, &m.histogram].into_iter().flatten() {
                check_metric_name(p, at(""), name);
            }
            match (m.histogram.is_some(), m.quantile) {
                (true, None) => p.add(at(".quantile"), "a histogram needs a `quantile`, e.g. 0.95"),
                (true, Some(q)) if !(q > 0.0 && q <= 1.0) => {
                    p.add(at(".quantile"), format!("{q} must be in (0, 1]"))
                }
                (false, Some(_)) => p.add(at(".quantile"), "only a histogram takes a `quantile`"),
                _ => {}
            }
            if let Some(s) = m.scale
                && !(s.is_finite() && s != 0.0)
            {
                p.add(
                    at(".scale"),
                    format!("{s} must be a finite, non-zero number"),
                );
            }
            check_matchers(p, &at(".match"), &m.matchers);
        }
        for (key, c) in &self.counts {
            let at = |f: &str| field(prefix, &format!("counts.{key}{f}"));
            check_key(p, at(""), key);
            check_metric_name(p, at(".errors.counter"), &c.errors.counter);
            check_metric_name(p, at(".requests.counter"), &c.requests.counter);
            check_matchers(p, &at(".errors.match"), &c.errors.matchers);
            check_matchers(p, &at(".requests.match"), &c.requests.matchers);
        }
    }
}

/// Metric keys become part of metric names.
pub(crate) fn check_key(p: &mut Problems, at: String, key: &str) {
    if key.is_empty()
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        p.add(
            at,
            format!("{key:?}: a key must be letters, digits, `_`, `-` or `.`"),
        );
    }
}

fn check_metric_name(p: &mut Problems, at: String, name: &str) {
    let ok = name.bytes().enumerate().all(|(i, b)| {
        b.is_ascii_alphabetic() || b == b'_' || b == b':' || (i > 0 && b.is_ascii_digit())
    });
    if name.is_empty() || !ok {
        p.add(at, format!("{name:?} is not a Prometheus metric name"));
    }
}

fn check_matchers(p: &mut Problems, at: &str, m: &BTreeMap<String, LabelMatch>) {
    for (label, v) in m {
        if let LabelMatch::Regex(r) | LabelMatch::NotRegex(r) = v
            && let Err(e) = anchored(r)
        {
            p.add(
                format!("{at}.{label}"),
                format!("not a regular expression: {e}"),
            );
        }
    }
}

fn anchored(r: &str) -> std::result::Result<regex::Regex, regex::Error> {
    regex::Regex::new(&format!("^(?:{r})$"))
}

/// What a scrape source shares between sessions: the client and the compiled selectors.
pub(crate) struct ScrapePlan {
    http: reqwest::Client,
    url: String,
    control_url: Option<String>,
    max_bytes: u64,
    metrics: Vec<MetricPlan>,
    counts: Vec<CountsPlan>,
}

impl fmt::Debug for ScrapePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScrapePlan")
            .field("url", &self.url)
            .field("control_url", &self.control_url)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct MetricPlan {
    metric: String,
    kind: Kind,
    selector: Selector,
    scale: f64,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Gauge,
    Counter,
    Histogram(f64),
}

#[derive(Debug)]
struct CountsPlan {
    metric: String,
    errors: Selector,
    requests: Selector,
}

/// Which series of the page: a sample name (or two: `x` and `x_total`) and label matchers.
#[derive(Debug)]
struct Selector {
    /// Where the state of its series is kept.
    id: String,
    names: Vec<String>,
    matchers: Vec<(String, Matcher)>,
}

#[derive(Debug)]
enum Matcher {
    Equal(String),
    NotEqual(String),
    Regex(regex::Regex),
    NotRegex(regex::Regex),
}

impl Matcher {
    fn matches(&self, v: &str) -> bool {
        match self {
            Self::Equal(x) => v == x,
            Self::NotEqual(x) => v != x,
            Self::Regex(r) => r.is_match(v),
            Self::NotRegex(r) => !r.is_match(v),
        }
    }
}

impl Selector {
    fn new(id: String, names: Vec<String>, m: &BTreeMap<String, LabelMatch>) -> Result<Self> {
        let matchers = m
            .iter()
            .map(|(k, v)| {
                let compiled = match v {
                    LabelMatch::Equal(x) => Matcher::Equal(x.clone()),
                    LabelMatch::NotEqual(x) => Matcher::NotEqual(x.clone()),
                    LabelMatch::Regex(r) => Matcher::Regex(
                        anchored(r)
                            .map_err(|e| Error::invalid(format!("match.{k}"), e.to_string()))?,
                    ),
                    LabelMatch::NotRegex(r) => Matcher::NotRegex(
                        anchored(r)
                            .map_err(|e| Error::invalid(format!("match.{k}"), e.to_string()))?,
                    ),
                };
                Ok((k.clone(), compiled))
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            id,
            names,
            matchers,
        })
    }

    fn counter(id: String, name: &str, m: &BTreeMap<String, LabelMatch>) -> Result<Self> {
        let mut names = vec![name.to_owned()];
        if !name.ends_with("_total") {
            names.push(format!("{name}_total"));
        }
        Self::new(id, names, m)
    }

    fn selects(&self, s: &Series<'_, '_>) -> bool {
        self.names.iter().any(|n| n == s.name())
            && self
                .matchers
                .iter()
                .all(|(k, m)| m.matches(s.label(k).unwrap_or("")))
    }
}

impl ScrapePlan {
    pub(crate) fn new(name: &str, c: &ScrapeSourceConfig) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(c.timeout)
            .default_headers(header_map(&c.headers)?)
            .build()
            .map_err(|e| Error::invalid("client", e.to_string()))?;
        let metrics = c
            .metrics
            .iter()
            .map(|(key, m)| {
                let id = format!("m:{key}");
                let (kind, selector) = if let Some(g) = &m.gauge {
                    (
                        Kind::Gauge,
                        Selector::new(id, vec![g.clone()], &m.matchers)?,
                    )
                } else if let Some(h) = &m.histogram {
                    let base = h.strip_suffix("_bucket").unwrap_or(h);
                    (
                        Kind::Histogram(m.quantile.unwrap_or(0.5)),
                        Selector::new(id, vec![format!("{base}_bucket")], &m.matchers)?,
                    )
                } else {
                    (
                        Kind::Counter,
                        Selector::counter(
                            id,
                            m.counter.as_deref().unwrap_or_default(),
                            &m.matchers,
                        )?,
                    )
                };
                Ok(MetricPlan {
                    metric: format!("{name}.{key}"),
                    kind,
                    selector,
                    scale: m.scale.unwrap_or(1.0),
                })
            })
            .collect::<Result<_>>()?;
        let counts = c
            .counts
            .iter()
            .map(|(key, k)| {
                Ok(CountsPlan {
                    metric: format!("{name}.{key}"),
                    errors: Selector::counter(
                        format!("e:{key}"),
                        &k.errors.counter,
                        &k.errors.matchers,
                    )?,
                    requests: Selector::counter(
                        format!("r:{key}"),
                        &k.requests.counter,
                        &k.requests.matchers,
                    )?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            http,
            url: c.url.clone(),
            control_url: c.control_url.clone(),
            max_bytes: c.max_bytes,
            metrics,
            counts,
        })
    }

    async fn fetch(&self, url: &str) -> Result<String> {
        let what = format!("the metrics page {url}");
        let resp = self
            .http
            .get(url)
            .header(
                reqwest::header::ACCEPT,
                "text/plain;version=0.0.4;q=1,*/*;q=0.1",
            )
            .send()
            .await
            .map_err(|e| request_error(&e, &what))?;
        let status = resp.status().as_u16();
        let body = read_body(resp, self.max_bytes, &what).await?;
        let snippet = || crate::checks::excerpt(&body, 200);
        match status {
            200 => String::from_utf8(body).map_err(|_| Error::Query {
                status,
                error_type: "bad_exposition".into(),
                message: format!("{what} is not UTF-8 text"),
            }),
            401 | 403 => Err(Error::Unauthorized {
                status,
                message: snippet(),
            }),
            500..=599 => Err(Error::Server {
                status,
                message: snippet(),
            }),
            _ => Err(Error::InvalidRequest {
                status,
                message: format!("{what}: {}", snippet()),
            }),
        }
    }

    /// Reads one page into samples and counts against (and into) `state`.
    fn read(
        &self,
        text: &str,
        url: &str,
        now: f64,
        state: &State,
        next: &mut State,
    ) -> Result<(Vec<Sample>, Vec<CountsSample>)> {
        let page = Exposition::parse(text).map_err(|e| Error::Query {
            status: 200,
            error_type: "bad_exposition".into(),
            message: format!("the metrics page {url}: {e}"),
        })?;
        let dt = state.time.map(|t| now - t).filter(|d| *d > 0.0);
        let mut samples = Vec::new();
        for m in &self.metrics {
            match m.kind {
                Kind::Gauge => {
                    for s in page
                        .series()
                        .filter(|s| m.selector.selects(s) && s.value().is_finite())
                    {
                        let labels: Labels = s
                            .labels()
                            .map(|(k, v)| (k.to_owned(), v.to_owned()))
                            .collect();
                        samples.push(Sample {
                            metric: m.metric.clone(),
                            labels,
                            timestamp: now,
                            value: s.value() * m.scale,
                        });
                    }
                }
                Kind::Counter => {
                    let d = deltas(&m.selector, &page, state, next, false);
                    if let (Some(d), Some(dt)) = (d, dt) {
                        let total = d.first().map_or(0.0, |b| b.1);
                        samples.push(Sample::at(&m.metric, now, total / dt * m.scale));
                    }
                }
                Kind::Histogram(q) => {
                    if let Some(mut d) = deltas(&m.selector, &page, state, next, true)
                        && let Some(v) = bucket_quantile(q, &mut d)
                    {
                        samples.push(Sample::at(&m.metric, now, v * m.scale));
                    }
                }
            }
        }
        let mut counts = Vec::new();
        for c in &self.counts {
            let e = deltas(&c.errors, &page, state, next, false);
            let r = deltas(&c.requests, &page, state, next, false);
            // No errors series yet (client libraries create it on the first error): 0 errors.
            if state.time.is_some()
                && let Some(r) = r
            {
                let total = |d: Option<&Vec<(f64, f64)>>| {
                    d.and_then(|d| d.first())
                        .map_or(0.0, |b| b.1)
                        .round()
                        .max(0.0) as u64
                };
                let requests = total(Some(&r));
                let errors = total(e.as_ref()).min(requests);
                counts.push(CountsSample {
                    metric: c.metric.clone(),
                    labels: Labels::new(),
                    timestamp: now,
                    counts: Counts { errors, requests },
                });
            }
        }
        next.time = Some(now);
        Ok((samples, counts))
    }
}

/// What a side (canary or control) remembers between scrapes: the time of the last good one,
/// and per selected series its buckets `(le, cumulative count)` (one `(+Inf, value)` for a
/// counter).
#[derive(Debug, Default, Clone)]
struct State {
    time: Option<f64>,
    series: HashMap<String, Vec<(f64, f64)>>,
}

/// The increases of the series `sel` selects since the previous scrape, summed by bucket bound
/// (sorted by bound; one `(+Inf, total)` entry for counters). Records the current values in
/// `next`. `None` on the first scrape and when no series is selected.
fn deltas(
    sel: &Selector,
    page: &Exposition<'_>,
    prev: &State,
    next: &mut State,
    by_le: bool,
) -> Option<Vec<(f64, f64)>> {
    let mut groups: HashMap<String, Vec<(f64, f64)>> = HashMap::new();
    for s in page.series().filter(|s| sel.selects(s)) {
        let le = if by_le {
            match s.label("le").and_then(|v| v.trim().parse::<f64>().ok()) {
                Some(le) if !le.is_nan() => le,
                _ => continue,
            }
        } else {
            f64::INFINITY
        };
        let mut key = String::with_capacity(64);
        key.push_str(&sel.id);
        for (k, v) in s.labels().filter(|(k, _)| !by_le || *k != "le") {
            key.push('\u{1}');
            key.push_str(k);
            key.push('\u{2}');
            key.push_str(v);
        }
        groups.entry(key).or_default().push((le, s.value()));
    }
    let first = prev.time.is_none();
    let matched = !groups.is_empty();
    let mut sum: Vec<(f64, f64)> = Vec::new();
    for (key, buckets) in groups {
        if !first {
            let old = prev.series.get(&key);
            let reset = old.is_some_and(|old| {
                buckets
                    .iter()
                    .any(|(le, v)| old.iter().any(|(ol, ov)| ol == le && v < ov))
            });
            for &(le, v) in &buckets {
                let base = if reset {
                    0.0
                } else {
                    old.and_then(|o| o.iter().find(|(ol, _)| *ol == le))
                        .map_or(0.0, |o| o.1)
                };
                let inc = v - base;
                if !inc.is_finite() {
                    continue;
                }
                match sum.iter_mut().find(|(l, _)| *l == le) {
                    Some(b) => b.1 += inc,
                    None => sum.push((le, inc)),
                }
            }
        }
        next.series.insert(key, buckets);
    }
    if first || !matched {
        return None;
    }
    if !by_le && sum.is_empty() {
        sum.push((f64::INFINITY, 0.0));
    }
    sum.sort_by(|a, b| a.0.total_cmp(&b.0));
    Some(sum)
}

/// PromQL's `histogram_quantile` over cumulative buckets `(upper bound, count)`: `None` without
/// a `+Inf` bucket or without observations.
pub(crate) fn bucket_quantile(q: f64, buckets: &mut [(f64, f64)]) -> Option<f64> {
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    if buckets.len() < 2 || buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
        return None;
    }
    // Cumulative counts must not decrease (they can, slightly, when series are summed at
    // different moments): PromQL forces them monotonic too.
    let mut max = f64::NEG_INFINITY;
    for b in buckets.iter_mut() {
        max = max.max(b.1);
        b.1 = max;
    }
    let total = buckets[buckets.len() - 1].1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let last = buckets.len() - 1;
    let b = buckets[..last]
        .iter()
        .position(|x| x.1 >= rank)
        .unwrap_or(last);
    if b == last {
        return Some(buckets[last - 1].0);
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return Some(buckets[0].0);
    }
    let (start, below) = if b > 0 {
        (buckets[b - 1].0, buckets[b - 1].1)
    } else {
        (0.0, 0.0)
    };
    let (end, count) = (buckets[b].0, buckets[b].1 - below);
    Some(start + (end - start) * ((rank - below) / count))
}

/// One session's scrape source.
#[derive(Debug)]
pub(crate) struct ScrapePoller {
    plan: Arc<ScrapePlan>,
    canary: State,
    control: State,
}

impl ScrapePoller {
    pub(crate) fn new(plan: Arc<ScrapePlan>) -> Self {
        Self {
            plan,
            canary: State::default(),
            control: State::default(),
        }
    }
}

#[async_trait::async_trait]
impl Source for ScrapePoller {
    async fn poll(&mut self, ctx: &PollContext) -> Result<Polled> {
        let plan = &*self.plan;
        let (canary, control) = match &plan.control_url {
            Some(u) => {
                let (a, b) = futures::future::join(plan.fetch(&plan.url), plan.fetch(u)).await;
                (a?, Some(b?))
            }
            None => (plan.fetch(&plan.url).await?, None),
        };
        let mut next = State::default();
        let (samples, counts) = plan.read(&canary, &plan.url, ctx.now, &self.canary, &mut next)?;
        let mut out = Polled {
            samples,
            counts,
            ..Polled::default()
        };
        if let (Some(text), Some(url)) = (control, &plan.control_url) {
            let mut next_control = State::default();
            let (s, c) = plan.read(&text, url, ctx.now, &self.control, &mut next_control)?;
            out.control_samples = s;
            out.control_counts = c;
            self.control = next_control;
        }
        self.canary = next;
        Ok(out)
    }

    async fn lookback(&mut self, _ctx: &PollContext, _window: Duration) -> Result<Option<Polled>> {
        Ok(None)
    }
}

/// The type a `# TYPE` line declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetricType {
    /// `counter`
    Counter,
    /// `gauge`
    Gauge,
    /// `histogram`
    Histogram,
    /// `summary`
    Summary,
    /// `untyped`, `unknown` or any other word.
    Untyped,
}

/// A parsed Prometheus text exposition (format 0.0.4; OpenMetrics text is read too: `# EOF`,
/// `# UNIT` and exemplars are skipped). Borrows the page: names and label values are slices of
/// it unless they hold escapes (`\\`, `\"`, `\n`).
///
/// ```
/// use cased_core::metrics::Exposition;
/// let page = "# TYPE http_requests_total counter\nhttp_requests_total{code=\"500\",path=\"/a\\\"b\"} 3\n";
/// let e = Exposition::parse(page).unwrap();
/// let s = e.series().next().unwrap();
/// assert_eq!((s.name(), s.value(), s.label("path")), ("http_requests_total", 3.0, Some("/a\"b")));
/// ```
#[derive(Debug, Default)]
pub struct Exposition<'a> {
    series: Vec<RawSeries<'a>>,
    labels: Vec<(&'a str, Cow<'a, str>)>,
    types: Vec<(&'a str, MetricType)>,
}

#[derive(Debug)]
struct RawSeries<'a> {
    name: &'a str,
    labels: (u32, u32),
    value: f64,
    timestamp: Option<f64>,
}

/// One series of an [`Exposition`].
#[derive(Debug, Clone, Copy)]
pub struct Series<'e, 'a> {
    page: &'e Exposition<'a>,
    raw: &'e RawSeries<'a>,
}

impl<'e, 'a> Series<'e, 'a> {
    /// The sample's name (`http_requests_total`, `latency_seconds_bucket`).
    #[must_use]
    pub fn name(&self) -> &'a str {
        self.raw.name
    }

    /// Its value (`NaN` and `±Inf` as written).
    #[must_use]
    pub fn value(&self) -> f64 {
        self.raw.value
    }

    /// Its timestamp as written, if any (milliseconds in the Prometheus format, seconds in
    /// OpenMetrics).
    #[must_use]
    pub fn timestamp(&self) -> Option<f64> {
        self.raw.timestamp
    }

    /// Its labels, in the page's order, unescaped.
    pub fn labels(&self) -> impl Iterator<Item = (&'e str, &'e str)> + 'e {
        let (a, b) = self.raw.labels;
        self.page.labels[a as usize..b as usize]
            .iter()
            .map(|(k, v)| (*k, v.as_ref()))
    }

    /// One label's value.
    #[must_use]
    pub fn label(&self, name: &str) -> Option<&'e str> {
        self.labels().find(|(k, _)| *k == name).map(|(_, v)| v)
    }
}

/// Where and why a page did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

impl<'a> Exposition<'a> {
    /// Parses a page.
    ///
    /// # Errors
    /// [`ParseError`] at the first malformed line.
    pub fn parse(text: &'a str) -> std::result::Result<Self, ParseError> {
        let mut page = Self {
            series: Vec::with_capacity(text.len() / 48),
            labels: Vec::with_capacity(text.len() / 24),
            types: Vec::new(),
        };
        for (i, line) in text.split('\n').enumerate() {
            page.line(line.strip_suffix('\r').unwrap_or(line))
                .map_err(|message| ParseError {
                    line: i + 1,
                    message,
                })?;
        }
        Ok(page)
    }

    /// Every series, in page order.
    pub fn series(&self) -> impl Iterator<Item = Series<'_, 'a>> + '_ {
        self.series
            .iter()
            .map(move |raw| Series { page: self, raw })
    }

    /// How many series.
    #[must_use]
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Whether the page has no series.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// The type declared for a metric family (`# TYPE name type`).
    #[must_use]
    pub fn metric_type(&self, family: &str) -> Option<MetricType> {
        self.types
            .iter()
            .find(|(n, _)| *n == family)
            .map(|(_, t)| *t)
    }

    fn line(&mut self, line: &'a str) -> std::result::Result<(), String> {
        let b = line.as_bytes();
        let mut i = skip_ws(b, 0);
        if i == b.len() {
            return Ok(());
        }
        if b[i] == b'#' {
            let mut words = line[i + 1..].split_ascii_whitespace();
            if words.next() == Some("TYPE")
                && let (Some(name), Some(t)) = (words.next(), words.next())
            {
                let t = match t {
                    "counter" => MetricType::Counter,
                    "gauge" => MetricType::Gauge,
                    "histogram" => MetricType::Histogram,
                    "summary" => MetricType::Summary,
                    _ => MetricType::Untyped,
                };
                self.types.push((name, t));
            }
            return Ok(());
        }
        let start = i;
        if !(b[i].is_ascii_alphabetic() || b[i] == b'_' || b[i] == b':') {
            return Err(if b[i] == b'{' {
                "a quoted (UTF-8) metric name is not supported".into()
            } else {
                format!("{:?} cannot start a metric name", b[i] as char)
            });
        }
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':') {
            i += 1;
        }
        let name = &line[start..i];
        let first_label = self.labels.len() as u32;
        i = skip_ws(b, i);
        if i < b.len() && b[i] == b'{' {
            i = self.label_set(line, i + 1)?;
        }
        let labels = (first_label, self.labels.len() as u32);
        let (value, i) = token(line, i).ok_or("missing value")?;
        let value = parse_float(value)?;
        let timestamp = match token(line, i) {
            None => None,
            Some(("#", _)) => None, // an OpenMetrics exemplar
            Some((t, i)) => {
                let ts = t
                    .parse::<f64>()
                    .map_err(|_| format!("{t:?} is not a timestamp"))?;
                match token(line, i) {
                    None | Some(("#", _)) => {}
                    Some((extra, _)) => {
                        return Err(format!("unexpected {extra:?} after the timestamp"));
                    }
                }
                Some(ts)
            }
        };
        self.series.push(RawSeries {
            name,
            labels,
            value,
            timestamp,
        });
        Ok(())
    }

    /// Reads `name="value", ...}` from `i` (after `{`); returns the index after `}`.
    fn label_set(&mut self, line: &'a str, mut i: usize) -> std::result::Result<usize, String> {
        let b = line.as_bytes();
        loop {
            i = skip_ws(b, i);
            match b.get(i) {
                None => return Err("the label set is not closed by `}`".into()),
                Some(b'}') => return Ok(i + 1),
                _ => {}
            }
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            if i == start || b[start].is_ascii_digit() {
                return Err(format!("expected a label name at column {}", start + 1));
            }
            let name = &line[start..i];
            i = skip_ws(b, i);
            if b.get(i) != Some(&b'=') {
                return Err(format!("expected `=` after the label {name:?}"));
            }
            i = skip_ws(b, i + 1);
            if b.get(i) != Some(&b'"') {
                return Err(format!(
                    "expected `\"` to open the value of the label {name:?}"
                ));
            }
            i += 1;
            let vstart = i;
            let mut escaped = false;
            loop {
                match b.get(i) {
                    None => return Err(format!("the value of the label {name:?} is not closed")),
                    Some(b'"') => break,
                    Some(b'\\') => {
                        escaped = true;
                        i += 2;
                    }
                    Some(_) => i += 1,
                }
            }
            let raw = &line[vstart..i];
            let value = if escaped {
                Cow::Owned(unescape(raw))
            } else {
                Cow::Borrowed(raw)
            };
            self.labels.push((name, value));
            i = skip_ws(b, i + 1);
            match b.get(i) {
                Some(b',') => i += 1,
                Some(b'}') => return Ok(i + 1),
                _ => return Err(format!("expected `,` or `}}` after the label {name:?}")),
            }
        }
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    i
}

/// The next whitespace-separated token from `i`, and the index after it.
fn token(line: &str, i: usize) -> Option<(&str, usize)> {
    let b = line.as_bytes();
    let start = skip_ws(b, i);
    let mut end = start;
    while end < b.len() && b[end] != b' ' && b[end] != b'\t' {
        end += 1;
    }
    (end > start).then(|| (&line[start..end], end))
}

/// Go float syntax: Rust's parser already reads `NaN`, `+Inf`, `-Inf` in any case.
fn parse_float(s: &str) -> std::result::Result<f64, String> {
    s.parse::<f64>()
        .map_err(|_| format!("{s:?} is not a number"))
}

fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PAGE: &str = r#"# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000

# Escaping in label values:
msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9

# Minimalistic line:
metric_without_timestamp_and_labels 12.47
something_weird{problem="division by zero"} +Inf -3982045
trailing_comma{a="1",} NaN

# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="0.1"} 33444
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.5"} 4773
rpc_duration_seconds_count 2693
openmetrics_total{a="b, c=d"} 5 # {trace_id="x"} 1 1.5
# EOF
"#;

    #[test]
    fn parses_the_reference_page_with_escapes_histograms_and_summaries() {
        let e = Exposition::parse(PAGE).unwrap();
        assert_eq!(e.len(), 14);
        let s: Vec<_> = e.series().collect();
        assert_eq!(
            (
                s[0].name(),
                s[0].label("code"),
                s[0].value(),
                s[0].timestamp()
            ),
            (
                "http_requests_total",
                Some("200"),
                1027.0,
                Some(1395066363000.0)
            )
        );
        assert_eq!(s[1].value(), 3.0);
        assert_eq!(s[2].label("path"), Some(r"C:\DIR\FILE.TXT"));
        assert_eq!(s[2].label("error"), Some("Cannot find file:\n\"FILE.TXT\""));
        assert_eq!(s[3].labels().count(), 0);
        assert_eq!(s[4].value(), f64::INFINITY);
        assert!(s[5].value().is_nan());
        assert_eq!(s[5].label("a"), Some("1"));
        assert_eq!(s[8].label("le"), Some("+Inf"));
        assert_eq!(
            (s[11].label("quantile"), s[12].label("quantile")),
            (Some("0.5"), None)
        );
        assert_eq!(
            (s[13].label("a"), s[13].value(), s[13].timestamp()),
            (Some("b, c=d"), 5.0, None),
            "commas and `=` inside values, exemplar skipped"
        );
        assert_eq!(
            e.metric_type("http_request_duration_seconds"),
            Some(MetricType::Histogram)
        );
        assert_eq!(
            e.metric_type("rpc_duration_seconds"),
            Some(MetricType::Summary)
        );
        assert_eq!(e.metric_type("nope"), None);
    }

    #[test]
    fn malformed_lines_are_named() {
        for (page, line, what) in [
            ("ok 1\nbad{a=\"1\" 2\n", 2, "`,` or `}`"),
            ("x{a=1} 2", 1, "`\"`"),
            ("x{a=\"1} 2", 1, "not closed"),
            ("x 1 2 3", 1, "after the timestamp"),
            ("x abc", 1, "not a number"),
            ("x", 1, "missing value"),
            ("{\"x\"} 1", 1, "quoted"),
            ("9x 1", 1, "cannot start"),
        ] {
            let e = Exposition::parse(page).unwrap_err();
            assert_eq!(e.line, line, "{page:?}");
            assert!(e.message.contains(what), "{page:?}: {e}");
        }
    }

    #[test]
    fn histogram_quantile_matches_promql() {
        // 100 observations: 50 ≤ 0.1, 40 in (0.1, 0.5], 10 in (0.5, 1].
        let mut b = vec![
            (0.1, 50.0),
            (0.5, 90.0),
            (1.0, 100.0),
            (f64::INFINITY, 100.0),
        ];
        assert!((bucket_quantile(0.5, &mut b).unwrap() - 0.1).abs() < 1e-12);
        assert!((bucket_quantile(0.25, &mut b).unwrap() - 0.05).abs() < 1e-12);
        assert!((bucket_quantile(0.7, &mut b).unwrap() - 0.3).abs() < 1e-12);
        assert!((bucket_quantile(0.95, &mut b).unwrap() - 0.75).abs() < 1e-12);
        // Observations past the last finite bound: the highest finite bound.
        let mut over = vec![(0.1, 1.0), (1.0, 2.0), (f64::INFINITY, 10.0)];
        assert_eq!(bucket_quantile(0.99, &mut over), Some(1.0));
        // No +Inf bucket, or no observations: no value.
        assert_eq!(bucket_quantile(0.5, &mut [(0.1, 1.0), (1.0, 2.0)]), None);
        assert_eq!(
            bucket_quantile(0.5, &mut [(0.1, 0.0), (f64::INFINITY, 0.0)]),
            None
        );
        // Non-monotonic sums are made monotonic; order of input does not matter.
        let mut messy = vec![(f64::INFINITY, 10.0), (0.5, 9.0), (1.0, 8.0)];
        assert!((bucket_quantile(0.5, &mut messy).unwrap() - 0.5 * 5.0 / 9.0).abs() < 1e-12);
    }

    fn plan(config: serde_json::Value) -> ScrapePlan {
        let c: ScrapeSourceConfig = serde_json::from_value(config).unwrap();
        let mut p = Problems::default();
        c.check(&mut p, "");
        p.finish("t").unwrap();
        ScrapePlan::new("app", &c).unwrap()
    }

    fn page(ok: u64, err: u64, buckets: [u64; 4], up: f64) -> String {
        format!(
            "# TYPE http_requests_total counter\n\
             http_requests_total{{code=\"200\"}} {ok}\n\
             http_requests_total{{code=\"500\"}} {err}\n\
             # TYPE latency_seconds histogram\n\
             latency_seconds_bucket{{le=\"0.1\"}} {}\nlatency_seconds_bucket{{le=\"0.5\"}} {}\n\
             latency_seconds_bucket{{le=\"1\"}} {}\nlatency_seconds_bucket{{le=\"+Inf\"}} {}\n\
             temperature{{room=\"a\"}} {up}\ntemperature{{room=\"b\"}} 1\n",
            buckets[0], buckets[1], buckets[2], buckets[3]
        )
    }

    #[test]
    fn rates_quantiles_counts_and_resets_between_scrapes() {
        let p = plan(json!({
            "url": "http://127.0.0.1:1/metrics",
            "metrics": {
                "rps": {"counter": "http_requests"},
                "p50_ms": {"histogram": "latency_seconds", "quantile": 0.5, "scale": 1000},
                "temp": {"gauge": "temperature", "match": {"room": {"not": "b"}}}
            },
            "counts": {"http": {"errors": {"counter": "http_requests_total", "match": {"code": {"regex": "5.."}}}, "requests": {"counter": "http_requests_total"}}}
        }));
        let mut state = State::default();
        let mut step = |text: &str, now: f64| {
            let mut next = State::default();
            let out = p.read(text, "u", now, &state, &mut next).unwrap();
            state = next;
            out
        };
        // First scrape: the gauge only.
        let (s, c) = step(&page(100, 0, [10, 10, 10, 10], 21.5), 1000.0);
        assert_eq!(s.len(), 1);
        assert_eq!(
            (
                s[0].metric.as_str(),
                s[0].value,
                s[0].labels.get("room").map(String::as_str)
            ),
            ("app.temp", 21.5, Some("a"))
        );
        assert!(c.is_empty());
        // 10 s later: 90 + 10 requests, 10 errors; 100 observations, half ≤ 0.1 s.
        let (s, c) = step(&page(190, 10, [60, 100, 110, 110], 22.0), 1010.0);
        let get = |s: &[Sample], m: &str| s.iter().find(|x| x.metric == m).map(|x| x.value);
        assert_eq!(get(&s, "app.rps"), Some(10.0));
        assert!((get(&s, "app.p50_ms").unwrap() - 100.0).abs() < 1e-9);
        assert_eq!(
            c,
            [CountsSample {
                metric: "app.http".into(),
                labels: Labels::new(),
                timestamp: 1010.0,
                counts: Counts {
                    errors: 10,
                    requests: 100
                }
            }]
        );
        // The service restarts: counters start again from 0 and count in full.
        let (s, c) = step(&page(15, 5, [0, 20, 20, 20], 22.0), 1020.0);
        assert_eq!(get(&s, "app.rps"), Some(2.0));
        assert!(
            (get(&s, "app.p50_ms").unwrap() - 300.0).abs() < 1e-9,
            "{s:?}"
        );
        assert_eq!(
            c[0].counts,
            Counts {
                errors: 5,
                requests: 20
            }
        );
        // A counter that is not on the page gives no sample; a missing errors series counts 0.
        let (s, c) = step("http_requests_total{code=\"200\"} 20\n", 1025.0);
        assert_eq!(
            (get(&s, "app.rps"), get(&s, "app.p50_ms")),
            (Some(1.0), None)
        );
        assert_eq!(
            c[0].counts,
            Counts {
                errors: 0,
                requests: 5
            }
        );
        let (s, c) = step("temperature{room=\"a\"} 1\n", 1026.0);
        assert_eq!((get(&s, "app.rps"), c.len()), (None, 0));
        let (s, _) = step(&page(15, 5, [0, 20, 20, 20], 22.0), 1027.0);
        assert_eq!(
            get(&s, "app.rps"),
            Some(20.0),
            "series back on the page count from 0"
        );
        // No traffic: a zero rate, no quantile, zero counts.
        let (s, c) = step(&page(15, 5, [0, 20, 20, 20], 22.0), 1030.0);
        assert_eq!(get(&s, "app.rps"), Some(0.0));
        assert_eq!(get(&s, "app.p50_ms"), None);
        assert_eq!(
            c[0].counts,
            Counts {
                errors: 0,
                requests: 0
            }
        );
    }

    #[test]
    fn a_series_that_appears_between_scrapes_counts_from_zero() {
        let p = plan(
            json!({"url": "http://x/m", "counts": {"http": {"errors": {"counter": "req_total", "match": {"code": "500"}}, "requests": {"counter": "req_total"}}}}),
        );
        let (a, mut b, mut c) = (State::default(), State::default(), State::default());
        p.read("req_total{code=\"200\"} 10\n", "u", 1.0, &a, &mut b)
            .unwrap();
        let (_, counts) = p
            .read(
                "req_total{code=\"200\"} 20\nreq_total{code=\"500\"} 2\n",
                "u",
                2.0,
                &b,
                &mut c,
            )
            .unwrap();
        assert_eq!(
            counts[0].counts,
            Counts {
                errors: 2,
                requests: 12
            }
        );
    }

    #[test]
    fn errors_never_exceed_requests() {
        let p = plan(
            json!({"url": "http://x/m", "counts": {"http": {"errors": {"counter": "req_total", "match": {"code": "500"}}, "requests": {"counter": "ok"}}}}),
        );
        let (mut a, mut b) = (State::default(), State::default());
        p.read(
            "req_total{code=\"500\"} 1\nok_total 1\n",
            "u",
            1.0,
            &State::default(),
            &mut a,
        )
        .unwrap();
        let (_, counts) = p
            .read(
                "req_total{code=\"500\"} 5\nok_total 2\n",
                "u",
                2.0,
                &a,
                &mut b,
            )
            .unwrap();
        assert_eq!(
            counts[0].counts,
            Counts {
                errors: 1,
                requests: 1
            }
        );
    }

    #[test]
    fn config_errors_name_their_fields() {
        let c: ScrapeSourceConfig = serde_json::from_value(json!({
            "url": "ftp://x",
            "control_url": "http://u:pw@x/metrics",
            "timeout": "0s",
            "metrics": {
                "two": {"gauge": "a", "counter": "b"},
                "h": {"histogram": "lat", "quantile": 1.5},
                "g": {"gauge": "9bad", "quantile": 0.5, "scale": 0},
                "r": {"counter": "x", "match": {"code": {"regex": "5(("}}},
                "bad key": {"gauge": "x"}
            }
        }))
        .unwrap();
        let mut p = Problems::default();
        c.check(&mut p, "sources[1]");
        for f in [
            "sources[1].url",
            "sources[1].control_url",
            "sources[1].timeout",
            "sources[1].metrics.two",
            "sources[1].metrics.h.quantile",
            "sources[1].metrics.g",
            "sources[1].metrics.g.quantile",
            "sources[1].metrics.g.scale",
            "sources[1].metrics.r.match.code",
            "sources[1].metrics.bad key",
        ] {
            assert!(p.has(f), "{f}: {p:?}");
        }
        let e = serde_json::from_value::<ScrapeSourceConfig>(json!({"url": "http://x", "metrics": {"a": {"gauge": "x", "match": {"c": {"regx": "5"}}}}})).unwrap_err();
        assert!(e.to_string().contains("regx"), "{e}");
        let m: ScrapeMetric = serde_json::from_value(json!({"counter": "x", "match": {"a": "1", "b": {"not": "2"}, "c": {"not_regex": "3.*"}}})).unwrap();
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({"counter": "x", "match": {"a": "1", "b": {"not": "2"}, "c": {"not_regex": "3.*"}}})
        );
    }

    #[tokio::test]
    async fn polls_both_tracks_with_headers_and_refuses_bad_pages() {
        let mut server = mockito::Server::new_async().await;
        let canary = server
            .mock("GET", "/canary")
            .match_header("authorization", "Bearer s3cret")
            .with_body("up 1\nreq_total 10\n")
            .expect(2)
            .create_async()
            .await;
        let control = server
            .mock("GET", "/stable")
            .with_body("up 2\nreq_total 50\n")
            .expect(2)
            .create_async()
            .await;
        let _big = server
            .mock("GET", "/big")
            .with_body("x 1\n".repeat(300))
            .create_async()
            .await;
        let _down = server
            .mock("GET", "/down")
            .with_status(503)
            .with_body("no")
            .create_async()
            .await;
        let _bad = server
            .mock("GET", "/bad")
            .with_body("x{ 1\n")
            .create_async()
            .await;
        let config = |url: &str, control: Option<&str>| {
            let mut c = json!({
                "type": "scrape", "name": "app", "url": format!("{}{url}", server.url()), "max_bytes": 1000,
                "headers": {"Authorization": "Bearer s3cret"},
                "metrics": {"up": {"gauge": "up"}, "rps": {"counter": "req"}}
            });
            if let Some(u) = control {
                c["control_url"] = json!(format!("{}{u}", server.url()));
            }
            crate::metrics::SourceConfig::from_value(c)
                .unwrap()
                .plan()
                .unwrap()
        };
        let plan = config("/canary", Some("/stable"));
        assert!(!plan.can_look_back());
        let mut src = plan.start();
        let ctx = |now| PollContext {
            now,
            ..PollContext::default()
        };
        let first = src.poll(&ctx(100.0)).await.unwrap();
        assert_eq!((first.samples.len(), first.control_samples.len()), (1, 1));
        let second = src.poll(&ctx(110.0)).await.unwrap();
        let rps = |s: &[Sample]| s.iter().find(|s| s.metric == "app.rps").map(|s| s.value);
        assert_eq!(
            (rps(&second.samples), rps(&second.control_samples)),
            (Some(0.0), Some(0.0))
        );
        let up = |s: &[Sample]| s.iter().find(|s| s.metric == "app.up").map(|s| s.value);
        assert_eq!(
            (up(&second.samples), up(&second.control_samples)),
            (Some(1.0), Some(2.0))
        );
        assert_eq!(
            src.lookback(&ctx(110.0), Duration::from_secs(60))
                .await
                .unwrap(),
            None
        );
        canary.assert_async().await;
        control.assert_async().await;
        for (url, code, text) in [
            ("/big", "query", "more than 1000 bytes"),
            ("/down", "server", "503"),
            ("/bad", "query", "line 1"),
        ] {
            let e = config(url, None).start().poll(&ctx(1.0)).await.unwrap_err();
            assert_eq!(e.kind().code(), code, "{url}: {e}");
            assert!(
                e.to_string().contains(text) && !e.to_string().contains("s3cret"),
                "{url}: {e}"
            );
        }
        // The control failing fails the poll, and the canary's counters stay where they were.
        let mut src = config("/canary", Some("/down")).start();
        assert!(src.poll(&ctx(1.0)).await.is_err());
    }
}
