//! [`BaselineComparisonDetector`]: "worse than before" — Kayenta's judge, done right.
//!
//! Kayenta's NetflixACAJudge runs a Mann–Whitney U test and reports a Hodges–Lehmann style
//! confidence interval, then applies effect-size cut-offs separately. Here the allowed change
//! is part of the hypothesis: with δ = `allowed_change` · |baseline median| (or `min_shift`),
//! the test is H0: shift ≤ δ against H1: shift > δ, run as a Mann–Whitney test of (current − δ)
//! against the baseline. A significant result therefore means "worse by more than allowed",
//! not "different by some amount and also the estimate is large".
//!
//! Mann–Whitney looks at location. A deploy that leaves the median alone but widens the
//! distribution (a slow tail, bimodal latency) goes unseen by it, so a second test runs beside
//! it: **Brown–Forsythe** (Levene's test on absolute deviations from the median), which alarms
//! when the spread grows by more than the allowed change. A regression of only the slowest few
//! percent (a p95/p99 problem) can stay under both, so a third, opt-in test looks at the tail
//! itself: with `tail_quantile` q, the **tail test** counts the current values beyond the
//! baseline's q-quantile (below its (1 − q)-quantile for `decrease`) and compares that count
//! with the baseline's own by the exact conditional binomial test the error-rate detector uses,
//! with the allowed change as the margin ("more than (1 + allowed_change) times as many values
//! in the tail as before"). The false-alarm budget is split evenly between the tests that run
//! and spent over looks (see [`LookSpending`]).
//!
//! **Autocorrelation.** Rank tests assume independent values; a CPU-like series is not, and
//! looks at it alarm far more often than α. In streaming use (a session), the baseline's lag-1
//! autocorrelation φ, read in the order it was given (time order) and clamped to [0, 0.9],
//! widens the Mann–Whitney statistic's variance by (1 + φ) / (1 − φ) — the AR(1)
//! effective-sample-size factor. One-off comparisons (`compare`) take the values as
//! independent. For autocorrelated series the `shift` detector, which models them, is the
//! better judge.

use serde::{Deserialize, Serialize};

use super::stats::{
    self, Alternative, BrownForsythe, HodgesLehmann, MannWhitney, binomial_sf_ge, check_finite,
    check_value, median_sorted,
};
use super::{
    Detection, DetectionKind, Detector, Direction, LookSpending, SeverityPolicy, num, pval,
    validate_alpha,
};
use crate::error::{Problems, Result};

/// Settings of a [`BaselineComparisonDetector`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BaselineComparisonConfig {
    /// Which change is bad (default `increase`).
    pub direction: Direction,
    /// The relative change of the median that is still acceptable, e.g. 0.2 = 20% (default 0.1).
    pub allowed_change: f64,
    /// The smallest absolute shift that matters, used when larger than the relative one (and
    /// when the baseline median is 0). Default 0.
    pub min_shift: f64,
    /// False-alarm budget for a whole session, shared by all looks and both tests (default 0.05).
    pub alpha: f64,
    /// Values needed in the baseline and in the current window before any look (default 5: the
    /// default schedule gives 9 check ticks, and 5 separated values already reach p < 0.001).
    pub min_samples: usize,
    /// Confidence level of the Hodges–Lehmann interval (default 0.95).
    pub confidence: f64,
    /// Also test the spread (Brown–Forsythe) (default true).
    pub spread: bool,
    /// Also test the tail beyond this quantile of the baseline, e.g. 0.95 for "more values
    /// slower than the old p95" (default `null`: off). Between 0.5 and 1 (exclusive).
    pub tail_quantile: Option<f64>,
    /// In streaming use, the next look happens when the current window has grown by this factor
    /// (default 1.25: each look at a window at least 25 % larger than the last).
    pub look_growth: f64,
}

impl Default for BaselineComparisonConfig {
    fn default() -> Self {
        Self {
            direction: Direction::Increase,
            allowed_change: 0.1,
            min_shift: 0.0,
            alpha: 0.05,
            min_samples: 5,
            confidence: 0.95,
            spread: true,
            tail_quantile: None,
            look_growth: 1.25,
        }
    }
}

