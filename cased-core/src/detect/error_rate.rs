//! [`ErrorRateDetector`]: more errors than before, judged on counts, not ratios.
//!
//! The test is the exact conditional test for two Poisson rates (the "C-test" of Przyborowski &
//! Wilenski): given the total number of errors E = e₀ + e₁, under H0 "the current rate is at
//! most (1 + allowed_change) times the baseline rate" the current errors are at most
//! Binomial(E, π) with π = n₁(1+m) / (n₁(1+m) + n₀). It is exact for any counts, including
//! zero baseline errors, and a fine approximation of the binomial case when errors are a small
//! part of the requests. The practical margin has two parts: the relative `allowed_change`
//! inside the hypothesis, and an absolute `min_increase` of the rate that the point estimate
//! must exceed. The two-proportion z statistic is reported as the statistic.

use serde::{Deserialize, Serialize};

use super::stats::{binomial_sf_ge, normal_sf};
use super::{Detection, DetectionKind, LookSpending, SeverityPolicy, num, pval, validate_alpha};
use crate::error::{Error, Problems, Result};
pub use crate::metrics::Counts;

/// Settings of an [`ErrorRateDetector`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ErrorRateConfig {
    /// The relative increase of the rate still acceptable (0.1 = 10% more errors). Default 0.1.
    pub allowed_change: f64,
    /// The absolute increase of the rate that matters (0.001 = 0.1 percentage point); smaller
    /// increases never alarm however significant. Default 0.001.
    pub min_increase: f64,
    /// False-alarm budget for a whole session, spent over looks (default 0.05).
    pub alpha: f64,
    /// Requests needed in the current window before any look (default 50).
    pub min_requests: u64,
    /// Look again only once the current window's requests have grown by this factor since the
    /// last look (default 1: every update looks). Fed every few seconds, looks spaced
    /// geometrically (e.g. 1.25) keep the later looks' share of α from vanishing: 180 updates
    /// are 23 looks instead of 180.
    pub look_growth: f64,
}

impl Default for ErrorRateConfig {
    fn default() -> Self {
        Self {
            allowed_change: 0.1,
            min_increase: 0.001,
            alpha: 0.05,
            min_requests: 50,
            look_growth: 1.0,
        }
    }
}

impl ErrorRateConfig {
    pub(crate) fn check(&self, p: &mut Problems, prefix: &str) {
        if !(self.allowed_change.is_finite() && self.allowed_change >= 0.0) {
            p.add(
                format!("{prefix}allowed_change"),
                "must be a finite number ≥ 0",
            );
        }
        if !(self.min_increase.is_finite() && (0.0..1.0).contains(&self.min_increase)) {
            p.add(format!("{prefix}min_increase"), "must be between 0 and 1");
        }
        validate_alpha(p, &format!("{prefix}alpha"), self.alpha);
        if !(self.look_growth.is_finite() && self.look_growth >= 1.0) {
            p.add(
                format!("{prefix}look_growth"),
                "must be a finite number ≥ 1",
            );
        }
        if self.min_requests == 0 {
            p.add(format!("{prefix}min_requests"), "must be at least 1");
        }
    }
}

/// One comparison of current counts with baseline counts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ErrorRateComparison {
    /// The baseline's counts.
    pub baseline: Counts,
    /// The current counts.
    pub current: Counts,
    /// The pooled two-proportion z statistic (current minus baseline).
    pub z: f64,
    /// The exact conditional p-value of H0 "rate ratio ≤ 1 + allowed_change".
    pub p_value: f64,
    /// The level the p-value was judged at.
    pub level: f64,
    /// Which look this was (1-based).
    pub look: u32,
    /// Whether the rule fired.
    pub alarm: bool,
}

/// Alarms when the current error rate exceeds the baseline's by more than the practical margin
/// (see the module docs), spending α over looks.
///
/// Effect size: the relative increase of the rate, `rate / baseline_rate − 1` (a baseline
/// without errors counts as half an error). Confidence: 1 − p.
#[derive(Debug, Clone)]
pub struct ErrorRateDetector {
    config: ErrorRateConfig,
    baseline: Option<Counts>,
    current: Counts,
    spending: LookSpending,
    fired: bool,
    updates: u64,
    /// Overdispersion factor (≥ 1) the counts are divided by before the test.
    dispersion: f64,
    /// Requests the current window needs before the next look (`look_growth`).
    next_look_at: u64,
}

