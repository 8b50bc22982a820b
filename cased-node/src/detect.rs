//! Anomaly detectors: mirrors `cased_core::detect` — one detector built from a
//! `DetectorConfig` (the entries of a monitor's `detectors`), fed value by value or with a batch,
//! and the one-off comparisons `compare` / `compareErrorRates` (the core's `compare_values` /
//! `compare_counts`) for callers who hold their own baseline.

use cased_core::detect::{
    BuiltDetector, Detection, IndexedFinding, compare_counts, compare_values,
    segment as segment_values,
};
use cased_core::{
    BaselineComparisonDetector, Counts as CoreCounts, DetectorConfig as CoreConfig, FieldError,
    SeverityPolicy, ValidationErrors,
};
use napi::bindgen_prelude::{
    Either, Float64Array, FromNapiValue, JsObjectValue, JsValue, Object, Unknown,
};
use napi::{Env, Result, ValueType};
use napi_derive::napi;
use serde_json::Value;

use crate::client::{number, option, string, type_name};
use crate::errors::to_js_error;
use crate::js::Json;
use crate::js::JsonArg;

/// The keys every detector configuration has; every other key is a setting of the detector
/// named by `type` (see the core's documentation of each, e.g. `threshold` for `spike`,
/// `upper` / `trigger` / `window` for `threshold`, `allowed_change` for `baseline`). Keys are
/// the wire (snake_case) names.
///
/// ```js
/// new Detector({ type: 'spike', metric: 'latency_ms', threshold: 5 })
/// new Detector({ type: 'threshold', metric: 'cpu', upper: 90, trigger: 3, window: 5 })
/// new Detector({ type: 'baseline', metric: 'latency_ms', allowed_change: 0.1 }) // then setBaseline
/// ```
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorConfig {
    /// The detector. `baseline` compares the values fed with a baseline (give it one with
    /// `Detector.setBaseline`, or configure it in `MonitorConfig.detectors`); `error_rate`
    /// judges `(errors, requests)` counts, not values: use `compareErrorRates` or a monitor
    /// (`new Detector` refuses it). The others stream.
    #[napi(
        js_name = "type",
        ts_type = "'threshold' | 'spike' | 'cusum' | 'ewma' | 'trend' | 'changepoint' | 'likelihood' | 'context' | 'baseline' | 'error_rate'"
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

/// The detector behind a `Detector`: a streaming one, or a baseline comparison (which also
/// takes a baseline).
#[derive(Debug)]
enum Inner {
    Stream(Box<dyn cased_core::detect::Detector>),
    Baseline(BaselineComparisonDetector),
    /// Boxed: the largest detector by far.
    Shift(Box<cased_core::detect::ShiftDetector>),
}

impl Inner {
    fn detector(&mut self) -> &mut dyn cased_core::detect::Detector {
        match self {
            Self::Stream(d) => d.as_mut(),
            Self::Baseline(d) => d,
            Self::Shift(d) => d.as_mut(),
        }
    }

    fn score(&self) -> f64 {
        match self {
            Self::Stream(d) => d.score(),
            Self::Baseline(d) => cased_core::detect::Detector::score(d),
            Self::Shift(d) => cased_core::detect::Detector::score(&**d),
        }
    }
}

/// One anomaly detector: values in, findings out — the same detectors and results as in Rust
/// and Python. Streaming types (threshold, spike, CUSUM, EWMA, trend, changepoint, likelihood, context) judge each
/// value as it comes; a `baseline` detector compares the values fed with the baseline given to
/// `setBaseline` (Mann–Whitney U, Hodges–Lehmann shift, Brown–Forsythe spread), looking once
/// `min_samples` values are in and again each time the window grows by `look_growth`, and
/// fires at most once until `reset`.
///
/// ```js
/// const spike = new Detector({ type: 'spike', metric: 'latency_ms' })
/// for (const x of latencies) {
///   const finding = spike.update(x)
///   if (finding) console.log(finding.severity, finding.message)
/// }
/// // or all at once, from an array or a Float64Array:
/// const findings = new Detector({ type: 'cusum', metric: 'latency_ms' }).detect(latencies)
///
/// const shift = new Detector({ type: 'baseline', metric: 'latency_ms', allowed_change: 0.1 })
/// shift.setBaseline(lastWeek)
/// const [regression] = shift.detect(today)
/// ```
#[napi]
#[derive(Debug)]
pub struct Detector {
    config: CoreConfig,
    policy: SeverityPolicy,
    inner: Inner,
}

#[napi]
impl Detector {
    /// Builds the detector. Throws a `validation` error naming each bad key or value by its
    /// path (`threshold`, `type`, or `config` for the object as a whole); `error_rate` is
    /// refused on `type` (it judges counts: use `compareErrorRates`).
    #[napi(
        constructor,
        ts_args_type = "config: DetectorConfig & Record<string, unknown>"
    )]
    pub fn new(env: &Env, config: Option<JsonArg>) -> Result<Self> {
        build(config.map_or(Value::Null, |j| j.0)).map_err(|e| to_js_error(env, e))
    }

    /// The metric it watches.
    #[napi(getter)]
    pub fn metric(&self) -> String {
        self.config.metric.clone()
    }

    /// The name its findings carry.
    #[napi(getter)]
    pub fn name(&self) -> String {
        self.config.name().to_owned()
    }

    /// A score for the last value (for `baseline`, the last look): below 1 is normal, 1 or
    /// more means the detector alarmed. 0 before any value.
    #[napi(getter)]
    pub fn score(&self) -> f64 {
        self.inner.score()
    }

    /// Feeds one value; returns the finding when this value makes the detector fire (or, for
    /// `threshold`, resolve: `kind: 'resolved'`), `null` otherwise. Throws a `validation`
    /// error on `value` when `x` is not finite (the detector is unchanged).
    #[napi(catch_unwind, ts_return_type = "(Finding & { index: number }) | null")]
    pub fn update(&mut self, env: &Env, x: f64) -> Result<Option<Json>> {
        match self.inner.detector().update(x) {
            Ok(d) => Ok(d.map(|d| {
                Json(serde_json::to_string(&self.finding(d)).expect("findings always serialize"))
            })),
            Err(e) => Err(to_js_error(env, e)),
        }
    }

    /// Feeds every value in order, continuing from the current state, and returns every
    /// finding: the same as calling `update` on each. Throws a `validation` error on
    /// `values[i]` at the first value that is not finite (the values before it are consumed).
    #[napi(
        catch_unwind,
        ts_args_type = "values: number[] | Float64Array",
        ts_return_type = "Array<Finding & { index: number }>"
    )]
    pub fn detect(&mut self, env: &Env, values: Either<Vec<f64>, Float64Array>) -> Result<Json> {
        let detections = self.inner.detector().detect(slice(&values));
        match detections {
            Ok(ds) => {
                let findings: Vec<IndexedFinding> =
                    ds.into_iter().map(|d| self.finding(d)).collect();
                Ok(Json(
                    serde_json::to_string(&findings).expect("findings always serialize"),
                ))
            }
            Err(e) => Err(to_js_error(env, e)),
        }
    }

    /// Forgets every value seen (the configuration, and a baseline, stay).
    #[napi]
    pub fn reset(&mut self) {
        self.inner.detector().reset();
    }

    /// Gives a `baseline` or `shift` detector its baseline values, oldest first (replacing any
    /// earlier baseline; a `baseline` detector keeps the values fed so far, a `shift` detector
    /// starts again after the new baseline). Throws a `validation` error on `type` for any
    /// other type of detector, and for empty or non-finite values.
    #[napi(catch_unwind, ts_args_type = "values: number[] | Float64Array")]
    pub fn set_baseline(
        &mut self,
        env: &Env,
        values: Either<Vec<f64>, Float64Array>,
    ) -> Result<()> {
        let result = match &mut self.inner {
            Inner::Baseline(d) => d.set_baseline(slice(&values)),
            Inner::Shift(d) => d.set_baseline(slice(&values)),
            Inner::Stream(_) => Err(invalid(
                "detector",
                "type",
                format!(
                    "only baseline and shift detectors take a baseline, this one is {:?}",
                    self.config.kind.type_name()
                ),
            )),
        };
        result.map_err(|e| to_js_error(env, e))
    }
}

