//! [`ShiftDetector`]: a baseline-referenced sequential test that judges every value after the
//! deployment against a model of the pre-deploy baseline.
//!
//! **The model**, fitted once on the baseline (its last `max_baseline` values, optionally on the
//! log scale): a robust level (median, or a Theil–Sen line with `trend`), an AR(1) coefficient φ
//! from the lag-1 autocorrelation of the deviations (with `autocorrelation`), and the robust scale
//! σₑ (1.4826 · MAD) of the one-step innovations eₜ = dₜ − φ·d̃ₜ₋₁, where dₜ is the deviation
//! from the level and d̃ the robust filter's cleaned deviation (Masreliez): the innovation is
//! clipped at `clip` σₑ before it enters the filter state, so a single outlier moves the
//! prediction of the next value by at most `clip` σₑ and an isolated spike is forgotten at once,
//! while a lasting shift keeps producing positive innovations.
//!
//! **The test**, for every value after the deployment: the clipped innovation is standardised
//! by the mean and standard deviation the clipped innovations had on the baseline, giving a unit
//! uₜ that is about N(0, 1) with no change. For every window length w in 1, 2, 3, 4, 6, 8, 12,
//! 16, 24, 32, 48, 64, 96, 128, 180 (up to `max_window`) ending at this value, the statistic is
//! Σu / √(w + (w(1−φ))²·v), where v is the variance of the baseline level (and, with a trend, of
//! its extrapolation to the window's centre) in σₑ² units, so that an uncertain baseline does
//! not turn into false alarms on long windows. The detector alarms when any window's statistic
//! exceeds `threshold`. With `spike_guard`, the largest unit of each window counts as the
//! window's second largest (a winsorised sum): one sample alone can never make a window alarm,
//! but a shift, which lifts every value, loses almost nothing. With `spread_threshold`, a
//! second statistic watches the spread: the mean of the squared innovations (clipped at
//! `clip`²) over windows of at least `spread_min_window` values, against their baseline mean
//! and variance.
//!
//! **The step test** (`test: step`). In an AR(1) series a level step Δ at τ gives innovations
//! Δ at τ and Δ(1−φ) after it, so the equal-weight sum wastes the onset (at φ 0.8 a 3σ step is
//! about 5σₑ at the onset, then 1σₑ a value). The step test weights the window's oldest value
//! (its onset) 1 and the later ones 1−φ, the generalised likelihood ratio for a step with that
//! onset: (u′_τ + (1−φ)·Σ_{i>τ} uᵢ) / √(1 + (w−1)(1−φ)² + the baseline level's variance
//! term). The onset is clipped at `onset_clip` (6) instead of `clip`, the later values at `clip`
//! (and with `spike_guard` their largest is winsorised to the second largest). An isolated spike
//! S also makes a large onset innovation, but the next one is −φ·min(S, clip) (the filter took
//! in at most `clip`), where a step's is Δ − φ·min(Δ, clip) ≥ Δ(1−φ): a window counts only
//! when its second innovation is nearer the step's prediction than the spike's (above
//! e_τ/2 − φ·min(e_τ, clip)). A window of one value never counts, so the earliest alarm is one
//! value after the onset. At φ = 0 the test is the equal-weight sum with that confirmation.
//!
//! **False alarms.** Without change the window statistics are about standard normal; the
//! threshold over the 15 windows looked at after every value is the false-alarm control (this
//! is a scan statistic with a fixed threshold, not a test whose α is spent over looks): with
//! about 15 windows × 180 values looked at, a threshold h bounds a session's false alarms under
//! the model by 2700 · Φ̄(h) (Bonferroni; 3.6% at 4.2, 1e-5 at 5.5). Real series have heavier
//! tails than the model (skew, swells, drifts that bend): on the deploy-shaped dev set the
//! highest statistics its 160 latency and CPU controls reach are about 4.8 (sum) and 5.3 (step),
//! which is why the configurations chosen there under a false-alarm constraint
//! (`examples/eval/deploy_configs.json`) use 6, the default. Unit tests check that at most 2% of 200 seeded
//! sessions of 180 AR(1) (φ 0.8) and i.i.d. values alarm with the sum test at 4.2, and at most 1% of
//! 300 AR(1) sessions with the step test at 5.5.
//!
//! Effect size: the relative change of the window's mean value against the baseline's
//! expected value (0.2 = 20% higher); for the spread test, the ratio of the innovations'
//! spread to the baseline's, minus 1. Confidence: 1 − the normal tail of the statistic.
//! Default severity: the relative policy (warning from any effect).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::stats::{check_finite, check_value, median_in_place, normal_sf};
use super::{Detection, DetectionKind, Detector, Direction, SeverityPolicy, num};
use crate::error::{Error, Problems, Result};

/// The window lengths the statistic scans (those up to `max_window`, and `max_window`).
const WINDOWS: [usize; 15] = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 180];

