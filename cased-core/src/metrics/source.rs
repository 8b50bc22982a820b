//! Metric sources a session polls: the [`Source`] trait, what a poll returns ([`Polled`]), and
//! the configuration model (`MonitorConfig.sources`), one [`SourceConfig`](super::SourceConfig) per entry:
//!
//! ```json
//! {"type": "prometheus", "name": "prom", "url": "http://prometheus:9090", "step": "10s",
//!  "queries": {"p95_ms": "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{app=\"{{repository}}\", track=\"{{track}}\"}[1m]))) * 1000"},
//!  "counts": {"http": {"errors": "sum(increase(http_requests_total{code=~\"5..\", track=\"{{track}}\"}[10s]))",
//!                      "requests": "sum(increase(http_requests_total{track=\"{{track}}\"}[10s]))"}},
//!  "control": {"track": "stable"}}
//! {"type": "scrape", "name": "app", "url": "http://127.0.0.1:8080/metrics", "every": "5s",
//!  "metrics": {"rps": {"counter": "http_requests_total"},
//!              "p95_ms": {"histogram": "http_request_duration_seconds", "quantile": 0.95, "scale": 1000}},
//!  "counts": {"http": {"errors": {"counter": "http_requests_total", "match": {"code": {"regex": "5.."}}},
//!                      "requests": {"counter": "http_requests_total"}}}}
//! {"type": "host"}
//! ```
//!
//! A [`SourceConfig`](super::SourceConfig) is validated and turned into a [`SourcePlan`](super::SourcePlan) once per monitor (it holds
//! the shared HTTP client); each session calls [`SourcePlan::start`](super::SourcePlan::start) for its own [`Source`],
//! which keeps per-session state (counter values, the last poll's time). Sample metrics are
//! named `<source name>.<key>`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};
use serde_json::Value;

use super::Counts;
use super::Sample;
use crate::error::{Error, Problems, Result};
use crate::event::DeploymentEvent;
use crate::secret::Secret;

/// What one poll of a source brought: values, counts, and the same read from the control
/// (stable) track when one is configured.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Polled {
    /// Value samples, each metric named `<source name>.<key>`.
    pub samples: Vec<Sample>,
    /// `(errors, requests)` over an interval ending at `timestamp`, for error-rate detectors.
    pub counts: Vec<CountsSample>,
    /// The same metrics read from the control track.
    pub control_samples: Vec<Sample>,
    /// The same counts read from the control track.
    pub control_counts: Vec<CountsSample>,
}

impl Polled {
    /// Whether the poll brought nothing at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
            && self.counts.is_empty()
            && self.control_samples.is_empty()
            && self.control_counts.is_empty()
    }

    /// Appends everything `other` brought.
    pub fn extend(&mut self, other: Self) {
        self.samples.extend(other.samples);
        self.counts.extend(other.counts);
        self.control_samples.extend(other.control_samples);
        self.control_counts.extend(other.control_counts);
    }
}

/// `(errors, requests)` of one metric over the interval ending at `timestamp`.
#[derive(Debug, Clone, PartialEq)]
pub struct CountsSample {
    /// `<source name>.<key>`.
    pub metric: String,
    /// The series' labels (empty for the usual `sum(...)` queries and for scrapes).
    pub labels: super::Labels,
    /// End of the interval, seconds since the Unix epoch.
    pub timestamp: f64,
    /// The counts.
    pub counts: Counts,
}

/// What a poll knows about the moment and the deployment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PollContext {
    /// Now, in seconds since the Unix epoch (a virtual clock in replay).
    pub now: f64,
    /// Template variables: `repository`, `environment`, `commit_sha`, `version` and
    /// `metadata.KEY` for every string, number or boolean metadata key.
    pub vars: BTreeMap<String, String>,
}

