//! Offline changepoint segmentation: [`segment`] splits a whole series into segments of constant
//! mean (and variance), or constant rate for counts, with PELT (Killick, Fearnhead & Eckley,
//! 2012: the exact optimum of the penalised cost, pruned to about linear time).
//!
//! **Costs** (twice the negative log-likelihood of a segment, up to constants):
//! - `normal_mean`: Σ(x − x̄)² / σ², with one σ for the whole series estimated robustly from
//!   its first differences (1.4826 · MAD(Δx) / √2), so level shifts do not inflate it;
//! - `normal_meanvar` (the default): n · ln σ̂², the segment's own maximum-likelihood variance
//!   (floored at 10⁻⁹ of the series' variance, so a flat run cannot cost −∞);
//! - `poisson`: 2 · (S − S · ln(S / n)) for counts summing to S over n points.
//!
//! **Penalty** per change: `mbic` (the default: (p + 2) · ln n, with p the parameters a
//! segment adds — 1 for a mean or a rate, 2 for a mean and a variance — the penalty part of
//! Zhang & Siegmund's modified BIC, as the R `changepoint` package uses it; the term in the
//! segment lengths is left out), `bic` ((p + 1) · ln n), or a number. Neither needs tuning per
//! series. `penalty_scale` multiplies it.
//!
//! **Autocorrelation** (`autocorrelation: true`): real series (traffic, prices, sensor readings)
//! have AR(1)-like noise that wanders in runs the costs read as changes. The series is
//! segmented once, ρ is the lag-1 autocorrelation of the residuals around the segments' means
//! (clamped to 0..0.9), and it is segmented again with the penalty times (1 + ρ)/(1 − ρ), the
//! ratio of the sample size to the effective sample size of AR(1) noise. On TCPD's 20
//! development series, 5-fold cross-validated, `normal_meanvar` with `penalty_scale` 2 and this
//! correction scores F1 0.775 and cover 0.730 (0.590 / 0.488 for plain MBIC; BENCHMARKS.md).
//!
//! Pruning keeps a candidate start τ while F(τ) + C(τ, t) ≤ F(t) (valid since splitting a
//! segment never raises these costs); on equal costs the earliest start wins, as in `ruptures`.
//! The answers equal `ruptures.Pelt(jump=1)` with the same cost and penalty (tests pin them).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::stats::median_in_place;
use crate::error::{Problems, Result};

/// The most points [`segment`] takes in one call.
pub const MAX_SEGMENT_POINTS: usize = 1_000_000;

/// The MAD-to-σ factor for normal data.
const MAD_TO_SIGMA: f64 = 1.482_602_218_505_602;

/// What stays constant within a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmentCost {
    /// The mean of normal values, one variance for the whole series.
    NormalMean,
    /// The mean and the variance of normal values.
    #[default]
    NormalMeanvar,
    /// The rate of counts (non-negative values, usually integers).
    Poisson,
}

impl SegmentCost {
    /// The parameters one segment adds.
    fn parameters(self) -> f64 {
        match self {
            Self::NormalMean | Self::Poisson => 1.0,
            Self::NormalMeanvar => 2.0,
        }
    }
}

/// The penalty for each change.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Penalty {
    /// A named rule.
    Rule(PenaltyRule),
    /// A fixed value (≥ 0), on the scale of the costs.
    Value(f64),
}

impl Default for Penalty {
    fn default() -> Self {
        Self::Rule(PenaltyRule::Mbic)
    }
}

/// A penalty computed from the series' length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PenaltyRule {
    /// (p + 2) · ln n.
    Mbic,
    /// (p + 1) · ln n.
    Bic,
}

/// Settings of [`segment`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SegmentConfig {
    /// What a segment holds constant (default `normal_meanvar`).
    pub cost: SegmentCost,
    /// The penalty per change (default `mbic`).
    pub penalty: Penalty,
    /// The shortest segment, in points (default 2; at least 1, and 2 for `normal_meanvar`).
    pub min_size: usize,
    /// A factor on the penalty (default 1; finite and > 0).
    pub penalty_scale: f64,
    /// Scale the penalty by the effective sample size of the residuals' AR(1) noise and
    /// segment again (default false; see the module documentation).
    pub autocorrelation: bool,
}

