//! [`TrendDetector`]: slow degradation, by the Theil–Sen slope and the Mann–Kendall test.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::stats::{self, MannKendall, check_value};
use super::{
    Detection, DetectionKind, Detector, Direction, LookSpending, SeverityPolicy, num, pval,
    validate_alpha,
};
use crate::error::{Problems, Result};

/// Settings of a [`TrendDetector`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrendConfig {
    /// Which trend is bad (default `increase`).
    pub direction: Direction,
    /// The largest window tested; older values slide out (default 120).
    pub window: usize,
    /// Values needed before the first look (default 12).
    pub min_samples: usize,
    /// The change over the window, relative to its median, that is still acceptable
    /// (Theil–Sen slope × (n − 1) / |median|; default 0.1).
    pub allowed_change: f64,
    /// The smallest absolute change over the window that matters (default 0).
    pub min_change: f64,
    /// False-alarm budget for a whole session, spent over looks (default 0.05).
    pub alpha: f64,
    /// A look happens when the window has grown by this factor, then every `window / 4` values
    /// once it is full (default 1.25).
    pub look_growth: f64,
}

impl Default for TrendConfig {
    fn default() -> Self {
        Self {
            direction: Direction::Increase,
            window: 120,
            min_samples: 12,
            allowed_change: 0.1,
            min_change: 0.0,
            alpha: 0.05,
            look_growth: 1.25,
        }
    }
}

impl TrendConfig {
    pub(crate) fn check(&self, p: &mut Problems, prefix: &str) {
        if self.min_samples < 4 {
            p.add(format!("{prefix}min_samples"), "must be at least 4");
        }
        if self.window < self.min_samples {
            p.add(format!("{prefix}window"), "must be at least `min_samples`");
        }
        if !(self.allowed_change.is_finite() && self.allowed_change >= 0.0) {
            p.add(
                format!("{prefix}allowed_change"),
                "must be a finite number ≥ 0",
            );
        }
        if !(self.min_change.is_finite() && self.min_change >= 0.0) {
            p.add(format!("{prefix}min_change"), "must be a finite number ≥ 0");
        }
        validate_alpha(p, &format!("{prefix}alpha"), self.alpha);
        if !(self.look_growth.is_finite() && self.look_growth >= 1.0) {
            p.add(
                format!("{prefix}look_growth"),
                "must be a finite number ≥ 1",
            );
        }
    }
}

/// The result of testing one window for a trend.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TrendResult {
    /// Values tested.
    pub n: usize,
    /// The Mann–Kendall test.
    pub mann_kendall: MannKendall,
    /// The Theil–Sen slope per value.
    pub slope: f64,
    /// The Theil–Sen intercept (at position 0 of the window).
    pub intercept: f64,
    /// The window's median.
    pub median: f64,
    /// The change over the window, slope × (n − 1).
    pub change: f64,
    /// The p-value of the trend in the bad direction (one-sided, doubled for `either`).
    pub p_value: f64,
    /// The level it was judged at.
    pub level: f64,
    /// Which look.
    pub look: u32,
    /// Whether the rule fired.
    pub alarm: bool,
}

/// Alarms on a significant monotonic trend (Mann–Kendall) whose size (Theil–Sen slope over
/// the window) exceeds the allowed change, spending α over looks.
///
/// Effect size: the change over the window relative to |median| (the absolute change when the
/// median is 0). Confidence: 1 − p.
#[derive(Debug, Clone)]
pub struct TrendDetector {
    config: TrendConfig,
    values: VecDeque<f64>,
    spending: LookSpending,
    next_look: u64,
    seen: u64,
    fired: bool,
    last: f64,
}

impl TrendDetector {
    /// A detector with these settings.
    ///
    /// # Errors
    /// [`Error::Validation`](crate::Error) naming each bad setting.
    pub fn new(config: TrendConfig) -> Result<Self> {
        let mut p = Problems::default();
        config.check(&mut p, "");
        p.finish("trend detector")?;
        Ok(Self {
            config,
            values: VecDeque::with_capacity(config.window),
            spending: LookSpending::new(config.alpha),
            next_look: config.min_samples as u64,
            seen: 0,
            fired: false,
            last: 0.0,
        })
    }

    /// Tests `xs` once at the full level α.
    ///
    /// # Errors
    /// [`Error::Validation`](crate::Error) when `xs` has fewer than `min_samples` values or is
    /// not finite.
    pub fn test(&self, xs: &[f64]) -> Result<TrendResult> {
        stats::check_finite("values", xs)?;
        if xs.len() < self.config.min_samples {
            return Err(crate::Error::invalid(
                "values",
                format!(
                    "need at least {} values (min_samples)",
                    self.config.min_samples
                ),
            ));
        }
        self.test_at(xs, 1, self.config.alpha)
    }

    fn test_at(&self, xs: &[f64], look: u32, level: f64) -> Result<TrendResult> {
        let mk = stats::mann_kendall(xs)?;
        let (slope, intercept) = stats::theil_sen(xs)?;
        let mut v = xs.to_vec();
        let median = stats::median_in_place(&mut v);
        let n = xs.len();
        let change = slope * (n - 1) as f64;
        let up = stats::normal_sf(mk.z);
        let down = stats::normal_cdf(mk.z);
        let p_value = match self.config.direction {
            Direction::Increase => up,
            Direction::Decrease => down,
            Direction::Either => (2.0 * up.min(down)).min(1.0),
        };
        let margin = (self.config.allowed_change * median.abs()).max(self.config.min_change);
        let big = match self.config.direction {
            Direction::Increase => change > margin,
            Direction::Decrease => change < -margin,
            Direction::Either => change.abs() > margin,
        };
        let alarm = p_value < level && big;
        Ok(TrendResult {
            n,
            mann_kendall: mk,
            slope,
            intercept,
            median,
            change,
            p_value,
            level,
            look,
            alarm,
        })
    }

