//! Anomaly detectors: mirrors `cased_core::detect` — one streaming detector built from a
//! `DetectorConfig` (the entries of a monitor's `detectors`), fed value by value or with a batch.

use cased_core::detect::{Detection, DetectorKind};
use cased_core::{
    ChangepointDetector, CusumDetector, DetectorConfig as CoreConfig, EwmaDetector, Finding, SeverityPolicy,
    SpikeDetector, ThresholdDetector, TrendDetector,
};
use napi::bindgen_prelude::{Either, Float64Array};
use napi::{Env, Result};
use napi_derive::napi;
use serde_json::Value;

use crate::errors::to_js_error;
use crate::js::Json;

/// The keys every detector configuration has; every other key is a setting of the detector
/// named by `type` (see the core's documentation of each, e.g. `threshold` for `spike`,
/// `upper` / `trigger` / `window` for `threshold`). Keys are the wire (snake_case) names.
///
/// ```js
/// new Detector({ type: 'spike', metric: 'latency_ms', threshold: 5 })
/// new Detector({ type: 'threshold', metric: 'cpu', upper: 90, trigger: 3, window: 5 })
/// ```
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorConfig {
    /// The detector. `baseline` and `error_rate` compare against a baseline and run inside a
    /// session (configure them in `MonitorConfig.detectors`); the others stream.
    #[napi(
        js_name = "type",
        ts_type = "'threshold' | 'spike' | 'cusum' | 'ewma' | 'trend' | 'changepoint' | 'baseline' | 'error_rate'"
    )]
    pub kind: String,
    /// The metric it watches (its findings name it).
    pub metric: String,
    /// The name its findings carry (default: the type).
    pub name: Option<String>,
    /// Severity rules: `{ warning, critical, emergency }`, each `{ min_effect, min_confidence }`
    /// (default: the detector's own).
    #[napi(ts_type = "Record<string, { min_effect: number; min_confidence?: number } | null>")]
    pub severity: Option<Value>,
}

/// One streaming anomaly detector (threshold, spike, CUSUM, EWMA, trend or changepoint): values
/// in, findings out — the same detectors and results as in Rust and Python.
///
/// ```js
/// const spike = new Detector({ type: 'spike', metric: 'latency_ms' })
/// for (const x of latencies) {
///   const finding = spike.update(x)
///   if (finding) console.log(finding.severity, finding.message)
/// }
/// // or all at once, from an array or a Float64Array:
/// const findings = new Detector({ type: 'cusum', metric: 'latency_ms' }).detect(latencies)
/// ```
#[napi]
#[derive(Debug)]
pub struct Detector {
    metric: String,
    name: String,
    policy: SeverityPolicy,
    inner: Box<dyn cased_core::detect::Detector>,
}

#[napi]
impl Detector {
    /// Builds the detector. Throws a `validation` error naming each bad key or value by its
    /// path (`threshold`, `type`, or `config` for the object as a whole); `baseline` and
    /// `error_rate` are refused on `type` (they need a baseline: use them in a monitor).
    #[napi(constructor, ts_args_type = "config: DetectorConfig & Record<string, unknown>")]
    pub fn new(env: &Env, config: Option<Value>) -> Result<Self> {
        build(config.unwrap_or(Value::Null)).map_err(|e| to_js_error(env, e))
    }

    /// The metric it watches.
    #[napi(getter)]
    pub fn metric(&self) -> String {
        self.metric.clone()
    }

    /// The name its findings carry.
    #[napi(getter)]
    pub fn name(&self) -> String {
        self.name.clone()
    }

    /// A score for the last value: below 1 is normal, 1 or more means the detector alarmed.
    /// 0 before any value.
    #[napi(getter)]
    pub fn score(&self) -> f64 {
        self.inner.score()
    }

    /// Feeds one value; returns the finding when this value makes the detector fire (or, for
    /// `threshold`, resolve: `kind: 'resolved'`), `null` otherwise. Throws a `validation`
    /// error on `value` when `x` is not finite (the detector is unchanged).
    #[napi(ts_return_type = "Finding | null")]
    pub fn update(&mut self, env: &Env, x: f64) -> Result<Option<Json>> {
        match self.inner.update(x) {
            Ok(d) => Ok(d.map(|d| finding_json(&self.finding(d)))),
            Err(e) => Err(to_js_error(env, e)),
        }
    }

    /// Feeds every value in order, continuing from the current state, and returns every
    /// finding: the same as calling `update` on each. Throws a `validation` error on
    /// `values[i]` at the first value that is not finite (the values before it are consumed).
    #[napi(ts_args_type = "values: number[] | Float64Array", ts_return_type = "Array<Finding>")]
    pub fn detect(&mut self, env: &Env, values: Either<Vec<f64>, Float64Array>) -> Result<Json> {
        let detections = match &values {
            Either::A(v) => self.inner.detect(v),
            Either::B(v) => self.inner.detect(v),
        };
        match detections {
            Ok(ds) => {
                let findings: Vec<Finding> = ds.into_iter().map(|d| self.finding(d)).collect();
                Ok(Json(serde_json::to_string(&findings).expect("findings always serialize")))
            }
            Err(e) => Err(to_js_error(env, e)),
        }
    }

    /// Forgets every value seen (the configuration stays).
    #[napi]
    pub fn reset(&mut self) {
        self.inner.reset();
    }
}

impl Detector {
    fn finding(&self, d: Detection) -> Finding {
        Finding::from_detection(&self.metric, &self.name, d, &self.policy)
    }
}

fn finding_json(finding: &Finding) -> Json {
    Json(serde_json::to_string(finding).expect("findings always serialize"))
}

/// Reads the configuration with the core's model (`DetectorConfig::from_value`) and builds the
/// streaming detector it names.
fn build(config: Value) -> cased_core::Result<Detector> {
    let config = CoreConfig::from_value(config)?;
    let inner: Box<dyn cased_core::detect::Detector> = match config.kind {
        DetectorKind::Threshold(k) => Box::new(ThresholdDetector::new(k)?),
        DetectorKind::Spike(k) => Box::new(SpikeDetector::new(k)?),
        DetectorKind::Cusum(k) => Box::new(CusumDetector::new(k)?),
        DetectorKind::Ewma(k) => Box::new(EwmaDetector::new(k)?),
        DetectorKind::Trend(k) => Box::new(TrendDetector::new(k)?),
        DetectorKind::Changepoint(k) => Box::new(ChangepointDetector::new(k)?),
        ref other => {
            return Err(cased_core::Error::Validation(cased_core::ValidationErrors {
                subject: "detector configuration".to_owned(),
                errors: vec![cased_core::FieldError::new(
                    "type",
                    format!(
                        "`{}` compares against a baseline and is not a streaming detector: configure it in a monitor's `detectors`",
                        other.type_name()
                    ),
                )],
            }));
        }
    };
    let policy = config.severity.unwrap_or_else(|| inner.default_severity());
    Ok(Detector { name: config.name().to_owned(), metric: config.metric, policy, inner })
}

