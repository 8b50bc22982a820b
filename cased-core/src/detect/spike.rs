//! [`SpikeDetector`]: single outliers by a rolling robust z-score (median / MAD).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::stats::{check_value, kth_abs_dev_median, median_sorted};
use super::{Detection, DetectionKind, Detector, Direction, SeverityPolicy, SeverityRule, num};
use crate::error::{Problems, Result};

/// Settings of a [`SpikeDetector`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpikeConfig {
    /// How many past values the median and MAD are taken over (default 60).
    pub window: usize,
    /// Values needed before the first verdict (default 10).
    pub min_samples: usize,
    /// Alarm when |robust z| exceeds this (default 3.5, Iglewicz & Hoaglin's cut-off).
    pub threshold: f64,
    /// Which spikes matter (default `either`).
    pub direction: Direction,
    /// The smallest scale used, so that a flat series does not turn noise into infinite z
    /// (default 0: only a relative floor of 1e-9 · max(|median|, 1)).
    pub min_scale: f64,
}

impl Default for SpikeConfig {
    fn default() -> Self {
        Self { window: 60, min_samples: 10, threshold: 3.5, direction: Direction::Either, min_scale: 0.0 }
    }
}

impl SpikeConfig {
    pub(crate) fn check(&self, p: &mut Problems, prefix: &str) {
        if self.window < 3 {
            p.add(format!("{prefix}window"), "must be at least 3");
        }
        if self.min_samples < 3 || self.min_samples > self.window {
            p.add(format!("{prefix}min_samples"), "must be at least 3 and at most `window`");
        }
        if !(self.threshold.is_finite() && self.threshold > 0.0) {
            p.add(format!("{prefix}threshold"), "must be a finite number > 0");
        }
        if !(self.min_scale.is_finite() && self.min_scale >= 0.0) {
            p.add(format!("{prefix}min_scale"), "must be a finite number ≥ 0");
        }
    }
}

/// The MAD-to-σ factor for normal data: σ ≈ 1.4826 · MAD (z = 0.6745 (x − median) / MAD).
const MAD_TO_SIGMA: f64 = 1.482_602_218_505_602;

/// Alarms on a value whose robust z-score, (x − median) / (1.4826 · MAD) over the previous
/// `window` values, exceeds the threshold. When the MAD is 0 (over half the window equal), the
/// mean absolute deviation (× 1.2533) stands in, then the floors of `min_scale`.
///
/// The window is kept sorted (binary search and a memmove per value), and the MAD is found by
/// merging the two sorted runs around the median in O(log w), so a value costs O(w) memory
/// moves and O(log w) comparisons.
///
/// Effect size: |robust z|. Confidence: 1. Default severity: `warning` only.
#[derive(Debug, Clone)]
pub struct SpikeDetector {
    config: SpikeConfig,
    order: VecDeque<f64>,
    sorted: Vec<f64>,
    seen: u64,
    last_z: f64,
}

impl SpikeDetector {
    /// A detector with these settings.
    ///
    /// # Errors
    /// [`Error::Validation`](crate::Error) naming each bad setting.
    pub fn new(config: SpikeConfig) -> Result<Self> {
        let mut p = Problems::default();
        config.check(&mut p, "");
        p.finish("spike detector")?;
        Ok(Self {
            config,
            order: VecDeque::with_capacity(config.window),
            sorted: Vec::with_capacity(config.window),
            seen: 0,
            last_z: 0.0,
        })
    }

    /// The robust z of the last value (0 before `min_samples`).
    #[must_use]
    pub fn last_z(&self) -> f64 {
        self.last_z
    }

    /// The robust z-score `x` would have against the current window, without adding it
    /// (`None` before `min_samples`).
    #[must_use]
    pub fn z_of(&self, x: f64) -> Option<(f64, f64, f64)> {
        if self.sorted.len() < self.config.min_samples {
            return None;
        }
        let med = median_sorted(&self.sorted);
        let mad = kth_abs_dev_median(&self.sorted, med);
        let mut scale = MAD_TO_SIGMA * mad;
        if scale == 0.0 {
            let mean_ad = self.sorted.iter().map(|v| (v - med).abs()).sum::<f64>() / self.sorted.len() as f64;
            scale = 1.253_314_137_315_500_3 * mean_ad;
        }
        let scale = scale.max(self.config.min_scale).max(1e-9 * med.abs().max(1.0));
        Some(((x - med) / scale, med, scale))
    }

    fn push(&mut self, x: f64) {
        if self.order.len() == self.config.window
            && let Some(old) = self.order.pop_front()
        {
            let i = self.sorted.partition_point(|&v| v < old);
            self.sorted.remove(i);
        }
        self.order.push_back(x);
        let i = self.sorted.partition_point(|&v| v < x);
        self.sorted.insert(i, x);
    }
}