impl Default for SegmentConfig {
    fn default() -> Self {
        Self {
            cost: SegmentCost::default(),
            penalty: Penalty::default(),
            min_size: 2,
            penalty_scale: 1.0,
            autocorrelation: false,
        }
    }
}

impl SegmentConfig {
    /// Reads settings from a JSON-like value (`null` for the defaults), naming the field at
    /// fault.
    ///
    /// # Errors
    /// [`Error::Validation`] naming an unknown or bad setting.
    pub fn from_value(value: Value) -> Result<Self> {
        const SUBJECT: &str = "segmentation settings";
        let value = match value {
            Value::Null => Value::Object(serde_json::Map::new()),
            Value::Object(_) => value,
            other => {
                let mut p = Problems::default();
                p.add(
                    "config",
                    format!("must be an object of settings, got {other}"),
                );
                return Err(p.finish(SUBJECT).expect_err("one problem"));
            }
        };
        let config: Self = crate::error::deserialize_at(value, SUBJECT, "config")?;
        let mut p = Problems::default();
        config.check(&mut p);
        p.finish(SUBJECT)?;
        Ok(config)
    }

    fn check(&self, p: &mut Problems) {
        if let Penalty::Value(v) = self.penalty
            && !(v.is_finite() && v >= 0.0)
        {
            p.add(
                "penalty",
                format!("must be \"mbic\", \"bic\" or a finite number ≥ 0, got {v}"),
            );
        }
        if !(self.penalty_scale.is_finite() && self.penalty_scale > 0.0) {
            p.add(
                "penalty_scale",
                format!("must be a finite number > 0, got {}", self.penalty_scale),
            );
        }
        let least = if self.cost == SegmentCost::NormalMeanvar {
            2
        } else {
            1
        };
        if self.min_size < least {
            p.add(
                "min_size",
                format!(
                    "must be at least {least} for the {} cost, got {}",
                    serde_json::to_value(self.cost).expect("a name"),
                    self.min_size
                ),
            );
        }
    }
}

/// One segment of a [`Segmentation`]: values `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// The index of its first value.
    pub start: usize,
    /// One past the index of its last value.
    pub end: usize,
    /// The mean of its values (the rate, for counts).
    pub mean: f64,
    /// The standard deviation of its values (population).
    pub sd: f64,
}

/// What [`segment`] found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segmentation {
    /// The index at which each change takes effect (the first value of each segment but the
    /// first), in order.
    pub changes: Vec<usize>,
    /// The segments, covering the series in order.
    pub segments: Vec<Segment>,
    /// The cost used.
    pub cost: SegmentCost,
    /// The penalty per change, as a number (scaled, and corrected for autocorrelation).
    pub penalty: f64,
    /// The residuals' lag-1 autocorrelation the penalty was corrected for (0 without
    /// `autocorrelation`).
    pub autocorrelation: f64,
    /// The total penalised cost of this segmentation.
    pub total_cost: f64,
}

/// Prefix sums of a series, from which any segment's cost is O(1).
struct Sums {
    cost: SegmentCost,
    /// Σx and Σx² of the values minus `shift` (for precision), prefixes of length 0..=n.
    s1: Vec<f64>,
    s2: Vec<f64>,
    /// 1 / σ² for `normal_mean`.
    inv_var: f64,
    /// The variance floor for `normal_meanvar`.
    var_floor: f64,
}