impl Detector {
    fn finding(&self, d: Detection) -> IndexedFinding {
        IndexedFinding::new(&self.config, &self.policy, d)
    }
}

fn slice(values: &Either<Vec<f64>, Float64Array>) -> &[f64] {
    match values {
        Either::A(v) => v,
        Either::B(v) => v,
    }
}

/// A validation error with one field problem.
fn invalid(subject: &str, field: &str, message: impl Into<String>) -> cased_core::Error {
    cased_core::Error::Validation(ValidationErrors {
        subject: subject.to_owned(),
        errors: vec![FieldError::new(field, message)],
    })
}

/// Reads the configuration with the core's model (`DetectorConfig::from_value`) and builds the
/// detector it names (`DetectorKind::build`).
fn build(config: Value) -> cased_core::Result<Detector> {
    let config = CoreConfig::from_value(config)?;
    let built = config.kind.build()?;
    let policy = config.severity.unwrap_or_else(|| built.default_severity());
    let inner = match built {
        BuiltDetector::Stream(d) => Inner::Stream(d),
        BuiltDetector::Baseline(d) => Inner::Baseline(d),
        BuiltDetector::Shift(d) => Inner::Shift(d),
        BuiltDetector::ErrorRate(_) => {
            return Err(invalid(
                "detector configuration",
                "type",
                "error_rate detectors judge (errors, requests) counts, not values: use compareErrorRates",
            ));
        }
    };
    Ok(Detector {
        config,
        policy,
        inner,
    })
}