/// The MAD-to-σ factor for normal data.
const MAD_TO_SIGMA: f64 = 1.482_602_218_505_602;

/// The scale values are judged on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transform {
    /// The values as they are (CPU, queue depth).
    #[default]
    None,
    /// The natural logarithm (latencies, sizes: skewed, multiplicative). Values ≤ 0 count as
    /// half the smallest positive baseline value.
    Log,
}

/// How a window of innovations is summed into a statistic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShiftTest {
    /// Equal weights: Σu / √w (the GLR for a shift of the innovations' mean; right for an
    /// i.i.d. series, where a level step lifts every innovation alike).
    #[default]
    Sum,
    /// Step-matched weights (1, 1−φ, 1−φ, …): the GLR for a level step in an AR(1) series, whose
    /// innovations are Δ at the onset and Δ(1−φ) after it. The onset is clipped at
    /// `onset_clip`, and a window counts only when its second innovation confirms a step rather
    /// than a spike (see the module documentation).
    Step,
}

/// Settings of a [`ShiftDetector`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShiftConfig {
    /// Which change is bad (default `increase`).
    pub direction: Direction,
    /// The scale the model is fitted on (default `none`).
    pub transform: Transform,
    /// Fit a Theil–Sen line to the baseline and extrapolate it, so a drift that was already
    /// running before the deployment does not alarm (default false).
    pub trend: bool,
    /// Fit an AR(1) coefficient to the baseline and judge one-step innovations, so that an
    /// autocorrelated series (CPU) does not alarm on its own wandering (default true; an i.i.d.
    /// series fits φ ≈ 0).
    pub autocorrelation: bool,
    /// Innovations are clipped at this many σₑ, in the filter and in the statistic (default 3).
    pub clip: f64,
    /// A window alarms when its statistic exceeds this (default 6: quiet on the deploy-shaped
    /// controls, see the module docs).
    pub threshold: f64,
    /// The level test's weights (default `step`, the likelihood-ratio weights of a level step;
    /// `sum` weighs every value of a window alike).
    pub test: ShiftTest,
    /// With `test: step`, the onset innovation is clipped at this many σₑ (default 6, at least
    /// `clip`).
    pub onset_clip: f64,
    /// Winsorise each window's largest unit to its second largest, so one sample cannot alarm
    /// alone (default true).
    pub spike_guard: bool,
    /// The longest window, in values (default 180; at least 1).
    pub max_window: usize,
    /// The threshold of the spread test, `null` to switch it off (default 7).
    pub spread_threshold: Option<f64>,
    /// The shortest window of the spread test (default 16).
    pub spread_min_window: usize,
    /// Baseline values needed before the first verdict (default 30).
    pub min_baseline: usize,
    /// The baseline's most recent values the model is fitted on (default 720, at most 5000:
    /// the Theil–Sen fit costs O(n²)).
    pub max_baseline: usize,
}

impl Default for ShiftConfig {
    fn default() -> Self {
        Self {
            direction: Direction::Increase,
            transform: Transform::None,
            trend: false,
            autocorrelation: true,
            clip: 3.0,
            threshold: 6.0,
            test: ShiftTest::Step,
            onset_clip: 6.0,
            spike_guard: true,
            max_window: 180,
            spread_threshold: Some(7.0),
            spread_min_window: 16,
            min_baseline: 30,
            max_baseline: 720,
        }
    }
}

impl ShiftConfig {
    pub(crate) fn check(&self, p: &mut Problems, prefix: &str) {
        if !(self.clip.is_finite() && self.clip >= 1.0) {
            p.add(
                format!("{prefix}clip"),
                format!("must be a finite number ≥ 1, got {}", self.clip),
            );
        }
        if !(self.threshold.is_finite() && self.threshold > 0.0) {
            p.add(
                format!("{prefix}threshold"),
                format!("must be a finite number > 0, got {}", self.threshold),
            );
        }
        if !(self.onset_clip.is_finite() && self.onset_clip >= self.clip) {
            p.add(
                format!("{prefix}onset_clip"),
                format!("must be a finite number ≥ `clip`, got {}", self.onset_clip),
            );
        }
        if self.max_window == 0 || self.max_window > 10_000 {
            p.add(
                format!("{prefix}max_window"),
                format!("must be between 1 and 10000, got {}", self.max_window),
            );
        }
        if let Some(t) = self.spread_threshold
            && !(t.is_finite() && t > 0.0)
        {
            p.add(
                format!("{prefix}spread_threshold"),
                format!("must be a finite number > 0 or null, got {t}"),
            );
        }
        if self.spread_min_window < 2 {
            p.add(
                format!("{prefix}spread_min_window"),
                format!("must be at least 2, got {}", self.spread_min_window),
            );
        }
        if self.min_baseline < 10 {
            p.add(
                format!("{prefix}min_baseline"),
                format!("must be at least 10, got {}", self.min_baseline),
            );
        }
        if self.max_baseline < self.min_baseline || self.max_baseline > 5000 {
            p.add(
                format!("{prefix}max_baseline"),
                format!(
                    "must be between `min_baseline` and 5000, got {}",
                    self.max_baseline
                ),
            );
        }
    }
}

