//! The statistics the detectors share, written here and tested against scipy reference values:
//! Mann–Whitney U (exact and normal approximation), the Hodges–Lehmann shift and its
//! confidence interval, the Brown–Forsythe test, Mann–Kendall, Theil–Sen, medians and MADs.
//!
//! Every function expects finite input; the detectors check it first (see [`check_finite`]).

use statrs::distribution::{ContinuousCDF, FisherSnedecor};
use statrs::function::beta::beta_reg;
use statrs::function::erf::{erfc, erfc_inv};

use crate::error::{Error, Result};

/// `Err` naming `field` when `xs` is empty or holds a NaN or an infinity.
pub(crate) fn check_finite(field: &str, xs: &[f64]) -> Result<()> {
    if xs.is_empty() {
        return Err(Error::invalid(field, "is empty"));
    }
    check_values(field, xs)
}

/// `Err` naming `field` when `xs` holds a NaN or an infinity (empty is fine).
pub(crate) fn check_values(field: &str, xs: &[f64]) -> Result<()> {
    match xs.iter().position(|x| !x.is_finite()) {
        Some(i) => Err(Error::invalid(
            format!("{field}[{i}]"),
            format!("must be a finite number, got {}", xs[i]),
        )),
        None => Ok(()),
    }
}

/// `Err` naming `field` when `x` is NaN or infinite.
pub(crate) fn check_value(field: &str, x: f64) -> Result<()> {
    if x.is_finite() {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("must be a finite number, got {x}"),
        ))
    }
}

/// Upper tail of the standard normal, P(Z > z).
#[must_use]
pub fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// Lower tail of the standard normal, P(Z ≤ z).
#[must_use]
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// The standard normal quantile of `p` (0 < p < 1).
#[must_use]
pub fn normal_quantile(p: f64) -> f64 {
    -std::f64::consts::SQRT_2 * erfc_inv(2.0 * p)
}

fn total_cmp(a: &f64, b: &f64) -> std::cmp::Ordering {
    a.total_cmp(b)
}

/// Sorts finite values ascending.
pub(crate) fn sort(xs: &mut [f64]) {
    xs.sort_unstable_by(total_cmp);
}

/// Median of sorted values (NaN when empty).
#[must_use]
pub fn median_sorted(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        0.5 * (sorted[n / 2 - 1] + sorted[n / 2])
    }
}

/// The `q`-quantile of sorted values by linear interpolation between order statistics
/// (numpy's default, R's type 7); NaN when empty.
#[must_use]
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    let h = (n - 1) as f64 * q.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Median of values in any order (NaN when empty); reorders `xs`.
pub fn median_in_place(xs: &mut [f64]) -> f64 {
    let n = xs.len();
    if n == 0 {
        return f64::NAN;
    }
    let (_, &mut hi, _) = xs.select_nth_unstable_by(n / 2, total_cmp);
    if n % 2 == 1 {
        hi
    } else {
        let lo = xs[..n / 2]
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        0.5 * (lo + hi)
    }
}

/// Median absolute deviation from the median of sorted values (unscaled; NaN when empty).
#[must_use]
pub fn mad_sorted(sorted: &[f64]) -> f64 {
    let m = median_sorted(sorted);
    // The k-th smallest |x - m| merges two sorted runs: left of m (reversed) and right of m.
    kth_abs_dev_median(sorted, m)
}

/// Median of |x - m| over sorted `xs`, by merging the two sorted runs around `m` in O(log n).
pub(crate) fn kth_abs_dev_median(sorted: &[f64], m: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    let split = sorted.partition_point(|&x| x < m);
    let left = |i: usize| m - sorted[split - 1 - i]; // ascending in i, len = split
    let right = |i: usize| sorted[split + i] - m; // ascending in i, len = n - split
    let kth = |k: usize| kth_of_two(split, n - split, k, &left, &right);
    if n % 2 == 1 {
        kth(n / 2)
    } else {
        0.5 * (kth(n / 2 - 1) + kth(n / 2))
    }
}

/// The k-th (0-based) smallest element of the union of two ascending sequences given by index.
fn kth_of_two(
    na: usize,
    nb: usize,
    k: usize,
    a: &impl Fn(usize) -> f64,
    b: &impl Fn(usize) -> f64,
) -> f64 {
    // Binary search on how many elements come from `a`.
    let (mut lo, mut hi) = (k.saturating_sub(nb), k.min(na));
    loop {
        let i = lo + (hi - lo) / 2; // take i from a, k - i from b
        let j = k - i;
        if i < na && j > 0 && b(j - 1) > a(i) {
            lo = i + 1;
        } else if i > 0 && j < nb && a(i - 1) > b(j) {
            hi = i - 1;
        } else {
            // a[..i] and b[..j] are the k smallest; the k-th is the smaller of the next two.
            let next_a = if i < na { a(i) } else { f64::INFINITY };
            let next_b = if j < nb { b(j) } else { f64::INFINITY };
            return next_a.min(next_b);
        }
    }
}

