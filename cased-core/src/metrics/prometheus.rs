//! [`PrometheusSource`]: samples from Prometheus' HTTP API (`/api/v1/query`,
//! `/api/v1/query_range`).

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use super::{Labels, Sample};
use crate::error::{Error, Result};
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
}

impl fmt::Debug for PrometheusSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrometheusSource")
            .field("base", &self.base.as_str())
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// Configures a [`PrometheusSource`].
#[must_use]
#[derive(Debug)]
pub struct PrometheusSourceBuilder {
    url: String,
    authorization: Option<Secret>,
    timeout: Duration,
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

    /// How long one query may take (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Builds the source.
    ///
    /// # Errors
    /// [`Error::Validation`] when the URL is not an absolute http(s) URL, the timeout is 0, or
    /// the authorization value cannot be sent as a header.
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
        if self.timeout.is_zero() {
            return Err(Error::invalid("timeout", "must be more than 0"));
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
            .build()
            .map_err(|e| Error::invalid("client", e.to_string()))?;
        Ok(PrometheusSource {
            http,
            base,
            authorization: self.authorization,
        })
    }
}

impl PrometheusSource {
    /// A builder for the server at `url` (e.g. `http://prometheus:9090`).
    pub fn builder(url: impl Into<String>) -> PrometheusSourceBuilder {
        PrometheusSourceBuilder {
            url: url.into(),
            authorization: None,
            timeout: Duration::from_secs(30),
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
        let samples = parse_result(metric, &data)?;
        if samples.is_empty() {
            return Err(Error::NoData(format!(
                "the query {promql:?} returned no points between {} and {}",
                fmt_ts(start),
                fmt_ts(end)
            )));
        }
        Ok(samples)
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
        let resp = req.send().await.map_err(|e| {
            if e.is_timeout() {
                Error::Timeout(format!("Prometheus at {}", self.base))
            } else {
                Error::Transport(format!("Prometheus at {}: {}", self.base, chain(&e)))
            }
        })?;
        let status = resp.status().as_u16();
        let text = resp
            .text()
            .await
            .map_err(|e| Error::Transport(format!("reading Prometheus' answer: {}", chain(&e))))?;
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
                Some(b) if b["status"] == "success" => Ok(b["data"].clone()),
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
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
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

fn parse_result(metric: &str, data: &Value) -> Result<Vec<Sample>> {
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
}