// --- one-off comparisons ----------------------------------------------------------------------

/// The settings `compare` takes: a `baseline` detector's (every key optional; `type` and
/// `metric` are set by the call). Keys are the wire (snake_case) names.
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineComparisonSettings {
    /// Which change is bad (default `increase`).
    #[napi(ts_type = "'increase' | 'decrease' | 'either'")]
    pub direction: Option<String>,
    /// The relative change of the median that is still acceptable, e.g. 0.2 = 20% (default 0.1).
    #[napi(js_name = "allowed_change")]
    pub allowed_change: Option<f64>,
    /// The smallest absolute shift that matters, used when larger than the relative one (and
    /// when the baseline median is 0). Default 0.
    #[napi(js_name = "min_shift")]
    pub min_shift: Option<f64>,
    /// The false-alarm level (default 0.05).
    pub alpha: Option<f64>,
    /// Values needed on each side (default 5, at least 3).
    #[napi(js_name = "min_samples")]
    pub min_samples: Option<u32>,
    /// Confidence level of the Hodges–Lehmann interval (default 0.95).
    pub confidence: Option<f64>,
    /// Also test the spread (Brown–Forsythe) (default true).
    pub spread: Option<bool>,
    /// Also test the tail beyond this quantile of the baseline, e.g. 0.95 for "more values
    /// slower than the old p95" (default `null`: off). Between 0.5 and 1 (exclusive).
    #[napi(js_name = "tail_quantile", ts_type = "number | null")]
    pub tail_quantile: Option<f64>,
    /// Growth of the window between looks (streaming only; default 1.25).
    #[napi(js_name = "look_growth")]
    pub look_growth: Option<f64>,
    /// The name the finding carries (default `baseline`).
    pub name: Option<String>,
    /// Severity rules of the finding (default: the detector's own).
    #[napi(ts_type = "Record<string, { min_effect: number; min_confidence?: number } | null>")]
    pub severity: Option<Value>,
}

/// The settings `compareErrorRates` takes: an `error_rate` detector's (every key optional;
/// `type` and `metric` are set by the call). Keys are the wire (snake_case) names.
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorRateSettings {
    /// The relative increase of the rate still acceptable (0.1 = 10% more errors). Default 0.1.
    #[napi(js_name = "allowed_change")]
    pub allowed_change: Option<f64>,
    /// The absolute increase of the rate that matters (0.001 = 0.1 percentage point); smaller
    /// increases never alarm however significant. Default 0.001.
    #[napi(js_name = "min_increase")]
    pub min_increase: Option<f64>,
    /// The false-alarm level (default 0.05).
    pub alpha: Option<f64>,
    /// Requests needed in the current window (streaming only; default 50).
    #[napi(js_name = "min_requests")]
    pub min_requests: Option<f64>,
    /// Look again once the requests have grown by this factor (streaming only; default 1).
    #[napi(js_name = "look_growth")]
    pub look_growth: Option<f64>,
    /// The name the finding carries (default `error_rate`).
    pub name: Option<String>,
    /// Severity rules of the finding (default: the detector's own).
    #[napi(ts_type = "Record<string, { min_effect: number; min_confidence?: number } | null>")]
    pub severity: Option<Value>,
}