impl PollContext {
    /// A context at `now` with the variables of `event` (absent fields are absent variables).
    #[must_use]
    pub fn from_event(event: &DeploymentEvent, now: f64) -> Self {
        let mut vars = BTreeMap::new();
        if let Some(r) = event.repository_full_name() {
            vars.insert("repository".to_owned(), r.to_owned());
        }
        if let Some(e) = event.environment() {
            vars.insert("environment".to_owned(), e.to_owned());
        }
        if let Some(c) = event.commit_sha() {
            vars.insert("commit_sha".to_owned(), c.to_owned());
        }
        for (k, v) in event.event_metadata().into_iter().flatten() {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => continue,
            };
            if k == "version" {
                vars.insert("version".to_owned(), text.clone());
            }
            vars.insert(format!("metadata.{k}"), text);
        }
        Self { now, vars }
    }
}

/// A source of metrics, polled by a session. One value per session: it remembers what it
/// already returned (counter values, the last range's end).
///
/// Implementations bound every request by a timeout and every body by a size limit, and
/// never panic: a poll that cannot be done is an `Err`. A failed poll changes no state, so
/// the next one covers the gap.
#[async_trait::async_trait]
pub trait Source: std::fmt::Debug + Send + Sync {
    /// Everything new since the previous poll (the first poll: the current state, or the
    /// last step for range queries).
    async fn poll(&mut self, ctx: &PollContext) -> Result<Polled>;

    /// The same metrics over `window` before `ctx.now`, for a pre-deploy baseline;
    /// `Ok(None)` when the source cannot look back (scrape, host).
    async fn lookback(&mut self, ctx: &PollContext, window: Duration) -> Result<Option<Polled>>;
}

/// `prefix.name`, or `name` alone.
pub(crate) fn field(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Checks an absolute http(s) URL.
pub(crate) fn check_url(p: &mut Problems, at: String, url: &str) {
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => {
            if u.password().is_some() {
                p.add(
                    at,
                    "holds a password: give credentials in `headers`, which are kept secret",
                );
            }
        }
        Ok(_) => p.add(at, "must be an http or https URL"),
        Err(e) => p.add(at, format!("not a URL: {e}")),
    }
}

/// Checks header names and values (values are secrets: never quoted).
pub(crate) fn check_headers(p: &mut Problems, prefix: &str, headers: &BTreeMap<String, Secret>) {
    for (k, v) in headers {
        if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err() {
            p.add(
                field(prefix, &format!("headers.{k}")),
                "is not a valid header name",
            );
        } else if reqwest::header::HeaderValue::from_str(v.expose()).is_err() {
            p.add(
                field(prefix, &format!("headers.{k}")),
                "the value is not a valid header value",
            );
        }
    }
}

/// Headers to send, values marked sensitive.
pub(crate) fn header_map(headers: &BTreeMap<String, Secret>) -> Result<reqwest::header::HeaderMap> {
    let mut map = reqwest::header::HeaderMap::new();
    for (k, v) in headers {
        let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| Error::invalid(format!("headers.{k}"), "is not a valid header name"))?;
        let mut value = reqwest::header::HeaderValue::from_str(v.expose()).map_err(|_| {
            Error::invalid(
                format!("headers.{k}"),
                "the value is not a valid header value",
            )
        })?;
        value.set_sensitive(true);
        map.insert(name, value);
    }
    Ok(map)
}

/// Reads a response body of at most `max` bytes (checked against `Content-Length` first, then
/// while reading).
pub(crate) async fn read_body(
    mut resp: reqwest::Response,
    max: u64,
    what: &str,
) -> Result<Vec<u8>> {
    let too_large = || Error::Query {
        status: 200,
        error_type: "too_large".into(),
        message: format!("{what} sent more than {max} bytes"),
    };
    if resp.content_length().is_some_and(|n| n > max) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| request_error(&e, what))? {
        if (body.len() + chunk.len()) as u64 > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A reqwest error as a cased error: timeouts apart, with the whole cause chain.
pub(crate) fn request_error(e: &reqwest::Error, what: &str) -> Error {
    if e.is_timeout() {
        Error::Timeout(what.to_owned())
    } else {
        Error::Transport(format!("{what}: {}", crate::checks::error_chain(e)))
    }
}

/// Serde adapter: header values are secrets, serialized as `[redacted]`.
pub(crate) mod secret_map {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        v: &BTreeMap<String, Secret>,
        s: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        s.collect_map(v.keys().map(|k| (k, "[redacted]")))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<BTreeMap<String, Secret>, D::Error> {
        Ok(BTreeMap::<String, String>::deserialize(d)?
            .into_iter()
            .map(|(k, v)| (k, Secret::new(v)))
            .collect())
    }
}

/// A query with `{{variable}}` placeholders, parsed once.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Template(Vec<Part>);

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Var(String),
}