/// The baseline model (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Model {
    /// Level at baseline position 0 and slope per value, on the transformed scale.
    intercept: f64,
    slope: f64,
    /// AR(1) coefficient, in [0, 0.95].
    phi: f64,
    /// Robust scale of the innovations.
    sigma: f64,
    /// Mean and standard deviation of the clipped innovations on the baseline.
    unit_mean: f64,
    unit_sd: f64,
    /// Mean and variance of the clipped squared innovations on the baseline.
    sq_mean: f64,
    sq_var: f64,
    /// Baseline length, the mean position and Σ(t − t̄)².
    n: usize,
    t_mean: f64,
    t_ss: f64,
    /// The floor of the log transform.
    floor: f64,
    /// The robust filter's cleaned deviation at the end of the baseline.
    start_state: f64,
}

/// Alarms when the values after a deployment shift away from what the baseline predicts: a
/// baseline-referenced scan of clipped, robust-filtered AR(1) innovations, every value judged
/// at its own index (see the [module documentation](self) for the method).
///
/// Feed it with [`set_baseline`](Self::set_baseline) (values oldest first), then
/// [`update`](Detector::update) per value after the deployment. Without a baseline `update`
/// returns no detection. It fires once; [`reset`](Detector::reset) re-arms it (the baseline
/// stays). Memory is bounded by `max_window` values.
#[derive(Debug, Clone)]
pub struct ShiftDetector {
    config: ShiftConfig,
    windows: Vec<usize>,
    model: Option<Model>,
    /// Filter state: the cleaned deviation of the previous value.
    state: f64,
    /// Units (standardised clipped innovations), newest last, and clipped squared innovations.
    units: VecDeque<f64>,
    squares: VecDeque<f64>,
    /// Unclipped innovations in σₑ (for the step test's onset and confirmation).
    innovations: VecDeque<f64>,
    /// Raw values of the last `max_window` values (for the evidence).
    values: VecDeque<f64>,
    seen: u64,
    fired: bool,
    last_score: f64,
}