/// The options of `compare` and `compareErrorRates`.
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct CompareOptions {
    /// The metric the finding names (default `value` for `compare`, `errors` for
    /// `compareErrorRates`).
    pub metric: Option<String>,
    /// Judge as this look (1-based) of a session, at the share of α a session spends on it,
    /// so a loop of calls with looks 1, 2, 3… keeps its false-alarm rate within α. Default:
    /// one look at the full level α.
    pub look: Option<u32>,
}

/// A Mann–Whitney U test (`BaselineComparison.location`).
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct MannWhitney {
    /// The U statistic of the current sample (shifted by the margin).
    pub u: f64,
    /// The standardized statistic.
    pub z: f64,
    /// The one-sided p-value (doubled for `direction: 'either'`).
    #[napi(js_name = "p_value")]
    pub p_value: f64,
    /// How the p-value was computed: the exact null distribution (small samples without ties)
    /// or the normal approximation.
    #[napi(ts_type = "'exact' | 'asymptotic'")]
    pub method: String,
}

/// A Hodges–Lehmann shift with its confidence interval (`BaselineComparison.shift`).
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct HodgesLehmann {
    /// The median of all pairwise differences current − baseline.
    pub shift: f64,
    /// Lower bound of the interval.
    pub lower: f64,
    /// Upper bound of the interval.
    pub upper: f64,
    /// Its confidence level.
    pub confidence: f64,
}

/// A Brown–Forsythe spread test (`BaselineComparison.spread`).
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct BrownForsythe {
    /// The F statistic.
    pub f: f64,
    /// Its p-value.
    #[napi(js_name = "p_value")]
    pub p_value: f64,
    /// Mean absolute deviation from the median, baseline.
    #[napi(js_name = "spread_x")]
    pub spread_x: f64,
    /// Mean absolute deviation from the median, current.
    #[napi(js_name = "spread_y")]
    pub spread_y: f64,
}

/// The tail test (`BaselineComparison.tail`): values beyond the baseline's `quantile` (below
/// `1 - quantile` when `lower`), before and now.
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct TailTest {
    /// The quantile that bounds the tail (for `decrease`, the tail lies below 1 − this).
    pub quantile: f64,
    /// The baseline's value at that quantile (the tail's edge).
    pub threshold: f64,
    /// `true` when the tail is below the threshold (direction `decrease`).
    pub lower: bool,
    /// Baseline values in the tail.
    #[napi(js_name = "baseline_beyond")]
    pub baseline_beyond: u32,
    /// Current values in the tail.
    #[napi(js_name = "current_beyond")]
    pub current_beyond: u32,
    /// The exact conditional p-value of "at most (1 + allowed_change) times the baseline's
    /// share of values in the tail" (for `either`, the more significant side, doubled).
    #[napi(js_name = "p_value")]
    pub p_value: f64,
}