/// Mid-ranks (1-based, ties get their average rank) of `xs`, and the tie term Σ(t³ − t).
#[must_use]
pub fn ranks(xs: &[f64]) -> (Vec<f64>, f64) {
    let n = xs.len();
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_unstable_by(|&a, &b| xs[a].total_cmp(&xs[b]));
    let mut r = vec![0.0; n];
    let mut ties = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && xs[idx[j]] == xs[idx[i]] {
            j += 1;
        }
        let avg = (i + j + 1) as f64 / 2.0; // ranks i+1..=j
        for &k in &idx[i..j] {
            r[k] = avg;
        }
        let t = (j - i) as f64;
        ties += t * t * t - t;
        i = j;
    }
    (r, ties)
}

/// Which way a one-sided test looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Alternative {
    /// The first sample is larger.
    Greater,
    /// The first sample is smaller.
    Less,
    /// Either.
    #[serde(rename = "two-sided")]
    TwoSided,
}

/// How a Mann–Whitney p-value was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MwuMethod {
    /// The exact null distribution (small samples without ties).
    Exact,
    /// The normal approximation with tie and continuity correction.
    Asymptotic,
}

/// The result of a Mann–Whitney U test.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MannWhitney {
    /// U of the first sample: the number of pairs (x, y) with x > y, ties counting one half.
    pub u: f64,
    /// The z statistic of the normal approximation (with continuity correction); also given
    /// when the p-value is exact.
    pub z: f64,
    /// The p-value for the alternative asked.
    pub p_value: f64,
    /// How the p-value was computed.
    pub method: MwuMethod,
}

/// The largest samples for which the exact distribution is used (both sizes at most this, and
/// no ties): the DP costs O(n1² n2²).
pub const MWU_EXACT_MAX: usize = 30;

/// Mann–Whitney U test of `x` against `y` (scipy's `mannwhitneyu(x, y, alternative=...)`,
/// `method="auto"` with the exact distribution up to [`MWU_EXACT_MAX`] per sample).
///
/// # Errors
/// [`Error::Validation`] when a sample is empty or not finite.
pub fn mann_whitney(x: &[f64], y: &[f64], alternative: Alternative) -> Result<MannWhitney> {
    check_finite("x", x)?;
    check_finite("y", y)?;
    let (n1, n2) = (x.len(), y.len());
    let mut all = Vec::with_capacity(n1 + n2);
    all.extend_from_slice(x);
    all.extend_from_slice(y);
    let (r, ties) = ranks(&all);
    let r1: f64 = r[..n1].iter().sum();
    let (f1, f2) = (n1 as f64, n2 as f64);
    let u1 = r1 - f1 * (f1 + 1.0) / 2.0;
    let mu = f1 * f2 / 2.0;
    let n = f1 + f2;
    let var = f1 * f2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    let sd = var.max(0.0).sqrt();
    let (z, p_asym) = if sd == 0.0 {
        (0.0, 1.0) // every value equal: no evidence either way
    } else {
        match alternative {
            Alternative::Greater => {
                let z = (u1 - mu - 0.5) / sd;
                (z, normal_sf(z))
            }
            Alternative::Less => {
                let z = (u1 - mu + 0.5) / sd;
                (z, normal_cdf(z))
            }
            Alternative::TwoSided => {
                let u = u1.max(f1 * f2 - u1);
                let z = (u - mu - 0.5) / sd;
                (z, (2.0 * normal_sf(z)).min(1.0))
            }
        }
    };
    if ties == 0.0 && n1 <= MWU_EXACT_MAX && n2 <= MWU_EXACT_MAX {
        let dist = mwu_null_cdf(n1, n2);
        let u = u1.round() as usize;
        let cdf = |k: usize| dist[k.min(dist.len() - 1)];
        let sf = |k: usize| if k == 0 { 1.0 } else { 1.0 - cdf(k - 1) };
        let p = match alternative {
            Alternative::Greater => sf(u),
            Alternative::Less => cdf(u),
            Alternative::TwoSided => (2.0 * sf(u.max(n1 * n2 - u))).min(1.0),
        };
        return Ok(MannWhitney {
            u: u1,
            z,
            p_value: p.clamp(0.0, 1.0),
            method: MwuMethod::Exact,
        });
    }
    Ok(MannWhitney {
        u: u1,
        z,
        p_value: p_asym.clamp(0.0, 1.0),
        method: MwuMethod::Asymptotic,
    })
}