impl Sums {
    fn new(values: &[f64], cost: SegmentCost) -> Self {
        let n = values.len();
        let shift = if cost == SegmentCost::Poisson {
            0.0
        } else {
            values.iter().sum::<f64>() / n as f64
        };
        let mut s1 = Vec::with_capacity(n + 1);
        let mut s2 = Vec::with_capacity(n + 1);
        let (mut a, mut b) = (0.0, 0.0);
        s1.push(0.0);
        s2.push(0.0);
        for &x in values {
            let d = x - shift;
            a += d;
            b += d * d;
            s1.push(a);
            s2.push(b);
        }
        let total_var = (b / n as f64 - (a / n as f64).powi(2)).max(0.0);
        let inv_var = if cost == SegmentCost::NormalMean {
            let sigma = diff_sigma(values);
            let sigma = if sigma > 0.0 { sigma } else { total_var.sqrt() };
            if sigma > 0.0 {
                1.0 / (sigma * sigma)
            } else {
                0.0
            }
        } else {
            0.0
        };
        Self {
            cost,
            s1,
            s2,
            inv_var,
            var_floor: (total_var * 1e-9).max(f64::MIN_POSITIVE),
        }
    }

    /// The cost of values `a..b` (b > a).
    fn cost(&self, a: usize, b: usize) -> f64 {
        let n = (b - a) as f64;
        let s = self.s1[b] - self.s1[a];
        match self.cost {
            SegmentCost::NormalMean => {
                let ss = (self.s2[b] - self.s2[a] - s * s / n).max(0.0);
                ss * self.inv_var
            }
            SegmentCost::NormalMeanvar => {
                let var = ((self.s2[b] - self.s2[a]) / n - (s / n).powi(2)).max(self.var_floor);
                n * var.ln()
            }
            SegmentCost::Poisson => {
                if s <= 0.0 {
                    0.0
                } else {
                    2.0 * (s - s * (s / n).ln())
                }
            }
        }
    }
}

/// σ from the first differences: 1.4826 · MAD(Δx) / √2 (0 for fewer than 2 values).
fn diff_sigma(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    let mut d: Vec<f64> = values.windows(2).map(|w| w[1] - w[0]).collect();
    let m = median_in_place(&mut d);
    let mut dev: Vec<f64> = d.iter().map(|x| (x - m).abs()).collect();
    MAD_TO_SIGMA * median_in_place(&mut dev) / std::f64::consts::SQRT_2
}

fn check_values(values: &[f64], cost: SegmentCost) -> Result<()> {
    let mut p = Problems::default();
    if values.is_empty() {
        p.add("values", "is empty; give at least one value");
    } else if values.len() > MAX_SEGMENT_POINTS {
        p.add(
            "values",
            format!(
                "has {} points; at most {MAX_SEGMENT_POINTS} are segmented in one call",
                values.len()
            ),
        );
    } else if let Some((i, x)) = values.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        p.add(format!("values[{i}]"), format!("must be finite, got {x}"));
    } else if cost == SegmentCost::Poisson
        && let Some((i, x)) = values.iter().enumerate().find(|(_, x)| **x < 0.0)
    {
        p.add(
            format!("values[{i}]"),
            format!("must be a count ≥ 0 for the poisson cost, got {x}"),
        );
    }
    p.finish("segmentation input")
}

/// Splits `values` into segments with PELT (see the module documentation). `settings` are a
/// [`SegmentConfig`] as JSON (`null` for the defaults).
///
/// # Errors
/// [`Error::Validation`] naming a bad setting, or `values` (empty, too long) or `values[i]`
/// (not finite; negative for counts).
pub fn segment(values: &[f64], settings: Value) -> Result<Segmentation> {
    let config = SegmentConfig::from_value(settings)?;
    segment_with(values, &config)
}

