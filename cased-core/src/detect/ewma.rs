//! [`EwmaDetector`]: an EWMA control chart for level shifts.

use serde::{Deserialize, Serialize};

use super::cusum::Warmup;
use super::stats::check_value;
use super::{Detection, DetectionKind, Detector, Direction, SeverityPolicy, num, warning_only};
use crate::error::{Problems, Result};

/// Settings of an [`EwmaDetector`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EwmaConfig {
    /// The in-control mean; estimated from the first `warmup` values when absent.
    pub target: Option<f64>,
    /// The in-control standard deviation; estimated from the first `warmup` values when absent.
    pub sigma: Option<f64>,
    /// Values used to estimate what is missing of `target` and `sigma` (default 30).
    pub warmup: usize,
    /// The smoothing weight λ in (0, 1] (default 0.2).
    pub lambda: f64,
    /// The width of the control limits L, in σ of the EWMA (default 3).
    pub width: f64,
    /// Which shifts matter (default `either`).
    pub direction: Direction,
    /// After an alarm, learn the new level from the next `warmup` values (σ is kept) so a
    /// lasting step alarms once (default true). When false the chart keeps running against the
    /// old target.
    pub rebase: bool,
}

impl Default for EwmaConfig {
    fn default() -> Self {
        Self {
            target: None,
            sigma: None,
            warmup: 30,
            lambda: 0.2,
            width: 3.0,
            direction: Direction::Either,
            rebase: true,
        }
    }
}

impl EwmaConfig {
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
        if !(self.lambda > 0.0 && self.lambda <= 1.0) {
            p.add(format!("{prefix}lambda"), "must be in (0, 1]");
        }
        if !(self.width.is_finite() && self.width > 0.0) {
            p.add(format!("{prefix}width"), "must be a finite number > 0");
        }
    }
}

/// EWMA control chart (Roberts 1959): z_t = λ x_t + (1 − λ) z_{t−1}, z_0 = μ, with the exact
/// time-varying limits μ ± L σ √(λ/(2−λ) · (1 − (1−λ)^{2t})).
///
/// Effect size: |z_t − μ| / σ. Confidence: 1. Default severity: `warning` only.
#[derive(Debug, Clone)]
pub struct EwmaDetector {
    config: EwmaConfig,
    warm: Warmup,
    mu: f64,
    sigma: f64,
    ready: bool,
    relearn: bool,
    z: f64,
    decay: f64, // (1 - λ)^{2t}
    t: u64,
    seen: u64,
    last: f64,
}

impl EwmaDetector {
    /// A detector with these settings.
    ///
    /// # Errors
    /// [`Error::Validation`](crate::Error) naming each bad setting.
    pub fn new(config: EwmaConfig) -> Result<Self> {
        let mut p = Problems::default();
        config.check(&mut p, "");
        p.finish("EWMA detector")?;
        let mut d = Self {
            config,
            warm: Warmup::default(),
            mu: 0.0,
            sigma: 1.0,
            ready: false,
            relearn: false,
            z: 0.0,
            decay: 1.0,
            t: 0,
            seen: 0,
            last: 0.0,
        };
        d.reset();
        Ok(d)
    }

    /// The EWMA's current value (`None` during the warm-up).
    #[must_use]
    pub fn value(&self) -> Option<f64> {
        self.ready.then_some(self.z)
    }

    fn restart(&mut self, mu: f64) {
        self.mu = mu;
        self.z = mu;
        self.decay = 1.0;
        self.t = 0;
    }
}

