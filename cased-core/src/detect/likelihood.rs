//! [`LikelihoodDetector`]: anomalies of any shape, by Numenta's anomaly likelihood over a robust
//! z-score, plus a breach of the range seen so far.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::stats::{check_value, normal_sf};
use super::{
    Detection, DetectionKind, Detector, SeverityPolicy, SpikeConfig, SpikeDetector, num, pval,
    warning_only,
};
use crate::error::{Problems, Result};

/// Settings of a [`LikelihoodDetector`]. The defaults are the set chosen on half of the NAB
/// development files (BENCHMARKS.md).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LikelihoodConfig {
    /// How many past values the robust z (median / MAD) is taken over (default 200).
    pub window: usize,
    /// How often that median and MAD are recomputed, as [`SpikeConfig::refresh`] (default:
    /// `window`).
    pub refresh: Option<usize>,
    /// A value's raw score is min(|robust z|, `cap`) / `cap` (default 10).
    pub cap: f64,
    /// The raw scores averaged into the short mean that is judged (default 10).
    pub average: usize,
    /// How many past short means the normal they are judged against is fitted to (default 8640).
    pub history: usize,
    /// Short means needed before the first verdict (default 300).
    pub learning: usize,
    /// Alarm when the short mean's upper tail probability under that normal is below this
    /// (default 1e-5).
    pub tail: f64,
    /// Alarm when a value falls outside the range of every earlier value widened by this share
    /// of the range (default 0.05); `null` turns the range breach off.
    pub range_margin: Option<f64>,
    /// Values seen before a range breach may alarm (default 300).
    pub range_warmup: usize,
    /// After an alarm, this many values raise no other (default 200; one anomaly, one alarm).
    pub quiet: usize,
}

impl Default for LikelihoodConfig {
    fn default() -> Self {
        Self {
            window: 200,
            refresh: None,
            cap: 10.0,
            average: 10,
            history: 8640,
            learning: 300,
            tail: 1e-5,
            range_margin: Some(0.05),
            range_warmup: 300,
            quiet: 200,
        }
    }
}

impl LikelihoodConfig {
    pub(crate) fn check(&self, p: &mut Problems, prefix: &str) {
        self.spike().check(p, prefix);
        if !(self.cap.is_finite() && self.cap > 0.0) {
            p.add(
                format!("{prefix}cap"),
                format!("must be a finite number > 0, got {}", self.cap),
            );
        }
        if self.average == 0 {
            p.add(format!("{prefix}average"), "must be at least 1");
        }
        if self.history < 2 {
            p.add(format!("{prefix}history"), "must be at least 2");
        }
        if self.learning < 2 || self.learning > self.history {
            p.add(
                format!("{prefix}learning"),
                "must be at least 2 and at most `history`",
            );
        }
        if !(self.tail > 0.0 && self.tail < 0.5) {
            p.add(
                format!("{prefix}tail"),
                format!("must be between 0 and 0.5 (exclusive), got {}", self.tail),
            );
        }
        if let Some(m) = self.range_margin
            && !(m.is_finite() && m >= 0.0)
        {
            p.add(
                format!("{prefix}range_margin"),
                format!("must be a finite number ≥ 0 or null, got {m}"),
            );
        }
    }

    /// The spike detector that gives the robust z: it never alarms itself.
    fn spike(&self) -> SpikeConfig {
        SpikeConfig {
            window: self.window,
            min_samples: 10.min(self.window),
            threshold: f64::MAX,
            refresh: self.refresh,
            ..SpikeConfig::default()
        }
    }
}

/// Numenta's lower bounds on the fitted normal (NAB's `numenta` detector): mean ≥ 0.03,
/// variance ≥ 0.0003, so that a long quiet stretch does not make every ripple look unlikely.
const MIN_MEAN: f64 = 0.03;
const MIN_VARIANCE: f64 = 0.0003;

