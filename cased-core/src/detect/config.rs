//! [`DetectorConfig`] (the `detectors` entries of a monitor's configuration) and
//! [`DetectorSet`], the detectors of one session: samples in, findings out.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::{
    BaselineComparisonConfig, BaselineComparisonDetector, ChangepointConfig, ChangepointDetector,
    ContextConfig, ContextDetector, Counts, CusumConfig, CusumDetector, Detection, Detector,
    ErrorRateConfig, ErrorRateDetector, EwmaConfig, EwmaDetector, Finding, LikelihoodConfig,
    LikelihoodDetector, SeverityPolicy, ShiftConfig, ShiftDetector, SpikeConfig, SpikeDetector,
    ThresholdConfig, ThresholdDetector, TrendConfig, TrendDetector,
};
use crate::error::{Error, Problems, Result};
use crate::metrics::{Baseline, Sample};

/// The detector and its settings, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DetectorKind {
    /// [`ThresholdDetector`].
    Threshold(ThresholdConfig),
    /// [`BaselineComparisonDetector`].
    Baseline(BaselineComparisonConfig),
    /// [`ErrorRateDetector`] (fed with counts).
    ErrorRate(ErrorRateConfig),
    /// [`SpikeDetector`].
    Spike(SpikeConfig),
    /// [`CusumDetector`].
    Cusum(CusumConfig),
    /// [`EwmaDetector`].
    Ewma(EwmaConfig),
    /// [`TrendDetector`].
    Trend(TrendConfig),
    /// [`ChangepointDetector`].
    Changepoint(ChangepointConfig),
    /// [`LikelihoodDetector`].
    Likelihood(LikelihoodConfig),
    /// [`ContextDetector`].
    Context(ContextConfig),
    /// [`ShiftDetector`] (judges each value against a baseline of values).
    Shift(ShiftConfig),
}

impl DetectorKind {
    /// The `type` name.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Threshold(_) => "threshold",
            Self::Baseline(_) => "baseline",
            Self::ErrorRate(_) => "error_rate",
            Self::Spike(_) => "spike",
            Self::Cusum(_) => "cusum",
            Self::Ewma(_) => "ewma",
            Self::Trend(_) => "trend",
            Self::Changepoint(_) => "changepoint",
            Self::Likelihood(_) => "likelihood",
            Self::Context(_) => "context",
            Self::Shift(_) => "shift",
        }
    }
}

/// One entry of `MonitorConfig.detectors`:
///
/// ```json
/// {"type": "baseline", "metric": "response_time_ms", "direction": "increase", "allowed_change": 0.2}
/// ```
///
/// `type` picks the detector, `metric` the samples it reads, `name` (optional, default the type)
/// names its findings, `severity` (optional) overrides its [`SeverityPolicy`]. Three optional
/// flags say what its findings mean for the verdict: `dry_run` (evaluated and reported, never
/// changes the verdict), `critical` (its alarm alone makes the deployment unhealthy) and
/// `must_have_data` (no data for it fails the session instead of leaving it inconclusive); the
/// session applies them. Every other key is a setting of that detector. Unknown keys are errors.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetectorConfig {
    /// The metric it watches (for `error_rate`: the name counts are pushed under).
    pub metric: String,
    /// The name its findings carry (default: the type).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Severity rules (default: the detector's own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<SeverityPolicy>,
    /// Evaluated and reported, but its findings never change the verdict (default false).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// Its alarm alone makes the deployment unhealthy, whatever the finding's severity
    /// (default false).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub critical: bool,
    /// No data for it fails the session rather than leaving it inconclusive (default false).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub must_have_data: bool,
    /// The detector and its settings.
    #[serde(flatten)]
    pub kind: DetectorKind,
}