/// The exact null CDF of U for sample sizes `m` and `n` (no ties): `cdf[u] = P(U ≤ u)`.
///
/// Counts by the recurrence f(m, n, u) = f(m−1, n, u−n) + f(m, n−1, u), additions only (no
/// cancellation), in f64 (C(60, 30) ≈ 1.2e17 is well inside its range).
#[must_use]
pub fn mwu_null_cdf(m: usize, n: usize) -> Vec<f64> {
    let top = m * n;
    // prev[j] = counts for (i-1, j); cur[j] = counts for (i, j); each a vec over u.
    let mut prev: Vec<Vec<f64>> = (0..=n).map(|_| vec![1.0]).collect(); // i = 0: only U = 0
    for i in 1..=m {
        let mut cur: Vec<Vec<f64>> = Vec::with_capacity(n + 1);
        cur.push(vec![1.0]); // j = 0: only U = 0
        for j in 1..=n {
            let len = i * j + 1;
            let mut f = vec![0.0; len];
            // f(i, j, u) = f(i-1, j, u-j) + f(i, j-1, u)
            for (u, c) in prev[j].iter().enumerate() {
                f[u + j] += c;
            }
            for (u, c) in cur[j - 1].iter().enumerate() {
                f[u] += c;
            }
            cur.push(f);
        }
        prev = cur;
    }
    let counts = &prev[n];
    let total: f64 = counts.iter().sum();
    let mut acc = 0.0;
    let mut cdf = Vec::with_capacity(top + 1);
    for c in counts {
        acc += c;
        cdf.push(acc / total);
    }
    cdf
}

/// The Hodges–Lehmann shift of `x` relative to `y` (median of all x_i − y_j) with a
/// two-sided confidence interval at `confidence`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct HodgesLehmann {
    /// The shift estimate.
    pub shift: f64,
    /// Lower bound of the interval.
    pub lower: f64,
    /// Upper bound of the interval.
    pub upper: f64,
    /// The interval's confidence level.
    pub confidence: f64,
}

/// Hodges–Lehmann shift of `x` minus `y` and its distribution-free confidence interval
/// (Lehmann 1975 / Hollander & Wolfe: the C-th smallest and C-th largest pairwise differences
/// with C = ⌊n1 n2 / 2 − z(1−α/2) √(n1 n2 (n1+n2+1)/12)⌋, at least 1). Uses an O((n1+n2) log)
/// selection over the sorted samples, never the n1·n2 differences themselves.
///
/// # Errors
/// [`Error::Validation`] when a sample is empty or not finite, or `confidence` is not in (0, 1).
pub fn hodges_lehmann(x: &[f64], y: &[f64], confidence: f64) -> Result<HodgesLehmann> {
    check_finite("x", x)?;
    check_finite("y", y)?;
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(Error::invalid("confidence", "must be between 0 and 1"));
    }
    let mut xs = x.to_vec();
    let mut ys = y.to_vec();
    sort(&mut xs);
    sort(&mut ys);
    Ok(hodges_lehmann_sorted(&xs, &ys, confidence))
}

pub(crate) fn hodges_lehmann_sorted(xs: &[f64], ys: &[f64], confidence: f64) -> HodgesLehmann {
    let (n1, n2) = (xs.len(), ys.len());
    let nn = n1 * n2;
    let shift = if nn % 2 == 1 {
        kth_difference(xs, ys, nn / 2 + 1)
    } else {
        0.5 * (kth_difference(xs, ys, nn / 2) + kth_difference(xs, ys, nn / 2 + 1))
    };
    let z = normal_quantile(1.0 - (1.0 - confidence) / 2.0);
    let (f1, f2) = (n1 as f64, n2 as f64);
    let c = (f1 * f2 / 2.0 - z * (f1 * f2 * (f1 + f2 + 1.0) / 12.0).sqrt()).floor();
    let c = (c.max(1.0) as usize).min(nn);
    HodgesLehmann {
        shift,
        lower: kth_difference(xs, ys, c),
        upper: kth_difference(xs, ys, nn + 1 - c),
        confidence,
    }
}

/// Number of pairs with x_i − y_j ≤ v (both sorted ascending), in O(n1 + n2).
fn count_le(xs: &[f64], ys: &[f64], v: f64) -> usize {
    // x - y <= v  <=>  y >= x - v; as x grows the bound grows, so j only moves forward.
    let m = ys.len();
    let mut j = 0;
    let mut count = 0;
    for &x in xs {
        let bound = x - v;
        while j < m && ys[j] < bound {
            j += 1;
        }
        count += m - j;
    }
    count
}