/// Alarms on values that are unusual for this series, in two ways:
///
/// - **anomaly likelihood** (Ahmad et al., "Unsupervised real-time anomaly detection for
///   streaming data", 2017, with the robust z-score of [`SpikeDetector`] in place of an HTM's
///   prediction error): each value gets a raw score min(|z|, `cap`) / `cap`; the mean of the last
///   `average` raw scores is judged against a normal fitted to the previous `history` such means
///   (with Numenta's floors), and a tail probability below `tail` alarms. A burst of unusual
///   values, a level shift or a change of noise all raise the short mean;
/// - **range breach**: after `range_warmup` values, a value below the smallest or above the
///   largest value seen so far by more than `range_margin` × (largest − smallest).
///
/// After an alarm, `quiet` values raise no other. Strictly causal: value i is judged on values
/// before it only. Effect size: the robust z of the value (likelihood) or the breach in units of
/// the range (range). Default severity: `warning` only.
#[derive(Debug, Clone)]
pub struct LikelihoodDetector {
    config: LikelihoodConfig,
    spike: SpikeDetector,
    likelihood: AnomalyLikelihood,
    /// The smallest and largest value seen.
    range: Option<(f64, f64)>,
    seen: u64,
    quiet_until: u64,
    last: f64,
}

/// Numenta's anomaly likelihood over a stream of raw scores in [0, 1]: the mean of the last
/// `average` raw scores, judged against a normal fitted to the previous `history` such means
/// (with Numenta's floors), once `learning` of them are in. Shared by [`LikelihoodDetector`] and
/// the [`ContextDetector`](super::ContextDetector).
#[derive(Debug, Clone)]
pub(crate) struct AnomalyLikelihood {
    learning: usize,
    /// The last `average` raw scores.
    short: Rolling,
    /// The last `history` short means.
    means: Rolling,
}

impl AnomalyLikelihood {
    pub(crate) fn new(average: usize, history: usize, learning: usize) -> Self {
        Self {
            learning,
            short: Rolling::new(average),
            means: Rolling::new(history),
        }
    }

    /// Adds a raw score; the short mean, and how it fits the earlier short means (`None` while
    /// learning).
    pub(crate) fn push(&mut self, raw: f64) -> (f64, Option<Fit>) {
        self.short.push(raw);
        let m = self.short.mean();
        let fit = (self.means.len() >= self.learning).then(|| {
            let mean = self.means.mean().max(MIN_MEAN);
            let sd = self.means.variance().max(MIN_VARIANCE).sqrt();
            Fit {
                tail: normal_sf((m - mean) / sd),
                mean,
                sd,
            }
        });
        self.means.push(m);
        (m, fit)
    }

    /// Raw scores in the short mean.
    pub(crate) fn averaged(&self) -> usize {
        self.short.len()
    }

    /// Short means the last fit was made on.
    pub(crate) fn fitted(&self) -> usize {
        self.means.len().saturating_sub(1)
    }

    pub(crate) fn reset(&mut self) {
        self.short = Rolling::new(self.short.cap);
        self.means = Rolling::new(self.means.cap);
    }
}

/// The last `cap` values with their running sum and sum of squares.
#[derive(Debug, Clone)]
struct Rolling {
    cap: usize,
    values: VecDeque<f64>,
    sum: f64,
    sum_sq: f64,
}

impl Rolling {
    fn new(cap: usize) -> Self {
        Self {
            cap,
            values: VecDeque::new(),
            sum: 0.0,
            sum_sq: 0.0,
        }
    }

    fn push(&mut self, x: f64) {
        self.values.push_back(x);
        self.sum += x;
        self.sum_sq += x * x;
        if self.values.len() > self.cap
            && let Some(old) = self.values.pop_front()
        {
            self.sum -= old;
            self.sum_sq -= old * old;
        }
    }

    fn len(&self) -> usize {
        self.values.len()
    }

    fn mean(&self) -> f64 {
        self.sum / self.values.len() as f64
    }

    /// The population variance.
    fn variance(&self) -> f64 {
        self.sum_sq / self.values.len() as f64 - self.mean().powi(2)
    }
}

/// The normal a short mean is judged against, and the mean's upper tail probability under it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fit {
    pub(crate) tail: f64,
    pub(crate) mean: f64,
    pub(crate) sd: f64,
}