impl ErrorRateDetector {
    /// A detector without a baseline yet.
    ///
    /// # Errors
    /// [`Error::Validation`] naming each bad setting.
    pub fn new(config: ErrorRateConfig) -> Result<Self> {
        let mut p = Problems::default();
        config.check(&mut p, "");
        p.finish("error rate detector")?;
        Ok(Self {
            config,
            baseline: None,
            current: Counts::default(),
            spending: LookSpending::new(config.alpha),
            fired: false,
            updates: 0,
            dispersion: 1.0,
            next_look_at: 0,
        })
    }

    /// Sets the baseline from its per-sample counts (oldest first): their sum is the baseline,
    /// and their spread gives the overdispersion factor d = max(1, Pearson χ² / (n − 1)). With
    /// d > 1 (errors that come in bursts) both sides' counts are divided by d before the
    /// exact test (the quasi-Poisson correction), so that bursty baselines do not turn into
    /// false alarms. Returns d.
    ///
    /// # Errors
    /// [`Error::Validation`] when the series is empty, has no requests, or a sample has more
    /// errors than requests.
    pub fn set_baseline_series(&mut self, series: &[Counts]) -> Result<f64> {
        let mut total = Counts::default();
        for (i, c) in series.iter().enumerate() {
            Counts::new(c.errors, c.requests)
                .map_err(|e| Error::invalid(format!("baseline[{i}]"), e.to_string()))?;
            total = total.plus(*c);
        }
        self.set_baseline(total)?;
        let p = total.rate();
        let used: Vec<&Counts> = series.iter().filter(|c| c.requests > 0).collect();
        let d = if used.len() >= 2 && p > 0.0 && p < 1.0 {
            let chi2: f64 = used
                .iter()
                .map(|c| {
                    let n = c.requests as f64;
                    (c.errors as f64 - n * p).powi(2) / (n * p * (1.0 - p))
                })
                .sum();
            (chi2 / (used.len() - 1) as f64).max(1.0)
        } else {
            1.0
        };
        self.dispersion = d;
        Ok(d)
    }

    /// The overdispersion factor in use (1 unless set by
    /// [`set_baseline_series`](Self::set_baseline_series)).
    #[must_use]
    pub fn dispersion(&self) -> f64 {
        self.dispersion
    }

    /// Sets the baseline's counts.
    ///
    /// # Errors
    /// [`Error::Validation`] when the baseline has no requests or more errors than requests.
    pub fn set_baseline(&mut self, baseline: Counts) -> Result<()> {
        Counts::new(baseline.errors, baseline.requests)?;
        if baseline.requests == 0 {
            return Err(Error::invalid(
                "baseline.requests",
                "the baseline has no requests",
            ));
        }
        self.baseline = Some(baseline);
        Ok(())
    }

    /// The current window's counts so far.
    #[must_use]
    pub fn current(&self) -> Counts {
        self.current
    }

    /// One comparison at the full level α.
    ///
    /// # Errors
    /// [`Error::Validation`] when a side has no requests or more errors than requests.
    pub fn compare(&self, baseline: Counts, current: Counts) -> Result<ErrorRateComparison> {
        Counts::new(baseline.errors, baseline.requests)?;
        Counts::new(current.errors, current.requests)?;
        if baseline.requests == 0 || current.requests == 0 {
            return Err(Error::invalid(
                "requests",
                "both sides need at least one request",
            ));
        }
        Ok(self.compare_at(baseline, current, 1, self.config.alpha))
    }

    /// One comparison as look `look` (1-based) of a session, at the level
    /// [`LookSpending::level`] gives that look.
    ///
    /// # Errors
    /// As [`compare`](Self::compare), and [`Error::Validation`] on `look` when it is 0.
    pub fn compare_at_look(
        &self,
        baseline: Counts,
        current: Counts,
        look: u32,
    ) -> Result<ErrorRateComparison> {
        if look == 0 {
            return Err(Error::invalid("look", "looks are numbered from 1"));
        }
        let mut c = self.compare(baseline, current)?;
        c = self.compare_at(
            c.baseline,
            c.current,
            look,
            LookSpending::level(self.config.alpha, look),
        );
        Ok(c)
    }

    fn compare_at(&self, b: Counts, c: Counts, look: u32, level: f64) -> ErrorRateComparison {
        let mut cmp = self.compare_scaled(self.deflate(b), self.deflate(c), look, level);
        (cmp.baseline, cmp.current) = (b, c);
        cmp
    }