/// The k-th smallest (1-based) of the differences x_i − y_j, by bisection on the value.
pub(crate) fn kth_difference(xs: &[f64], ys: &[f64], k: usize) -> f64 {
    let (n1, n2) = (xs.len(), ys.len());
    let limit = 4 * (n1 + n2);
    let mut lo = xs[0] - ys[n2 - 1]; // the smallest difference
    let mut hi = xs[n1 - 1] - ys[0]; // the largest
    if k <= 1 {
        return lo;
    }
    // Invariant: count_le(lo) < k <= count_le(hi).
    let mut c_lo = count_le(xs, ys, lo);
    if c_lo >= k {
        return lo;
    }
    let mut c_hi = n1 * n2;
    while c_hi - c_lo > limit {
        let mid = lo + (hi - lo) / 2.0;
        if mid <= lo || mid >= hi {
            return hi; // nothing representable in between: every difference in (lo, hi] is hi
        }
        let c = count_le(xs, ys, mid);
        if c >= k {
            hi = mid;
            c_hi = c;
        } else {
            lo = mid;
            c_lo = c;
        }
    }
    // Collect the differences in (lo, hi]: c_hi - c_lo of them.
    let mut between = Vec::with_capacity(c_hi - c_lo);
    let (mut j_lo, mut j_hi) = (0, 0);
    for &x in xs {
        // y in [x - hi, x - lo)
        while j_lo < n2 && ys[j_lo] < x - hi {
            j_lo += 1;
        }
        while j_hi < n2 && ys[j_hi] < x - lo {
            j_hi += 1;
        }
        for &y in &ys[j_lo..j_hi] {
            let d = x - y;
            if d > lo && d <= hi {
                between.push(d);
            }
        }
    }
    let want = k - c_lo - 1;
    if want >= between.len() {
        return hi;
    }
    let (_, v, _) = between.select_nth_unstable_by(want, total_cmp);
    *v
}

/// The result of a Brown–Forsythe test (Levene's test centred on medians) of two samples.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct BrownForsythe {
    /// The F statistic (1 and n1 + n2 − 2 degrees of freedom).
    pub f: f64,
    /// Its p-value (two-sided in the sense of "spreads differ").
    pub p_value: f64,
    /// Mean absolute deviation from the median of `x`.
    pub spread_x: f64,
    /// Mean absolute deviation from the median of `y`.
    pub spread_y: f64,
}

/// Brown–Forsythe test of equal spread (scipy's `levene(x, y, center="median")`).
///
/// # Errors
/// [`Error::Validation`] when a sample has fewer than 2 values or is not finite.
pub fn brown_forsythe(x: &[f64], y: &[f64]) -> Result<BrownForsythe> {
    check_finite("x", x)?;
    check_finite("y", y)?;
    if x.len() < 2 || y.len() < 2 {
        return Err(Error::invalid(
            "samples",
            "the Brown–Forsythe test needs at least 2 values per sample",
        ));
    }
    let dev = |s: &[f64]| {
        let mut v = s.to_vec();
        let m = median_in_place(&mut v);
        s.iter().map(|a| (a - m).abs()).collect::<Vec<f64>>()
    };
    let (zx, zy) = (dev(x), dev(y));
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (mx, my) = (mean(&zx), mean(&zy));
    let (n1, n2) = (zx.len() as f64, zy.len() as f64);
    let n = n1 + n2;
    let grand = (mx * n1 + my * n2) / n;
    let between = n1 * (mx - grand).powi(2) + n2 * (my - grand).powi(2);
    let within: f64 = zx.iter().map(|z| (z - mx).powi(2)).sum::<f64>()
        + zy.iter().map(|z| (z - my).powi(2)).sum::<f64>();
    let df2 = n - 2.0;
    let (f, p) = if within == 0.0 {
        if between == 0.0 {
            (0.0, 1.0)
        } else {
            (f64::INFINITY, 0.0)
        }
    } else {
        let f = between / (within / df2);
        if f.is_nan() {
            // Values so large their deviations overflow: no evidence either way (statrs'
            // `sf(NaN)` panics; found by the binding fuzz).
            (f, 1.0)
        } else if f == f64::INFINITY {
            (f, 0.0)
        } else {
            let dist = FisherSnedecor::new(1.0, df2).expect("valid degrees of freedom");
            (f, dist.sf(f))
        }
    };
    Ok(BrownForsythe {
        f,
        p_value: p,
        spread_x: mx,
        spread_y: my,
    })
}