/// What one value did to a [`LikelihoodDetector`], before its quiet period is applied.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Observed {
    pub(crate) index: u64,
    pub(crate) x: f64,
    z: f64,
    median: Option<f64>,
    m: f64,
    fit: Option<Fit>,
    breach: Option<(f64, (f64, f64))>,
}

impl LikelihoodDetector {
    /// A detector with these settings.
    ///
    /// # Errors
    /// [`Error::Validation`](crate::Error) naming each bad setting.
    pub fn new(config: LikelihoodConfig) -> Result<Self> {
        let mut p = Problems::default();
        config.check(&mut p, "");
        p.finish("likelihood detector")?;
        Ok(Self {
            config,
            spike: SpikeDetector::new(config.spike())?,
            likelihood: AnomalyLikelihood::new(config.average, config.history, config.learning),
            range: None,
            seen: 0,
            quiet_until: 0,
            last: 0.0,
        })
    }

    /// The bound `x` breaks and the range seen so far, when the range breach is on, past its
    /// warm-up, and `x` lies beyond that range by more than the margin.
    fn breach(&self, index: u64, x: f64) -> Option<(f64, (f64, f64))> {
        let (margin, (lo, hi)) = (self.config.range_margin?, self.range?);
        if index < self.config.range_warmup as u64 {
            return None;
        }
        let m = margin * (hi - lo);
        let bound = if x > hi + m {
            hi + m
        } else if x < lo - m {
            lo - m
        } else {
            return None;
        };
        Some((bound, (lo, hi)))
    }

    fn likelihood_detection(
        &self,
        index: u64,
        x: f64,
        median: Option<f64>,
        z: f64,
        m: f64,
        fit: Fit,
    ) -> Detection {
        let cap = self.config.cap;
        let n = self.likelihood.fitted();
        Detection {
            kind: DetectionKind::Alarm,
            index,
            current: x,
            baseline: median,
            statistic: (m - fit.mean) / fit.sd,
            p_value: Some(fit.tail),
            confidence: 1.0 - fit.tail,
            effect: z.abs(),
            n,
            rule: format!(
                "anomaly likelihood: tail probability < {}",
                pval(self.config.tail)
            ),
            detail: format!(
                "{} is unusual: the last {} values' robust z average {} against {} ± {} over the {n} before (tail probability {})",
                num(x),
                self.likelihood.averaged(),
                num(m * cap),
                num(fit.mean * cap),
                num(fit.sd * cap),
                pval(fit.tail)
            ),
        }
    }

    fn breach_detection(&self, index: u64, x: f64, bound: f64, (lo, hi): (f64, f64)) -> Detection {
        let beyond = (x - hi).max(lo - x) / (hi - lo).max(f64::MIN_POSITIVE);
        Detection {
            kind: DetectionKind::Alarm,
            index,
            current: x,
            baseline: Some(bound),
            statistic: beyond,
            p_value: None,
            confidence: 1.0,
            effect: beyond,
            n: usize::try_from(index).unwrap_or(usize::MAX),
            rule: format!(
                "outside the range seen so far, widened by {}",
                num(self.config.range_margin.unwrap_or(0.0))
            ),
            detail: format!(
                "{} is outside every earlier value ({} to {} over {index} values; bound {})",
                num(x),
                num(lo),
                num(hi),
                num(bound)
            ),
        }
    }
}

impl LikelihoodDetector {
    /// Learns `x` and says what it did (score included), ignoring the quiet period.
    pub(crate) fn observe(&mut self, x: f64) -> Result<Observed> {
        check_value("value", x)?;
        let index = self.seen;
        self.seen += 1;
        let (z, median) = self
            .spike
            .z_of(x)
            .map_or((0.0, None), |(z, med, _)| (z, Some(med)));
        self.spike.update(x)?;
        let (m, fit) = self.likelihood.push((z.abs() / self.config.cap).min(1.0));
        let tail = fit.map_or(1.0, |f| f.tail);
        self.last = (tail.max(f64::MIN_POSITIVE).ln() / self.config.tail.ln()).max(0.0);
        let breach = self.breach(index, x);
        self.range = Some(self.range.map_or((x, x), |(lo, hi)| (lo.min(x), hi.max(x))));
        if breach.is_some() {
            self.last = self.last.max(1.0);
        }
        Ok(Observed {
            index,
            x,
            z,
            median,
            m,
            fit,
            breach,
        })
    }