    /// Counts divided by the overdispersion factor (rounded; at least one request).
    fn deflate(&self, c: Counts) -> Counts {
        if self.dispersion <= 1.0 {
            return c;
        }
        let d = self.dispersion;
        let requests = ((c.requests as f64 / d).round() as u64).max(1);
        Counts {
            errors: ((c.errors as f64 / d).round() as u64).min(requests),
            requests,
        }
    }

    fn compare_scaled(&self, b: Counts, c: Counts, look: u32, level: f64) -> ErrorRateComparison {
        let (n0, n1) = (b.requests as f64, c.requests as f64);
        let (p0, p1) = (b.rate(), c.rate());
        // Counts near u64::MAX must not overflow (a panic, found by the binding fuzz).
        let total = b.errors.saturating_add(c.errors);
        let pooled = (b.errors as f64 + c.errors as f64) / (n0 + n1);
        let se = (pooled * (1.0 - pooled) * (1.0 / n0 + 1.0 / n1)).sqrt();
        let z = if se > 0.0 { (p1 - p0) / se } else { 0.0 };
        let ratio = 1.0 + self.config.allowed_change;
        let pi = n1 * ratio / (n1 * ratio + n0);
        let p_value = binomial_sf_ge(c.errors, total, pi);
        let alarm = p_value < level && p1 - p0 > self.config.min_increase;
        ErrorRateComparison {
            baseline: b,
            current: c,
            z,
            p_value,
            level,
            look,
            alarm,
        }
    }

    /// The detection a comparison amounts to, if it fired.
    #[must_use]
    pub fn detection(&self, c: &ErrorRateComparison) -> Option<Detection> {
        if !c.alarm {
            return None;
        }
        let (p0, p1) = (c.baseline.rate(), c.current.rate());
        let floor = 0.5 / c.baseline.requests as f64;
        let effect = p1 / p0.max(floor) - 1.0;
        let pct = |r: f64| format!("{}%", num(r * 100.0));
        Some(Detection {
            kind: DetectionKind::Alarm,
            index: self.updates.saturating_sub(1),
            current: p1,
            baseline: Some(p0),
            statistic: c.z,
            p_value: Some(c.p_value),
            confidence: 1.0 - c.p_value,
            effect,
            n: usize::try_from(c.current.requests).unwrap_or(usize::MAX),
            rule: format!(
                "exact Poisson rate test p < {} (look {}) against {}× the baseline rate, and +{} points or more",
                pval(c.level),
                c.look,
                num(1.0 + self.config.allowed_change),
                num(self.config.min_increase * 100.0)
            ),
            detail: format!(
                "error rate rose to {} ({} of {} requests) from {} ({} of {}) before; z = {}, p = {} at look {}",
                pct(p1),
                c.current.errors,
                c.current.requests,
                pct(p0),
                c.baseline.errors,
                c.baseline.requests,
                num(c.z),
                pval(c.p_value),
                c.look
            ),
        })
    }

    /// Adds counts to the current window and, once it has `min_requests` requests and a
    /// baseline is set, looks (spending the next share of α). Fires at most once until
    /// [`reset`](Self::reset).
    ///
    /// # Errors
    /// [`Error::Validation`] when `errors > requests`.
    pub fn update(&mut self, counts: Counts) -> Result<Option<Detection>> {
        Counts::new(counts.errors, counts.requests)?;
        self.current = self.current.plus(counts);
        self.updates += 1;
        let Some(b) = self.baseline else {
            return Ok(None);
        };
        if self.fired || !self.due() {
            return Ok(None);
        }
        self.advance();
        let (k, level) = self.spending.next_look();
        let c = self.compare_at(b, self.current, k, level);
        let d = self.detection(&c);
        self.fired = d.is_some();
        Ok(d)
    }

    /// Adds counts to the current window without looking.
    ///
    /// # Errors
    /// [`Error::Validation`] when `errors > requests`.
    pub fn add(&mut self, counts: Counts) -> Result<()> {
        Counts::new(counts.errors, counts.requests)?;
        self.current = self.current.plus(counts);
        self.updates += 1;
        Ok(())
    }

    /// Looks at the current window now, spending the next share of α; `None` without a
    /// baseline or before `min_requests`.
    pub fn look(&mut self) -> Option<ErrorRateComparison> {
        let b = self.baseline?;
        if self.current.requests < self.config.min_requests {
            return None;
        }
        self.advance();
        let (k, level) = self.spending.next_look();
        Some(self.compare_at(b, self.current, k, level))
    }

