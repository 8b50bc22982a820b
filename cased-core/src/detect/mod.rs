//! Anomaly detectors over metric samples, and the [`Finding`]s they raise.
//!
//! Each detector has a fallible constructor, a streaming `update` and a batch form over a slice.
//! The streaming ones implement [`Detector`]: `update(x)` returns a [`Detection`] when the
//! detector alarms (or, for the threshold detector, resolves); `detect(xs)` runs the stream
//! over a slice. The comparison detectors ([`BaselineComparisonDetector`],
//! [`ErrorRateDetector`]) also compare two samples in one call.
//!
//! | detector | catches | method |
//! |---|---|---|
//! | [`ThresholdDetector`] | hard limits | static bounds, k-of-n trigger, m-in-a-row resolve |
//! | [`BaselineComparisonDetector`] | worse than before | Mann–Whitney U against a margin, Hodges–Lehmann shift and CI; Brown–Forsythe for spread; an opt-in exact tail test (share beyond the baseline's p95) |
//! | [`ErrorRateDetector`] | more errors than before | exact conditional (Poisson) test on counts with a margin |
//! | [`SpikeDetector`] | single outliers | robust z-score (median / MAD) over a hopping or rolling window |
//! | [`LikelihoodDetector`] | anomalies of any shape in a long series | anomaly likelihood (Numenta) over the robust z, plus a breach of the range seen so far |
//! | [`ContextDetector`] | the same, and values that break the series' own pattern | anomaly likelihood of a prediction error (what followed the nearest past contexts), plus the likelihood detector |
//! | [`ShiftDetector`] | a deployment that shifts a metric's level or spread | per-value scan of robust-filtered AR(1) innovations against the pre-deploy baseline (robust level, optional log scale and Theil–Sen trend), spike-guarded windows, a spread test |
//! | [`CusumDetector`], [`EwmaDetector`] | level shifts | two-sided tabular CUSUM, EWMA control chart |
//! | [`TrendDetector`] | slow degradation | Theil–Sen slope with the Mann–Kendall test |
//! | [`ChangepointDetector`] | where behaviour changed | Bayesian online changepoint detection (normal-gamma) |
//!
//! **Repeated looks.** A session looks at a growing window at every tick. The detectors that
//! test hypotheses ([`BaselineComparisonDetector`], [`ErrorRateDetector`], [`TrendDetector`])
//! spend their false-alarm budget across looks: look k is tested at level
//! α·6/(π²k²) (a Bonferroni split whose sum over infinitely many looks is α), so the chance of
//! any false alarm in a whole session stays at or below α however long it runs. See
//! [`LookSpending`].

mod baseline;
mod changepoint;
mod compare;
mod config;
mod context;
mod cusum;
mod error_rate;
mod ewma;
mod finding;
mod likelihood;
mod locate;
mod segment;
mod shift;
mod spike;
pub mod stats;
#[cfg(test)]
mod tests_support;
mod threshold;
mod trend;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use baseline::{BaselineComparison, BaselineComparisonConfig, BaselineComparisonDetector};
pub use changepoint::{ChangepointConfig, ChangepointDetector};
pub use compare::{Judged, compare_counts, compare_values};
pub use config::{
    BuiltDetector, DetectorConfig, DetectorKind, DetectorSet, Evaluation, parse_detectors,
};
pub use context::{ContextConfig, ContextDetector};
pub use cusum::{CusumConfig, CusumDetector};
pub use error_rate::{Counts, ErrorRateComparison, ErrorRateConfig, ErrorRateDetector};
pub use ewma::{EwmaConfig, EwmaDetector};
pub use finding::{Finding, IndexedFinding, SeverityPolicy, SeverityRule};
pub use likelihood::{LikelihoodConfig, LikelihoodDetector};
pub use locate::{Located, locate_change};
pub use segment::{
    MAX_SEGMENT_POINTS, Penalty, PenaltyRule, Segment, SegmentConfig, SegmentCost, Segmentation,
    segment, segment_with,
};
pub use shift::{ShiftConfig, ShiftDetector, ShiftTest, Transform};
pub use spike::{SpikeConfig, SpikeDetector};
pub use threshold::{ThresholdConfig, ThresholdDetector};
pub use trend::{TrendConfig, TrendDetector, TrendResult};