/// The result of a Mann–Kendall trend test.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MannKendall {
    /// S = Σ_{i<j} sign(x_j − x_i).
    pub s: f64,
    /// Var(S), corrected for ties.
    pub var_s: f64,
    /// z = (S − sign(S)) / √Var(S).
    pub z: f64,
    /// Kendall's tau (tau-a: S / (n(n−1)/2)), as pymannkendall reports it.
    pub tau: f64,
    /// Two-sided p-value.
    pub p_value: f64,
}

/// Mann–Kendall trend test with tie-corrected variance (pymannkendall's `original_test`),
/// computing S in O(n log n) by counting inversions (Knight 1966).
///
/// # Errors
/// [`Error::Validation`] when `xs` has fewer than 3 values or is not finite.
pub fn mann_kendall(xs: &[f64]) -> Result<MannKendall> {
    check_finite("values", xs)?;
    if xs.len() < 3 {
        return Err(Error::invalid(
            "values",
            "the Mann–Kendall test needs at least 3 values",
        ));
    }
    let n = xs.len();
    let fnn = n as f64;
    let pairs = fnn * (fnn - 1.0) / 2.0;
    // Discordant pairs (i < j, x_i > x_j) by merge sort; tied pairs from the sorted run lengths.
    let mut v = xs.to_vec();
    let mut buf = vec![0.0; n];
    let discordant = merge_count(&mut v, &mut buf) as f64;
    let mut tied = 0.0;
    let mut tie_var = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && v[j] == v[i] {
            j += 1;
        }
        let t = (j - i) as f64;
        tied += t * (t - 1.0) / 2.0;
        tie_var += t * (t - 1.0) * (2.0 * t + 5.0);
        i = j;
    }
    let concordant = pairs - discordant - tied;
    let s = concordant - discordant;
    let var_s = (fnn * (fnn - 1.0) * (2.0 * fnn + 5.0) - tie_var) / 18.0;
    let z = if var_s <= 0.0 || s == 0.0 {
        0.0
    } else {
        (s - s.signum()) / var_s.sqrt()
    };
    let p = (2.0 * normal_sf(z.abs())).min(1.0);
    Ok(MannKendall {
        s,
        var_s,
        z,
        tau: s / pairs,
        p_value: p,
    })
}

/// Sorts `v` ascending and returns the number of strict inversions (i < j, v_i > v_j).
fn merge_count(v: &mut [f64], buf: &mut [f64]) -> u64 {
    let n = v.len();
    if n < 2 {
        return 0;
    }
    if n <= 16 {
        // Insertion sort counts strict inversions exactly (each shift passes one larger value).
        let mut inv = 0;
        for i in 1..n {
            let x = v[i];
            let mut j = i;
            while j > 0 && v[j - 1] > x {
                v[j] = v[j - 1];
                j -= 1;
                inv += 1;
            }
            v[j] = x;
        }
        return inv;
    }
    let mid = n / 2;
    let (a, b) = buf.split_at_mut(mid);
    let mut inv = {
        let (l, r) = v.split_at_mut(mid);
        merge_count(l, a) + merge_count(r, b)
    };
    let (mut i, mut j, mut k) = (0, mid, 0);
    while i < mid && j < n {
        if v[i] <= v[j] {
            buf[k] = v[i];
            i += 1;
        } else {
            buf[k] = v[j];
            inv += (mid - i) as u64;
            j += 1;
        }
        k += 1;
    }
    buf[k..k + mid - i].copy_from_slice(&v[i..mid]);
    k += mid - i;
    buf[k..k + n - j].copy_from_slice(&v[j..n]);
    v.copy_from_slice(&buf[..n]);
    inv
}

/// Theil–Sen slope of `ys` against positions 0, 1, 2, ... (the median of pairwise slopes), and
/// the intercept median(y) − slope · median(x) (scipy's `theilslopes(y)`).
///
/// # Errors
/// [`Error::Validation`] when `ys` has fewer than 2 values or is not finite.
pub fn theil_sen(ys: &[f64]) -> Result<(f64, f64)> {
    check_finite("values", ys)?;
    if ys.len() < 2 {
        return Err(Error::invalid("values", "a slope needs at least 2 values"));
    }
    let n = ys.len();
    let mut slopes = Vec::with_capacity(n * (n - 1) / 2);
    for i in 0..n {
        for j in i + 1..n {
            slopes.push((ys[j] - ys[i]) / (j - i) as f64);
        }
    }
    let slope = median_in_place(&mut slopes);
    let mut y = ys.to_vec();
    let my = median_in_place(&mut y);
    let mx = (n - 1) as f64 / 2.0;
    Ok((slope, my - slope * mx))
}