    /// The detection a result amounts to, if it fired.
    #[must_use]
    pub fn detection(&self, r: &TrendResult, index: u64) -> Option<Detection> {
        if !r.alarm {
            return None;
        }
        let effect = if r.median != 0.0 {
            r.change / r.median.abs()
        } else {
            r.change
        };
        Some(Detection {
            kind: DetectionKind::Alarm,
            index,
            current: r.intercept + r.slope * (r.n - 1) as f64,
            baseline: Some(r.intercept),
            statistic: r.mann_kendall.s,
            p_value: Some(r.p_value),
            confidence: 1.0 - r.p_value,
            effect,
            n: r.n,
            rule: format!(
                "Mann–Kendall p < {} (look {}) and Theil–Sen change beyond the allowed {}%",
                pval(r.level),
                r.look,
                num(self.config.allowed_change * 100.0)
            ),
            detail: format!(
                "is trending {}: {} per value over the last {} values ({} in all, {}% of its median {}); Mann–Kendall S = {}, tau = {}, p = {} at look {}",
                if r.slope >= 0.0 { "up" } else { "down" },
                num(r.slope),
                r.n,
                num(r.change),
                num(effect * 100.0),
                num(r.median),
                num(r.mann_kendall.s),
                num(r.mann_kendall.tau),
                pval(r.p_value),
                r.look
            ),
        })
    }
}

impl Detector for TrendDetector {
    fn name(&self) -> &'static str {
        "trend"
    }

    fn update(&mut self, x: f64) -> Result<Option<Detection>> {
        check_value("value", x)?;
        let index = self.seen;
        self.seen += 1;
        if self.values.len() == self.config.window {
            self.values.pop_front();
        }
        self.values.push_back(x);
        if self.fired || self.seen < self.next_look {
            return Ok(None);
        }
        let n = self.seen;
        let w = self.config.window as u64;
        self.next_look = if n < w {
            ((n as f64 * self.config.look_growth).ceil() as u64)
                .max(n + 1)
                .min(w)
        } else {
            n + (w / 4).max(1)
        };
        let (k, level) = self.spending.next_look();
        let xs: Vec<f64> = self.values.iter().copied().collect();
        let r = self.test_at(&xs, k, level)?;
        self.last = if r.p_value >= 1.0 {
            0.0
        } else {
            r.p_value.max(1e-300).ln() / level.ln()
        };
        let d = self.detection(&r, index);
        self.fired = d.is_some();
        Ok(d)
    }

    fn reset(&mut self) {
        self.values.clear();
        self.spending.reset();
        self.next_look = self.config.min_samples as u64;
        self.seen = 0;
        self.fired = false;
        self.last = 0.0;
    }

    fn score(&self) -> f64 {
        self.last
    }

    fn default_severity(&self) -> SeverityPolicy {
        SeverityPolicy::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_ramp_is_found_and_the_control_is_quiet() {
        let mut rng = fastrand::Rng::with_seed(51);
        let noise = |rng: &mut fastrand::Rng| (0..12).map(|_| rng.f64()).sum::<f64>() - 6.0;
        let control: Vec<f64> = (0..300).map(|_| 200.0 + 10.0 * noise(&mut rng)).collect();
        let mut d = TrendDetector::new(TrendConfig::default()).unwrap();
        assert!(d.detect(&control).unwrap().is_empty());
        d.reset();
        // +0.5 per value: +60 (30%) over a 120-value window, buried in σ = 10 noise
        let ramp: Vec<f64> = (0..300)
            .map(|i| 200.0 + 0.5 * i as f64 + 10.0 * noise(&mut rng))
            .collect();
        let found = d.detect(&ramp).unwrap();
        assert_eq!(found.len(), 1);
        assert!(found[0].index < 120, "{}", found[0].index);
        assert!(
            found[0].detail.starts_with("is trending up"),
            "{}",
            found[0].detail
        );
    }

    #[test]
    fn a_significant_but_small_trend_is_within_the_allowance() {
        let d = TrendDetector::new(TrendConfig {
            allowed_change: 0.5,
            ..Default::default()
        })
        .unwrap();
        let xs: Vec<f64> = (0..100).map(|i| 100.0 + 0.1 * i as f64).collect(); // +10%
        let r = d.test(&xs).unwrap();
        assert!(r.p_value < 1e-10 && !r.alarm);
        assert!((r.slope - 0.1).abs() < 1e-12);
    }

    #[test]
    fn bad_input() {
        let d = TrendDetector::new(TrendConfig::default()).unwrap();
        assert!(d.test(&[1.0; 5]).is_err());
        assert!(d.test(&[f64::NAN; 20]).is_err());
        let r = d.test(&[1.0; 20]).unwrap();
        assert!(!r.alarm && r.slope == 0.0);
        assert!(
            TrendDetector::new(TrendConfig {
                min_samples: 2,
                window: 1,
                ..Default::default()
            })
            .is_err()
        );
    }
}