impl ShiftDetector {
    /// A detector with these settings.
    ///
    /// # Errors
    /// [`Error::Validation`] naming each bad setting.
    pub fn new(config: ShiftConfig) -> Result<Self> {
        let mut p = Problems::default();
        config.check(&mut p, "");
        p.finish("shift detector")?;
        let mut windows: Vec<usize> = WINDOWS
            .iter()
            .copied()
            .filter(|&w| w <= config.max_window)
            .collect();
        if windows.last() != Some(&config.max_window) {
            windows.push(config.max_window);
        }
        Ok(Self {
            config,
            windows,
            model: None,
            state: 0.0,
            units: VecDeque::with_capacity(config.max_window),
            squares: VecDeque::with_capacity(config.max_window),
            innovations: VecDeque::with_capacity(config.max_window),
            values: VecDeque::with_capacity(config.max_window),
            seen: 0,
            fired: false,
            last_score: 0.0,
        })
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &ShiftConfig {
        &self.config
    }

    /// Whether a baseline has been fitted.
    #[must_use]
    pub fn has_baseline(&self) -> bool {
        self.model.is_some()
    }

    /// The fitted AR(1) coefficient, once a baseline is set.
    #[must_use]
    pub fn phi(&self) -> Option<f64> {
        self.model.map(|m| m.phi)
    }

    /// Fits the model on the baseline's values (oldest first; the last `max_baseline` are used)
    /// and starts the filter from the baseline's end. Values seen so far are forgotten.
    ///
    /// # Errors
    /// [`Error::Validation`] when a value is not finite or there are fewer than `min_baseline`
    /// values.
    pub fn set_baseline(&mut self, values: &[f64]) -> Result<()> {
        check_finite("baseline", values)?;
        if values.len() < self.config.min_baseline {
            return Err(Error::invalid(
                "baseline",
                format!(
                    "the shift detector needs at least {} baseline values, got {}",
                    self.config.min_baseline,
                    values.len()
                ),
            ));
        }
        let xs = &values[values.len().saturating_sub(self.config.max_baseline)..];
        let floor = xs
            .iter()
            .copied()
            .filter(|&x| x > 0.0)
            .fold(f64::INFINITY, f64::min);
        let floor = if floor.is_finite() { floor / 2.0 } else { 1e-9 };
        let ys: Vec<f64> = xs
            .iter()
            .map(|&x| transform(self.config.transform, floor, x))
            .collect();
        let n = ys.len();
        let (slope, intercept) = if self.config.trend {
            super::stats::theil_sen(&ys)?
        } else {
            let mut v = ys.clone();
            (0.0, median_in_place(&mut v))
        };
        let mut dev: Vec<f64> = ys
            .iter()
            .enumerate()
            .map(|(t, y)| y - intercept - slope * t as f64)
            .collect();
        let mut sorted = dev.clone();
        let centre = median_in_place(&mut sorted);
        for d in &mut dev {
            *d -= centre;
        }
        let intercept = intercept + centre;
        let phi = if self.config.autocorrelation {
            let mean = dev.iter().sum::<f64>() / n as f64;
            let num: f64 = dev.windows(2).map(|w| (w[0] - mean) * (w[1] - mean)).sum();
            let den: f64 = dev.iter().map(|d| (d - mean).powi(2)).sum();
            if den > 0.0 {
                (num / den).clamp(0.0, 0.95)
            } else {
                0.0
            }
        } else {
            0.0
        };
        let mut inn: Vec<f64> = dev.windows(2).map(|w| w[1] - phi * w[0]).collect();
        let mut abs = inn.clone();
        let m = median_in_place(&mut abs);
        for a in &mut abs {
            *a = (*a - m).abs();
        }
        let mut sigma = MAD_TO_SIGMA * median_in_place(&mut abs);
        if sigma <= 0.0 {
            // Over half the innovations equal: the mean absolute deviation stands in.
            sigma = 1.2533 * inn.iter().map(|e| (e - m).abs()).sum::<f64>() / inn.len() as f64;
        }
        let sigma = sigma.max(1e-9 * intercept.abs().max(1.0));
        // Run the robust filter over the baseline: units and squares for their null moments.
        let clip = self.config.clip;
        let mut state = dev[0];
        let (mut us, mut sq) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for &d in &dev[1..] {
            let e = (d - phi * state) / sigma;
            let u = e.clamp(-clip, clip);
            us.push(u);
            sq.push((e * e).min(clip * clip));
            state = phi * state + u * sigma;
        }
        inn.clear();
        let (unit_mean, unit_var) = mean_var(&us);
        let (sq_mean, sq_var) = mean_var(&sq);
        let t_mean = (n - 1) as f64 / 2.0;
        let t_ss = (0..n).map(|t| (t as f64 - t_mean).powi(2)).sum();
        self.model = Some(Model {
            intercept,
            slope,
            phi,
            sigma,
            unit_mean,
            unit_sd: unit_var.sqrt().max(1e-9),
            sq_mean,
            sq_var: sq_var.max(1e-9),
            n,
            t_mean,
            t_ss,
            floor,
            start_state: state,
        });
        self.reset();
        Ok(())
    }

    /// The expected value (original scale) `k` values after the baseline's end.
    fn expected(&self, m: &Model, k: f64) -> f64 {
        let y = m.intercept + m.slope * (m.n as f64 + k);
        match self.config.transform {
            Transform::None => y,
            Transform::Log => y.exp(),
        }
    }

    /// The variance of the baseline's level at post index `k`, in σₑ² units per (1 − φ)².
    fn level_var(&self, m: &Model, k: f64) -> f64 {
        let one = (1.0 - m.phi).powi(2);
        let mut v = 1.0 / (m.n as f64 * one);
        if self.config.trend {
            let h = m.n as f64 + k - m.t_mean;
            v += h * h / (one * m.t_ss);
        }
        v
    }

    /// The best window statistic for the units in direction `sign` (+1 up, −1 down), newest
    /// last: (statistic, window).
    fn scan(&self, m: &Model, sign: f64) -> (f64, usize) {
        if self.config.test == ShiftTest::Step {
            return self.step_scan(m, sign);
        }
        let len = self.units.len();
        let k = (self.seen - 1) as f64;
        let (mut sum, mut top1, mut top2) = (0.0, f64::NEG_INFINITY, f64::NEG_INFINITY);
        let mut best = (f64::NEG_INFINITY, 0);
        let mut wi = 0;
        for (i, &u) in self.units.iter().rev().enumerate() {
            let u = sign * u;
            sum += u;
            if u > top1 {
                top2 = top1;
                top1 = u;
            } else if u > top2 {
                top2 = u;
            }
            let w = i + 1;
            if wi < self.windows.len() && self.windows[wi] == w {
                wi += 1;
                let s = if self.config.spike_guard {
                    if w == 1 {
                        continue; // a single value is never a confirmed shift
                    }
                    sum - top1 + top2
                } else {
                    sum
                };
                let wf = w as f64;
                let centre = k - (wf - 1.0) / 2.0;
                let var = wf + (wf * (1.0 - m.phi)).powi(2) * self.level_var(m, centre);
                let stat = s / var.sqrt();
                if stat > best.0 {
                    best = (stat, w);
                }
            }
            if w >= len {
                break;
            }
        }
        best
    }

    /// The step-matched scan (see the module documentation): for a window whose oldest value is
    /// the onset τ, (u′_τ + (1−φ)·Σ_{i>τ} uᵢ) / √(1 + (w−1)(1−φ)² + ((1−φ)(1 + (w−1)(1−φ)))²·v),
    /// counted only when the innovation after the onset confirms a step. Windows of one value
    /// never count.
    fn step_scan(&self, m: &Model, sign: f64) -> (f64, usize) {
        let one = 1.0 - m.phi;
        let (clip, onset_clip) = (self.config.clip, self.config.onset_clip);
        let k = (self.seen - 1) as f64;
        let (mut rest, mut top1, mut top2) = (0.0, f64::NEG_INFINITY, f64::NEG_INFINITY);
        let mut next_e = f64::NAN;
        let mut best = (f64::NEG_INFINITY, 0);
        let mut wi = 0;
        for (i, (&u, &e)) in self
            .units
            .iter()
            .rev()
            .zip(self.innovations.iter().rev())
            .enumerate()
        {
            let (u, e) = (sign * u, sign * e);
            let w = i + 1;
            while wi < self.windows.len() && self.windows[wi] < w {
                wi += 1;
            }
            if w >= 2 && wi < self.windows.len() && self.windows[wi] == w {
                // Step or spike? A step of size e keeps the level: the next innovation is about
                // e − φ·min(e, clip) (the filter took in at most `clip`); a spike's is
                // −φ·min(e, clip). Count the window when the next innovation is nearer the first.
                let confirmed = next_e > e / 2.0 - m.phi * e.clamp(0.0, clip);
                if confirmed {
                    let onset =
                        (sign * e.clamp(-onset_clip, onset_clip) - sign * m.unit_mean) / m.unit_sd;
                    let later = if self.config.spike_guard && w >= 3 {
                        rest - top1 + top2
                    } else {
                        rest
                    };
                    let wf = w as f64;
                    let centre = k - (wf - 1.0) / 2.0;
                    let lift = one * (1.0 + (wf - 1.0) * one);
                    let var =
                        1.0 + (wf - 1.0) * one * one + lift * lift * self.level_var(m, centre);
                    let stat = (onset + one * later) / var.sqrt();
                    if stat > best.0 {
                        best = (stat, w);
                    }
                }
            }
            rest += u;
            if u > top1 {
                top2 = top1;
                top1 = u;
            } else if u > top2 {
                top2 = u;
            }
            next_e = e;
        }
        best
    }

    /// The best spread statistic: (statistic, window).
    fn spread_scan(&self, m: &Model) -> (f64, usize) {
        let mut sum = 0.0;
        let mut best = (f64::NEG_INFINITY, 0);
        let mut wi = 0;
        for (i, &s) in self.squares.iter().rev().enumerate() {
            sum += s;
            let w = i + 1;
            if wi < self.windows.len() && self.windows[wi] == w {
                wi += 1;
                if w >= self.config.spread_min_window {
                    let wf = w as f64;
                    let stat = (sum / wf - m.sq_mean) / (m.sq_var / wf).sqrt();
                    if stat > best.0 {
                        best = (stat, w);
                    }
                }
            }
        }
        best
    }

    fn detection(&self, m: &Model, stat: f64, w: usize, spread: bool, sign: f64) -> Detection {
        let k = (self.seen - 1) as f64;
        let window: Vec<f64> = self.values.iter().rev().take(w).copied().collect();
        let mean = window.iter().sum::<f64>() / w as f64;
        let expected = self.expected(m, k - (w as f64 - 1.0) / 2.0);
        let p = normal_sf(stat);
        let ar = if self.config.autocorrelation {
            format!(", AR(1) φ {}", num(m.phi))
        } else {
            String::new()
        };
        let scale = match self.config.transform {
            Transform::None => "",
            Transform::Log => " on the log scale",
        };
        let (rule, detail, effect) = if spread {
            let ratio =
                ((self.squares.iter().rev().take(w).sum::<f64>() / w as f64) / m.sq_mean).sqrt();
            (
                format!(
                    "spread z {} > {} over the last {w} values",
                    num(stat),
                    num(self.config.spread_threshold.unwrap_or(f64::NAN))
                ),
                format!(
                    "varied {}× as much as the baseline over the last {w} values (innovations{scale}, clipped at {}σ{ar})",
                    num(ratio),
                    num(self.config.clip)
                ),
                ratio - 1.0,
            )
        } else {
            let dir = if sign > 0.0 { "above" } else { "below" };
            let effect = if expected != 0.0 {
                mean / expected - 1.0
            } else {
                0.0
            };
            (
                format!(
                    "shift z {} > {} over the last {w} values",
                    num(stat),
                    num(self.config.threshold)
                ),
                format!(
                    "averaged {} over the last {w} values, {dir} the {} the baseline predicts (σ {}{scale}, innovations clipped at {}σ{ar}{})",
                    num(mean),
                    num(expected),
                    num(m.sigma),
                    num(self.config.clip),
                    if self.config.trend {
                        ", its trend extrapolated"
                    } else {
                        ""
                    }
                ),
                effect,
            )
        };
        Detection {
            kind: DetectionKind::Alarm,
            index: self.seen - 1,
            current: self.values.back().copied().unwrap_or(f64::NAN),
            baseline: Some(expected),
            statistic: stat,
            p_value: Some(p),
            confidence: 1.0 - p,
            effect,
            n: w,
            rule,
            detail,
        }
    }
}

fn transform(t: Transform, floor: f64, x: f64) -> f64 {
    match t {
        Transform::None => x,
        Transform::Log => x.max(floor).ln(),
    }
}

fn mean_var(xs: &[f64]) -> (f64, f64) {
    let n = xs.len().max(1) as f64;
    let mean = xs.iter().sum::<f64>() / n;
    (mean, xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n)
}

fn push_bounded(q: &mut VecDeque<f64>, cap: usize, x: f64) {
    if q.len() == cap {
        q.pop_front();
    }
    q.push_back(x);
}

impl Detector for ShiftDetector {
    fn name(&self) -> &'static str {
        "shift"
    }