impl Detector for SpikeDetector {
    fn name(&self) -> &'static str {
        "spike"
    }

    fn update(&mut self, x: f64) -> Result<Option<Detection>> {
        check_value("value", x)?;
        let index = self.seen;
        self.seen += 1;
        let found = self.z_of(x);
        self.push(x);
        let Some((z, med, scale)) = found else {
            self.last_z = 0.0;
            return Ok(None);
        };
        self.last_z = z;
        let t = self.config.threshold;
        let fires = (z > t && self.config.direction.allows_up()) || (z < -t && self.config.direction.allows_down());
        if !fires {
            return Ok(None);
        }
        let n = self.order.len() - 1;
        Ok(Some(Detection {
            kind: DetectionKind::Alarm,
            index,
            current: x,
            baseline: Some(med),
            statistic: z,
            p_value: None,
            confidence: 1.0,
            effect: z.abs(),
            n,
            rule: format!("|robust z| > {}", num(t)),
            detail: format!(
                "spiked to {} against a median of {} over the last {n} values (robust z = {}, scale {})",
                num(x),
                num(med),
                num(z),
                num(scale)
            ),
        }))
    }

    fn reset(&mut self) {
        self.order.clear();
        self.sorted.clear();
        self.seen = 0;
        self.last_z = 0.0;
    }

    fn score(&self) -> f64 {
        self.last_z.abs() / self.config.threshold
    }

    fn default_severity(&self) -> SeverityPolicy {
        SeverityPolicy {
            warning: Some(SeverityRule { min_effect: 0.0, min_confidence: 0.0 }),
            critical: None,
            emergency: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::stats::{mad_sorted, sort};

    #[test]
    fn robust_z_matches_a_direct_computation() {
        // numpy: w = x[:-1]; med = np.median(w); mad = np.median(np.abs(w - med));
        //        z = (x[-1] - med) / (1.4826022185056018 * mad)
        let xs = [10.0, 12.0, 11.0, 13.0, 9.0, 10.0, 11.0, 12.0, 10.0, 11.0, 30.0];
        let mut d = SpikeDetector::new(SpikeConfig { window: 10, ..Default::default() }).unwrap();
        let found = d.detect(&xs).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].index, 10);
        let mut w = xs[..10].to_vec();
        sort(&mut w);
        let med = median_sorted(&w);
        let mad = mad_sorted(&w);
        assert_eq!((med, mad), (11.0, 1.0));
        assert!((found[0].statistic - 19.0 / MAD_TO_SIGMA).abs() < 1e-12);
        assert!(found[0].detail.starts_with("spiked to 30 against a median of 11"), "{}", found[0].detail);
    }

    #[test]
    fn the_rolling_window_matches_a_fresh_sort_everywhere() {
        let mut rng = fastrand::Rng::with_seed(21);
        let xs: Vec<f64> = (0..500).map(|_| (rng.f64() * 20.0).round()).collect();
        let mut d = SpikeDetector::new(SpikeConfig { window: 25, ..Default::default() }).unwrap();
        for (i, &x) in xs.iter().enumerate() {
            let got = d.z_of(x).map(|(z, _, _)| z);
            if i >= 10 {
                let mut w = xs[i.saturating_sub(25)..i].to_vec();
                sort(&mut w);
                let med = median_sorted(&w);
                let mad = mad_sorted(&w);
                let want = (x - med) / (MAD_TO_SIGMA * mad);
                if mad > 0.0 {
                    assert!((got.unwrap() - want).abs() < 1e-9, "at {i}");
                }
            }
            d.update(x).unwrap();
        }
    }

    #[test]
    fn single_spike_is_found_and_the_noisy_control_is_quiet() {
        let mut rng = fastrand::Rng::with_seed(4);
        let noise = |rng: &mut fastrand::Rng| (0..12).map(|_| rng.f64()).sum::<f64>() - 6.0; // ~N(0,1)
        let mut xs: Vec<f64> = (0..300).map(|_| 100.0 + 5.0 * noise(&mut rng)).collect();
        let mut d = SpikeDetector::new(SpikeConfig { threshold: 5.0, ..Default::default() }).unwrap();
        assert!(d.detect(&xs).unwrap().is_empty(), "control");
        d.reset();
        xs[200] = 180.0;
        let found = d.detect(&xs).unwrap();
        assert_eq!(found.iter().map(|f| f.index).collect::<Vec<_>>(), [200]);
    }

    #[test]
    fn constant_input_is_defined_and_direction_filters() {
        let mut d = SpikeDetector::new(SpikeConfig { direction: Direction::Increase, ..Default::default() }).unwrap();
        assert!(d.detect(&[5.0; 30]).unwrap().is_empty());
        assert_eq!(d.last_z(), 0.0);
        let found = d.detect(&[4.0, 6.0]).unwrap();
        assert_eq!(found.len(), 1, "the drop is ignored, the rise is found");
        assert!(found[0].statistic.is_finite());
        assert!(d.update(f64::NAN).is_err());
        assert!(SpikeDetector::new(SpikeConfig { window: 2, threshold: -1.0, ..Default::default() }).is_err());
    }
}
