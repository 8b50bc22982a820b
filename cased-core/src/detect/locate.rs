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

/// The largest lag-1 autocorrelation the noise is taken to have.
const MAX_RHO: f64 = 0.95;

/// The change of level in `values` (finite values, in order), or `None` when there are too
/// few (fewer than 3 without `known_before`, fewer than 2 with it) or any is not finite.
///
/// With `known_before` (the level the metric had before, e.g. the baseline's), the change may
/// lie at index 0: every value is already at the new level.
///
/// Autocorrelated noise (CPU, queue lengths) wanders in runs that an independent-noise model
/// reads as changes. The noise's lag-1 autocorrelation ρ is estimated from the residuals around
/// a first, independent-noise split; when it is positive, the split is made again on the
/// prewhitened series `zₜ = yₜ − ρyₜ₋₁` (AR(1) noise), where a level shift δ at τ shows as δ
/// at τ and (1 − ρ)δ after it, against the innovations' noise level.
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
    let iid = independent_gains(values, known_before);
    let first = best(&iid)?.0;
    let rho = lag1(values, first, known_before).clamp(0.0, MAX_RHO);
    let (gains, sigma) = if rho > 0.0 {
        ar1_gains(values, known_before, rho)
    } else {
        (iid, noise_sd(values))
    };
    let (index, top) = best(&gains)?;
    let (low, high) = if sigma > 0.0 {
        let drop = INTERVAL_DROP * 2.0 * sigma * sigma;
        let inside = gains.iter().filter(|(_, g)| top - g <= drop);
        let low = inside.clone().map(|(t, _)| *t).min().unwrap_or(index);
        let high = inside.map(|(t, _)| *t).max().unwrap_or(index);
        (low, high)
    } else {
        (index, index)
    };
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

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// The best split (the earliest of equal gains).
fn best(gains: &[(usize, f64)]) -> Option<(usize, f64)> {
    gains
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
        .copied()
}

/// `2σ²` × the log-likelihood gain of a split at each admissible τ, independent noise.
fn independent_gains(values: &[f64], known_before: Option<f64>) -> Vec<(usize, f64)> {
    let n = values.len();
    let total: f64 = values.iter().sum();
    let first = if known_before.is_some() { 0 } else { 1 };
    let mut gains = Vec::with_capacity(n);
    let mut prefix = 0.0;
    for (tau, v) in values.iter().enumerate() {
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
    gains
}

/// The lag-1 autocorrelation of the residuals around a split at `index` (pairs across the
/// split left out); 0 when the residuals do not vary.
fn lag1(values: &[f64], index: usize, known_before: Option<f64>) -> f64 {
    let before = known_before.unwrap_or_else(|| {
        if index > 0 {
            mean(&values[..index])
        } else {
            0.0
        }
    });
    let after = mean(&values[index..]);
    let r: Vec<f64> = values
        .iter()
        .enumerate()
        .map(|(t, v)| v - if t < index { before } else { after })
        .collect();
    let ss: f64 = r.iter().map(|x| x * x).sum();
    if ss <= 0.0 {
        return 0.0;
    }
    let cross: f64 = (1..r.len())
        .filter(|&t| t != index)
        .map(|t| r[t] * r[t - 1])
        .sum();
    cross / ss
}

/// The gains of [`independent_gains`] for AR(1) noise with autocorrelation `rho`, on the
/// prewhitened series, and the innovations' noise level.
fn ar1_gains(values: &[f64], known_before: Option<f64>, rho: f64) -> (Vec<(usize, f64)>, f64) {
    let n = values.len();
    let k = 1.0 - rho;
    // z[t] for t = 1..n (index t − 1), and, with a known level, z[0] = y[0] − μ₀.
    let (z, first): (Vec<f64>, usize) = match known_before {
        Some(mu0) => {
            let x: Vec<f64> = values.iter().map(|v| v - mu0).collect();
            let mut z = Vec::with_capacity(n);
            z.push(x[0]);
            z.extend((1..n).map(|t| x[t] - rho * x[t - 1]));
            (z, 0)
        }
        None => ((1..n).map(|t| values[t] - rho * values[t - 1]).collect(), 1),
    };
    let sigma = noise_sd(&z);
    let m = z.len();
    // With an unknown level, the regression has an intercept: centre z.
    let centre = if known_before.is_some() {
        0.0
    } else {
        mean(&z)
    };
    let zc: Vec<f64> = z.iter().map(|v| v - centre).collect();
    // suffix[i] = Σ_{j ≥ i} zc[j].
    let mut suffix = vec![0.0; m + 1];
    for i in (0..m).rev() {
        suffix[i] = suffix[i + 1] + zc[i];
    }
    let mut gains = Vec::with_capacity(m);
    for tau in first..n {
        // The regressor: 1 at τ, (1 − ρ) after it.
        let i = tau - first;
        let after = (m - i - 1) as f64;
        let dz = zc[i] + k * suffix[i + 1];
        let d2 = 1.0 + k * k * after;
        let denom = if known_before.is_some() {
            d2
        } else {
            let d1 = 1.0 + k * after;
            d2 - d1 * d1 / m as f64
        };
        let g = if denom > 1e-12 { dz * dz / denom } else { 0.0 };
        gains.push((tau, g));
    }
    (gains, sigma)
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

    /// AR(1) noise with lag-1 autocorrelation `rho` and marginal sd 1.
    fn ar1(n: usize, rho: f64, seed: u64) -> Vec<f64> {
        let innovations = noise(n, 0.0, seed);
        let scale = (1.0 - rho * rho).sqrt();
        let mut x = innovations[0];
        innovations
            .iter()
            .map(|e| {
                x = rho * x + scale * e;
                x
            })
            .collect()
    }

    #[test]
    fn autocorrelated_noise_is_prewhitened_and_the_interval_still_holds_the_change() {
        let (mut covered, mut exact) = (0, 0);
        for seed in 0..200 {
            let mut xs = ar1(120, 0.8, seed);
            for x in &mut xs[60..] {
                *x += 3.0;
            }
            let l = locate_change(&xs, None).unwrap();
            covered += usize::from((l.low..=l.high).contains(&60));
            exact += usize::from(l.index == 60);
        }
        // A 3σ step in AR(1) noise with ρ = 0.8 is a 5σ jump against the innovations.
        assert!(exact >= 150, "exact {exact} of 200");
        assert!(covered >= 180, "covered {covered} of 200");
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