impl BaselineComparisonConfig {
    pub(crate) fn check(&self, p: &mut Problems, prefix: &str) {
        if !(self.allowed_change.is_finite() && self.allowed_change >= 0.0) {
            p.add(
                format!("{prefix}allowed_change"),
                "must be a finite number ≥ 0",
            );
        }
        if !(self.min_shift.is_finite() && self.min_shift >= 0.0) {
            p.add(format!("{prefix}min_shift"), "must be a finite number ≥ 0");
        }
        validate_alpha(p, &format!("{prefix}alpha"), self.alpha);
        if self.min_samples < 3 {
            p.add(format!("{prefix}min_samples"), "must be at least 3");
        }
        if !(self.confidence > 0.0 && self.confidence < 1.0) {
            p.add(
                format!("{prefix}confidence"),
                "must be between 0 and 1 (exclusive)",
            );
        }
        if !(self.look_growth.is_finite() && self.look_growth >= 1.0) {
            p.add(
                format!("{prefix}look_growth"),
                "must be a finite number ≥ 1",
            );
        }
        if let Some(q) = self.tail_quantile
            && !(q > 0.5 && q < 1.0)
        {
            p.add(
                format!("{prefix}tail_quantile"),
                "must be between 0.5 and 1 (exclusive), e.g. 0.95",
            );
        }
    }
}

/// The one-sided rank test `m` (alternative `alt`) with its variance widened by `inflation`:
/// the normal approximation of z / √inflation, never more significant than `m` itself.
fn widen(m: MannWhitney, alt: Alternative, inflation: f64) -> MannWhitney {
    if inflation <= 1.0 + 1e-9 {
        return m;
    }
    let z = m.z / inflation.sqrt();
    let p = match alt {
        Alternative::Less => stats::normal_cdf(z),
        _ => stats::normal_sf(z),
    };
    MannWhitney {
        z,
        p_value: p.max(m.p_value).clamp(0.0, 1.0),
        method: stats::MwuMethod::Asymptotic,
        ..m
    }
}

/// Everything one comparison of a current window with a baseline found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BaselineComparison {
    /// Values in the baseline.
    pub n_baseline: usize,
    /// Values in the current window.
    pub n_current: usize,
    /// Median of the baseline.
    pub baseline_median: f64,
    /// Median of the current window.
    pub current_median: f64,
    /// The allowed absolute shift δ the test was run against.
    pub margin: f64,
    /// The Mann–Whitney test of (current ∓ δ) against the baseline, in the bad direction(s);
    /// for `either`, the more significant side with its p-value doubled.
    pub location: MannWhitney,
    /// Hodges–Lehmann shift of current minus baseline, with its confidence interval.
    pub shift: HodgesLehmann,
    /// The shift relative to |baseline median| (`None` when that median is 0).
    pub relative_change: Option<f64>,
    /// The Brown–Forsythe spread test, when enabled.
    pub spread: Option<BrownForsythe>,
    /// The significance level the tests were judged at (the look's level, split between tests).
    pub level: f64,
    /// Which look this was (1-based; batch comparisons are look 1).
    pub look: u32,
    /// The tail test, when `tail_quantile` is set.
    pub tail: Option<TailTest>,
    /// The location rule fired.
    pub location_alarm: bool,
    /// The spread rule fired.
    pub spread_alarm: bool,
    /// The tail rule fired.
    pub tail_alarm: bool,
}

/// How many values lie in the tail beyond the baseline's quantile, before and now.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TailTest {
    /// The quantile that bounds the tail (for `decrease`, the tail lies below 1 − this).
    pub quantile: f64,
    /// The baseline's value at that quantile (the tail's edge).
    pub threshold: f64,
    /// `true` when the tail is below the threshold (direction `decrease`).
    pub lower: bool,
    /// Baseline values in the tail.
    pub baseline_beyond: usize,
    /// Current values in the tail.
    pub current_beyond: usize,
    /// The exact conditional p-value of H0 "at most (1 + allowed_change) times the baseline's
    /// share of values in the tail"; for `either`, the more significant side, doubled.
    pub p_value: f64,
}

impl TailTest {
    /// The share of baseline values in the tail.
    #[must_use]
    pub fn baseline_share(&self, n_baseline: usize) -> f64 {
        self.baseline_beyond as f64 / n_baseline.max(1) as f64
    }
}

/// The tail test of one side: `upper` counts values above the baseline's q-quantile, otherwise
/// below its (1 − q)-quantile. `base` and `cur` are sorted.
fn tail_test(base: &[f64], cur: &[f64], q: f64, upper: bool, allowed_change: f64) -> TailTest {
    let at = if upper { q } else { 1.0 - q };
    let threshold = stats::quantile_sorted(base, at);
    let beyond = |xs: &[f64]| {
        if upper {
            xs.len() - xs.partition_point(|&v| v <= threshold)
        } else {
            xs.partition_point(|&v| v < threshold)
        }
    };
    let (k0, k1) = (beyond(base), beyond(cur));
    let (n0, n1) = (base.len() as f64, cur.len() as f64);
    let ratio = 1.0 + allowed_change;
    let pi = n1 * ratio / (n1 * ratio + n0);
    let p_value = binomial_sf_ge(k1 as u64, (k0 + k1) as u64, pi);
    TailTest {
        quantile: q,
        threshold,
        lower: !upper,
        baseline_beyond: k0,
        current_beyond: k1,
        p_value,
    }
}