impl<'de> Deserialize<'de> for DetectorConfig {
    fn deserialize<D: Deserializer<'de>>(de: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let mut map = Map::<String, Value>::deserialize(de)?;
        let metric = match map.remove("metric") {
            Some(Value::String(s)) => s,
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "`metric` must be a string, got {other}"
                )));
            }
            None => return Err(D::Error::missing_field("metric")),
        };
        let name = match map.remove("name") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "`name` must be a string, got {other}"
                )));
            }
        };
        let severity = match map.remove("severity") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                serde_json::from_value(v)
                    .map_err(|e| D::Error::custom(format!("severity: {e}")))?,
            ),
        };
        let mut flag = |key: &str| match map.remove(key) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(b),
            Some(other) => Err(D::Error::custom(format!(
                "`{key}` must be true or false, got {other}"
            ))),
        };
        let dry_run = flag("dry_run")?;
        let critical = flag("critical")?;
        let must_have_data = flag("must_have_data")?;
        if !map.contains_key("type") {
            return Err(D::Error::missing_field("type"));
        }
        let kind: DetectorKind =
            serde_json::from_value(Value::Object(map)).map_err(D::Error::custom)?;
        Ok(Self {
            metric,
            name,
            severity,
            dry_run,
            critical,
            must_have_data,
            kind,
        })
    }
}

impl DetectorConfig {
    /// A configuration for `metric`.
    #[must_use]
    pub fn new(metric: impl Into<String>, kind: DetectorKind) -> Self {
        Self {
            metric: metric.into(),
            name: None,
            severity: None,
            dry_run: false,
            critical: false,
            must_have_data: false,
            kind,
        }
    }

    /// The name its findings carry.
    #[must_use]
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(self.kind.type_name())
    }

    /// Adds every problem of this entry to `p`, fields prefixed with `prefix` (e.g.
    /// `detectors[2].`).
    pub(crate) fn check(&self, p: &mut Problems, prefix: &str) {
        if self.metric.trim().is_empty() {
            p.add(format!("{prefix}metric"), "must not be empty");
        }
        if let Some(s) = &self.severity {
            s.check(p, &format!("{prefix}severity"));
        }
        if self.dry_run && self.critical {
            p.add(
                format!("{prefix}critical"),
                "a dry-run detector never changes the verdict, so it cannot be `critical`",
            );
        }
        match &self.kind {
            DetectorKind::Threshold(c) => c.check(p, prefix),
            DetectorKind::Baseline(c) => c.check(p, prefix),
            DetectorKind::ErrorRate(c) => c.check(p, prefix),
            DetectorKind::Spike(c) => c.check(p, prefix),
            DetectorKind::Cusum(c) => c.check(p, prefix),
            DetectorKind::Ewma(c) => c.check(p, prefix),
            DetectorKind::Trend(c) => c.check(p, prefix),
            DetectorKind::Changepoint(c) => c.check(p, prefix),
            DetectorKind::Likelihood(c) => c.check(p, prefix),
            DetectorKind::Context(c) => c.check(p, prefix),
            DetectorKind::Shift(c) => c.check(p, prefix),
        }
    }
}

/// A detector built from its [`DetectorKind`] with [`DetectorKind::build`]: a streaming one, the
/// shift detector (streaming against a baseline), or one of the two comparison detectors.
#[derive(Debug)]
pub enum BuiltDetector {
    /// Threshold, spike, CUSUM, EWMA, trend, changepoint, likelihood or context: values in,
    /// detections out.
    Stream(Box<dyn Detector>),
    /// A [`BaselineComparisonDetector`].
    Baseline(BaselineComparisonDetector),
    /// An [`ErrorRateDetector`] (fed with counts).
    ErrorRate(ErrorRateDetector),
    /// A [`ShiftDetector`]: judges every value as it arrives, against its baseline.
    Shift(Box<ShiftDetector>),
}

impl BuiltDetector {
    /// The detector's own severity policy (used when the configuration sets none).
    #[must_use]
    pub fn default_severity(&self) -> SeverityPolicy {
        match self {
            Self::Stream(d) => d.default_severity(),
            Self::Baseline(d) => d.default_severity(),
            Self::ErrorRate(d) => d.default_severity(),
            Self::Shift(d) => d.default_severity(),
        }
    }