/// The variables every deployment may fill (plus `metadata.KEY`).
pub(crate) const BUILTIN_VARS: [&str; 4] = ["repository", "environment", "commit_sha", "version"];

impl Template {
    /// Parses `{{name}}` placeholders (spaces inside the braces allowed).
    pub(crate) fn parse(text: &str) -> std::result::Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or_else(|| {
                format!(
                    "`{{{{` at {} is not closed by `}}}}`",
                    text.len() - rest.len() + open
                )
            })?;
            let name = after[..close].trim();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
            {
                return Err(format!("{{{{{name}}}}} is not a variable name"));
            }
            parts.push(Part::Var(name.to_owned()));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Self(parts))
    }

    /// The variables it uses.
    pub(crate) fn vars(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|p| {
            if let Part::Var(v) = p {
                Some(v.as_str())
            } else {
                None
            }
        })
    }

    /// Fills the placeholders, values inserted verbatim; `Err(name)` for a variable without a
    /// value.
    pub(crate) fn render(
        &self,
        vars: &dyn Fn(&str) -> Option<String>,
    ) -> std::result::Result<String, String> {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Var(v) => out.push_str(&vars(v).ok_or_else(|| v.clone())?),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn templates_parse_render_and_name_missing_variables() {
        let t =
            Template::parse("up{app=\"{{ repository }}\", v=\"{{metadata.version}}\"}").unwrap();
        assert_eq!(
            t.vars().collect::<Vec<_>>(),
            ["repository", "metadata.version"]
        );
        let vars: BTreeMap<String, String> =
            [("repository".to_owned(), "acme/web".to_owned())].into();
        let get = |k: &str| vars.get(k).cloned();
        assert_eq!(t.render(&get).unwrap_err(), "metadata.version");
        let vars2: BTreeMap<String, String> = [
            ("repository".to_owned(), "a".to_owned()),
            ("metadata.version".to_owned(), "1.2".to_owned()),
        ]
        .into();
        assert_eq!(
            t.render(&|k| vars2.get(k).cloned()).unwrap(),
            "up{app=\"a\", v=\"1.2\"}"
        );
        assert!(
            Template::parse("x{{repository")
                .unwrap_err()
                .contains("not closed")
        );
        assert!(Template::parse("x{{ }}").is_err());
        assert_eq!(
            Template::parse("sum(rate(x[5m]))").unwrap().vars().count(),
            0
        );
    }

    #[test]
    fn the_context_is_filled_from_the_event() {
        let e = DeploymentEvent::builder("Deploy v2")
            .repository("acme/web")
            .commit_sha("abcdef1")
            .environment("prod")
            .metadata_entry("version", "2.0.1")
            .metadata_entry("replicas", 3)
            .metadata_entry("nested", json!({"x": 1}))
            .build()
            .unwrap();
        let ctx = PollContext::from_event(&e, 100.0);
        let v = |k: &str| ctx.vars.get(k).map(String::as_str);
        assert_eq!(v("repository"), Some("acme/web"));
        assert_eq!(v("environment"), Some("prod"));
        assert_eq!(v("commit_sha"), Some("abcdef1"));
        assert_eq!(v("version"), Some("2.0.1"));
        assert_eq!(v("metadata.replicas"), Some("3"));
        assert_eq!(v("metadata.nested"), None);
        assert_eq!(ctx.now, 100.0);
    }
}