/// What `compare` found: the core's `BaselineComparison` plus the finding (`null` when no rule
/// fired).
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineComparison {
    /// Values in the baseline.
    #[napi(js_name = "n_baseline")]
    pub n_baseline: u32,
    /// Values in the current sample.
    #[napi(js_name = "n_current")]
    pub n_current: u32,
    /// Median of the baseline.
    #[napi(js_name = "baseline_median")]
    pub baseline_median: f64,
    /// Median of the current sample.
    #[napi(js_name = "current_median")]
    pub current_median: f64,
    /// The allowed absolute shift the test was run against.
    pub margin: f64,
    /// The Mann–Whitney test of the current sample (∓ the margin) against the baseline.
    pub location: MannWhitney,
    /// The Hodges–Lehmann shift of current minus baseline.
    pub shift: HodgesLehmann,
    /// The shift relative to |baseline median| (`null` when that median is 0).
    #[napi(js_name = "relative_change", ts_type = "number | null")]
    pub relative_change: f64,
    /// The Brown–Forsythe spread test (`null` with `spread: false`).
    #[napi(ts_type = "BrownForsythe | null")]
    pub spread: Value,
    /// The significance level the tests were judged at.
    pub level: f64,
    /// Which look this was (1 for a one-off comparison).
    pub look: u32,
    /// The tail test (`null` unless `tail_quantile` is set).
    #[napi(ts_type = "TailTest | null")]
    pub tail: Value,
    /// The location rule fired.
    #[napi(js_name = "location_alarm")]
    pub location_alarm: bool,
    /// The spread rule fired.
    #[napi(js_name = "spread_alarm")]
    pub spread_alarm: bool,
    /// The tail rule fired.
    #[napi(js_name = "tail_alarm")]
    pub tail_alarm: bool,
    /// The finding, when a rule fired.
    #[napi(ts_type = "Finding | null")]
    pub finding: Value,
}

/// Errors out of requests.
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct Counts {
    /// Failed requests.
    pub errors: f64,
    /// All requests.
    pub requests: f64,
}

/// What `compareErrorRates` found: the core's `ErrorRateComparison` plus the finding (`null`
/// when it did not fire).
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorRateComparison {
    /// The baseline's counts.
    pub baseline: Counts,
    /// The current counts.
    pub current: Counts,
    /// The pooled two-proportion z statistic (current minus baseline).
    pub z: f64,
    /// The exact conditional p-value of "rate ratio ≤ 1 + allowed_change".
    #[napi(js_name = "p_value")]
    pub p_value: f64,
    /// The level the p-value was judged at.
    pub level: f64,
    /// Which look this was (1 for a one-off comparison).
    pub look: u32,
    /// Whether the rule fired.
    pub alarm: bool,
    /// The finding, when the rule fired.
    #[napi(ts_type = "Finding | null")]
    pub finding: Value,
}

/// Compares `current` with `baseline` once, at the full level α: the Mann–Whitney U test
/// against the allowed change, the Hodges–Lehmann shift with its confidence interval, the
/// Brown–Forsythe spread test and, with `tail_quantile`, the tail test — the core's `compare_values`, as Python's `cased.compare`.
/// `config` holds a `baseline` detector's settings (`null`: the defaults); `options.metric`
/// (default `'value'`) names the metric in the finding; `options.look` (1-based) judges the
/// call as that look of a session, spending α across a loop of calls.
///
/// ```js
/// const found = compare(lastWeek, today, { allowed_change: 0.1 }, { metric: 'latency_ms' })
/// if (found.finding) console.log(found.finding.message, found.shift.shift)
/// ```
///
/// Throws a `validation` error naming a bad setting (`alpha`; `config.type` when the settings
/// name a type), or `samples` when a side is smaller than `min_samples`, or a non-finite value.
#[napi(
    catch_unwind,
    ts_args_type = "baseline: number[] | Float64Array, current: number[] | Float64Array, config?: BaselineComparisonSettings | null, options?: CompareOptions | null",
    ts_return_type = "BaselineComparison"
)]
pub fn compare(
    env: &Env,
    baseline: Either<Vec<f64>, Float64Array>,
    current: Either<Vec<f64>, Float64Array>,
    config: Option<JsonArg>,
    options: Option<Unknown<'_>>,
) -> Result<Json> {
    let config = config.map(|j| j.0);
    let judged = compare_options(options, "value")?.and_then(|(metric, look)| {
        compare_values(
            config.unwrap_or(Value::Null),
            &metric,
            slice(&baseline),
            slice(&current),
            look,
        )
    });
    match judged {
        Ok(j) => Ok(Json(
            serde_json::to_string(&j).expect("comparisons always serialize"),
        )),
        Err(e) => Err(to_js_error(env, e)),
    }
}

