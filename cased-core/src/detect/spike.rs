//! [`SpikeDetector`]: single outliers by a robust z-score (median / MAD) against the recent past.

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
    /// Once the window is full, the median and MAD are recomputed every `refresh` values
    /// (default: `window`, a hopping reference). `1` recomputes them for every value: the exact
    /// rolling robust z, at a sort of the window per value instead of one per `window` values.
    pub refresh: Option<usize>,
}

impl Default for SpikeConfig {
    fn default() -> Self {
        Self {
            window: 60,
            min_samples: 10,
            threshold: 3.5,
            direction: Direction::Either,
            min_scale: 0.0,
            refresh: None,
        }
    }
}

impl SpikeConfig {
    pub(crate) fn check(&self, p: &mut Problems, prefix: &str) {
        if self.window < 3 {
            p.add(format!("{prefix}window"), "must be at least 3");
        }
        if self.min_samples < 3 || self.min_samples > self.window {
            p.add(
                format!("{prefix}min_samples"),
                "must be at least 3 and at most `window`",
            );
        }
        if !(self.threshold.is_finite() && self.threshold > 0.0) {
            p.add(format!("{prefix}threshold"), "must be a finite number > 0");
        }
        if !(self.min_scale.is_finite() && self.min_scale >= 0.0) {
            p.add(format!("{prefix}min_scale"), "must be a finite number ≥ 0");
        }
        if let Some(r) = self.refresh
            && (r == 0 || r > self.window)
        {
            p.add(
                format!("{prefix}refresh"),
                format!(
                    "must be at least 1 and at most `window` ({}), got {r}",
                    self.window
                ),
            );
        }
    }
}

/// The MAD-to-σ factor for normal data: σ ≈ 1.4826 · MAD (z = 0.6745 (x − median) / MAD).
const MAD_TO_SIGMA: f64 = 1.482_602_218_505_602;

/// Alarms on a value whose robust z-score, (x − median) / (1.4826 · MAD), exceeds the
/// threshold. When the MAD is 0 (over half the window equal), the mean absolute deviation
/// (× 1.2533) stands in, then the floors of `min_scale`.
///
/// The reference (median and scale) is taken over the last `window` values. While the window
/// fills it is recomputed after every value; after that, every `refresh` values (default
/// `window`): a value is judged against a window that ended at most `refresh − 1` values before
/// it. Between refreshes a value costs a subtraction, a division and a ring-buffer write; a
/// refresh sorts the window (O(window log window)). `refresh: 1` is the exact rolling
/// robust z that numpy's `sliding_window_view` + `median` gives.
///
/// Effect size: |robust z|. Confidence: 1. Default severity: `warning` only.
#[derive(Debug, Clone)]
pub struct SpikeDetector {
    config: SpikeConfig,
    refresh: usize,
    /// The last `window` values, oldest at `head` once full.
    ring: Vec<f64>,
    head: usize,
    keys: Vec<u64>,
    sorted: Vec<f64>,
    /// Median, scale and the number of values they were taken over.
    reference: Option<(f64, f64, usize)>,
    since_refresh: usize,
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
            refresh: config.refresh.unwrap_or(config.window),
            ring: Vec::with_capacity(config.window),
            head: 0,
            keys: Vec::with_capacity(config.window),
            sorted: Vec::with_capacity(config.window),
            reference: None,
            since_refresh: 0,
            seen: 0,
            last_z: 0.0,
        })
    }

    /// The robust z of the last value (0 before `min_samples`).
    #[must_use]
    pub fn last_z(&self) -> f64 {
        self.last_z
    }

    /// The robust z-score `x` would have against the current reference, with that median and
    /// scale, without adding it (`None` before `min_samples`).
    #[must_use]
    pub fn z_of(&self, x: f64) -> Option<(f64, f64, f64)> {
        self.reference
            .map(|(med, scale, _)| ((x - med) / scale, med, scale))
    }

    fn push(&mut self, x: f64) {
        let filling = self.ring.len() < self.config.window;
        if filling {
            self.ring.push(x);
        } else {
            self.ring[self.head] = x;
            self.head += 1;
            if self.head == self.ring.len() {
                self.head = 0;
            }
        }
        self.since_refresh += 1;
        if self.ring.len() >= self.config.min_samples
            && (filling || self.since_refresh >= self.refresh)
        {
            self.recompute();
        }
    }

    /// Median and scale of the ring: one sort, on integer keys that order like the values
    /// (the `total_cmp` transform, faster than sorting floats by a comparison function), then
    /// the MAD from the sorted values in O(log window).
    fn recompute(&mut self) {
        self.since_refresh = 0;
        let n = self.ring.len();
        self.keys.clear();
        self.keys.extend(self.ring.iter().map(|&v| order_key(v)));
        self.keys.sort_unstable();
        self.sorted.clear();
        self.sorted.extend(
            self.keys
                .iter()
                .map(|&k| f64::from_bits(order_key_inverse(k))),
        );
        let med = median_sorted(&self.sorted);
        let mut scale = MAD_TO_SIGMA * kth_abs_dev_median(&self.sorted, med);
        if scale == 0.0 {
            let mean_ad = self.ring.iter().map(|&v| (v - med).abs()).sum::<f64>() / n as f64;
            scale = 1.253_314_137_315_500_3 * mean_ad;
        }
        let scale = scale
            .max(self.config.min_scale)
            .max(1e-9 * med.abs().max(1.0));
        self.reference = Some((med, scale, n));
    }
}