/// [`segment`] with settings already read.
///
/// # Errors
/// As [`segment`], for the values.
pub fn segment_with(values: &[f64], config: &SegmentConfig) -> Result<Segmentation> {
    let mut p = Problems::default();
    config.check(&mut p);
    p.finish("segmentation settings")?;
    check_values(values, config.cost)?;
    let n = values.len();
    let penalty = match config.penalty {
        Penalty::Value(v) => v,
        Penalty::Rule(rule) => {
            let extra = if rule == PenaltyRule::Mbic { 2.0 } else { 1.0 };
            (config.cost.parameters() + extra) * (n as f64).ln()
        }
    };
    let penalty = penalty * config.penalty_scale;
    let sums = Sums::new(values, config.cost);
    let (changes, total_cost, penalty, rho) = if config.autocorrelation {
        let (first, _) = pelt(&sums, n, config.min_size, penalty);
        let rho = residual_lag1(values, &first).clamp(0.0, MAX_RHO);
        let penalty = penalty * (1.0 + rho) / (1.0 - rho);
        let (changes, total) = pelt(&sums, n, config.min_size, penalty);
        (changes, total, penalty, rho)
    } else {
        let (changes, total) = pelt(&sums, n, config.min_size, penalty);
        (changes, total, penalty, 0.0)
    };
    let mut bounds = Vec::with_capacity(changes.len() + 2);
    bounds.push(0);
    bounds.extend(&changes);
    bounds.push(n);
    let segments = bounds
        .windows(2)
        .map(|w| {
            let xs = &values[w[0]..w[1]];
            let k = xs.len() as f64;
            let mean = xs.iter().sum::<f64>() / k;
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / k;
            Segment {
                start: w[0],
                end: w[1],
                mean,
                sd: var.sqrt(),
            }
        })
        .collect();
    Ok(Segmentation {
        changes,
        segments,
        cost: config.cost,
        penalty,
        autocorrelation: rho,
        total_cost,
    })
}

/// The largest autocorrelation the penalty is corrected for.
const MAX_RHO: f64 = 0.9;

/// PELT over values `0..n` with the given penalty: the changes and the total penalised cost
/// (one penalty per change).
fn pelt(sums: &Sums, n: usize, m: usize, penalty: f64) -> (Vec<usize>, f64) {
    // best[t]: the least penalised cost of values 0..t (each segment pays `penalty`);
    // last[t]: where the last segment of that optimum starts.
    let mut best = vec![f64::INFINITY; n + 1];
    let mut last = vec![0usize; n + 1];
    best[0] = 0.0;
    let mut candidates: Vec<usize> = Vec::new();
    let mut scores: Vec<f64> = Vec::new();
    for t in m..=n {
        // The newest admissible start: t − m, if a segmentation of 0..t−m exists.
        let newest = t - m;
        if newest == 0 || newest >= m {
            candidates.push(newest);
        }
        scores.clear();
        let mut min = f64::INFINITY;
        let mut arg = 0;
        for &tau in &candidates {
            let v = best[tau] + sums.cost(tau, t) + penalty;
            scores.push(v);
            if v < min {
                min = v;
                arg = tau;
            }
        }
        best[t] = min;
        last[t] = arg;
        // Prune the starts that can never be optimal again (ruptures' rule: within one penalty).
        let mut keep = scores.iter();
        candidates.retain(|_| *keep.next().expect("one score per candidate") <= min + penalty);
    }
    let mut changes = Vec::new();
    let mut t = n;
    if best[n].is_finite() {
        while t > 0 {
            let s = last[t];
            if s > 0 {
                changes.push(s);
            }
            t = s;
        }
    }
    changes.reverse();
    let total_cost = if best[n].is_finite() {
        best[n] - penalty
    } else {
        sums.cost(0, n)
    };
    (changes, total_cost)
}