impl Detector for EwmaDetector {
    fn name(&self) -> &'static str {
        "ewma"
    }

    fn update(&mut self, x: f64) -> Result<Option<Detection>> {
        check_value("value", x)?;
        let index = self.seen;
        self.seen += 1;
        if !self.ready {
            self.warm.push(x);
            if self.warm.n >= self.config.warmup.max(1) {
                if self.relearn {
                    let (mu, _) = self.warm.estimate(None, Some(self.sigma));
                    self.restart(mu);
                } else {
                    let (mu, sigma) = self.warm.estimate(self.config.target, self.config.sigma);
                    self.sigma = sigma;
                    self.restart(mu);
                }
                self.ready = true;
            }
            return Ok(None);
        }
        let l = self.config.lambda;
        self.z = l * x + (1.0 - l) * self.z;
        self.t += 1;
        self.decay *= (1.0 - l) * (1.0 - l);
        let sd = self.sigma * (l / (2.0 - l) * (1.0 - self.decay)).sqrt();
        let limit = self.config.width * sd;
        let dev = self.z - self.mu;
        self.last = dev.abs() / limit;
        let up = dev > limit && self.config.direction.allows_up();
        let down = dev < -limit && self.config.direction.allows_down();
        if !(up || down) {
            return Ok(None);
        }
        let old = self.mu;
        let effect = dev.abs() / self.sigma;
        let d = Detection {
            kind: DetectionKind::Alarm,
            index,
            current: self.z,
            baseline: Some(old),
            statistic: dev / sd,
            p_value: None,
            confidence: 1.0,
            effect,
            n: usize::try_from(self.t).unwrap_or(usize::MAX),
            rule: format!(
                "EWMA (λ = {}) outside μ ± {}σ limits",
                num(l),
                num(self.config.width)
            ),
            detail: format!(
                "shifted {}: its EWMA is {} against a level of {} ({}σ; limit ±{})",
                if up { "up" } else { "down" },
                num(self.z),
                num(old),
                num(effect),
                num(limit)
            ),
        };
        if self.config.rebase {
            self.warm = Warmup::default();
            self.relearn = true;
            self.ready = false;
        }
        Ok(Some(d))
    }

    fn reset(&mut self) {
        self.warm = Warmup::default();
        self.relearn = false;
        self.ready = self.config.target.is_some() && self.config.sigma.is_some();
        if self.ready {
            self.sigma = self.config.sigma.unwrap_or(1.0);
            self.restart(self.config.target.unwrap_or(0.0));
        }
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
        // Reference: examples/eval/reference/cusum_ewma.py (numpy 2.x): target 0, sigma 1,
        // lambda 0.2, L 3, exact limits, no rebase.
        let xs = crate::detect::tests_support::reference_series();
        let mut d = EwmaDetector::new(EwmaConfig {
            target: Some(0.0),
            sigma: Some(1.0),
            rebase: false,
            ..Default::default()
        })
        .unwrap();
        let got: Vec<u64> = d.detect(&xs).unwrap().iter().map(|d| d.index).collect();
        assert_eq!(got, crate::detect::tests_support::EWMA_ALARMS);
    }

    #[test]
    fn a_2_sigma_step_is_found_and_the_control_is_quiet() {
        let mut rng = fastrand::Rng::with_seed(41);
        let noise = |rng: &mut fastrand::Rng| (0..12).map(|_| rng.f64()).sum::<f64>() - 6.0;
        let mut xs: Vec<f64> = (0..400).map(|_| 10.0 + noise(&mut rng)).collect();
        let mut d = EwmaDetector::new(EwmaConfig {
            width: 3.5,
            ..Default::default()
        })
        .unwrap();
        assert!(d.detect(&xs).unwrap().is_empty(), "control");
        d.reset();
        for x in &mut xs[250..] {
            *x -= 2.0;
        }
        let found = d.detect(&xs).unwrap();
        assert!(!found.is_empty());
        assert!((250..265).contains(&found[0].index), "{}", found[0].index);
        assert!(found[0].detail.starts_with("shifted down"));
    }

    #[test]
    fn constant_and_bad_input() {
        let mut d = EwmaDetector::new(EwmaConfig::default()).unwrap();
        assert!(d.detect(&[3.0; 100]).unwrap().is_empty());
        assert!(d.update(f64::INFINITY).is_err());
        assert!(
            EwmaDetector::new(EwmaConfig {
                lambda: 0.0,
                width: -1.0,
                ..Default::default()
            })
            .is_err()
        );
    }
}