/// Compares current `[errors, requests]` counts with baseline counts once, with the exact
/// conditional (Poisson) test against the allowed change at the full level α — the core's
/// `compare_counts`, as Python's `cased.compare_error_rates`. `config` holds an `error_rate`
/// detector's settings (`null`: the defaults); `options.metric` (default `'errors'`) names the
/// metric in the finding; `options.look` (1-based) judges the call as that look of a session.
///
/// ```js
/// const found = compareErrorRates([12, 10_000], [85, 10_000], null, { metric: 'http_errors' })
/// if (found.alarm) console.log(found.finding.message)
/// ```
///
/// Throws a `validation` error on `baseline` / `current` when a side is not a pair of
/// non-negative integers, on `errors` when it has more errors than requests, and naming a bad
/// setting.
#[napi(
    catch_unwind,
    ts_args_type = "baseline: [errors: number, requests: number], current: [errors: number, requests: number], config?: ErrorRateSettings | null, options?: CompareOptions | null",
    ts_return_type = "ErrorRateComparison"
)]
pub fn compare_error_rates(
    env: &Env,
    baseline: Unknown<'_>,
    current: Unknown<'_>,
    config: Option<JsonArg>,
    options: Option<Unknown<'_>>,
) -> Result<Json> {
    let config = config.map(|j| j.0);
    let judged = match (
        compare_options(options, "errors")?,
        counts("baseline", baseline)?,
        counts("current", current)?,
    ) {
        (Ok((metric, look)), Ok(b), Ok(c)) => {
            compare_counts(config.unwrap_or(Value::Null), &metric, b, c, look)
        }
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => Err(e),
    };
    match judged {
        Ok(j) => Ok(Json(
            serde_json::to_string(&j).expect("comparisons always serialize"),
        )),
        Err(e) => Err(to_js_error(env, e)),
    }
}

/// The largest integer a JavaScript number holds exactly (`Number.MAX_SAFE_INTEGER`).
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// `[errors, requests]` read as counts: a validation error on `what` unless it is an array of
/// two non-negative integers (then `Counts::new` checks errors ≤ requests).
fn counts(what: &str, v: Unknown<'_>) -> Result<cased_core::Result<CoreCounts>> {
    let bad = |got: String| {
        Ok(Err(invalid(
            "comparison",
            what,
            format!("must be an [errors, requests] pair of non-negative integers, got {got}"),
        )))
    };
    if v.get_type()? != ValueType::Object || !v.is_array()? {
        return bad(type_name(&v)?.to_owned());
    }
    let pair = Object::from_unknown(v)?;
    let len = pair.get_array_length()?;
    if len != 2 {
        return bad(format!("an array of {len}"));
    }
    let mut read = [0_u64; 2];
    for (i, slot) in (0_u32..).zip(read.iter_mut()) {
        match number(pair.get_element::<Unknown<'_>>(i)?)? {
            // Exact: a whole number within the safe range converts without loss.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Ok(x) if x.fract() == 0.0 && (0.0..=MAX_SAFE_INTEGER).contains(&x) => *slot = x as u64,
            Ok(x) => return bad(format!("{x} at [{i}]")),
            Err(got) => return bad(format!("{got} at [{i}]")),
        }
    }
    Ok(CoreCounts::new(read[0], read[1]))
}

/// The metric of a comparison's `options` (`{ metric }`), `default` when absent.
fn compare_options(
    options: Option<Unknown<'_>>,
    default: &str,
) -> Result<cased_core::Result<(String, Option<u32>)>> {
    let Some(options) = options else {
        return Ok(Ok((default.to_owned(), None)));
    };
    match options.get_type()? {
        ValueType::Null | ValueType::Undefined => return Ok(Ok((default.to_owned(), None))),
        ValueType::Object if !options.is_array()? => {}
        _ => {
            return Ok(Err(invalid(
                "comparison",
                "options",
                format!(
                    "must be an object such as {{ metric, look }}, got {}",
                    type_name(&options)?
                ),
            )));
        }
    }
    let options = Object::from_unknown(options)?;
    for key in Object::keys(&options)? {
        if key != "metric" && key != "look" {
            return Ok(Err(invalid(
                "comparison",
                &cased_core::limits::field_segment(&key),
                "unknown option (known options: metric, look)",
            )));
        }
    }
    let metric = match option(&options, "metric")? {
        None => default.to_owned(),
        Some(v) => match string(v)? {
            Ok(m) => m,
            Err(got) => {
                return Ok(Err(invalid(
                    "comparison",
                    "metric",
                    format!("must be a string, got {got}"),
                )));
            }
        },
    };
    let look = match option(&options, "look")? {
        None => None,
        Some(v) => match number(v)? {
            Ok(k) if k >= 1.0 && k.fract() == 0.0 && k <= f64::from(u32::MAX) => Some(k as u32),
            Ok(k) => {
                return Ok(Err(invalid(
                    "comparison",
                    "look",
                    format!("must be a whole number ≥ 1, got {k}"),
                )));
            }
            Err(got) => {
                return Ok(Err(invalid(
                    "comparison",
                    "look",
                    format!("must be a number, got {got}"),
                )));
            }
        },
    };
    Ok(Ok((metric, look)))
}