/// The lag-1 autocorrelation of the residuals around the segments' means (pairs across a
/// change left out); 0 when they do not vary.
fn residual_lag1(values: &[f64], changes: &[usize]) -> f64 {
    let mut residuals = Vec::with_capacity(values.len());
    let mut start = 0;
    for &end in changes.iter().chain(std::iter::once(&values.len())) {
        let xs = &values[start..end];
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        residuals.extend(xs.iter().map(|x| x - mean));
        start = end;
    }
    let ss: f64 = residuals.iter().map(|r| r * r).sum();
    if ss <= 0.0 {
        return 0.0;
    }
    let cross: f64 = (1..residuals.len())
        .filter(|i| changes.binary_search(i).is_err())
        .map(|i| residuals[i] * residuals[i - 1])
        .sum();
    cross / ss
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn steps(levels: &[(f64, usize)], noise: f64, seed: u64) -> Vec<f64> {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut out = Vec::new();
        for &(level, len) in levels {
            for _ in 0..len {
                // Sum of 12 uniforms − 6: about N(0, 1).
                let z: f64 = (0..12).map(|_| rng.f64()).sum::<f64>() - 6.0;
                out.push(level + noise * z);
            }
        }
        out
    }

    #[test]
    fn finds_known_mean_changes() {
        let xs = steps(&[(0.0, 100), (3.0, 80), (-1.0, 120)], 1.0, 7);
        for cost in ["normal_mean", "normal_meanvar"] {
            let s = segment(&xs, json!({"cost": cost})).unwrap();
            assert_eq!(s.changes.len(), 2, "{cost}: {:?}", s.changes);
            assert!(
                (s.changes[0] as i64 - 100).abs() <= 2,
                "{cost}: {:?}",
                s.changes
            );
            assert!(
                (s.changes[1] as i64 - 180).abs() <= 2,
                "{cost}: {:?}",
                s.changes
            );
            assert_eq!(s.segments.len(), 3);
            assert_eq!(s.segments[0].start, 0);
            assert_eq!(s.segments[2].end, 300);
            assert!((s.segments[1].mean - 3.0).abs() < 0.5);
        }
    }

    #[test]
    fn no_change_in_a_stationary_series() {
        let xs = steps(&[(5.0, 500)], 2.0, 11);
        for cost in ["normal_mean", "normal_meanvar"] {
            let s = segment(&xs, json!({"cost": cost})).unwrap();
            assert!(s.changes.is_empty(), "{cost}: {:?}", s.changes);
            assert_eq!(s.segments.len(), 1);
        }
    }

    #[test]
    fn a_variance_change_is_found_by_the_meanvar_cost_only() {
        let mut xs = steps(&[(0.0, 200)], 1.0, 3);
        xs.extend(steps(&[(0.0, 200)], 5.0, 4));
        let s = segment(&xs, Value::Null).unwrap();
        assert_eq!(s.changes.len(), 1, "{:?}", s.changes);
        assert!((s.changes[0] as i64 - 200).abs() <= 5);
        // The mean cost assumes one variance: the noisy half reads as many small mean changes,
        // and only there.
        let s = segment(&xs, json!({"cost": "normal_mean"})).unwrap();
        assert!(s.changes.iter().all(|&c| c > 195), "{:?}", s.changes);
    }

    #[test]
    fn poisson_counts_change_rate() {
        let mut rng = fastrand::Rng::with_seed(5);
        // Binomial(1000, p) counts: about Poisson(1000 p).
        let mut count = |p: f64| (0..1000).filter(|_| rng.f64() < p).count() as f64;
        let mut xs: Vec<f64> = (0..150).map(|_| count(0.01)).collect();
        xs.extend((0..150).map(|_| count(0.02)));
        let s = segment(&xs, json!({"cost": "poisson"})).unwrap();
        assert_eq!(s.changes.len(), 1, "{:?}", s.changes);
        assert!((s.changes[0] as i64 - 150).abs() <= 5);
        assert!((s.segments[1].mean / s.segments[0].mean - 2.0).abs() < 0.3);
    }

    #[test]
    fn penalty_rules_and_values() {
        let xs = steps(&[(0.0, 50), (2.0, 50)], 1.0, 9);
        let mbic = segment(&xs, json!({"cost": "normal_mean"})).unwrap();
        assert!((mbic.penalty - 3.0 * 100f64.ln()).abs() < 1e-9);
        let bic = segment(&xs, json!({"cost": "normal_mean", "penalty": "bic"})).unwrap();
        assert!((bic.penalty - 2.0 * 100f64.ln()).abs() < 1e-9);
        let mv = segment(&xs, Value::Null).unwrap();
        assert!((mv.penalty - 4.0 * 100f64.ln()).abs() < 1e-9);
        // A huge penalty allows no change; zero allows as many as min_size permits.
        let none = segment(&xs, json!({"penalty": 1e9})).unwrap();
        assert!(none.changes.is_empty());
        let all = segment(
            &xs,
            json!({"cost": "normal_mean", "penalty": 0.0, "min_size": 10}),
        )
        .unwrap();
        assert!(all.changes.len() >= 5);
        assert!(all.segments.iter().all(|s| s.end - s.start >= 10));
    }

    #[test]
    fn min_size_is_respected_and_short_series_are_one_segment() {
        let s = segment(&[1.0, 2.0, 3.0], json!({"min_size": 2})).unwrap();
        assert!(s.changes.is_empty());
        assert_eq!(s.segments.len(), 1);
        let s = segment(&[4.0], json!({"cost": "normal_mean", "min_size": 1})).unwrap();
        assert!(s.changes.is_empty());
        let flat = segment(&[2.0; 40], Value::Null).unwrap();
        assert!(flat.changes.is_empty());
    }

    /// AR(1) noise (marginal sd 1) with lag-1 autocorrelation `rho` around the given levels.
    fn ar1_steps(levels: &[(f64, usize)], rho: f64, seed: u64) -> Vec<f64> {
        let innovations = steps(&[(0.0, levels.iter().map(|l| l.1).sum())], 1.0, seed);
        let scale = (1.0 - rho * rho).sqrt();
        let mut x = 0.0;
        let noise = innovations.iter().map(|e| {
            x = rho * x + scale * e;
            x
        });
        let level = levels
            .iter()
            .flat_map(|&(level, len)| std::iter::repeat_n(level, len));
        level.zip(noise).map(|(l, e)| l + e).collect()
    }

    #[test]
    fn the_autocorrelation_correction_stops_over_segmenting_wandering_noise() {
        let (mut plain, mut corrected, mut found) = (0, 0, 0);
        for seed in 0..20 {
            let xs = ar1_steps(&[(0.0, 300), (4.0, 300)], 0.8, seed);
            plain += segment(&xs, json!({})).unwrap().changes.len();
            let s = segment(&xs, json!({"autocorrelation": true})).unwrap();
            assert!(
                s.autocorrelation > 0.5 && s.autocorrelation <= MAX_RHO,
                "{s:?}"
            );
            corrected += s.changes.len();
            found += usize::from(s.changes.iter().any(|c| c.abs_diff(300) <= 5));
        }
        // Plain MBIC splits the runs of the noise; the corrected penalty keeps the real change.
        assert!(plain >= 60, "plain MBIC: {plain} changes in 20 series");
        assert!(
            corrected <= 30,
            "corrected: {corrected} changes in 20 series"
        );
        assert!(found >= 18, "the change at 300 found in {found} of 20");
        // On independent noise the correction changes (almost) nothing.
        let xs = steps(&[(0.0, 100), (3.0, 80), (-1.0, 120)], 1.0, 7);
        let s = segment(&xs, json!({"autocorrelation": true})).unwrap();
        assert_eq!(s.changes, segment(&xs, json!({})).unwrap().changes);
        assert!(s.autocorrelation < 0.2, "{s:?}");
    }

    #[test]
    fn the_penalty_scale_multiplies_the_penalty() {
        let xs = steps(&[(0.0, 50), (2.0, 50)], 1.0, 9);
        let one = segment(&xs, json!({})).unwrap();
        let two = segment(&xs, json!({"penalty_scale": 2.0})).unwrap();
        assert!((two.penalty - 2.0 * one.penalty).abs() < 1e-9);
        let e = segment(&xs, json!({"penalty_scale": 0}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("penalty_scale"), "{e}");
    }

    #[test]
    fn bad_input_names_the_field() {
        let err = |v: &[f64], s: Value| segment(v, s).unwrap_err().to_string();
        assert!(err(&[], Value::Null).contains("values"));
        assert!(err(&[1.0, f64::NAN], Value::Null).contains("values[1]"));
        assert!(err(&[1.0, -1.0], json!({"cost": "poisson"})).contains("values[1]"));
        assert!(err(&[1.0], json!({"cost": "median"})).contains("cost"));
        assert!(err(&[1.0], json!({"penalty": -1.0})).contains("penalty"));
        assert!(err(&[1.0], json!({"penalty": "aic"})).contains("penalty"));
        assert!(err(&[1.0], json!({"min_size": 1})).contains("min_size"));
        assert!(err(&[1.0], json!({"minsize": 1})).contains("minsize"));
        let e = err(&[1.0], json!([1]));
        assert!(e.contains("config"), "{e}");
    }
}