    /// The alarm `o` raises, if any (the likelihood first, then the range breach).
    pub(crate) fn detection(&self, o: &Observed) -> Option<Detection> {
        match (o.fit.filter(|f| f.tail < self.config.tail), o.breach) {
            (Some(fit), _) => {
                Some(self.likelihood_detection(o.index, o.x, o.median, o.z, o.m, fit))
            }
            (None, Some((bound, range))) => Some(self.breach_detection(o.index, o.x, bound, range)),
            (None, None) => None,
        }
    }
}

impl Detector for LikelihoodDetector {
    fn name(&self) -> &'static str {
        "likelihood"
    }

    fn update(&mut self, x: f64) -> Result<Option<Detection>> {
        let o = self.observe(x)?;
        if o.index < self.quiet_until {
            return Ok(None);
        }
        let detection = self.detection(&o);
        if detection.is_some() {
            self.quiet_until = o.index + 1 + self.config.quiet as u64;
        }
        Ok(detection)
    }

    fn reset(&mut self) {
        self.spike.reset();
        self.likelihood.reset();
        self.range = None;
        self.seen = 0;
        self.quiet_until = 0;
        self.last = 0.0;
    }

    fn score(&self) -> f64 {
        self.last
    }

    fn default_severity(&self) -> SeverityPolicy {
        warning_only()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(rng: &mut fastrand::Rng) -> f64 {
        (0..12).map(|_| rng.f64()).sum::<f64>() - 6.0 // ~N(0, 1)
    }

    fn quiet_series(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = fastrand::Rng::with_seed(seed);
        (0..n).map(|_| 100.0 + 5.0 * noise(&mut rng)).collect()
    }

    /// Range breach off, so that only the likelihood can fire.
    fn likelihood_only() -> LikelihoodConfig {
        LikelihoodConfig {
            range_margin: None,
            ..LikelihoodConfig::default()
        }
    }

    #[test]
    fn the_likelihood_matches_a_brute_force_recomputation() {
        // The short means and their tail probabilities recomputed from scratch at every row
        // (mean and variance of the whole stored history, Numenta's floors), with the robust z
        // taken from a separate SpikeDetector of the same settings.
        let mut xs = quiet_series(1500, 8);
        for x in &mut xs[900..960] {
            *x += 25.0 * noise(&mut fastrand::Rng::with_seed(9)).abs();
        }
        let cfg = LikelihoodConfig {
            quiet: 0,
            learning: 100,
            history: 400,
            ..likelihood_only()
        };
        let mut d = LikelihoodDetector::new(cfg).unwrap();
        let mut spike = SpikeDetector::new(cfg.spike()).unwrap();
        let (mut raws, mut means, mut want) = (Vec::new(), Vec::<f64>::new(), Vec::new());
        for (i, &x) in xs.iter().enumerate() {
            spike.update(x).unwrap();
            raws.push((spike.last_z().abs() / cfg.cap).min(1.0));
            let recent = &raws[raws.len().saturating_sub(cfg.average)..];
            let m = recent.iter().sum::<f64>() / recent.len() as f64;
            let hist = &means[means.len().saturating_sub(cfg.history)..];
            if hist.len() >= cfg.learning {
                let n = hist.len() as f64;
                let mu = hist.iter().sum::<f64>() / n;
                let var = hist.iter().map(|v| v * v).sum::<f64>() / n - mu * mu;
                if normal_sf((m - mu.max(MIN_MEAN)) / var.max(MIN_VARIANCE).sqrt()) < cfg.tail {
                    want.push(i as u64);
                }
            }
            means.push(m);
        }
        let got: Vec<u64> = d.detect(&xs).unwrap().iter().map(|f| f.index).collect();
        assert!(
            want.first().is_some_and(|i| (900..920).contains(i)),
            "{want:?}"
        );
        assert_eq!(got, want);
    }

    #[test]
    fn a_burst_a_level_shift_and_more_noise_are_found_and_the_control_is_quiet() {
        // Pure noise still raises the odd alarm (the normal fitted to the short means is only
        // an approximation in the far tail): about 1 per 8,000 values over 200,000 (score_series
        // nab on N(100, 5)); here at most 1 per 4,000.
        let long = quiet_series(50_000, 11);
        let found = LikelihoodDetector::new(LikelihoodConfig::default())
            .unwrap()
            .detect(&long)
            .unwrap();
        assert!(
            found.len() <= 12,
            "{} alarms on 50,000 values of noise",
            found.len()
        );
        let control = quiet_series(3000, 1);

        let mut shifted = control.clone();
        for x in &mut shifted[2000..] {
            *x += 15.0; // 3σ
        }
        let mut noisier = control.clone();
        let mut rng = fastrand::Rng::with_seed(2);
        for x in &mut noisier[2000..] {
            *x = 100.0 + 20.0 * noise(&mut rng);
        }
        for (name, xs) in [("level shift", shifted), ("variance increase", noisier)] {
            let mut d = LikelihoodDetector::new(likelihood_only()).unwrap();
            let found = d.detect(&xs).unwrap();
            let first = found
                .first()
                .unwrap_or_else(|| panic!("{name}: nothing found"));
            assert!(
                (2000..2030).contains(&first.index),
                "{name}: {}",
                first.index
            );
            assert!(
                first.p_value.is_some_and(|p| p < 1e-5)
                    && first.rule.starts_with("anomaly likelihood"),
                "{name}"
            );
            assert!(first.detail.contains("is unusual"), "{}", first.detail);
            assert!(
                found.windows(2).all(|w| w[1].index > w[0].index + 200),
                "{name}: one alarm per 200 values"
            );
        }
    }

    #[test]
    fn a_value_beyond_the_range_seen_alarms_once_then_the_detector_is_quiet() {
        let mut xs: Vec<f64> = (0..1000)
            .map(|i| 100.0 + 10.0 * (f64::from(i) * 0.1).sin())
            .collect();
        let (lo, hi) = xs[..600]
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &x| {
                (l.min(x), h.max(x))
            });
        let bound = hi + 0.05 * (hi - lo);
        xs[600] = bound + 1.0;
        xs[650] = bound + 50.0; // within the quiet period: no second alarm
        let cfg = LikelihoodConfig {
            tail: 1e-300,
            ..LikelihoodConfig::default()
        }; // likelihood practically off
        let found = LikelihoodDetector::new(cfg).unwrap().detect(&xs).unwrap();
        assert_eq!(
            found.iter().map(|f| f.index).collect::<Vec<_>>(),
            [600],
            "{found:?}"
        );
        let f = &found[0];
        assert!(
            f.rule.starts_with("outside the range") && f.p_value.is_none(),
            "{f:?}"
        );
        assert!((f.baseline.unwrap() - bound).abs() < 1e-9 && f.effect > 0.0);
        let mut early = xs[..400].to_vec();
        early[200] = 1e6; // before range_warmup: no range alarm
        assert!(
            LikelihoodDetector::new(cfg)
                .unwrap()
                .detect(&early)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn bad_settings_are_named_and_bad_values_are_errors() {
        let bad = LikelihoodConfig {
            window: 2,
            cap: 0.0,
            average: 0,
            learning: 1,
            tail: 0.7,
            range_margin: Some(f64::NAN),
            ..LikelihoodConfig::default()
        };
        let e = LikelihoodDetector::new(bad).unwrap_err().to_string();
        for field in [
            "window",
            "cap",
            "average",
            "learning",
            "tail",
            "range_margin",
        ] {
            assert!(e.contains(field), "{field} in {e}");
        }
        let mut d = LikelihoodDetector::new(LikelihoodConfig::default()).unwrap();
        assert!(d.update(f64::INFINITY).is_err());
        assert!(
            d.detect(&[1.0; 500]).unwrap().is_empty(),
            "a constant series is defined and quiet"
        );
        assert!(d.score() < 0.01, "{}", d.score());
    }
}
