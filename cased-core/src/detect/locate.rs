//! [`locate_change`]: where one level shift in a series happened, with a likelihood interval.
//!
//! A session's detectors say *that* a metric moved; this says *when*. The series is modelled
//! as one mean shift in Gaussian noise. The change index τ (the first value of the new level)
//! maximises the log-likelihood gain of the split, `n₁n₂/n · (m₁ − m₂)² / 2σ²` with both means
//! estimated, or `S_τ² / (2σ²(n − τ))` with `S_τ = Σ_{i≥τ}(xᵢ − μ₀)` when the level before is
//! known (μ₀, the baseline) and every value may already be changed. σ is the robust noise
//! level of the first differences (`1.4826 · median|xᵢ₊₁ − xᵢ| / √2`), which a level shift
//! barely moves. The interval holds every τ whose gain is within 1.92 of the best (a drop of
//! half the 95 % χ²₁ quantile: the usual likelihood interval, about 95 % for one change).

/// Where the level changed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Located {
    /// The index of the first value at the new level.
    pub index: usize,
    /// The smallest index in the likelihood interval.
    pub low: usize,
    /// The largest index in the likelihood interval.
    pub high: usize,
    /// The level before (the mean of the values before `index`, or the known level).
    pub before: f64,
    /// The level after (the mean of the values from `index`).
    pub after: f64,
}

/// The log-likelihood drop that bounds the interval (χ²₁ 95 % quantile / 2).
const INTERVAL_DROP: f64 = 3.841_458_820_694_124 / 2.0;

/// The change of level in `values` (finite values, in order), or `None` when there are too
/// few (fewer than 3 without `known_before`, fewer than 2 with it) or any is not finite.
///
/// With `known_before` (the level the metric had before, e.g. the baseline's), the change may
/// lie at index 0: every value is already at the new level.
#[must_use]
pub fn locate_change(values: &[f64], known_before: Option<f64>) -> Option<Located> {
    let n = values.len();
    let enough = if known_before.is_some() { 2 } else { 3 };
    if n < enough || values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    if known_before.is_some_and(|m| !m.is_finite()) {
        return None;
    }
    let sigma = noise_sd(values);
    let total: f64 = values.iter().sum();
    // gains[τ] for every admissible τ, and the means either side.
    let first = if known_before.is_some() { 0 } else { 1 };
    let mut gains = Vec::with_capacity(n);
    let mut prefix = 0.0;
    for (tau, v) in values.iter().enumerate().take(n) {
        if tau >= first {
            let after_n = (n - tau) as f64;
            let after_sum = total - prefix;
            let g = match known_before {
                Some(mu0) => {
                    let s = after_sum - mu0 * after_n;
                    s * s / after_n
                }
                None => {
                    let before_n = tau as f64;
                    let d = prefix / before_n - after_sum / after_n;
                    before_n * after_n / n as f64 * d * d
                }
            };
            gains.push((tau, g));
        }
        prefix += v;
    }
    let &(index, best) = gains
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))?;
    let (low, high) = if sigma > 0.0 {
        let drop = INTERVAL_DROP * 2.0 * sigma * sigma;
        let inside = gains.iter().filter(|(_, g)| best - g <= drop);
        let low = inside.clone().map(|(t, _)| *t).min().unwrap_or(index);
        let high = inside.map(|(t, _)| *t).max().unwrap_or(index);
        (low, high)
    } else {
        (index, index)
    };
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
    let before = match known_before {
        Some(mu0) => mu0,
        None => mean(&values[..index]),
    };
    Some(Located {
        index,
        low,
        high,
        before,
        after: mean(&values[index..]),
    })
}

/// The robust noise level of a series from its first differences (0 when it has fewer than 2
/// values or does not vary).
fn noise_sd(values: &[f64]) -> f64 {
    let mut d: Vec<f64> = values.windows(2).map(|w| (w[1] - w[0]).abs()).collect();
    if d.is_empty() {
        return 0.0;
    }
    let mid = d.len() / 2;
    let (_, m, _) = d.select_nth_unstable_by(mid, f64::total_cmp);
    1.4826 * *m / std::f64::consts::SQRT_2
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-Gaussian series (sum of 12 uniforms), mean `mu`, sd 1.
    fn noise(n: usize, mu: f64, seed: u64) -> Vec<f64> {
        let mut rng = fastrand::Rng::with_seed(seed);
        (0..n)
            .map(|_| mu + (0..12).map(|_| rng.f64()).sum::<f64>() - 6.0)
            .collect()
    }

    #[test]
    fn a_large_step_is_located_exactly_with_a_tight_interval() {
        let mut xs = noise(60, 100.0, 1);
        xs.extend(noise(40, 110.0, 2));
        let l = locate_change(&xs, None).unwrap();
        assert_eq!(l.index, 60);
        assert_eq!((l.low, l.high), (60, 60), "{l:?}");
        assert!((l.before - 100.0).abs() < 0.5 && (l.after - 110.0).abs() < 0.5);
    }

    #[test]
    fn a_small_step_gets_a_wider_interval_that_still_holds_it() {
        let mut covered = 0;
        let mut widths = 0;
        for seed in 0..200 {
            let mut xs = noise(60, 0.0, 2 * seed);
            xs.extend(noise(60, 1.0, 2 * seed + 1));
            let l = locate_change(&xs, None).unwrap();
            if (l.low..=l.high).contains(&60) {
                covered += 1;
            }
            widths += l.high - l.low;
        }
        // A 1σ step: the interval is several values wide and holds the change most of the time.
        assert!(widths / 200 >= 3, "mean width {}", widths / 200);
        assert!(covered >= 160, "covered {covered} of 200");
    }

    #[test]
    fn with_the_level_known_a_change_at_the_first_value_is_found() {
        let xs = noise(30, 20.0, 7);
        let l = locate_change(&xs, Some(10.0)).unwrap();
        assert_eq!(l.index, 0);
        assert_eq!(l.before, 10.0);
        assert!((l.after - 20.0).abs() < 0.5);
        // Without the known level, a series without a change has no clear split.
        let l = locate_change(&xs, None).unwrap();
        assert!(l.high - l.low > 3, "{l:?}");
    }

    #[test]
    fn with_the_level_known_a_later_change_is_found_too() {
        let mut xs = noise(12, 10.0, 3);
        xs.extend(noise(20, 16.0, 4));
        let l = locate_change(&xs, Some(10.0)).unwrap();
        assert_eq!(l.index, 12);
        assert!(l.low <= 12 && 12 <= l.high);
    }

    #[test]
    fn a_flat_series_has_a_point_interval_and_bad_input_none() {
        let xs = [5.0, 5.0, 5.0, 9.0, 9.0];
        let l = locate_change(&xs, None).unwrap();
        assert_eq!((l.index, l.low, l.high), (3, 3, 3));
        assert_eq!(locate_change(&[1.0, 2.0], None), None);
        assert_eq!(locate_change(&[1.0], Some(0.0)), None);
        assert_eq!(locate_change(&[1.0, f64::NAN, 3.0], None), None);
        assert_eq!(locate_change(&[1.0, 2.0, 3.0], Some(f64::INFINITY)), None);
    }
}