// --- offline segmentation ---------------------------------------------------------------------

/// The settings `segment` takes. Keys are the wire (snake_case) names.
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentSettings {
    /// What a segment holds constant (default `normal_meanvar`: mean and variance;
    /// `normal_mean`: the mean, one variance for the series; `poisson`: the rate of counts).
    #[napi(ts_type = "'normal_mean' | 'normal_meanvar' | 'poisson'")]
    pub cost: Option<String>,
    /// The penalty per change: `mbic` (default, (p + 2) · ln n), `bic` ((p + 1) · ln n) or a
    /// number.
    #[napi(ts_type = "'mbic' | 'bic' | number")]
    pub penalty: Option<Value>,
    /// The shortest segment, in points (default 2).
    #[napi(js_name = "min_size")]
    pub min_size: Option<u32>,
    /// A factor on the penalty (default 1).
    #[napi(js_name = "penalty_scale")]
    pub penalty_scale: Option<f64>,
    /// Scale the penalty by the effective sample size of the residuals' AR(1) noise and segment
    /// again (default false): for real series whose noise wanders in runs.
    pub autocorrelation: Option<bool>,
}

/// One segment found by `segment`: values `start..end` (end exclusive).
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// The index of its first value.
    pub start: u32,
    /// One past the index of its last value.
    pub end: u32,
    /// The mean of its values (the rate, for counts).
    pub mean: f64,
    /// The standard deviation of its values.
    pub sd: f64,
}

/// What `segment` found (the core's `Segmentation`).
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct Segmentation {
    /// The index at which each change takes effect, in order.
    pub changes: Vec<u32>,
    /// The segments, covering the series in order.
    pub segments: Vec<Segment>,
    /// The cost used.
    #[napi(ts_type = "'normal_mean' | 'normal_meanvar' | 'poisson'")]
    pub cost: String,
    /// The penalty per change, as a number (scaled, and corrected for autocorrelation).
    pub penalty: f64,
    /// The residuals' lag-1 autocorrelation the penalty was corrected for (0 without
    /// `autocorrelation`).
    pub autocorrelation: f64,
    /// The total penalised cost of this segmentation.
    #[napi(js_name = "total_cost")]
    pub total_cost: f64,
}

/// Splits a whole series into segments with PELT, the exact optimum of the penalised cost —
/// the core's `segment`, as Python's `cased.segment`.
///
/// ```js
/// const { changes, segments } = segment(latencies, { cost: 'normal_meanvar' })
/// ```
///
/// Throws a `validation` error naming a bad setting (`cost`, `penalty`, `min_size`,
/// `penalty_scale`), or
/// `values` / `values[i]` (empty, non-finite, negative counts).
#[napi(
    catch_unwind,
    ts_args_type = "values: number[] | Float64Array, config?: SegmentSettings | null",
    ts_return_type = "Segmentation"
)]
pub fn segment(
    env: &Env,
    values: Either<Vec<f64>, Float64Array>,
    config: Option<JsonArg>,
) -> Result<Json> {
    let config = config.map(|j| j.0);
    match segment_values(slice(&values), config.unwrap_or(Value::Null)) {
        Ok(found) => Ok(Json(
            serde_json::to_string(&found).expect("segmentations always serialize"),
        )),
        Err(e) => Err(to_js_error(env, e)),
    }
}