    /// Whether the current window is ready for its next look: at least `min_requests`
    /// requests, grown by `look_growth` since the last look.
    #[must_use]
    pub fn due(&self) -> bool {
        self.current.requests >= self.config.min_requests.max(self.next_look_at)
    }

    /// Whether the window has enough requests to judge but has not grown by `look_growth`
    /// since the last look (not a lack of data: the next look is simply not due).
    #[must_use]
    pub fn waiting(&self) -> bool {
        self.current.requests >= self.config.min_requests
            && self.current.requests < self.next_look_at
    }

    fn advance(&mut self) {
        let grown = (self.current.requests as f64 * self.config.look_growth).ceil() as u64;
        self.next_look_at = if self.config.look_growth > 1.0 {
            grown
        } else {
            0
        };
    }

    /// Whether a baseline is set.
    #[must_use]
    pub fn has_baseline(&self) -> bool {
        self.baseline.is_some()
    }

    /// Runs [`update`](Self::update) over a slice of counts.
    ///
    /// # Errors
    /// As `update`, naming the index.
    pub fn detect(&mut self, counts: &[Counts]) -> Result<Vec<Detection>> {
        let mut out = Vec::new();
        for (i, c) in counts.iter().enumerate() {
            match self.update(*c) {
                Ok(Some(d)) => out.push(d),
                Ok(None) => {}
                Err(e) => {
                    return Err(Error::invalid(
                        format!("counts[{i}]"),
                        e.field_errors()[0].message.clone(),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Clears the current window and the looks; the baseline stays.
    pub fn reset(&mut self) {
        self.current = Counts::default();
        self.spending.reset();
        self.fired = false;
        self.updates = 0;
        self.next_look_at = 0;
    }

    /// The default severity policy: relative increases of 0 / 100% / 500%.
    #[must_use]
    pub fn default_severity(&self) -> SeverityPolicy {
        SeverityPolicy::relative(0.0, 1.0, 5.0)
    }

    /// The one-sided normal-approximation p-value of the plain two-proportion z test (no
    /// margin), for reference.
    #[must_use]
    pub fn z_test_p(c: &ErrorRateComparison) -> f64 {
        normal_sf(c.z)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_baseline_series_gives_its_sum_and_overdispersion() {
        let steady: Vec<Counts> = (0..100)
            .map(|i| Counts::new(10 + (i % 3), 2000).unwrap())
            .collect();
        let mut d = ErrorRateDetector::new(ErrorRateConfig::default()).unwrap();
        assert_eq!(
            d.set_baseline_series(&steady).unwrap(),
            1.0,
            "less spread than binomial: no correction"
        );
        assert_eq!(d.look().map(|c| c.baseline), None, "no current counts yet");
        let bursty: Vec<Counts> = (0..100)
            .map(|i| Counts::new(if i % 10 == 0 { 60 } else { 5 }, 2000).unwrap())
            .collect();
        let factor = d.set_baseline_series(&bursty).unwrap();
        assert!(factor > 5.0, "{factor}");
        // 30% more errors: significant for Poisson counts, not once the bursts are allowed for
        let current = Counts::new(751, 110_000).unwrap();
        let mut plain = ErrorRateDetector::new(ErrorRateConfig::default()).unwrap();
        plain
            .set_baseline(Counts::new(1050, 200_000).unwrap())
            .unwrap();
        assert!(
            plain
                .compare(Counts::new(1050, 200_000).unwrap(), current)
                .unwrap()
                .alarm
        );
        assert!(
            !d.compare(Counts::new(1050, 200_000).unwrap(), current)
                .unwrap()
                .alarm
        );
        let e = d
            .set_baseline_series(&[Counts {
                errors: 3,
                requests: 2,
            }])
            .unwrap_err();
        assert_eq!(e.field_errors()[0].field, "baseline[0]");
    }

    #[test]
    fn look_growth_spaces_the_looks() {
        let config = ErrorRateConfig {
            look_growth: 1.5,
            ..ErrorRateConfig::default()
        };
        let mut d = ErrorRateDetector::new(config).unwrap();
        d.set_baseline(Counts::new(10, 10_000).unwrap()).unwrap();
        let mut looks = 0;
        for _ in 0..20 {
            d.add(Counts::new(1, 100).unwrap()).unwrap();
            if d.due() {
                looks += usize::from(d.look().is_some());
            }
        }
        // looks at 100, 200, 300, 500, 800, 1200, 1800 requests
        assert_eq!(looks, 7);
        assert_eq!(d.look().unwrap().look, 8);
        let e = ErrorRateDetector::new(ErrorRateConfig {
            look_growth: 0.5,
            ..ErrorRateConfig::default()
        })
        .unwrap_err();
        assert_eq!(e.field_errors()[0].field, "look_growth");
    }

    fn counts(e: u64, n: u64) -> Counts {
        Counts::new(e, n).unwrap()
    }

    #[test]
    fn the_conditional_test_matches_scipy_binomtest() {
        // scipy 1.17.1: binomtest(12, 12 + 10, p=1000/(1000+2000), alternative="greater").pvalue
        //   = 0.032703916240790845   (12 errors in 1000 vs 10 in 2000, no margin)
        let d = ErrorRateDetector::new(ErrorRateConfig {
            allowed_change: 0.0,
            min_increase: 0.0,
            ..Default::default()
        })
        .unwrap();
        let c = d.compare(counts(10, 2000), counts(12, 1000)).unwrap();
        assert!(
            (c.p_value - 0.032703916240790845).abs() < 1e-12,
            "{}",
            c.p_value
        );
        assert!(c.alarm);
        // With a 10% margin the hypothesis moves: p = binomtest(12, 22, p=1100/3100, "greater").pvalue
        //   = 0.052453813654229464: no longer below 0.05
        let d = ErrorRateDetector::new(ErrorRateConfig {
            min_increase: 0.0,
            ..Default::default()
        })
        .unwrap();
        let c = d.compare(counts(10, 2000), counts(12, 1000)).unwrap();
        assert!(
            (c.p_value - 0.052453813654229464).abs() < 1e-12,
            "{}",
            c.p_value
        );
        assert!(!c.alarm);
    }

    #[test]
    fn practical_margin_and_zero_baseline_errors() {
        let d = ErrorRateDetector::new(ErrorRateConfig {
            min_increase: 0.01,
            ..Default::default()
        })
        .unwrap();
        // significant but only +0.5 points: not an alarm
        let c = d
            .compare(counts(100, 100_000), counts(550, 100_000))
            .unwrap();
        assert!(c.p_value < 1e-10 && !c.alarm);
        // no baseline errors, 5 of 200 now: alarm with a finite effect
        let c = d.compare(counts(0, 5000), counts(5, 200)).unwrap();
        assert!(c.alarm, "{c:?}");
        let det = d.detection(&c).unwrap();
        assert!(det.effect.is_finite() && det.effect > 10.0);
        assert!(
            det.detail
                .starts_with("error rate rose to 2.5% (5 of 200 requests) from 0% (0 of 5000)"),
            "{}",
            det.detail
        );
    }

    #[test]
    fn streaming_counts_fire_once_and_controls_stay_quiet() {
        let mut d = ErrorRateDetector::new(ErrorRateConfig::default()).unwrap();
        d.set_baseline(counts(50, 10_000)).unwrap(); // 0.5%
        let bad: Vec<Counts> = (0..10).map(|_| counts(5, 100)).collect(); // 5%
        let found = d.detect(&bad).unwrap();
        assert_eq!(found.len(), 1);
        assert!(found[0].index <= 2, "{}", found[0].index);
        d.reset();
        let mut rng = fastrand::Rng::with_seed(11);
        let ok: Vec<Counts> = (0..50)
            .map(|_| {
                let e = (0..100).filter(|_| rng.f64() < 0.005).count() as u64;
                counts(e, 100)
            })
            .collect();
        assert!(d.detect(&ok).unwrap().is_empty());
    }

    #[test]
    fn nonsense_counts_are_errors() {
        assert!(Counts::new(3, 2).is_err());
        let mut d = ErrorRateDetector::new(ErrorRateConfig::default()).unwrap();
        assert!(
            d.set_baseline(Counts {
                errors: 0,
                requests: 0
            })
            .is_err()
        );
        let e = d
            .detect(&[
                counts(1, 2),
                Counts {
                    errors: 5,
                    requests: 1,
                },
            ])
            .unwrap_err();
        assert_eq!(e.field_errors()[0].field, "counts[1]");
        assert!(d.compare(counts(0, 0), counts(0, 1)).is_err());
        assert!(
            ErrorRateDetector::new(ErrorRateConfig {
                alpha: 0.7,
                min_requests: 0,
                ..Default::default()
            })
            .is_err()
        );
        // no errors anywhere: defined, no alarm
        let c = d.compare(counts(0, 100), counts(0, 100)).unwrap();
        assert_eq!((c.p_value, c.alarm), (1.0, false));
    }
}