/// P(X ≥ k) for X ~ Binomial(n, p), through the regularized incomplete beta function.
#[must_use]
pub fn binomial_sf_ge(k: u64, n: u64, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n {
        return 0.0;
    }
    if p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    beta_reg(k as f64, (n - k + 1) as f64, p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1e-300) || (a - b).abs() < 1e-15
    }

    #[test]
    fn quantiles_match_numpy() {
        // numpy.quantile([1, 2, 3, 4, 10], [0.95, 0.5, 0.05, 0, 1]) = [8.8, 3, 1.2, 1, 10]
        let xs = [1.0, 2.0, 3.0, 4.0, 10.0];
        let got: Vec<f64> = [0.95, 0.5, 0.05, 0.0, 1.0]
            .iter()
            .map(|&q| quantile_sorted(&xs, q))
            .collect();
        for (g, w) in got.iter().zip([8.8, 3.0, 1.2, 1.0, 10.0]) {
            assert!((g - w).abs() < 1e-12, "{got:?}");
        }
        assert!(quantile_sorted(&[], 0.5).is_nan());
    }

    #[test]
    fn exact_mwu_of_two_separated_samples_of_five_is_0_0079() {
        // Regression for statrs 0.19.1 (CONTRIBUTING.md, build notes), which answers 1.0 here.
        // scipy 1.17.1: mannwhitneyu([1,2,3,4,5], [6,7,8,9,10], method="exact") -> U=0, p=0.007936507936507936
        let r = mann_whitney(
            &[1.0, 2.0, 3.0, 4.0, 5.0],
            &[6.0, 7.0, 8.0, 9.0, 10.0],
            Alternative::TwoSided,
        )
        .unwrap();
        assert_eq!(r.method, MwuMethod::Exact);
        assert_eq!(r.u, 0.0);
        assert!(
            close(r.p_value, 0.007936507936507936, 1e-12),
            "{}",
            r.p_value
        );
        let r = mann_whitney(
            &[6.0, 7.0, 8.0, 9.0, 10.0],
            &[1.0, 2.0, 3.0, 4.0, 5.0],
            Alternative::TwoSided,
        )
        .unwrap();
        assert_eq!(r.u, 25.0);
        assert!(close(r.p_value, 0.007936507936507936, 1e-12));
        let r = mann_whitney(
            &[6.0, 7.0, 8.0, 9.0, 10.0],
            &[1.0, 2.0, 3.0, 4.0, 5.0],
            Alternative::Greater,
        )
        .unwrap();
        assert!(close(r.p_value, 1.0 / 252.0, 1e-12));
        let r = mann_whitney(
            &[6.0, 7.0, 8.0, 9.0, 10.0],
            &[1.0, 2.0, 3.0, 4.0, 5.0],
            Alternative::Less,
        )
        .unwrap();
        assert!(close(r.p_value, 1.0, 1e-12));
    }

    #[test]
    fn the_exact_null_distribution_sums_to_one_and_is_symmetric() {
        let cdf = mwu_null_cdf(7, 4);
        assert_eq!(cdf.len(), 29);
        assert!(close(*cdf.last().unwrap(), 1.0, 1e-15));
        // P(U <= u) = P(U >= 28 - u)
        for u in 0..28 {
            let p_le = cdf[u];
            let p_ge = 1.0 - cdf[27 - u];
            assert!(close(p_le, p_ge, 1e-12), "{u}");
        }
        // 1/C(11,4) = 1/330
        assert!(close(cdf[0], 1.0 / 330.0, 1e-12));
    }

    #[test]
    fn median_and_mad_of_sorted_values() {
        let v = [1.0, 2.0, 3.0, 4.0, 100.0];
        assert_eq!(median_sorted(&v), 3.0);
        assert_eq!(mad_sorted(&v), 1.0);
        let v = [1.0, 1.0, 2.0, 2.0, 4.0, 6.0, 9.0];
        // numpy: median(|v - 2|) = median([1,1,0,0,2,4,7]) = 1
        assert_eq!(mad_sorted(&v), 1.0);
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(median_sorted(&v), 2.5);
        assert_eq!(mad_sorted(&v), 1.0);
        let mut w = [5.0, 1.0, 4.0, 2.0];
        assert_eq!(median_in_place(&mut w), 3.0);
    }

    #[test]
    fn kth_difference_matches_brute_force() {
        let mut rng = fastrand::Rng::with_seed(7);
        for trial in 0..50 {
            let n1 = 1 + rng.usize(..40);
            let n2 = 1 + rng.usize(..40);
            let mut x: Vec<f64> = (0..n1).map(|_| (rng.f64() * 10.0).round() / 2.0).collect();
            let mut y: Vec<f64> = (0..n2)
                .map(|_| (rng.f64() * 10.0).round() / 2.0 + trial as f64 * 0.01)
                .collect();
            sort(&mut x);
            sort(&mut y);
            let mut all: Vec<f64> = x
                .iter()
                .flat_map(|a| y.iter().map(move |b| a - b))
                .collect();
            sort(&mut all);
            for k in [1, all.len() / 3 + 1, all.len() / 2 + 1, all.len()] {
                assert_eq!(kth_difference(&x, &y, k), all[k - 1], "trial {trial} k {k}");
            }
        }
    }

    #[test]
    fn inversion_counting_matches_brute_force() {
        let mut rng = fastrand::Rng::with_seed(3);
        for _ in 0..30 {
            let n = 3 + rng.usize(..200);
            let x: Vec<f64> = (0..n).map(|_| rng.usize(..20) as f64).collect();
            let mut s = 0i64;
            for i in 0..n {
                for j in i + 1..n {
                    s += (x[j] - x[i]).signum() as i64 * i64::from(x[j] != x[i]);
                }
            }
            assert_eq!(mann_kendall(&x).unwrap().s, s as f64);
        }
    }

    const A: [f64; 12] = [1.1, 2.0, 2.0, 3.5, 4.0, 4.0, 5.2, 6.0, 7.1, 8.0, 8.0, 9.3];
    const B: [f64; 10] = [0.5, 1.1, 2.0, 2.2, 3.0, 3.5, 3.5, 4.0, 4.1, 5.0];
    const C: [f64; 7] = [3.1, 4.7, 5.2, 6.8, 7.4, 8.9, 9.6];
    const D: [f64; 9] = [1.2, 2.3, 2.9, 3.4, 4.1, 5.5, 5.9, 6.1, 7.0];

    #[test]
    fn mwu_with_ties_matches_scipy() {
        // scipy 1.17.1: mannwhitneyu(A, B, alternative=..., method="asymptotic") (continuity on)
        let cases = [
            (Alternative::TwoSided, 0.07387186961723408),
            (Alternative::Greater, 0.03693593480861704),
            (Alternative::Less, 0.9681022521727048),
        ];
        for (alt, p) in cases {
            let r = mann_whitney(&A, &B, alt).unwrap();
            assert_eq!(r.method, MwuMethod::Asymptotic);
            assert_eq!(r.u, 87.5);
            assert!(close(r.p_value, p, 1e-10), "{alt:?}: {} vs {p}", r.p_value);
        }
        // scipy: mannwhitneyu(BIG_X, BIG_Y, method="asymptotic") -> U = 17099.5, p = 0.025041145790357926
        let r = mann_whitney(
            &crate::detect::tests_support::BIG_X,
            &crate::detect::tests_support::BIG_Y,
            Alternative::TwoSided,
        )
        .unwrap();
        assert_eq!(r.u, 17099.5);
        assert!(
            close(r.p_value, 0.025041145790357926, 1e-10),
            "{}",
            r.p_value
        );
    }

    #[test]
    fn exact_mwu_matches_scipy() {
        // scipy 1.17.1: mannwhitneyu(C, D, alternative=..., method="exact") -> U = 48
        let cases = [
            (Alternative::TwoSided, 0.09073426573426574),
            (Alternative::Greater, 0.04536713286713287),
            (Alternative::Less, 0.9644230769230769),
        ];
        for (alt, p) in cases {
            let r = mann_whitney(&C, &D, alt).unwrap();
            assert_eq!(r.method, MwuMethod::Exact);
            assert_eq!(r.u, 48.0);
            assert!(close(r.p_value, p, 1e-12), "{alt:?}: {} vs {p}", r.p_value);
        }
    }

    #[test]
    fn hodges_lehmann_matches_brute_force_reference() {
        // references.py: median and the C-th / (n1 n2 + 1 - C)-th of the sorted np.subtract.outer
        // differences, C = floor(n1 n2 / 2 - norm.ppf(1 - a/2) sqrt(n1 n2 (n1 + n2 + 1) / 12)).
        let h = hodges_lehmann(&A, &B, 0.95).unwrap();
        assert_eq!((h.shift, h.lower, h.upper), (2.0, 0.0, 4.5));
        let h = hodges_lehmann(
            &crate::detect::tests_support::BIG_X,
            &crate::detect::tests_support::BIG_Y,
            0.95,
        )
        .unwrap();
        assert!(
            close(h.shift, 0.22, 1e-12) && close(h.lower, 0.03, 1e-9) && close(h.upper, 0.42, 1e-9),
            "{h:?}"
        );
        let h = hodges_lehmann(&C, &D, 0.90).unwrap();
        assert!(
            close(h.shift, 2.3, 1e-12) && close(h.lower, -0.2, 1e-9) && close(h.upper, 4.5, 1e-12),
            "{h:?}"
        );
    }

    #[test]
    fn brown_forsythe_matches_scipy_levene_median() {
        // scipy 1.17.1: levene(A, B, center="median") -> F = 5.004155502217376, p = 0.03683460076333643
        let r = brown_forsythe(&A, &B).unwrap();
        assert!(
            close(r.f, 5.004155502217376, 1e-10) && close(r.p_value, 0.03683460076333643, 1e-8),
            "{r:?}"
        );
        // levene(BIG_X, 2 * BIG_Y, center="median") -> F = 73.86332951521338, p = 2.873736110528263e-16
        let y2: Vec<f64> = crate::detect::tests_support::BIG_Y
            .iter()
            .map(|v| v * 2.0)
            .collect();
        let r = brown_forsythe(&crate::detect::tests_support::BIG_X, &y2).unwrap();
        assert!(
            close(r.f, 73.86332951521338, 1e-10) && close(r.p_value, 2.873736110528263e-16, 1e-6),
            "{r:?}"
        );
    }

    #[test]
    fn mann_kendall_and_theil_sen_match_pymannkendall_and_scipy() {
        // pymannkendall 1.4.3: original_test(T) -> S 156, var_s 939.333.., z 5.057336265907032,
        // Tau 0.8210526315789474, p 4.2515318332547736e-07; scipy theilslopes(T) -> 0.5, 2.25
        let t = [
            3.0, 4.0, 4.0, 2.0, 5.0, 6.0, 6.0, 6.0, 5.0, 7.0, 8.0, 7.0, 9.0, 9.0, 10.0, 8.0, 11.0,
            12.0, 12.0, 11.0,
        ];
        let r = mann_kendall(&t).unwrap();
        assert_eq!(r.s, 156.0);
        assert!(close(r.var_s, 939.3333333333334, 1e-12));
        assert!(close(r.z, 5.057336265907032, 1e-12));
        assert!(close(r.tau, 0.8210526315789474, 1e-12));
        assert!(
            close(r.p_value, 4.2515318332547736e-07, 1e-6),
            "{}",
            r.p_value
        );
        assert_eq!(theil_sen(&t).unwrap(), (0.5, 2.25));
        // original_test(MK_W) -> S 13956, var 3011921.3333333335, z 8.040962348102402, Tau 0.3111705685618729
        // theilslopes(MK_W) -> 0.006279110071272286, -0.6387269556552067
        let w = crate::detect::tests_support::MK_W;
        let r = mann_kendall(&w).unwrap();
        assert_eq!(r.s, 13956.0);
        assert!(close(r.var_s, 3011921.3333333335, 1e-12));
        assert!(close(r.z, 8.040962348102402, 1e-12));
        assert!(close(r.tau, 0.3111705685618729, 1e-12));
        assert!(r.p_value < 1e-14);
        let (slope, intercept) = theil_sen(&w).unwrap();
        assert!(
            close(slope, 0.006279110071272286, 1e-12)
                && close(intercept, -0.6387269556552067, 1e-12),
            "{slope} {intercept}"
        );
    }

    #[test]
    fn nonsense_input_is_an_error_not_a_panic() {
        assert!(mann_whitney(&[], &[1.0], Alternative::Greater).is_err());
        assert!(mann_whitney(&[f64::NAN], &[1.0], Alternative::Greater).is_err());
        assert!(hodges_lehmann(&[1.0], &[f64::INFINITY], 0.95).is_err());
        assert!(hodges_lehmann(&[1.0], &[1.0], 1.5).is_err());
        assert!(mann_kendall(&[1.0, 2.0]).is_err());
        assert!(theil_sen(&[1.0]).is_err());
        assert!(brown_forsythe(&[1.0], &[1.0, 2.0]).is_err());
        // constant input has a defined answer
        let r = mann_whitney(&[3.0; 40], &[3.0; 40], Alternative::TwoSided).unwrap();
        assert_eq!(r.p_value, 1.0);
        let m = mann_kendall(&[2.0; 10]).unwrap();
        assert_eq!((m.s, m.p_value), (0.0, 1.0));
        let b = brown_forsythe(&[2.0; 5], &[2.0; 5]).unwrap();
        assert_eq!(b.p_value, 1.0);
        let h = hodges_lehmann(&[2.0; 5], &[2.0; 5], 0.95).unwrap();
        assert_eq!((h.shift, h.lower, h.upper), (0.0, 0.0, 0.0));
    }
}