/// Compares a current window against a baseline with the Mann–Whitney U test, the
/// Hodges–Lehmann shift and the Brown–Forsythe spread test (see the module docs).
///
/// Effect size: the Hodges–Lehmann shift relative to |baseline median| (for the spread rule, the
/// spread ratio − 1). Confidence: 1 − p.
#[derive(Debug, Clone)]
pub struct BaselineComparisonDetector {
    config: BaselineComparisonConfig,
    baseline: Vec<f64>, // sorted
    current: Vec<f64>,
    spending: LookSpending,
    next_look: usize,
    fired: bool,
    last_score: f64,
    /// The AR(1) variance inflation (1 + φ) / (1 − φ) read from the baseline's order (1 for
    /// independent values); widens the rank test in streaming looks.
    inflation: f64,
}

/// The AR(1) effective-sample-size factor (1 + φ) / (1 − φ) of `xs` in their order: φ is the
/// lag-1 autocorrelation, clamped to [0, 0.9]; 1 for fewer than 20 values.
fn ar1_inflation(xs: &[f64]) -> f64 {
    if xs.len() < 20 {
        return 1.0;
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var: f64 = xs.iter().map(|x| (x - mean).powi(2)).sum();
    if var <= 0.0 {
        return 1.0;
    }
    let cov: f64 = xs.windows(2).map(|w| (w[0] - mean) * (w[1] - mean)).sum();
    let phi = (cov / var).clamp(0.0, 0.9);
    (1.0 + phi) / (1.0 - phi)
}

impl BaselineComparisonDetector {
    /// A detector without a baseline yet (give one with [`set_baseline`](Self::set_baseline)).
    ///
    /// # Errors
    /// [`Error::Validation`](crate::Error) naming each bad setting.
    pub fn new(config: BaselineComparisonConfig) -> Result<Self> {
        let mut p = Problems::default();
        config.check(&mut p, "");
        p.finish("baseline comparison detector")?;
        Ok(Self {
            config,
            baseline: Vec::new(),
            current: Vec::new(),
            spending: LookSpending::new(config.alpha),
            next_look: config.min_samples,
            fired: false,
            last_score: 0.0,
            inflation: 1.0,
        })
    }

    /// A detector with a baseline.
    ///
    /// # Errors
    /// As [`new`](Self::new) and [`set_baseline`](Self::set_baseline).
    pub fn with_baseline(config: BaselineComparisonConfig, baseline: &[f64]) -> Result<Self> {
        let mut d = Self::new(config)?;
        d.set_baseline(baseline)?;
        Ok(d)
    }

    /// Replaces the baseline (the current window and the looks taken are kept).
    ///
    /// # Errors
    /// [`Error::Validation`](crate::Error) when `baseline` is empty or not finite.
    pub fn set_baseline(&mut self, baseline: &[f64]) -> Result<()> {
        check_finite("baseline", baseline)?;
        self.inflation = ar1_inflation(baseline);
        self.baseline = baseline.to_vec();
        stats::sort(&mut self.baseline);
        Ok(())
    }

    /// Adds a value to the current window without looking (a session looks once per tick
    /// with [`look`](Self::look)).
    ///
    /// # Errors
    /// [`Error::Validation`](crate::Error) when `x` is not finite.
    pub fn push(&mut self, x: f64) -> Result<()> {
        check_value("value", x)?;
        self.current.push(x);
        Ok(())
    }

    /// The baseline's size.
    #[must_use]
    pub fn baseline_len(&self) -> usize {
        self.baseline.len()
    }

    /// The current window's size.
    #[must_use]
    pub fn current_len(&self) -> usize {
        self.current.len()
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &BaselineComparisonConfig {
        &self.config
    }

    /// One comparison of `current` with `baseline` at the full level α (a single look).
    ///
    /// # Errors
    /// [`Error::Validation`](crate::Error) when either sample is empty, not finite, or smaller
    /// than `min_samples`.
    pub fn compare(&self, baseline: &[f64], current: &[f64]) -> Result<BaselineComparison> {
        check_finite("baseline", baseline)?;
        check_finite("current", current)?;
        let mut b = baseline.to_vec();
        stats::sort(&mut b);
        self.compare_sorted(&b, current, 1, self.config.alpha, 1.0)
    }

    /// One comparison as look `look` (1-based) of a session: at the level
    /// [`LookSpending::level`] gives that look, so a loop of calls with looks 1, 2, 3… keeps
    /// the whole loop's false-alarm rate within α.
    ///
    /// # Errors
    /// As [`compare`](Self::compare), and [`Error::Validation`](crate::Error) on `look` when
    /// it is 0.
    pub fn compare_at_look(
        &self,
        baseline: &[f64],
        current: &[f64],
        look: u32,
    ) -> Result<BaselineComparison> {
        if look == 0 {
            return Err(crate::Error::invalid("look", "looks are numbered from 1"));
        }
        check_finite("baseline", baseline)?;
        check_finite("current", current)?;
        let mut b = baseline.to_vec();
        stats::sort(&mut b);
        self.compare_sorted(
            &b,
            current,
            look,
            LookSpending::level(self.config.alpha, look),
            1.0,
        )
    }

    /// Looks at the current window now, spending the next share of α; returns the comparison
    /// (its `location_alarm` / `spread_alarm` say whether it fired), or `None` when either
    /// side has fewer than `min_samples` values.
    ///
    /// # Errors
    /// Never for a detector built by its constructors (kept for the binding's sake).
    pub fn look(&mut self) -> Result<Option<BaselineComparison>> {
        let n = self.config.min_samples;
        if self.baseline.len() < n || self.current.len() < n {
            return Ok(None);
        }
        let (k, level) = self.spending.next_look();
        let c = self.compare_sorted(&self.baseline, &self.current, k, level, self.inflation)?;
        self.last_score = score_of(&c);
        Ok(Some(c))
    }

    /// The comparison at `level`; `inflation` > 1 widens the rank test's variance (streaming
    /// looks at an autocorrelated baseline).
    fn compare_sorted(
        &self,
        base: &[f64],
        current: &[f64],
        look: u32,
        level: f64,
        inflation: f64,
    ) -> Result<BaselineComparison> {
        let cfg = &self.config;
        let min = cfg.min_samples;
        if base.len() < min || current.len() < min {
            return Err(crate::Error::invalid(
                "samples",
                format!(
                    "need at least {min} values on each side (min_samples), got {} baseline and {} current",
                    base.len(),
                    current.len()
                ),
            ));
        }
        let mut cur = current.to_vec();
        stats::sort(&mut cur);
        let bm = median_sorted(base);
        let cm = median_sorted(&cur);
        let margin = (cfg.allowed_change * bm.abs()).max(cfg.min_shift);
        let shifted = |d: f64| cur.iter().map(|x| x - d).collect::<Vec<f64>>();
        let test = |d: f64, alt: Alternative| -> Result<MannWhitney> {
            Ok(widen(
                stats::mann_whitney(&shifted(d), base, alt)?,
                alt,
                inflation,
            ))
        };
        let location = match cfg.direction {
            Direction::Increase => test(margin, Alternative::Greater)?,
            Direction::Decrease => test(-margin, Alternative::Less)?,
            Direction::Either => {
                let up = test(margin, Alternative::Greater)?;
                let down = test(-margin, Alternative::Less)?;
                let mut best = if up.p_value <= down.p_value { up } else { down };
                best.p_value = (2.0 * best.p_value).min(1.0);
                best
            }
        };
        let shift = stats::hodges_lehmann_sorted(&cur, base, cfg.confidence);
        let relative_change = (bm != 0.0).then(|| shift.shift / bm.abs());
        let tests = 1 + usize::from(cfg.spread) + usize::from(cfg.tail_quantile.is_some());
        let loc_level = level / tests as f64;
        let spread_level = loc_level;
        let location_alarm = location.p_value < loc_level;
        let tail = cfg.tail_quantile.map(|q| match cfg.direction {
            Direction::Increase => tail_test(base, &cur, q, true, cfg.allowed_change),
            Direction::Decrease => tail_test(base, &cur, q, false, cfg.allowed_change),
            Direction::Either => {
                let up = tail_test(base, &cur, q, true, cfg.allowed_change);
                let down = tail_test(base, &cur, q, false, cfg.allowed_change);
                let mut best = if up.p_value <= down.p_value { up } else { down };
                best.p_value = (2.0 * best.p_value).min(1.0);
                best
            }
        });
        let tail_alarm = tail.is_some_and(|t| {
            let (s0, s1) = (
                t.baseline_share(base.len()),
                t.current_beyond as f64 / cur.len() as f64,
            );
            t.p_value < loc_level && s1 > s0
        });
        let spread = if cfg.spread && base.len() >= 2 && cur.len() >= 2 {
            Some(stats::brown_forsythe(&cur, base)?)
        } else {
            None
        };
        let spread_alarm = spread.is_some_and(|s| {
            s.p_value < spread_level
                && s.spread_x > s.spread_y * (1.0 + cfg.allowed_change)
                && s.spread_x > 0.0
        });
        Ok(BaselineComparison {
            n_baseline: base.len(),
            n_current: cur.len(),
            baseline_median: bm,
            current_median: cm,
            margin,
            location,
            shift,
            relative_change,
            spread,
            level: loc_level,
            look,
            tail,
            location_alarm,
            spread_alarm,
            tail_alarm,
        })
    }

    /// The detection a comparison amounts to, if a rule fired (location first, then spread,
    /// then tail).
    #[must_use]
    pub fn detection(&self, c: &BaselineComparison) -> Option<Detection> {
        let index = c.n_current.saturating_sub(1) as u64;
        let pct = |r: f64| format!("{}{}%", if r >= 0.0 { "+" } else { "" }, num(r * 100.0));
        if c.location_alarm {
            let p = c.location.p_value;
            let effect = c.relative_change.unwrap_or(c.shift.shift);
            let verb = if c.shift.shift >= 0.0 { "rose" } else { "fell" };
            let change = c
                .relative_change
                .map(|r| format!("{}, ", pct(r)))
                .unwrap_or_default();
            return Some(Detection {
                kind: DetectionKind::Alarm,
                index,
                current: c.current_median,
                baseline: Some(c.baseline_median),
                statistic: c.location.u,
                p_value: Some(p),
                confidence: 1.0 - p,
                effect,
                n: c.n_current,
                rule: format!(
                    "Mann–Whitney p < {} (look {}) for a {} beyond the allowed {}",
                    pval(c.level),
                    c.look,
                    match self.config.direction {
                        Direction::Increase => "increase",
                        Direction::Decrease => "decrease",
                        Direction::Either => "change",
                    },
                    num(c.margin)
                ),
                detail: format!(
                    "{verb} from a median of {} to {} ({change}Hodges–Lehmann shift {}, {}% CI [{}, {}]); Mann–Whitney U = {}, p = {} at look {}, {} current vs {} baseline values",
                    num(c.baseline_median),
                    num(c.current_median),
                    num(c.shift.shift),
                    num(c.shift.confidence * 100.0),
                    num(c.shift.lower),
                    num(c.shift.upper),
                    num(c.location.u),
                    pval(p),
                    c.look,
                    c.n_current,
                    c.n_baseline
                ),
            });
        }
        if c.spread_alarm {
            let s = c.spread?;
            let ratio = if s.spread_y > 0.0 {
                s.spread_x / s.spread_y
            } else {
                f64::INFINITY
            };
            return Some(Detection {
                kind: DetectionKind::Alarm,
                index,
                current: s.spread_x,
                baseline: Some(s.spread_y),
                statistic: s.f,
                p_value: Some(s.p_value),
                confidence: 1.0 - s.p_value,
                effect: ratio - 1.0,
                n: c.n_current,
                rule: format!(
                    "Brown–Forsythe p < {} (look {}) and spread up more than the allowed change",
                    pval(c.level),
                    c.look
                ),
                detail: format!(
                    "became more variable: mean absolute deviation {} against {} before ({}×), median {} against {}; Brown–Forsythe F = {}, p = {} at look {}, {} current vs {} baseline values",
                    num(s.spread_x),
                    num(s.spread_y),
                    num(ratio),
                    num(c.current_median),
                    num(c.baseline_median),
                    num(s.f),
                    pval(s.p_value),
                    c.look,
                    c.n_current,
                    c.n_baseline
                ),
            });
        }
        if c.tail_alarm {
            let t = c.tail?;
            let s0 = t.baseline_share(c.n_baseline);
            let s1 = t.current_beyond as f64 / c.n_current.max(1) as f64;
            let effect = s1 / s0.max(0.5 / c.n_baseline.max(1) as f64) - 1.0;
            let side = if t.lower { "below" } else { "above" };
            let q = if t.lower {
                1.0 - t.quantile
            } else {
                t.quantile
            };
            let pct = |r: f64| format!("{}%", num(r * 100.0));
            return Some(Detection {
                kind: DetectionKind::Alarm,
                index,
                current: s1,
                baseline: Some(s0),
                statistic: t.current_beyond as f64,
                p_value: Some(t.p_value),
                confidence: 1.0 - t.p_value,
                effect,
                n: c.n_current,
                rule: format!(
                    "tail test p < {} (look {}): more than {}× the baseline's share of values {side} its p{}",
                    pval(c.level),
                    c.look,
                    num(1.0 + self.config.allowed_change),
                    num(q * 100.0)
                ),
                detail: format!(
                    "has a heavier tail: {} of {} ({}) are {side} the baseline's p{} of {}, against {} of {} ({}) before; median {} against {}; exact conditional test p = {} at look {}",
                    t.current_beyond,
                    c.n_current,
                    pct(s1),
                    num(q * 100.0),
                    num(t.threshold),
                    t.baseline_beyond,
                    c.n_baseline,
                    pct(s0),
                    num(c.current_median),
                    num(c.baseline_median),
                    pval(t.p_value),
                    c.look
                ),
            });
        }
        None
    }
}

/// A score below 1 when quiet: the smallest ratio log(p)/log(level) of the two tests.
fn score_of(c: &BaselineComparison) -> f64 {
    let r = |p: f64| {
        if p >= 1.0 {
            0.0
        } else {
            p.max(1e-300).ln() / c.level.ln()
        }
    };
    let s = r(c.location.p_value);
    let s = c.spread.map_or(s, |b| s.max(r(b.p_value)));
    c.tail.map_or(s, |t| s.max(r(t.p_value)))
}

impl Detector for BaselineComparisonDetector {
    fn name(&self) -> &'static str {
        "baseline"
    }

    /// Adds a value to the current window; once both sides have `min_samples` values, looks
    /// whenever the window has grown by `look_growth`. Fires at most once until
    /// [`reset`](Detector::reset).
    fn update(&mut self, x: f64) -> Result<Option<Detection>> {
        check_value("value", x)?;
        self.current.push(x);
        if self.fired
            || self.current.len() < self.next_look
            || self.baseline.len() < self.config.min_samples
        {
            return Ok(None);
        }
        let n = self.current.len();
        self.next_look = ((n as f64 * self.config.look_growth).ceil() as usize).max(n + 1);
        let Some(c) = self.look()? else {
            return Ok(None);
        };
        let d = self.detection(&c);
        self.fired = d.is_some();
        Ok(d)
    }

    /// Clears the current window and the looks; the baseline stays.
    fn reset(&mut self) {
        self.current.clear();
        self.spending.reset();
        self.next_look = self.config.min_samples;
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

    /// An AR(1) series (φ, level 100, innovations σ 1) from a seeded generator.
    fn ar1(rng: &mut fastrand::Rng, n: usize, phi: f64) -> Vec<f64> {
        let mut x = 0.0;
        (0..n)
            .map(|_| {
                let (u1, u2) = (rng.f64().max(1e-12), rng.f64());
                let e = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                x = phi * x + e;
                100.0 + x
            })
            .collect()
    }

    /// How many of 200 sessions of an unchanged AR(1) series alarm when the baseline is given
    /// in time order (`ordered`) or shuffled (its autocorrelation hidden).
    fn ar1_false_alarms(ordered: bool) -> usize {
        let mut rng = fastrand::Rng::with_seed(17);
        let mut alarms = 0;
        for _ in 0..200 {
            let xs = ar1(&mut rng, 540, 0.8);
            let mut base = xs[..360].to_vec();
            if !ordered {
                rng.shuffle(&mut base);
            }
            let config = BaselineComparisonConfig {
                allowed_change: 0.0,
                spread: false,
                ..Default::default()
            };
            let mut d = BaselineComparisonDetector::with_baseline(config, &base).unwrap();
            alarms += usize::from(!d.detect(&xs[360..]).unwrap().is_empty());
        }
        alarms
    }

    #[test]
    fn autocorrelated_series_hold_their_false_alarm_rate() {
        let corrected = ar1_false_alarms(true);
        let naive = ar1_false_alarms(false);
        assert!(
            corrected <= 16,
            "{corrected} of 200 AR(1) sessions alarmed with the correction (α 0.05)"
        );
        assert!(
            naive > 2 * corrected.max(8),
            "without it: {naive} of 200 (with: {corrected})"
        );
        assert_eq!(ar1_inflation(&[1.0; 10]), 1.0, "too short to estimate");
        let iid: Vec<f64> = (0..400).map(|i| f64::from((i * 7919) % 101)).collect();
        assert!(ar1_inflation(&iid) < 1.2);
    }

    fn normal(rng: &mut fastrand::Rng) -> f64 {
        // Box–Muller
        let u1 = rng.f64().max(1e-300);
        let u2 = rng.f64();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    fn series(seed: u64, n: usize, mean: f64, sd: f64) -> Vec<f64> {
        let mut rng = fastrand::Rng::with_seed(seed);
        (0..n).map(|_| mean + sd * normal(&mut rng)).collect()
    }

    #[test]
    fn a_step_up_beyond_the_allowed_change_is_found_with_its_evidence() {
        let cfg = BaselineComparisonConfig {
            allowed_change: 0.2,
            ..Default::default()
        };
        let d = BaselineComparisonDetector::new(cfg).unwrap();
        let base = series(1, 60, 100.0, 10.0);
        // +50%: found
        let c = d.compare(&base, &series(2, 30, 150.0, 10.0)).unwrap();
        assert!(c.location_alarm, "{c:?}");
        assert!(
            c.shift.lower > 30.0 && c.shift.upper < 70.0 && c.shift.lower < c.shift.shift,
            "{:?}",
            c.shift
        );
        let det = d.detection(&c).unwrap();
        assert!(
            det.detail.starts_with("rose from a median of"),
            "{}",
            det.detail
        );
        assert!(det.effect > 0.4 && det.effect < 0.6);
        // +10% is within the allowed 20%: significant as a difference, but not an alarm
        let c = d.compare(&base, &series(3, 200, 110.0, 10.0)).unwrap();
        assert!(!c.location_alarm, "{c:?}");
        assert!(c.shift.lower > 0.0);
        // a decrease is fine for an `increase` detector
        let c = d.compare(&base, &series(4, 30, 50.0, 10.0)).unwrap();
        assert!(!c.location_alarm && d.detection(&c).is_none());
        let either = BaselineComparisonDetector::new(BaselineComparisonConfig {
            direction: Direction::Either,
            ..cfg
        })
        .unwrap();
        let c = either.compare(&base, &series(4, 30, 50.0, 10.0)).unwrap();
        assert!(c.location_alarm);
        assert!(either.detection(&c).unwrap().detail.starts_with("fell"));
    }

    #[test]
    fn a_heavier_slow_tail_is_caught_by_the_tail_test() {
        // 8% of requests become 6σ slower: the median hardly moves (Mann–Whitney stays quiet
        // against a 10% allowance), but the share of values above the old p95 more than doubles.
        let base = series(21, 400, 100.0, 5.0);
        let mut cur = series(22, 400, 100.0, 5.0);
        for v in cur.iter_mut().step_by(12) {
            *v += 30.0;
        }
        let cfg = BaselineComparisonConfig {
            spread: false,
            tail_quantile: Some(0.95),
            ..Default::default()
        };
        let d = BaselineComparisonDetector::new(cfg).unwrap();
        let c = d.compare(&base, &cur).unwrap();
        assert!(!c.location_alarm, "{c:?}");
        let t = c.tail.unwrap();
        assert_eq!(
            t.baseline_beyond, 20,
            "5% of 400 lie above the baseline's own p95"
        );
        assert!(t.current_beyond >= 45, "{t:?}");
        assert!(c.tail_alarm && t.p_value < 0.001, "{t:?}");
        assert_eq!(c.level, 0.025, "α is split between location and tail");
        let det = d.detection(&c).unwrap();
        assert!(
            det.detail.starts_with("has a heavier tail:"),
            "{}",
            det.detail
        );
        assert!(det.rule.contains("above its p95"), "{}", det.rule);
        assert!(
            det.effect > 1.0,
            "more than twice the share: {}",
            det.effect
        );
        // the same distribution again: quiet; and without the setting there is no tail test
        let c = d.compare(&base, &series(23, 400, 100.0, 5.0)).unwrap();
        assert!(!c.tail_alarm && d.detection(&c).is_none(), "{c:?}");
        let off = BaselineComparisonDetector::new(BaselineComparisonConfig {
            spread: false,
            ..Default::default()
        })
        .unwrap();
        let c = off.compare(&base, &cur).unwrap();
        assert!(c.tail.is_none() && off.detection(&c).is_none());
        // a faster tail is fine for `increase`, and found on the low side for `decrease`
        let fast: Vec<f64> = cur.iter().map(|v| 200.0 - v).collect();
        let mirrored: Vec<f64> = base.iter().map(|v| 200.0 - v).collect();
        let down = BaselineComparisonDetector::new(BaselineComparisonConfig {
            direction: Direction::Decrease,
            ..cfg
        })
        .unwrap();
        let c = down.compare(&mirrored, &fast).unwrap();
        assert!(c.tail_alarm && c.tail.unwrap().lower, "{c:?}");
        assert!(down.detection(&c).unwrap().rule.contains("below its p5"));
        assert!(!d.compare(&mirrored, &fast).unwrap().tail_alarm);
    }

    #[test]
    fn the_tail_test_keeps_its_false_alarm_rate() {
        let cfg = BaselineComparisonConfig {
            spread: false,
            tail_quantile: Some(0.9),
            alpha: 0.05,
            ..Default::default()
        };
        let d = BaselineComparisonDetector::new(cfg).unwrap();
        let trials = 400;
        let alarms = (0..trials)
            .filter(|&i| {
                d.compare(
                    &series(1000 + i, 100, 50.0, 5.0),
                    &series(5000 + i, 60, 50.0, 5.0),
                )
                .unwrap()
                .tail_alarm
            })
            .count();
        // level α/2 = 0.025 per comparison, and the exact test is conservative
        assert!(alarms <= 16, "{alarms} false alarms in {trials}");
    }

    #[test]
    fn tail_quantile_is_validated() {
        let e = BaselineComparisonDetector::new(BaselineComparisonConfig {
            tail_quantile: Some(0.3),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.field_errors()[0].field, "tail_quantile");
        assert!(
            BaselineComparisonDetector::new(BaselineComparisonConfig {
                tail_quantile: Some(1.0),
                ..Default::default()
            })
            .is_err()
        );
    }

    #[test]
    fn a_variance_increase_that_mwu_misses_is_caught_by_brown_forsythe() {
        let d = BaselineComparisonDetector::new(BaselineComparisonConfig::default()).unwrap();
        let base = series(5, 100, 100.0, 5.0);
        let wide = series(6, 100, 100.0, 20.0);
        let c = d.compare(&base, &wide).unwrap();
        assert!(!c.location_alarm, "same median: {c:?}");
        assert!(c.spread_alarm, "{c:?}");
        let det = d.detection(&c).unwrap();
        assert!(
            det.detail.starts_with("became more variable"),
            "{}",
            det.detail
        );
        assert!(det.effect > 2.0);
    }

    #[test]
    fn the_healthy_control_raises_nothing() {
        // One seeded control; the false-alarm *rate* is checked by the simulation below.
        let mut d = BaselineComparisonDetector::with_baseline(
            BaselineComparisonConfig::default(),
            &series(17, 100, 100.0, 10.0),
        )
        .unwrap();
        assert!(d.detect(&series(18, 300, 100.0, 10.0)).unwrap().is_empty());
        assert!(d.score() < 1.0);
    }

    #[test]
    fn streaming_finds_a_2_sigma_step_after_a_deploy() {
        let mut d = BaselineComparisonDetector::with_baseline(
            BaselineComparisonConfig::default(),
            &series(9, 120, 100.0, 10.0),
        )
        .unwrap();
        let found = d.detect(&series(10, 100, 120.0, 10.0)).unwrap();
        assert_eq!(found.len(), 1, "fires once");
        assert!(found[0].index < 40, "found early: {}", found[0].index);
        assert!(d.score() >= 1.0);
    }

    #[test]
    fn repeated_looks_keep_the_false_alarm_rate_within_alpha() {
        // Seeded simulation under the null: baseline and current from the same distribution,
        // a look at every growth step from 10 to 200 current values (15 looks).
        let cfg = BaselineComparisonConfig {
            allowed_change: 0.0,
            look_growth: 1.25,
            ..Default::default()
        };
        let reps = 400;
        let mut corrected = 0;
        let mut naive = 0;
        for r in 0..reps {
            let base = series(1000 + r, 50, 100.0, 10.0);
            let cur = series(5000 + r, 200, 100.0, 10.0);
            let mut d = BaselineComparisonDetector::with_baseline(cfg, &base).unwrap();
            if !d.detect(&cur).unwrap().is_empty() {
                corrected += 1;
            }
            // The same looks, each at the full α: what not correcting would do.
            let mut n = 10;
            let mut any = false;
            while n <= 200 {
                let c = d.compare(&base, &cur[..n]).unwrap();
                any |= c.location.p_value < cfg.alpha / 2.0
                    || c.spread.unwrap().p_value < cfg.alpha / 2.0;
                n = ((n as f64 * 1.25).ceil() as usize).max(n + 1);
            }
            naive += usize::from(any);
        }
        let rate = f64::from(corrected) / reps as f64;
        let naive_rate = naive as f64 / reps as f64;
        assert!(rate <= cfg.alpha, "corrected false-alarm rate {rate}");
        assert!(
            naive_rate > cfg.alpha,
            "the uncorrected looks should inflate it: {naive_rate}"
        );
    }

    #[test]
    fn bad_settings_and_small_samples_are_errors() {
        let e = BaselineComparisonDetector::new(BaselineComparisonConfig {
            alpha: 0.0,
            allowed_change: -1.0,
            min_samples: 1,
            confidence: 1.0,
            look_growth: 0.5,
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.field_errors().len(), 5);
        let d = BaselineComparisonDetector::new(BaselineComparisonConfig::default()).unwrap();
        let e = d.compare(&[1.0; 4], &[2.0; 20]).unwrap_err();
        assert!(e.to_string().contains("min_samples"), "{e}");
        assert!(d.compare(&[1.0, f64::NAN], &[2.0; 20]).is_err());
        let mut d = BaselineComparisonDetector::new(BaselineComparisonConfig::default()).unwrap();
        assert!(d.set_baseline(&[]).is_err());
        // no baseline: streaming collects and says nothing
        assert!(d.detect(&[1.0; 50]).unwrap().is_empty());
        // constant data on both sides: defined, no alarm
        let c = d.compare(&[5.0; 20], &[5.0; 20]).unwrap();
        assert!(!c.location_alarm && !c.spread_alarm);
    }
}