use crate::error::Result;

/// Which change is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Only an increase (latency, errors, CPU).
    #[default]
    Increase,
    /// Only a decrease (throughput, success ratio).
    Decrease,
    /// Either way.
    Either,
}

impl Direction {
    pub(crate) fn allows_up(self) -> bool {
        matches!(self, Self::Increase | Self::Either)
    }

    pub(crate) fn allows_down(self) -> bool {
        matches!(self, Self::Decrease | Self::Either)
    }
}

/// Whether a detection opens or closes an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DetectionKind {
    /// The detector alarms.
    Alarm,
    /// A previously raised alarm cleared (threshold hysteresis).
    Resolved,
}

/// What a detector reports when it fires: the evidence a [`Finding`] is made of.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detection {
    /// Alarm or resolution.
    pub kind: DetectionKind,
    /// 0-based position in the stream of the value that fired it (for comparisons: the number
    /// of current values seen minus one).
    pub index: u64,
    /// The current value (the value, or the current window's median).
    pub current: f64,
    /// What was expected (the bound, the baseline median, the running level).
    pub baseline: Option<f64>,
    /// The detector's test statistic (z, U, S, CUSUM sum...).
    pub statistic: f64,
    /// The p-value, for detectors that test a hypothesis.
    pub p_value: Option<f64>,
    /// How sure: 1 − p for tests, the posterior probability for BOCPD, 1 for hard rules.
    pub confidence: f64,
    /// The effect size the severity policy reads (documented on each detector).
    pub effect: f64,
    /// Values the decision rests on.
    pub n: usize,
    /// The rule that fired, e.g. `"mwu_p < 0.0304 at look 1 and shift > 20%"`.
    pub rule: String,
    /// The evidence as a clause a person can read, without the metric's name.
    pub detail: String,
}

/// A streaming detector over one metric's values.
///
/// `update` checks its input: a NaN or an infinity is an [`Error::Validation`](crate::Error)
/// and leaves the detector unchanged.
pub trait Detector: fmt::Debug + Send + Sync {
    /// The detector's name in findings (`"spike"`, `"cusum"`...).
    fn name(&self) -> &'static str;

    /// Feeds one value; returns a detection when this value makes the detector fire.
    ///
    /// # Errors
    /// [`Error::Validation`](crate::Error) when `x` is not finite.
    fn update(&mut self, x: f64) -> Result<Option<Detection>>;

    /// Forgets everything seen (the configuration stays).
    fn reset(&mut self);

    /// A score for the last value: below 1 is normal, 1 or more means the detector alarmed
    /// (the statistic divided by its threshold). 0 before any value.
    fn score(&self) -> f64;

    /// The default severity policy of this detector's findings.
    fn default_severity(&self) -> SeverityPolicy {
        SeverityPolicy::default()
    }

    /// Runs the stream over `xs` (continuing from the current state) and returns every
    /// detection, in order.
    ///
    /// # Errors
    /// [`Error::Validation`](crate::Error) naming the first value that is not finite; the
    /// values before it have been consumed.
    fn detect(&mut self, xs: &[f64]) -> Result<Vec<Detection>> {
        let mut out = Vec::new();
        for (i, &x) in xs.iter().enumerate() {
            match self.update(x) {
                Ok(Some(d)) => out.push(d),
                Ok(None) => {}
                Err(_) => {
                    return Err(crate::Error::invalid(
                        format!("values[{i}]"),
                        format!("must be a finite number, got {x}"),
                    ));
                }
            }
        }
        Ok(out)
    }
}

/// How a detector spends its false-alarm rate α over repeated looks at a growing window.
///
/// Look k (1-based) is tested at α_k = α · 6 / (π² k²). Since Σ 6/(π² k²) = 1, the probability
/// of a false alarm at any look is at most α by the union bound (Bonferroni), for any number of
/// looks and whatever their correlation. The first look gets 0.61 α, the tenth 0.0061 α.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LookSpending {
    alpha: f64,
    looks: u32,
}

impl LookSpending {
    /// A budget of `alpha` for the whole session.
    #[must_use]
    pub fn new(alpha: f64) -> Self {
        Self { alpha, looks: 0 }
    }