/// A key whose unsigned order is the numeric order of finite floats (as `f64::total_cmp`).
fn order_key(x: f64) -> u64 {
    let b = x.to_bits();
    if b >> 63 == 1 { !b } else { b | (1 << 63) }
}

/// The bits of the float whose [`order_key`] is `k`.
fn order_key_inverse(k: u64) -> u64 {
    if k >> 63 == 1 { k & !(1 << 63) } else { !k }
}

impl Detector for SpikeDetector {
    fn name(&self) -> &'static str {
        "spike"
    }

    fn update(&mut self, x: f64) -> Result<Option<Detection>> {
        check_value("value", x)?;
        let index = self.seen;
        self.seen += 1;
        let found = self.reference;
        self.push(x);
        let Some((med, scale, n)) = found else {
            self.last_z = 0.0;
            return Ok(None);
        };
        let z = (x - med) / scale;
        self.last_z = z;
        let t = self.config.threshold;
        let fires = (z > t && self.config.direction.allows_up())
            || (z < -t && self.config.direction.allows_down());
        if !fires {
            return Ok(None);
        }
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
                "spiked to {} against a median of {} over {n} recent values (robust z = {}, scale {})",
                num(x),
                num(med),
                num(z),
                num(scale)
            ),
        }))
    }

    fn reset(&mut self) {
        self.ring.clear();
        self.head = 0;
        self.reference = None;
        self.since_refresh = 0;
        self.seen = 0;
        self.last_z = 0.0;
    }

    fn score(&self) -> f64 {
        self.last_z.abs() / self.config.threshold
    }

    fn default_severity(&self) -> SeverityPolicy {
        SeverityPolicy {
            warning: Some(SeverityRule {
                min_effect: 0.0,
                min_confidence: 0.0,
            }),
            critical: None,
            emergency: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::stats::{mad_sorted, median_sorted, sort};

    #[test]
    fn robust_z_matches_a_direct_computation() {
        // numpy: w = x[:-1]; med = np.median(w); mad = np.median(np.abs(w - med));
        //        z = (x[-1] - med) / (1.4826022185056018 * mad)
        let xs = [
            10.0, 12.0, 11.0, 13.0, 9.0, 10.0, 11.0, 12.0, 10.0, 11.0, 30.0,
        ];
        let mut d = SpikeDetector::new(SpikeConfig {
            window: 10,
            ..Default::default()
        })
        .unwrap();
        let found = d.detect(&xs).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].index, 10);
        let mut w = xs[..10].to_vec();
        sort(&mut w);
        let med = median_sorted(&w);
        let mad = mad_sorted(&w);
        assert_eq!((med, mad), (11.0, 1.0));
        assert!((found[0].statistic - 19.0 / MAD_TO_SIGMA).abs() < 1e-12);
        assert!(
            found[0]
                .detail
                .starts_with("spiked to 30 against a median of 11"),
            "{}",
            found[0].detail
        );
    }

    /// The robust z of `x` against `w` computed from scratch (numpy's median / MAD).
    fn direct_z(w: &[f64], x: f64) -> Option<f64> {
        let mut w = w.to_vec();
        sort(&mut w);
        let (med, mad) = (median_sorted(&w), mad_sorted(&w));
        (mad > 0.0).then(|| (x - med) / (MAD_TO_SIGMA * mad))
    }

    #[test]
    fn refresh_1_is_the_exact_rolling_window_everywhere() {
        let mut rng = fastrand::Rng::with_seed(21);
        let xs: Vec<f64> = (0..500).map(|_| (rng.f64() * 20.0).round()).collect();
        let mut d = SpikeDetector::new(SpikeConfig {
            window: 25,
            refresh: Some(1),
            ..Default::default()
        })
        .unwrap();
        for (i, &x) in xs.iter().enumerate() {
            let got = d.z_of(x).map(|(z, _, _)| z);
            assert_eq!(got.is_some(), i >= 10, "at {i}");
            if let (Some(got), Some(want)) = (got, direct_z(&xs[i.saturating_sub(25)..i], x)) {
                assert!((got - want).abs() < 1e-9, "at {i}");
            }
            d.update(x).unwrap();
        }
    }

    #[test]
    fn the_hopping_reference_is_the_window_before_the_last_refresh() {
        // window 20, refresh 5: rows 10..=20 see every value before them; from then on the
        // reference is refreshed after rows 24, 29, 34..., i.e. row i sees the 20 values
        // before r = 20 + 5·⌊(i − 20) / 5⌋ + 0 (r ≤ i).
        let mut rng = fastrand::Rng::with_seed(5);
        let xs: Vec<f64> = (0..300).map(|_| (rng.f64() * 50.0).round()).collect();
        for (refresh, cfg_refresh) in [(5, Some(5)), (20, None)] {
            let mut d = SpikeDetector::new(SpikeConfig {
                window: 20,
                refresh: cfg_refresh,
                ..Default::default()
            })
            .unwrap();
            for (i, &x) in xs.iter().enumerate() {
                let got = d.z_of(x).map(|(z, _, _)| z);
                let end = if i <= 20 {
                    i
                } else {
                    20 + refresh * ((i - 20) / refresh)
                };
                if let (Some(got), Some(want)) =
                    (got, direct_z(&xs[end.saturating_sub(20)..end], x))
                {
                    assert!((got - want).abs() < 1e-9, "refresh {refresh}, row {i}");
                }
                d.update(x).unwrap();
            }
        }
    }

    #[test]
    fn order_keys_sort_like_the_numbers_and_invert() {
        let xs = [
            f64::MIN,
            -1e300,
            -2.5,
            -1.0,
            -1e-300,
            -0.0,
            0.0,
            1e-300,
            1.0,
            2.5,
            1e300,
            f64::MAX,
        ];
        let keys: Vec<u64> = xs.iter().map(|&x| order_key(x)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
        for (&x, &k) in xs.iter().zip(&keys) {
            assert_eq!(f64::from_bits(order_key_inverse(k)).to_bits(), x.to_bits());
        }
    }

    #[test]
    fn refresh_is_validated() {
        for bad in [0, 61] {
            let e = SpikeDetector::new(SpikeConfig {
                refresh: Some(bad),
                ..Default::default()
            })
            .unwrap_err()
            .to_string();
            assert!(
                e.contains("refresh") && e.contains(&format!("got {bad}")),
                "{e}"
            );
        }
    }

    #[test]
    fn single_spike_is_found_and_the_noisy_control_is_quiet() {
        let mut rng = fastrand::Rng::with_seed(4);
        let noise = |rng: &mut fastrand::Rng| (0..12).map(|_| rng.f64()).sum::<f64>() - 6.0; // ~N(0,1)
        let mut xs: Vec<f64> = (0..300).map(|_| 100.0 + 5.0 * noise(&mut rng)).collect();
        let mut d = SpikeDetector::new(SpikeConfig {
            threshold: 5.0,
            ..Default::default()
        })
        .unwrap();
        assert!(d.detect(&xs).unwrap().is_empty(), "control");
        d.reset();
        xs[200] = 180.0;
        let found = d.detect(&xs).unwrap();
        assert_eq!(found.iter().map(|f| f.index).collect::<Vec<_>>(), [200]);
    }

    #[test]
    fn constant_input_is_defined_and_direction_filters() {
        let mut d = SpikeDetector::new(SpikeConfig {
            direction: Direction::Increase,
            ..Default::default()
        })
        .unwrap();
        assert!(d.detect(&[5.0; 30]).unwrap().is_empty());
        assert_eq!(d.last_z(), 0.0);
        let found = d.detect(&[4.0, 6.0]).unwrap();
        assert_eq!(found.len(), 1, "the drop is ignored, the rise is found");
        assert!(found[0].statistic.is_finite());
        assert!(d.update(f64::NAN).is_err());
        assert!(
            SpikeDetector::new(SpikeConfig {
                window: 2,
                threshold: -1.0,
                ..Default::default()
            })
            .is_err()
        );
    }
}