    fn update(&mut self, x: f64) -> Result<Option<Detection>> {
        check_value("value", x)?;
        let Some(m) = self.model else { return Ok(None) };
        self.seen += 1;
        let y = transform(self.config.transform, m.floor, x);
        let k = (self.seen - 1) as f64;
        let d = y - m.intercept - m.slope * (m.n as f64 + k);
        let e = (d - m.phi * self.state) / m.sigma;
        let clip = self.config.clip;
        let u = e.clamp(-clip, clip);
        self.state = m.phi * self.state + u * m.sigma;
        let cap = self.config.max_window;
        push_bounded(&mut self.units, cap, (u - m.unit_mean) / m.unit_sd);
        push_bounded(&mut self.squares, cap, (e * e).min(clip * clip));
        push_bounded(&mut self.innovations, cap, e);
        push_bounded(&mut self.values, cap, x);
        let dir = self.config.direction;
        let mut best = (f64::NEG_INFINITY, 0, false, 1.0);
        if dir.allows_up() {
            let (s, w) = self.scan(&m, 1.0);
            best = (s, w, false, 1.0);
        }
        if dir.allows_down() {
            let (s, w) = self.scan(&m, -1.0);
            if s > best.0 {
                best = (s, w, false, -1.0);
            }
        }
        let mut score = best.0 / self.config.threshold;
        let mut fire = (best.0 > self.config.threshold).then_some(best);
        if let Some(h) = self.config.spread_threshold {
            let (s, w) = self.spread_scan(&m);
            score = score.max(s / h);
            if fire.is_none() && s > h {
                fire = Some((s, w, true, 1.0));
            }
        }
        self.last_score = score.max(0.0);
        if self.fired {
            return Ok(None);
        }
        Ok(fire.map(|(stat, w, spread, sign)| {
            self.fired = true;
            self.detection(&m, stat, w, spread, sign)
        }))
    }