    /// The level of look `k` (1-based).
    #[must_use]
    pub fn level(alpha: f64, k: u32) -> f64 {
        let k = f64::from(k.max(1));
        alpha * 6.0 / (std::f64::consts::PI.powi(2) * k * k)
    }

    /// Starts the next look and returns its number and level.
    pub fn next_look(&mut self) -> (u32, f64) {
        self.looks += 1;
        (self.looks, Self::level(self.alpha, self.looks))
    }

    /// Looks taken so far.
    #[must_use]
    pub fn looks(&self) -> u32 {
        self.looks
    }

    /// Starts again from look 1.
    pub fn reset(&mut self) {
        self.looks = 0;
    }
}

/// The policy of heuristic detectors (spike, level shift, changepoint): findings are at most
/// `warning`; only tests against a baseline or hard limits reach `critical` by default.
pub(crate) fn warning_only() -> SeverityPolicy {
    SeverityPolicy {
        warning: Some(SeverityRule {
            min_effect: 0.0,
            min_confidence: 0.0,
        }),
        critical: None,
        emergency: None,
    }
}

/// Formats a number for a sentence: up to 4 significant digits, no trailing zeros.
pub(crate) fn num(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    if x == 0.0 {
        return "0".into();
    }
    let a = x.abs();
    if !(1e-3..1e6).contains(&a) {
        return format!("{x:.3e}");
    }
    let digits = (3 - a.log10().floor() as i32).max(0) as usize;
    let s = format!("{x:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// Formats a p-value.
pub(crate) fn pval(p: f64) -> String {
    if p < 1e-4 {
        format!("{p:.1e}")
    } else {
        format!("{p:.4}")
    }
}

pub(crate) fn validate_alpha(p: &mut crate::error::Problems, field: &str, alpha: f64) {
    if !(alpha > 0.0 && alpha < 0.5) {
        p.add(
            field,
            format!("must be between 0 and 0.5 (exclusive), got {alpha}"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny detector implementing the trait: alarms on every value above 10.
    #[derive(Debug, Default)]
    struct AboveTen {
        seen: u64,
        last: f64,
    }

    impl Detector for AboveTen {
        fn name(&self) -> &'static str {
            "above_ten"
        }
        fn update(&mut self, x: f64) -> Result<Option<Detection>> {
            stats::check_value("value", x)?;
            self.seen += 1;
            self.last = x / 10.0;
            Ok((x > 10.0).then(|| Detection {
                kind: DetectionKind::Alarm,
                index: self.seen - 1,
                current: x,
                baseline: Some(10.0),
                statistic: x,
                p_value: None,
                confidence: 1.0,
                effect: x / 10.0 - 1.0,
                n: 1,
                rule: "value > 10".into(),
                detail: format!("was {x}, above 10"),
            }))
        }
        fn reset(&mut self) {
            *self = Self::default();
        }
        fn score(&self) -> f64 {
            self.last
        }
    }

    #[test]
    fn the_trait_s_batch_form_runs_the_stream() {
        let mut d = AboveTen::default();
        let found = d.detect(&[1.0, 11.0, 2.0, 30.0]).unwrap();
        assert_eq!(found.iter().map(|d| d.index).collect::<Vec<_>>(), [1, 3]);
        let e = d.detect(&[1.0, f64::NAN]).unwrap_err();
        assert_eq!(e.field_errors()[0].field, "values[1]");
        assert_eq!(d.score(), 0.1);
    }

    #[test]
    fn look_spending_sums_to_alpha() {
        let total: f64 = (1..100_000).map(|k| LookSpending::level(0.05, k)).sum();
        assert!(total < 0.05 && total > 0.0499, "{total}");
        let mut s = LookSpending::new(0.05);
        assert_eq!(s.next_look().0, 1);
        let (k, a) = s.next_look();
        assert_eq!(k, 2);
        assert!((a - 0.05 * 6.0 / (std::f64::consts::PI.powi(2) * 4.0)).abs() < 1e-15);
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(num(123.456), "123.5");
        assert_eq!(num(0.25), "0.25");
        assert_eq!(num(2.0), "2");
        assert_eq!(num(-1500.0), "-1500");
        assert_eq!(pval(0.00001), "1.0e-5");
        assert_eq!(pval(0.0123), "0.0123");
    }
}