    /// Forgets everything observed (configuration and baselines stay).
    pub fn reset(&mut self) {
        match self {
            Self::Stream(d) => d.reset(),
            Self::Baseline(d) => d.reset(),
            Self::ErrorRate(d) => d.reset(),
            Self::Shift(d) => d.reset(),
        }
    }
}

impl DetectorKind {
    /// Builds the detector these settings describe.
    ///
    /// # Errors
    /// [`Error::Validation`] naming each bad setting.
    pub fn build(&self) -> Result<BuiltDetector> {
        Ok(match self {
            Self::Threshold(k) => BuiltDetector::Stream(Box::new(ThresholdDetector::new(*k)?)),
            Self::Spike(k) => BuiltDetector::Stream(Box::new(SpikeDetector::new(*k)?)),
            Self::Cusum(k) => BuiltDetector::Stream(Box::new(CusumDetector::new(*k)?)),
            Self::Ewma(k) => BuiltDetector::Stream(Box::new(EwmaDetector::new(*k)?)),
            Self::Trend(k) => BuiltDetector::Stream(Box::new(TrendDetector::new(*k)?)),
            Self::Changepoint(k) => BuiltDetector::Stream(Box::new(ChangepointDetector::new(*k)?)),
            Self::Likelihood(k) => BuiltDetector::Stream(Box::new(LikelihoodDetector::new(*k)?)),
            Self::Context(k) => BuiltDetector::Stream(Box::new(ContextDetector::new(*k)?)),
            Self::Baseline(k) => BuiltDetector::Baseline(BaselineComparisonDetector::new(*k)?),
            Self::ErrorRate(k) => BuiltDetector::ErrorRate(ErrorRateDetector::new(*k)?),
            Self::Shift(k) => BuiltDetector::Shift(Box::new(ShiftDetector::new(*k)?)),
        })
    }
}

#[derive(Debug)]
struct Entry {
    config: DetectorConfig,
    policy: SeverityPolicy,
    state: BuiltDetector,
    /// A baseline / error-rate entry fired; it stays quiet until `reset`.
    fired: bool,
    /// Values pushed since the last look.
    fresh: usize,
    baseline: Option<(String, usize)>,
}

/// What one [`DetectorSet::evaluate`] found.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Evaluation {
    /// New findings, in configuration order.
    pub findings: Vec<Finding>,
    /// Metrics whose comparison detectors could not judge yet (no baseline, or fewer values than
    /// their minimum): the session's no-data policy decides about these.
    pub no_data: Vec<String>,
    /// Per comparison detector (by name): the baseline it used and how many values it had.
    pub baselines: BTreeMap<String, (String, usize)>,
}

/// The detectors of one session.
///
/// Per tick the session calls [`observe`](Self::observe) for every new sample (and
/// [`observe_counts`](Self::observe_counts) for pushed `(errors, requests)` pairs): streaming
/// detectors (threshold, spike, CUSUM, EWMA, trend, changepoint, and shift against its
/// baseline) judge each value at once and their findings come back immediately, each
/// [`Finding`] naming the value's 0-based position after the deployment. Then it calls [`evaluate`](Self::evaluate) once:
/// comparison detectors (baseline, error rate) take one look at their grown window, spending
/// α over looks (see [`LookSpending`](super::LookSpending)). Baselines are given before the
/// first tick with [`set_baseline`](Self::set_baseline) / [`set_baseline_counts`](Self::set_baseline_counts).
#[derive(Debug)]
pub struct DetectorSet {
    entries: Vec<Entry>,
}