    fn reset(&mut self) {
        self.state = self.model.map_or(0.0, |m| m.start_state);
        self.units.clear();
        self.squares.clear();
        self.innovations.clear();
        self.values.clear();
        self.seen = 0;
        self.fired = false;
        self.last_score = 0.0;
    }

    fn score(&self) -> f64 {
        self.last_score
    }

    fn default_severity(&self) -> SeverityPolicy {
        SeverityPolicy::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Standard normal by Box–Muller from a seeded generator.
    fn normal(rng: &mut fastrand::Rng) -> f64 {
        let u1 = rng.f64().max(1e-300);
        let u2 = rng.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// An AR(1) series with marginal standard deviation `sd` around `level`.
    fn ar1(rng: &mut fastrand::Rng, n: usize, phi: f64, level: f64, sd: f64) -> Vec<f64> {
        let e = sd * (1.0 - phi * phi).sqrt();
        let mut x = normal(rng) * sd;
        (0..n)
            .map(|_| {
                x = phi * x + e * normal(rng);
                level + x
            })
            .collect()
    }

    fn first_alarm(d: &mut ShiftDetector, xs: &[f64]) -> Option<u64> {
        xs.iter()
            .find_map(|&x| d.update(x).unwrap())
            .map(|det| det.index)
    }

    #[test]
    fn autocorrelated_noise_rarely_alarms() {
        let mut rng = fastrand::Rng::with_seed(11);
        let mut alarms = 0;
        for run in 0..200 {
            let phi = if run % 2 == 0 { 0.8 } else { 0.0 };
            let xs = ar1(&mut rng, 540, phi, 40.0, 5.0);
            let mut d = ShiftDetector::new(ShiftConfig::default()).unwrap();
            d.set_baseline(&xs[..360]).unwrap();
            if phi > 0.0 {
                // the lag-1 estimate over 360 values has a standard error of about 0.03
                assert!((d.phi().unwrap() - 0.8).abs() < 0.15, "{:?}", d.phi());
            }
            alarms += usize::from(first_alarm(&mut d, &xs[360..]).is_some());
        }
        assert!(
            alarms <= 4,
            "{alarms} false alarms in 200 sessions of 180 values"
        );
    }

    #[test]
    fn a_single_spike_does_not_alarm_but_a_step_does_at_its_own_index() {
        let mut rng = fastrand::Rng::with_seed(3);
        let xs = ar1(&mut rng, 540, 0.8, 40.0, 5.0);
        let mut d = ShiftDetector::new(ShiftConfig::default()).unwrap();
        d.set_baseline(&xs[..360]).unwrap();
        let mut post = xs[360..].to_vec();
        post[50] += 8.0 * 5.0;
        assert_eq!(first_alarm(&mut d, &post), None, "one 8σ spike alone");
        // a 5σ step from post index 20
        d.reset();
        let mut post = xs[360..].to_vec();
        for x in &mut post[20..] {
            *x += 5.0 * 5.0;
        }
        let at = first_alarm(&mut d, &post).expect("a 5σ step alarms");
        assert!((20..=23).contains(&at), "alarmed at {at}");
        // fires once
        assert!(post.iter().all(|&x| d.update(x).unwrap().is_none()));
    }

    fn step_config() -> ShiftConfig {
        ShiftConfig {
            test: ShiftTest::Step,
            threshold: 5.5,
            spike_guard: false,
            ..ShiftConfig::default()
        }
    }

    #[test]
    fn the_step_test_holds_its_false_alarms_on_ar1_noise() {
        let mut rng = fastrand::Rng::with_seed(17);
        let mut alarms = 0;
        for _ in 0..300 {
            let xs = ar1(&mut rng, 540, 0.8, 40.0, 5.0);
            let mut d = ShiftDetector::new(step_config()).unwrap();
            d.set_baseline(&xs[..360]).unwrap();
            alarms += usize::from(first_alarm(&mut d, &xs[360..]).is_some());
        }
        assert!(
            alarms <= 3,
            "{alarms} false alarms in 300 sessions of 180 values"
        );
    }

    #[test]
    fn the_step_test_ignores_a_spike_and_catches_a_step_at_once() {
        let mut rng = fastrand::Rng::with_seed(23);
        let (mut late, mut spikes) = (0, 0);
        for run in 0..100 {
            let xs = ar1(&mut rng, 540, 0.8, 40.0, 5.0);
            let mut d = ShiftDetector::new(step_config()).unwrap();
            d.set_baseline(&xs[..360]).unwrap();
            let onset = 20 + run % 50;
            let mut post = xs[360..].to_vec();
            post[onset] += 8.0 * 5.0;
            spikes += usize::from(first_alarm(&mut d, &post).is_some());
            // a 5σ step (about 8σₑ of innovation at φ 0.8)
            d.reset();
            let mut post = xs[360..].to_vec();
            for x in &mut post[onset..] {
                *x += 5.0 * 5.0;
            }
            let at = first_alarm(&mut d, &post).expect("a 5σ step alarms");
            assert!(at > onset as u64, "never on the onset value alone");
            late += usize::from(at > onset as u64 + 3);
        }
        assert!(spikes <= 1, "{spikes} of 100 isolated 8σ spikes alarmed");
        assert!(late <= 1, "{late} of 100 5σ steps were later than 3 values");
    }

    #[test]
    fn the_step_test_beats_the_sum_on_a_3_sigma_ar1_step() {
        let mut rng = fastrand::Rng::with_seed(29);
        let (mut step_fast, mut sum_fast) = (0, 0);
        for _ in 0..100 {
            let xs = ar1(&mut rng, 540, 0.8, 40.0, 5.0);
            let mut post = xs[360..].to_vec();
            for x in &mut post[30..] {
                *x += 3.0 * 5.0;
            }
            for (config, fast) in [
                (step_config(), &mut step_fast),
                (
                    ShiftConfig {
                        threshold: 5.5,
                        test: ShiftTest::Sum,
                        ..ShiftConfig::default()
                    },
                    &mut sum_fast,
                ),
            ] {
                let mut d = ShiftDetector::new(config).unwrap();
                d.set_baseline(&xs[..360]).unwrap();
                *fast += usize::from(first_alarm(&mut d, &post).is_some_and(|at| at <= 33));
            }
        }
        assert!(
            step_fast >= 45 && step_fast > sum_fast + 30,
            "within 3 values: step {step_fast}, sum {sum_fast} of 100"
        );
    }

    #[test]
    fn the_evidence_names_window_baseline_and_test() {
        let mut rng = fastrand::Rng::with_seed(5);
        let base: Vec<f64> = (0..360)
            .map(|_| (5.0 + 0.2 * normal(&mut rng)).exp())
            .collect();
        let config = ShiftConfig {
            transform: Transform::Log,
            trend: true,
            threshold: 4.2,
            test: ShiftTest::Sum,
            ..ShiftConfig::default()
        };
        let mut d = ShiftDetector::new(config).unwrap();
        d.set_baseline(&base).unwrap();
        let post: Vec<f64> = (0..30)
            .map(|_| (5.0 + 0.2 * normal(&mut rng)).exp() * 2.0)
            .collect();
        let det = post.iter().find_map(|&x| d.update(x).unwrap()).unwrap();
        assert!(det.index <= 3, "{det:?}");
        assert!(
            det.rule.starts_with("shift z ") && det.rule.contains("> 4.2 over the last"),
            "{}",
            det.rule
        );
        assert!(
            det.detail.contains("the baseline predicts") && det.detail.contains("log scale"),
            "{}",
            det.detail
        );
        let expected = det.baseline.unwrap();
        assert!((expected / 5f64.exp() - 1.0).abs() < 0.1, "{expected}");
        assert!(det.effect > 0.5 && det.confidence > 0.99, "{det:?}");
        // non-positive values are judged at the floor, not rejected
        assert!(d.update(0.0).is_ok() && d.update(-3.0).is_ok());
    }

    #[test]
    fn a_drift_already_running_is_extrapolated_with_trend() {
        let mut rng = fastrand::Rng::with_seed(9);
        let xs: Vec<f64> = (0..540)
            .map(|t| 100.0 + 0.02 * t as f64 + normal(&mut rng))
            .collect();
        let mut with = ShiftDetector::new(ShiftConfig {
            trend: true,
            ..ShiftConfig::default()
        })
        .unwrap();
        with.set_baseline(&xs[..360]).unwrap();
        assert_eq!(first_alarm(&mut with, &xs[360..]), None);
        let mut without = ShiftDetector::new(ShiftConfig::default()).unwrap();
        without.set_baseline(&xs[..360]).unwrap();
        assert!(
            first_alarm(&mut without, &xs[360..]).is_some(),
            "the drift alone is a shift against a flat baseline"
        );
    }

    #[test]
    fn a_wider_spread_alarms_and_direction_is_respected() {
        let mut rng = fastrand::Rng::with_seed(21);
        let base: Vec<f64> = (0..360).map(|_| 50.0 + normal(&mut rng)).collect();
        let mut d = ShiftDetector::new(ShiftConfig::default()).unwrap();
        d.set_baseline(&base).unwrap();
        let wide: Vec<f64> = (0..180).map(|_| 50.0 + 3.0 * normal(&mut rng)).collect();
        let det = wide.iter().find_map(|&x| d.update(x).unwrap()).unwrap();
        assert!(
            det.rule.contains("spread") || det.rule.contains("shift"),
            "{}",
            det.rule
        );
        let mut d = ShiftDetector::new(ShiftConfig {
            spread_threshold: None,
            ..ShiftConfig::default()
        })
        .unwrap();
        d.set_baseline(&base).unwrap();
        let lower: Vec<f64> = (0..60).map(|_| 45.0 + normal(&mut rng)).collect();
        assert_eq!(
            first_alarm(&mut d, &lower),
            None,
            "a decrease is fine by default"
        );
        let mut d = ShiftDetector::new(ShiftConfig {
            direction: Direction::Either,
            ..ShiftConfig::default()
        })
        .unwrap();
        d.set_baseline(&base).unwrap();
        assert!(first_alarm(&mut d, &lower).is_some());
    }

    #[test]
    fn settings_and_baselines_are_checked() {
        let e = ShiftDetector::new(ShiftConfig {
            clip: 0.5,
            threshold: -1.0,
            max_window: 0,
            ..ShiftConfig::default()
        })
        .unwrap_err();
        let fields: Vec<&str> = e.field_errors().iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["clip", "threshold", "max_window"]);
        let mut d = ShiftDetector::new(ShiftConfig::default()).unwrap();
        assert_eq!(d.update(1.0).unwrap(), None, "no baseline, no verdict");
        assert!(d.set_baseline(&[1.0; 5]).is_err());
        assert!(d.set_baseline(&[f64::NAN; 40]).is_err());
        assert!(d.update(f64::INFINITY).is_err());
        // a flat baseline still gives a usable scale
        d.set_baseline(&[10.0; 40]).unwrap();
        assert!(first_alarm(&mut d, &[10.0; 20]).is_none());
    }
}
