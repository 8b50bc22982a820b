//! [`CusumDetector`]: a two-sided tabular CUSUM for level shifts.

use serde::{Deserialize, Serialize};

use super::stats::check_value;
use super::{Detection, DetectionKind, Detector, Direction, SeverityPolicy, num, warning_only};
use crate::error::{Problems, Result};

/// Settings of a [`CusumDetector`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CusumConfig {
    /// The in-control mean; estimated from the first `warmup` values when absent.
    pub target: Option<f64>,
    /// The in-control standard deviation; estimated from the first `warmup` values when absent.
    pub sigma: Option<f64>,
    /// Values used to estimate what is missing of `target` and `sigma` (default 20).
    pub warmup: usize,
    /// The allowance k, in σ (default 0.5: tuned to a 1σ shift).
    pub k: f64,
    /// The decision interval h, in σ (default 5: in-control ARL ≈ 465 per side).
    pub h: f64,
    /// Which shifts matter (default `either`).
    pub direction: Direction,
    /// After an alarm, move the target to the CUSUM's estimate of the new level
    /// (μ ± σ(k + S/N)) so a lasting step alarms once (default true). When false the sums restart
    /// at 0 against the old target.
    pub rebase: bool,
}

impl Default for CusumConfig {
    fn default() -> Self {
        Self {
            target: None,
            sigma: None,
            warmup: 20,
            k: 0.5,
            h: 5.0,
            direction: Direction::Either,
            rebase: true,
        }
    }
}

impl CusumConfig {
    pub(crate) fn check(&self, p: &mut Problems, prefix: &str) {
        if self.target.is_some_and(|t| !t.is_finite()) {
            p.add(format!("{prefix}target"), "must be a finite number");
        }
        if self.sigma.is_some_and(|s| !(s.is_finite() && s > 0.0)) {
            p.add(format!("{prefix}sigma"), "must be a finite number > 0");
        }
        if (self.target.is_none() || self.sigma.is_none()) && self.warmup < 2 {
            p.add(
                format!("{prefix}warmup"),
                "must be at least 2 to estimate the target and sigma",
            );
        }
        if !(self.k.is_finite() && self.k >= 0.0) {
            p.add(format!("{prefix}k"), "must be a finite number ≥ 0");
        }
        if !(self.h.is_finite() && self.h > 0.0) {
            p.add(format!("{prefix}h"), "must be a finite number > 0");
        }
    }
}

/// Running mean and variance (Welford) for warm-ups.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Warmup {
    pub(crate) n: usize,
    mean: f64,
    m2: f64,
}

impl Warmup {
    pub(crate) fn push(&mut self, x: f64) {
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
    }

    /// Mean and sample standard deviation, σ floored at 1e-9 · max(|mean|, 1).
    pub(crate) fn estimate(&self, target: Option<f64>, sigma: Option<f64>) -> (f64, f64) {
        let mean = target.unwrap_or(self.mean);
        let sd = if self.n > 1 {
            (self.m2 / (self.n - 1) as f64).sqrt()
        } else {
            0.0
        };
        (mean, sigma.unwrap_or(sd).max(1e-9 * mean.abs().max(1.0)))
    }
}

/// Two-sided tabular CUSUM (Page 1954; Montgomery's form): on standardized z = (x − μ)/σ,
/// S⁺ = max(0, S⁺ + z − k), S⁻ = max(0, S⁻ − z − k); alarm when either exceeds h.
///
/// Effect size: the estimated shift in σ, k + S/N (N = values since the sum left 0).
/// Confidence: 1. Default severity: `warning` only (a level shift alone never rolls back).
#[derive(Debug, Clone)]
pub struct CusumDetector {
    config: CusumConfig,
    warm: Warmup,
    mu: f64,
    sigma: f64,
    ready: bool,
    pos: f64,
    neg: f64,
    n_pos: u64,
    n_neg: u64,
    seen: u64,
    last: f64,
}

impl CusumDetector {
    /// A detector with these settings.
    ///
    /// # Errors
    /// [`Error::Validation`](crate::Error) naming each bad setting.
    pub fn new(config: CusumConfig) -> Result<Self> {
        let mut p = Problems::default();
        config.check(&mut p, "");
        p.finish("CUSUM detector")?;
        let mut d = Self {
            config,
            warm: Warmup::default(),
            mu: 0.0,
            sigma: 1.0,
            ready: false,
            pos: 0.0,
            neg: 0.0,
            n_pos: 0,
            n_neg: 0,
            seen: 0,
            last: 0.0,
        };
        d.reset();
        Ok(d)
    }

    /// The current target μ and σ (`None` during the warm-up).
    #[must_use]
    pub fn level(&self) -> Option<(f64, f64)> {
        self.ready.then_some((self.mu, self.sigma))
    }

    /// The upper and lower sums, in σ.
    #[must_use]
    pub fn sums(&self) -> (f64, f64) {
        (self.pos, self.neg)
    }
}