impl DetectorSet {
    /// Builds every configured detector.
    ///
    /// # Errors
    /// [`Error::Validation`] naming each bad setting as `detectors[i].field`, and names used
    /// twice.
    pub fn from_config(configs: &[DetectorConfig]) -> Result<Self> {
        let mut p = Problems::default();
        let mut names = std::collections::HashSet::new();
        for (i, c) in configs.iter().enumerate() {
            c.check(&mut p, &format!("detectors[{i}]."));
            if !names.insert((c.metric.clone(), c.name().to_owned())) {
                p.add(
                    format!("detectors[{i}].name"),
                    format!(
                        "{:?} on {:?} is used by an earlier detector; give it a `name`",
                        c.name(),
                        c.metric
                    ),
                );
            }
        }
        p.finish("detector configuration")?;
        let mut entries = Vec::with_capacity(configs.len());
        for c in configs {
            let state = c.kind.build()?;
            let policy = c.severity.unwrap_or_else(|| state.default_severity());
            entries.push(Entry {
                config: c.clone(),
                policy,
                state,
                fired: false,
                fresh: 0,
                baseline: None,
            });
        }
        Ok(Self { entries })
    }

    /// The metrics the detectors read (each once, in configuration order).
    #[must_use]
    pub fn metrics(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for e in &self.entries {
            if !out.contains(&e.config.metric.as_str()) {
                out.push(&e.config.metric);
            }
        }
        out
    }