impl Detector for CusumDetector {
    fn name(&self) -> &'static str {
        "cusum"
    }

    fn update(&mut self, x: f64) -> Result<Option<Detection>> {
        check_value("value", x)?;
        let index = self.seen;
        self.seen += 1;
        if !self.ready {
            self.warm.push(x);
            if self.warm.n >= self.config.warmup {
                (self.mu, self.sigma) = self.warm.estimate(self.config.target, self.config.sigma);
                self.ready = true;
            }
            return Ok(None);
        }
        let z = (x - self.mu) / self.sigma;
        let k = self.config.k;
        self.pos = (self.pos + z - k).max(0.0);
        self.neg = (self.neg - z - k).max(0.0);
        self.n_pos = if self.pos > 0.0 { self.n_pos + 1 } else { 0 };
        self.n_neg = if self.neg > 0.0 { self.n_neg + 1 } else { 0 };
        self.last = self.pos.max(self.neg) / self.config.h;
        let h = self.config.h;
        let up = self.pos > h && self.config.direction.allows_up();
        let down = self.neg > h && self.config.direction.allows_down();
        if !(up || down) {
            if self.pos > h {
                self.pos = 0.0;
                self.n_pos = 0;
            }
            if self.neg > h {
                self.neg = 0.0;
                self.n_neg = 0;
            }
            return Ok(None);
        }
        let (sum, n, sign) = if up {
            (self.pos, self.n_pos, 1.0)
        } else {
            (self.neg, self.n_neg, -1.0)
        };
        let shift = k + sum / n.max(1) as f64; // in σ
        let old = self.mu;
        let new_level = self.mu + sign * shift * self.sigma;
        let d = Detection {
            kind: DetectionKind::Alarm,
            index,
            current: new_level,
            baseline: Some(old),
            statistic: sign * sum,
            p_value: None,
            confidence: 1.0,
            effect: shift,
            n: usize::try_from(n).unwrap_or(usize::MAX),
            rule: format!(
                "CUSUM {} > h = {}σ (k = {}σ)",
                if up { "S+" } else { "S-" },
                num(h),
                num(k)
            ),
            detail: format!(
                "shifted {} from {} to about {} ({}σ, over the last {n} values; CUSUM {} = {}σ > {}σ)",
                if up { "up" } else { "down" },
                num(old),
                num(new_level),
                num(shift),
                if up { "S+" } else { "S-" },
                num(sum),
                num(h)
            ),
        };
        if self.config.rebase {
            self.mu = new_level;
        }
        self.pos = 0.0;
        self.neg = 0.0;
        self.n_pos = 0;
        self.n_neg = 0;
        Ok(Some(d))
    }

    fn reset(&mut self) {
        self.warm = Warmup::default();
        self.ready = self.config.target.is_some() && self.config.sigma.is_some();
        if self.ready {
            self.mu = self.config.target.unwrap_or(0.0);
            self.sigma = self.config.sigma.unwrap_or(1.0);
        }
        self.pos = 0.0;
        self.neg = 0.0;
        self.n_pos = 0;
        self.n_neg = 0;
        self.seen = 0;
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

    #[test]
    fn alarm_positions_match_the_reference_recurrence() {
        // Reference: examples/eval/reference/cusum_ewma.py (numpy 2.x), the textbook recurrence
        // with target 0, sigma 1, k 0.5, h 4, no rebase, on the seeded series below.
        let xs = crate::detect::tests_support::reference_series();
        let mut d = CusumDetector::new(CusumConfig {
            target: Some(0.0),
            sigma: Some(1.0),
            h: 4.0,
            rebase: false,
            ..Default::default()
        })
        .unwrap();
        let got: Vec<u64> = d.detect(&xs).unwrap().iter().map(|d| d.index).collect();
        assert_eq!(got, crate::detect::tests_support::CUSUM_ALARMS);
    }

    #[test]
    fn a_2_sigma_step_alarms_once_with_rebase_and_the_control_is_quiet() {
        let mut rng = fastrand::Rng::with_seed(31);
        let noise = |rng: &mut fastrand::Rng| (0..12).map(|_| rng.f64()).sum::<f64>() - 6.0;
        let mut xs: Vec<f64> = (0..400).map(|_| 50.0 + 2.0 * noise(&mut rng)).collect();
        let mut d = CusumDetector::new(CusumConfig {
            h: 8.0,
            ..Default::default()
        })
        .unwrap();
        assert!(d.detect(&xs).unwrap().is_empty(), "control");
        d.reset();
        for x in &mut xs[200..] {
            *x += 4.0; // 2σ
        }
        let found = d.detect(&xs).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!((200..215).contains(&found[0].index), "{}", found[0].index);
        assert!(
            found[0].effect > 1.0 && found[0].effect < 3.5,
            "{}",
            found[0].effect
        );
        assert!(
            found[0].detail.starts_with("shifted up from"),
            "{}",
            found[0].detail
        );
    }

    #[test]
    fn constant_and_bad_input() {
        let mut d = CusumDetector::new(CusumConfig::default()).unwrap();
        assert!(d.detect(&[3.0; 100]).unwrap().is_empty());
        assert!(d.update(f64::NAN).is_err());
        assert!(
            CusumDetector::new(CusumConfig {
                sigma: Some(0.0),
                warmup: 0,
                h: 0.0,
                ..Default::default()
            })
            .is_err()
        );
    }
}