    /// The metrics whose detectors judge against a baseline, each with what that baseline is:
    /// `"baseline"` for a baseline of values (the `baseline` and `shift` detectors, given with
    /// [`set_baseline`](Self::set_baseline)) or `"error_rate"` for counts. A metric whose
    /// `baseline` and `shift` detectors both need values is listed once.
    #[must_use]
    pub fn baseline_metrics(&self) -> Vec<(&str, &'static str)> {
        let mut out: Vec<(&str, &'static str)> = Vec::new();
        for e in &self.entries {
            let item = match e.state {
                BuiltDetector::Baseline(_) | BuiltDetector::Shift(_) => {
                    (e.config.metric.as_str(), "baseline")
                }
                BuiltDetector::ErrorRate(_) => (e.config.metric.as_str(), "error_rate"),
                BuiltDetector::Stream(_) => continue,
            };
            if !out.contains(&item) {
                out.push(item);
            }
        }
        out
    }

    /// Gives the baseline comparison and shift detectors of `metric` their baseline (values
    /// oldest first: the shift detector reads their order); returns how many detectors took it.
    ///
    /// # Errors
    /// [`Error::Validation`] when the baseline's values are empty or not finite, or fewer than a
    /// shift detector's `min_baseline`.
    pub fn set_baseline(&mut self, metric: &str, baseline: &Baseline) -> Result<usize> {
        let mut n = 0;
        for e in self
            .entries
            .iter_mut()
            .filter(|e| e.config.metric == metric)
        {
            match &mut e.state {
                BuiltDetector::Baseline(d) => d.set_baseline(&baseline.values)?,
                BuiltDetector::Shift(d) => d.set_baseline(&baseline.values)?,
                _ => continue,
            }
            e.baseline = Some((baseline.source.describe(), baseline.values.len()));
            n += 1;
        }
        Ok(n)
    }

    /// Gives the error-rate detectors of `metric` their baseline counts; returns how many took it.
    ///
    /// # Errors
    /// [`Error::Validation`] when the counts have no requests or more errors than requests.
    pub fn set_baseline_counts(
        &mut self,
        metric: &str,
        counts: Counts,
        source: &str,
    ) -> Result<usize> {
        let mut n = 0;
        for e in self
            .entries
            .iter_mut()
            .filter(|e| e.config.metric == metric)
        {
            if let BuiltDetector::ErrorRate(d) = &mut e.state {
                d.set_baseline(counts)?;
                e.baseline = Some((
                    source.to_owned(),
                    usize::try_from(counts.requests).unwrap_or(usize::MAX),
                ));
                n += 1;
            }
        }
        Ok(n)
    }

    /// Gives the error-rate detectors of `metric` their baseline as per-sample counts (oldest
    /// first): the sum is the baseline and the samples' spread its overdispersion factor (see
    /// [`ErrorRateDetector::set_baseline_series`]); returns how many detectors took it.
    ///
    /// # Errors
    /// [`Error::Validation`] when the series has no requests or a sample has more errors than
    /// requests.
    pub fn set_baseline_count_series(
        &mut self,
        metric: &str,
        series: &[Counts],
        source: &str,
    ) -> Result<usize> {
        let mut n = 0;
        for e in self
            .entries
            .iter_mut()
            .filter(|e| e.config.metric == metric)
        {
            if let BuiltDetector::ErrorRate(d) = &mut e.state {
                d.set_baseline_series(series)?;
                let requests: u64 = series.iter().map(|c| c.requests).sum();
                e.baseline = Some((
                    source.to_owned(),
                    usize::try_from(requests).unwrap_or(usize::MAX),
                ));
                n += 1;
            }
        }
        Ok(n)
    }

    /// Feeds one sample to every detector of its metric. Streaming detectors judge it now;
    /// their findings are returned. Comparison detectors only collect it.
    ///
    /// # Errors
    /// [`Error::Validation`] when the value is not finite (no detector has consumed it).
    pub fn observe(&mut self, sample: &Sample) -> Result<Vec<Finding>> {
        crate::detect::stats::check_value("value", sample.value)?;
        let mut out = Vec::new();
        for e in self
            .entries
            .iter_mut()
            .filter(|e| e.config.metric == sample.metric)
        {
            match &mut e.state {
                BuiltDetector::Stream(d) => {
                    if let Some(det) = d.update(sample.value)? {
                        out.push(finding(&e.config, &e.policy, det));
                    }
                }
                BuiltDetector::Shift(d) => {
                    if let Some(det) = d.update(sample.value)? {
                        out.push(finding(&e.config, &e.policy, det));
                    }
                }
                BuiltDetector::Baseline(d) => {
                    d.push(sample.value)?;
                    e.fresh += 1;
                }
                BuiltDetector::ErrorRate(_) => {}
            }
        }
        Ok(out)
    }

    /// Feeds `(errors, requests)` counts to the error-rate detectors of `metric`.
    ///
    /// # Errors
    /// [`Error::Validation`] when `errors > requests`.
    pub fn observe_counts(&mut self, metric: &str, counts: Counts) -> Result<()> {
        Counts::new(counts.errors, counts.requests)?;
        for e in self
            .entries
            .iter_mut()
            .filter(|e| e.config.metric == metric)
        {
            if let BuiltDetector::ErrorRate(d) = &mut e.state {
                d.add(counts)?;
                e.fresh += 1;
            }
        }
        Ok(())
    }

    /// One look per comparison detector that has new data since its last look; each fires at
    /// most once per session.
    pub fn evaluate(&mut self) -> Evaluation {
        self.evaluate_where(|_| true)
    }

    /// [`evaluate`](Self::evaluate) for the detectors of `metric` only: the session looks at an
    /// error-rate metric after each of its counts, so each is judged at its own index.
    pub fn evaluate_metric(&mut self, metric: &str) -> Evaluation {
        self.evaluate_where(|m| m == metric)
    }

    fn evaluate_where(&mut self, metric: impl Fn(&str) -> bool) -> Evaluation {
        let mut ev = Evaluation::default();
        for e in self.entries.iter_mut().filter(|e| metric(&e.config.metric)) {
            let key = format!("{}:{}", e.config.metric, e.config.name());
            match &mut e.state {
                BuiltDetector::Stream(_) => continue,
                BuiltDetector::Shift(d) => {
                    if !d.has_baseline() {
                        push_unique(&mut ev.no_data, &e.config.metric);
                    }
                }
                BuiltDetector::Baseline(d) => {
                    let min = d.config().min_samples;
                    if d.baseline_len() < min || d.current_len() < min {
                        push_unique(&mut ev.no_data, &e.config.metric);
                    } else if !e.fired && e.fresh > 0 {
                        e.fresh = 0;
                        if let Ok(Some(c)) = d.look()
                            && let Some(det) = d.detection(&c)
                        {
                            e.fired = true;
                            ev.findings.push(finding(&e.config, &e.policy, det));
                        }
                    }
                }
                BuiltDetector::ErrorRate(d) => {
                    if !d.has_baseline() || d.current().requests == 0 {
                        push_unique(&mut ev.no_data, &e.config.metric);
                    } else if !e.fired && e.fresh > 0 && !d.waiting() {
                        e.fresh = 0;
                        match d.look() {
                            Some(c) => {
                                if let Some(det) = d.detection(&c) {
                                    e.fired = true;
                                    ev.findings.push(finding(&e.config, &e.policy, det));
                                }
                            }
                            None => push_unique(&mut ev.no_data, &e.config.metric),
                        }
                    }
                }
            }
            if let Some(b) = &e.baseline {
                ev.baselines.insert(key, b.clone());
            }
        }
        ev
    }

    /// Forgets what was observed and the looks taken (configuration and baselines stay).
    pub fn reset(&mut self) {
        for e in &mut self.entries {
            e.fired = false;
            e.fresh = 0;
            e.state.reset();
        }
    }
}

fn push_unique(v: &mut Vec<String>, s: &str) {
    if !v.iter().any(|x| x == s) {
        v.push(s.to_owned());
    }
}

fn finding(config: &DetectorConfig, policy: &SeverityPolicy, d: Detection) -> Finding {
    Finding::from_detection(&config.metric, config.name(), d, policy)
}

impl DetectorConfig {
    /// Reads and validates one detector's configuration (a dict or object passed through by a
    /// binding). Field paths are relative to the detector; a problem with the object as a whole
    /// is on field `config`.
    ///
    /// # Errors
    /// [`Error::Validation`] naming every bad setting.
    pub fn from_value(value: Value) -> Result<Self> {
        const SUBJECT: &str = "detector configuration";
        let config: Self = crate::error::deserialize_at(value, SUBJECT, "config")?;
        let mut p = Problems::default();
        config.check(&mut p, "");
        p.finish(SUBJECT)?;
        Ok(config)
    }
}

/// Parses and validates the `detectors` list of a configuration (used by `MonitorConfig`).
///
/// # Errors
/// [`Error::Validation`] with the path of the offending entry.
pub fn parse_detectors(value: Value) -> Result<Vec<DetectorConfig>> {
    let configs: Vec<DetectorConfig> = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        Error::invalid(
            format!(
                "detectors{}",
                if path == "." { String::new() } else { path }
            ),
            e.inner().to_string(),
        )
    })?;
    let mut p = Problems::default();
    for (i, c) in configs.iter().enumerate() {
        c.check(&mut p, &format!("detectors[{i}]."));
    }
    p.finish("detector configuration")?;
    Ok(configs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Severity;
    use crate::metrics::BaselineSource;
    use serde_json::json;

    #[test]
    fn the_documented_entry_parses_and_round_trips() {
        let v = json!([
            {"type": "baseline", "metric": "response_time_ms", "direction": "increase", "allowed_change": 0.2},
            {"type": "spike", "metric": "response_time_ms", "threshold": 5.0},
            {"type": "error_rate", "metric": "http", "min_increase": 0.01},
            {"type": "threshold", "metric": "cpu", "upper": 90.0, "trigger": 3, "window": 5, "name": "cpu_hot",
             "severity": {"warning": {"min_effect": 0.0}, "critical": {"min_effect": 0.05, "min_confidence": 0.0}}}
        ]);
        let c = parse_detectors(v).unwrap();
        assert_eq!(c.len(), 4);
        assert_eq!(c[0].metric, "response_time_ms");
        let DetectorKind::Baseline(b) = &c[0].kind else {
            panic!()
        };
        assert_eq!(b.allowed_change, 0.2);
        assert_eq!(b.alpha, 0.05, "defaults fill the rest");
        assert_eq!(c[3].name(), "cpu_hot");
        let back = serde_json::to_value(&c[0]).unwrap();
        assert_eq!(back["type"], "baseline");
        assert_eq!(back["metric"], "response_time_ms");
        let again: DetectorConfig = serde_json::from_value(back).unwrap();
        assert_eq!(again, c[0]);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let e =
            parse_detectors(json!([{"type": "spike", "metric": "m", "treshold": 3}])).unwrap_err();
        assert!(
            e.to_string().contains("unknown field `treshold`")
                && e.to_string().contains("detectors[0]"),
            "{e}"
        );
        let e = parse_detectors(json!([{"type": "spikey", "metric": "m"}])).unwrap_err();
        assert!(e.to_string().contains("spikey"), "{e}");
        let e = parse_detectors(json!([{"type": "spike"}])).unwrap_err();
        assert!(e.to_string().contains("metric"), "{e}");
        let e = parse_detectors(json!([{"type": "spike", "metric": "m"}, {"type": "baseline", "metric": "m", "alpha": 2}])).unwrap_err();
        assert_eq!(e.field_errors()[0].field, "detectors[1].alpha");
        let e = DetectorSet::from_config(
            &parse_detectors(
                json!([{"type": "spike", "metric": "m"}, {"type": "spike", "metric": "m"}]),
            )
            .unwrap(),
        )
        .unwrap_err();
        assert_eq!(e.field_errors()[0].field, "detectors[1].name");
    }

    #[test]
    fn the_verdict_flags_parse_round_trip_and_are_checked() {
        let c = parse_detectors(json!([
            {"type": "spike", "metric": "m", "dry_run": true},
            {"type": "shift", "metric": "m", "critical": true, "must_have_data": true, "transform": "log", "trend": true},
            {"type": "spike", "metric": "n"}
        ]))
        .unwrap();
        assert!(c[0].dry_run && !c[0].critical && !c[0].must_have_data);
        assert!(!c[1].dry_run && c[1].critical && c[1].must_have_data);
        let v = serde_json::to_value(&c[1]).unwrap();
        assert_eq!(
            (v["critical"].clone(), v["must_have_data"].clone()),
            (json!(true), json!(true))
        );
        assert_eq!(v["transform"], "log");
        assert_eq!(serde_json::from_value::<DetectorConfig>(v).unwrap(), c[1]);
        let plain = serde_json::to_value(&c[2]).unwrap();
        assert!(
            plain.get("dry_run").is_none() && plain.get("critical").is_none(),
            "unset flags are not serialised: {plain}"
        );
        let e = parse_detectors(json!([{"type": "spike", "metric": "m", "critical": "yes"}]))
            .unwrap_err();
        assert!(
            e.to_string().contains("`critical` must be true or false"),
            "{e}"
        );
        let e = parse_detectors(json!([{"type": "spike", "metric": "m"}, {"type": "spike", "metric": "m", "name": "b", "dry_run": true, "critical": true}]))
            .unwrap_err();
        assert_eq!(e.field_errors()[0].field, "detectors[1].critical");
        let e =
            parse_detectors(json!([{"type": "shift", "metric": "m", "clip": 0.1}])).unwrap_err();
        assert_eq!(e.field_errors()[0].field, "detectors[0].clip");
    }

    #[test]
    fn a_shift_detector_judges_each_sample_at_its_own_index() {
        let configs = parse_detectors(
            json!([{"type": "shift", "metric": "cpu"}, {"type": "baseline", "metric": "cpu"}]),
        )
        .unwrap();
        let mut set = DetectorSet::from_config(&configs).unwrap();
        assert_eq!(
            set.baseline_metrics(),
            [("cpu", "baseline")],
            "one baseline of values for both"
        );
        assert_eq!(set.evaluate().no_data, ["cpu"]);
        let mut rng = fastrand::Rng::with_seed(8);
        let base: Vec<f64> = (0..360).map(|_| 40.0 + 4.0 * (rng.f64() - 0.5)).collect();
        assert_eq!(
            set.set_baseline("cpu", &Baseline::new(BaselineSource::PreDeploy, base))
                .unwrap(),
            2
        );
        let mut first = None;
        // several samples per tick, each judged at its own index; a step at post index 13
        for tick in 0..10 {
            for j in 0..3 {
                let i = tick * 3 + j;
                let v = if i >= 13 { 52.0 } else { 40.0 } + 4.0 * (rng.f64() - 0.5);
                for f in set.observe(&sample("cpu", v)).unwrap() {
                    if f.detector == "shift" && first.is_none() {
                        first = Some((i, f));
                    }
                }
            }
            set.evaluate();
        }
        let (i, f) = first.expect("the step alarms");
        assert!((14..=16).contains(&i), "alarmed at sample {i}");
        assert!(f.severity >= Severity::Warning, "{f:?}");
        assert!(f.rule.starts_with("shift z"), "{}", f.rule);
    }

    fn sample(metric: &str, value: f64) -> Sample {
        Sample::new(metric, value)
    }

    #[test]
    fn a_session_s_ticks_turn_samples_into_findings() {
        let configs = parse_detectors(json!([
            {"type": "baseline", "metric": "latency", "allowed_change": 0.2},
            {"type": "spike", "metric": "latency", "threshold": 6.0},
            {"type": "error_rate", "metric": "http"}
        ]))
        .unwrap();
        let mut set = DetectorSet::from_config(&configs).unwrap();
        assert_eq!(set.metrics(), ["latency", "http"]);
        assert_eq!(
            set.baseline_metrics(),
            [("latency", "baseline"), ("http", "error_rate")]
        );
        // before any baseline: no data
        let ev = set.evaluate();
        assert_eq!(ev.no_data, ["latency", "http"]);
        let mut rng = fastrand::Rng::with_seed(5);
        let base: Vec<f64> = (0..100).map(|_| 100.0 + 10.0 * rng.f64()).collect();
        set.set_baseline("latency", &Baseline::new(BaselineSource::PreDeploy, base))
            .unwrap();
        set.set_baseline_counts(
            "http",
            Counts::new(10, 10_000).unwrap(),
            "last 5 healthy deployments",
        )
        .unwrap();
        let mut findings = Vec::new();
        for tick in 0..8 {
            for _ in 0..10 {
                let v = 160.0 + 10.0 * rng.f64();
                findings.extend(set.observe(&sample("latency", v)).unwrap());
            }
            set.observe_counts(
                "http",
                Counts::new(if tick > 3 { 10 } else { 0 }, 200).unwrap(),
            )
            .unwrap();
            findings.extend(set.evaluate().findings);
        }
        let kinds: Vec<(&str, Severity)> = findings
            .iter()
            .map(|f| (f.detector.as_str(), f.severity))
            .collect();
        assert!(
            kinds.contains(&("baseline", Severity::Critical)),
            "{kinds:?}"
        );
        assert!(
            kinds.iter().filter(|k| k.0 == "baseline").count() == 1,
            "fires once"
        );
        assert!(
            kinds.contains(&("error_rate", Severity::Critical))
                || kinds.contains(&("error_rate", Severity::Emergency)),
            "{kinds:?}"
        );
        let f = findings.iter().find(|f| f.detector == "baseline").unwrap();
        assert!(
            f.message.starts_with("latency rose from a median of"),
            "{}",
            f.message
        );
        let ev = set.evaluate();
        assert_eq!(
            ev.baselines["latency:baseline"],
            ("the window before the deployment".to_owned(), 100)
        );
        assert!(set.observe(&sample("latency", f64::NAN)).is_err());
    }
}
