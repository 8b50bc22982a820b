//! [`ContextDetector`]: anomalies of any shape, judged on a prediction error: each value is
//! predicted from what followed the most similar past contexts, and Numenta's anomaly likelihood
//! is applied to the error, next to the [`LikelihoodDetector`]'s robust z and range breach.

use serde::{Deserialize, Serialize};

use super::likelihood::{AnomalyLikelihood, Fit};
use super::stats::check_value;
use super::{
    Detection, DetectionKind, Detector, LikelihoodConfig, LikelihoodDetector, SeverityPolicy, num,
    pval, warning_only,
};
use crate::error::{Problems, Result};

/// Settings of a [`ContextDetector`]: its own (the context model) and, at the same level, every
/// setting of a [`LikelihoodConfig`] (`window`, `cap`, `average`, `history`, `learning`, `tail`,
/// `range_margin`, `range_warmup`, `quiet`), which mean the same here. `average`, `history`,
/// `learning` and `tail` also apply to the likelihood of the prediction error; `quiet` to any
/// alarm. The defaults are the set chosen by cross-validation on the NAB development files
/// (BENCHMARKS.md).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ContextConfig {
    /// How many past values make a context (default 16).
    pub context: usize,
    /// How many past values are remembered beyond the context: each value's context is compared
    /// with the windows among the last `memory` + `context` values that end before it begins
    /// (`memory` − `context` + 1 of them) and their next values (default 1000; at most 100,000,
    /// and `memory` × `context` at most 1,000,000). Memory and per-value cost are
    /// O(`memory` · `context`).
    pub memory: usize,
    /// The prediction is the mean of what followed the `neighbours` most similar contexts
    /// (default 3).
    pub neighbours: usize,
    /// The raw score of a prediction error e is min(`gain` · |e| / range, 1), range being the
    /// range of every value seen so far (default 5).
    pub gain: f64,
    /// The robust-z likelihood, range breach, tail and quiet settings, as `likelihood`'s.
    #[serde(flatten)]
    pub likelihood: LikelihoodConfig,
}

impl Default for ContextConfig {
    fn default() -> Self {
        Self {
            context: 16,
            memory: 1000,
            neighbours: 3,
            gain: 5.0,
            likelihood: LikelihoodConfig {
                window: 400,
                range_margin: Some(0.02),
                ..LikelihoodConfig::default()
            },
        }
    }
}

/// The most `memory` × `context` may be: the differences computed per value (about 0.5 ms).
const MAX_WORK: usize = 1_000_000;

/// The context model's own settings, as read: the rest of the keys go to [`LikelihoodConfig`].
#[derive(Deserialize)]
#[serde(default)]
struct Own {
    context: usize,
    memory: usize,
    neighbours: usize,
    gain: f64,
}

impl Default for Own {
    fn default() -> Self {
        let c = ContextConfig::default();
        Self {
            context: c.context,
            memory: c.memory,
            neighbours: c.neighbours,
            gain: c.gain,
        }
    }
}

impl<'de> Deserialize<'de> for ContextConfig {
    /// Its own keys, then the rest as a [`LikelihoodConfig`] (which refuses unknown keys:
    /// `#[serde(flatten)]` would accept them silently).
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let mut rest = serde_json::Map::<String, serde_json::Value>::deserialize(de)?;
        let mut own = serde_json::Map::new();
        for key in ["context", "memory", "neighbours", "gain"] {
            if let Some(v) = rest.remove(key) {
                own.insert(key.to_owned(), v);
            }
        }
        let o: Own = serde_json::from_value(own.into()).map_err(D::Error::custom)?;
        // This detector's defaults for the likelihood settings it was not given.
        let mut merged = match serde_json::to_value(ContextConfig::default().likelihood) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        merged.extend(rest);
        let likelihood = serde_json::from_value(merged.into()).map_err(|e| {
            let e = e.to_string();
            if e.starts_with("unknown field") {
                D::Error::custom(format!(
                    "{e}, or one of the context settings `context`, `memory`, `neighbours`, `gain`"
                ))
            } else {
                D::Error::custom(e)
            }
        })?;
        Ok(Self {
            context: o.context,
            memory: o.memory,
            neighbours: o.neighbours,
            gain: o.gain,
            likelihood,
        })
    }
}

impl ContextConfig {
    pub(crate) fn check(&self, p: &mut Problems, prefix: &str) {
        self.likelihood.check(p, prefix);
        if self.context == 0 || self.context > 1000 {
            p.add(format!("{prefix}context"), "must be between 1 and 1000");
        }
        if self.memory == 0 || self.memory > 100_000 {
            p.add(format!("{prefix}memory"), "must be between 1 and 100000");
        } else if self.memory * self.context.max(1) > MAX_WORK {
            p.add(
                format!("{prefix}memory"),
                format!("`memory` × `context` must be at most {MAX_WORK} (the work per value)"),
            );
        }
        if self.neighbours == 0 || self.neighbours > self.memory.min(64) {
            p.add(
                format!("{prefix}neighbours"),
                "must be between 1 and `memory` (at most 64)",
            );
        }
        if !(self.gain.is_finite() && self.gain > 0.0) {
            p.add(
                format!("{prefix}gain"),
                format!("must be a finite number > 0, got {}", self.gain),
            );
        }
    }
}

/// The context model: the last `memory + context` values, each value predicted as the mean of
/// what followed the `neighbours` nearest (Euclidean) of the `context`-value windows among them
/// that do not overlap the current context. Values are kept twice (at `i` and `i + cap`) so
/// every window is one slice.
#[derive(Debug, Clone)]
struct ContextModel {
    context: usize,
    memory: usize,
    neighbours: usize,
    /// `cap = memory + context` slots, mirrored: `ring[i] == ring[i + cap]`.
    ring: Vec<f64>,
    /// Where the next value goes.
    head: usize,
    /// Values held (≤ cap).
    held: usize,
    /// The nearest distances and their windows' next values, reused between calls.
    best: Vec<(f64, f64)>,
}

/// The squared Euclidean distance of two windows of the same length, when it is below `worst`
/// (else the window could not be nearer than the current neighbours). Four running sums, so
/// that the additions do not wait on each other (twice as fast as one sum at 16 values).
fn distance(a: &[f64], b: &[f64], worst: f64) -> Option<f64> {
    let mut acc = [0.0; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for j in 0..4 {
            let d = x[j] - y[j];
            acc[j] += d * d;
        }
    }
    let mut d = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (x, y) in ra.iter().zip(rb) {
        d += (x - y) * (x - y);
    }
    (d < worst).then_some(d)
}

impl ContextModel {
    fn new(c: &ContextConfig) -> Self {
        let cap = c.memory + c.context;
        Self {
            context: c.context,
            memory: c.memory,
            neighbours: c.neighbours,
            ring: vec![0.0; 2 * cap],
            head: 0,
            held: 0,
            best: Vec::with_capacity(c.neighbours + 1),
        }
    }

    fn cap(&self) -> usize {
        self.memory + self.context
    }

    /// The prediction of the next value and how many windows it was chosen among, once at least
    /// `neighbours` windows with a next value are held.
    fn predict(&mut self) -> Option<(f64, usize)> {
        let (cap, l) = (self.cap(), self.context);
        // Windows with a next value that do not overlap the current context (those that do are
        // trivial matches: after a few values of anything new, the windows just before would
        // predict it).
        let windows = (self.held + 1).checked_sub(2 * l)?;
        if windows < self.neighbours {
            return None;
        }
        // Oldest held value at `start`; the current context is the last `l` values.
        let start = (self.head + cap - self.held) % cap;
        let current = &self.ring[self.head + cap - l..self.head + cap];
        self.best.clear();
        // Newest first: among windows at the same distance, the most recent ones predict.
        for w in (0..windows).rev() {
            let at = start + w; // < 2 cap − l: the window and its next value are one slice
            let worst = if self.best.len() < self.neighbours {
                f64::INFINITY
            } else {
                self.best[self.best.len() - 1].0
            };
            let Some(d) = distance(&self.ring[at..at + l], current, worst) else {
                continue;
            };
            let next = self.ring[at + l];
            let pos = self.best.partition_point(|&(bd, _)| bd <= d);
            self.best.insert(pos, (d, next));
            self.best.truncate(self.neighbours);
        }
        let pred = self.best.iter().map(|&(_, v)| v).sum::<f64>() / self.best.len() as f64;
        Some((pred, windows))
    }

    fn push(&mut self, x: f64) {
        let cap = self.cap();
        self.ring[self.head] = x;
        self.ring[self.head + cap] = x;
        self.head = (self.head + 1) % cap;
        self.held = (self.held + 1).min(cap);
    }

    fn reset(&mut self) {
        self.head = 0;
        self.held = 0;
    }
}

/// What the context model made of one value.
#[derive(Debug, Clone, Copy)]
struct Predicted {
    prediction: f64,
    windows: usize,
    /// |error| / range.
    error: f64,
    m: f64,
    fit: Fit,
}

/// Alarms on values that are unusual for this series, judged on a *prediction error* (the
/// approach of Numenta's HTM detector and of the contextual detectors of the NAB leaderboard,
/// KNN-CAD and CAD OSE), plus everything a [`LikelihoodDetector`] judges:
///
/// - **context prediction error**: value i is predicted as the mean of the values that followed
///   the `neighbours` past windows of `context` values nearest to the `context` values before i
///   (among the windows in the last `memory` + `context` values that end before those begin:
///   overlapping windows are trivial matches; at equal distances the newest win); the error
///   |value − prediction| as a share of the range
///   seen so far, times `gain` and capped at 1, is the raw score, and Numenta's anomaly
///   likelihood (the same code as [`LikelihoodDetector`]'s: the mean of the last `average` raw
///   scores against a normal fitted to the previous `history` means) alarms below `tail`. It
///   catches what a robust z cannot: a value inside the usual range where the series' own
///   pattern says something else should come (a missing daily peak, a flat stretch, a changed
///   shape);
/// - **the [`LikelihoodDetector`]**: the anomaly likelihood of the robust z of the value, and a
///   breach of the range seen so far.
///
/// After any alarm, `quiet` values raise no other. Strictly causal: value i is judged on values
/// before it only. Bounded memory: O(`memory` · `context`) per value, in time and space.
/// Effect size: the prediction error in units of the range seen so far (context), or as
/// [`LikelihoodDetector`]. Default severity: `warning` only.
#[derive(Debug, Clone)]
pub struct ContextDetector {
    config: ContextConfig,
    base: LikelihoodDetector,
    model: ContextModel,
    likelihood: AnomalyLikelihood,
    /// The smallest and largest value seen.
    range: Option<(f64, f64)>,
    quiet_until: u64,
    last: f64,
}

impl ContextDetector {
    /// A detector with these settings.
    ///
    /// # Errors
    /// [`Error::Validation`](crate::Error) naming each bad setting.
    pub fn new(config: ContextConfig) -> Result<Self> {
        let mut p = Problems::default();
        config.check(&mut p, "");
        p.finish("context detector")?;
        let l = &config.likelihood;
        Ok(Self {
            config,
            base: LikelihoodDetector::new(config.likelihood)?,
            model: ContextModel::new(&config),
            likelihood: AnomalyLikelihood::new(l.average, l.history, l.learning),
            range: None,
            quiet_until: 0,
            last: 0.0,
        })
    }

    /// Predicts `x` from the contexts before it, scores the error, then learns `x`.
    fn predicted(&mut self, x: f64) -> Option<Predicted> {
        let guess = self.model.predict();
        self.model.push(x);
        let (prediction, windows) = guess?;
        let (lo, hi) = self.range?;
        let error = (x - prediction).abs() / (hi - lo).max(f64::MIN_POSITIVE);
        let (m, fit) = self.likelihood.push((self.config.gain * error).min(1.0));
        Some(Predicted {
            prediction,
            windows,
            error,
            m,
            fit: fit?,
        })
    }

    fn detection(&self, index: u64, x: f64, p: &Predicted) -> Detection {
        let (lo, hi) = self.range.unwrap_or((x, x));
        let unit = (hi - lo) / self.config.gain;
        Detection {
            kind: DetectionKind::Alarm,
            index,
            current: x,
            baseline: Some(p.prediction),
            statistic: (p.m - p.fit.mean) / p.fit.sd,
            p_value: Some(p.fit.tail),
            confidence: 1.0 - p.fit.tail,
            effect: p.error,
            n: self.likelihood.fitted(),
            rule: format!(
                "context likelihood: tail probability < {}",
                pval(self.config.likelihood.tail)
            ),
            detail: format!(
                "{} is not what followed similar contexts: predicted {} from the {} of the last {} windows of {} values nearest the values before it; the last {} prediction errors average {} against {} ± {} before (tail probability {})",
                num(x),
                num(p.prediction),
                self.config.neighbours,
                p.windows,
                self.config.context,
                self.likelihood.averaged(),
                num(p.m * unit),
                num(p.fit.mean * unit),
                num(p.fit.sd * unit),
                pval(p.fit.tail)
            ),
        }
    }
}

impl Detector for ContextDetector {
    fn name(&self) -> &'static str {
        "context"
    }

    fn update(&mut self, x: f64) -> Result<Option<Detection>> {
        check_value("value", x)?;
        let observed = self.base.observe(x)?;
        let predicted = self.predicted(x);
        self.range = Some(self.range.map_or((x, x), |(lo, hi)| (lo.min(x), hi.max(x))));
        let tail = self.config.likelihood.tail;
        let context_tail = predicted.map_or(1.0, |p| p.fit.tail);
        self.last = self
            .base
            .score()
            .max((context_tail.max(f64::MIN_POSITIVE).ln() / tail.ln()).max(0.0));
        if observed.index < self.quiet_until {
            return Ok(None);
        }
        let detection = match predicted.filter(|p| p.fit.tail < tail) {
            Some(p) => Some(self.detection(observed.index, x, &p)),
            None => self.base.detection(&observed),
        };
        if detection.is_some() {
            self.quiet_until = observed.index + 1 + self.config.likelihood.quiet as u64;
        }
        Ok(detection)
    }

    fn reset(&mut self) {
        self.base.reset();
        self.model.reset();
        self.likelihood.reset();
        self.range = None;
        self.quiet_until = 0;
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
    use crate::detect::stats::normal_sf;
    use crate::detect::{DetectorConfig, DetectorKind};

    fn noise(rng: &mut fastrand::Rng) -> f64 {
        (0..12).map(|_| rng.f64()).sum::<f64>() - 6.0 // ~N(0, 1)
    }

    /// A sine of period 50 and amplitude 20 around 100, with N(0, 0.5²) noise.
    fn wave(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = fastrand::Rng::with_seed(seed);
        (0..n)
            .map(|i| {
                let phase = std::f64::consts::TAU * i as f64 / 50.0;
                100.0 + 20.0 * phase.sin() + 0.5 * noise(&mut rng)
            })
            .collect()
    }

    /// The likelihood detector's parts that can fire on their own, switched off: a raw cap no
    /// robust z reaches in these series, and no range breach.
    fn context_only() -> ContextConfig {
        ContextConfig {
            likelihood: LikelihoodConfig {
                cap: 1e9,
                range_margin: None,
                ..LikelihoodConfig::default()
            },
            ..ContextConfig::default()
        }
    }

    /// The prediction recomputed from scratch: the `k` nearest of the last `memory` windows of
    /// `l` values before `i`, by squared distance, averaged over their next values.
    fn brute_prediction(xs: &[f64], i: usize, l: usize, memory: usize, k: usize) -> Option<f64> {
        let first = i.saturating_sub(l + memory);
        let current = &xs[i.checked_sub(l)?..i];
        // Windows ending before the current context starts.
        let end = (i + 1).checked_sub(2 * l)?;
        let mut d: Vec<(f64, f64)> = (first..end)
            .map(|j| {
                let dist = xs[j..j + l]
                    .iter()
                    .zip(current)
                    .map(|(a, b)| (a - b).powi(2))
                    .sum::<f64>();
                (dist, xs[j + l])
            })
            .collect();
        if d.len() < k {
            return None;
        }
        d.sort_by(|a, b| a.0.total_cmp(&b.0));
        Some(d[..k].iter().map(|p| p.1).sum::<f64>() / k as f64)
    }

    #[test]
    fn predictions_match_a_brute_force_nearest_neighbour_search() {
        // A memory far smaller than the series, so the ring wraps many times.
        let mut rng = fastrand::Rng::with_seed(3);
        let xs: Vec<f64> = (0..700).map(|_| rng.f64() * 10.0).collect();
        let cfg = ContextConfig {
            context: 5,
            memory: 37,
            neighbours: 3,
            ..ContextConfig::default()
        };
        let mut model = ContextModel::new(&cfg);
        let mut predicted = 0;
        for (i, &x) in xs.iter().enumerate() {
            let got = model.predict().map(|(p, _)| p);
            let want = brute_prediction(&xs, i, 5, 37, 3);
            match (got, want) {
                (Some(g), Some(w)) => {
                    assert!((g - w).abs() < 1e-12, "row {i}: {g} vs {w}");
                    predicted += 1;
                }
                (None, None) => {}
                other => panic!("row {i}: {other:?}"),
            }
            model.push(x);
        }
        // The first prediction needs 3 windows clear of the current context: 2 · 5 + 2 values.
        assert_eq!(predicted, 700 - (2 * 5 + 2));
    }

    #[test]
    fn the_alarms_match_a_brute_force_recomputation() {
        // Prediction, raw score, short mean and tail probability recomputed from scratch at
        // every row (mean and variance of the whole stored history, Numenta's floors).
        let mut xs = wave(1500, 5);
        for x in &mut xs[1000..1040] {
            *x = 100.0; // a flat stretch where the wave should go on
        }
        let cfg = ContextConfig {
            context: 6,
            memory: 300,
            likelihood: LikelihoodConfig {
                quiet: 0,
                learning: 100,
                history: 400,
                ..context_only().likelihood
            },
            ..context_only()
        };
        let l = &cfg.likelihood;
        let (mut raws, mut means, mut want) = (Vec::new(), Vec::<f64>::new(), Vec::new());
        for i in 0..xs.len() {
            let Some(pred) = brute_prediction(&xs, i, cfg.context, cfg.memory, cfg.neighbours)
            else {
                continue;
            };
            let (lo, hi) = xs[..i]
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                    (a.min(v), b.max(v))
                });
            raws.push((cfg.gain * (xs[i] - pred).abs() / (hi - lo)).min(1.0));
            let recent = &raws[raws.len().saturating_sub(l.average)..];
            let m = recent.iter().sum::<f64>() / recent.len() as f64;
            let hist = &means[means.len().saturating_sub(l.history)..];
            if hist.len() >= l.learning {
                let n = hist.len() as f64;
                let mu = hist.iter().sum::<f64>() / n;
                let var = hist.iter().map(|v| v * v).sum::<f64>() / n - mu * mu;
                if normal_sf((m - mu.max(0.03)) / var.max(0.0003).sqrt()) < l.tail {
                    want.push(i as u64);
                }
            }
            means.push(m);
        }
        let found = ContextDetector::new(cfg).unwrap().detect(&xs).unwrap();
        assert!(
            found
                .iter()
                .all(|f| f.rule.starts_with("context likelihood"))
        );
        let got: Vec<u64> = found.iter().map(|f| f.index).collect();
        assert!(
            want.first().is_some_and(|i| (1000..1015).contains(i)),
            "{want:?}"
        );
        assert_eq!(got, want);
    }

    #[test]
    fn a_broken_pattern_inside_the_usual_range_is_found_where_the_robust_z_sees_nothing() {
        let control = wave(3000, 1);
        let mut broken = control.clone();
        for x in &mut broken[2000..2050] {
            *x = 100.0; // one missing cycle: every value within the range seen
        }
        let found = ContextDetector::new(ContextConfig::default())
            .unwrap()
            .detect(&broken)
            .unwrap();
        let first = found.first().expect("the missing cycle is found");
        assert!((2000..2020).contains(&first.index), "{found:?}");
        assert!(
            first.rule.starts_with("context likelihood")
                && first.p_value.is_some_and(|p| p < 1e-5)
                && first
                    .detail
                    .contains("is not what followed similar contexts"),
            "{first:?}"
        );
        assert!(first.effect > 0.0 && first.baseline.is_some());
        assert!(
            found.windows(2).all(|w| w[1].index > w[0].index + 200),
            "one alarm per quiet period"
        );
        // The same stretch through the likelihood detector alone: its robust z of a value at
        // the median is 0, so it stays quiet.
        let z_only = LikelihoodDetector::new(LikelihoodConfig::default())
            .unwrap()
            .detect(&broken)
            .unwrap();
        assert!(
            z_only.iter().all(|f| !(2000..2100).contains(&f.index)),
            "{z_only:?}"
        );
        let quiet = ContextDetector::new(ContextConfig::default())
            .unwrap()
            .detect(&control)
            .unwrap();
        assert!(quiet.is_empty(), "control: {quiet:?}");
    }

    /// Every row's detection and score, one value at a time.
    fn trace(cfg: ContextConfig, xs: &[f64]) -> Vec<(Option<Detection>, u64)> {
        let mut d = ContextDetector::new(cfg).unwrap();
        xs.iter()
            .map(|&x| {
                let found = d.update(x).unwrap();
                (found, d.score().to_bits())
            })
            .collect()
    }

    #[test]
    fn the_output_for_row_i_does_not_depend_on_rows_after_it() {
        let mut xs = wave(1500, 7);
        xs[700] = 70.0; // a dip below the range (not far: it widens the range for good)
        for x in &mut xs[1100..1150] {
            *x = 100.0;
        }
        let cfg = ContextConfig::default();
        let full = trace(cfg, &xs);
        let alarms: Vec<u64> = full
            .iter()
            .filter_map(|r| r.0.as_ref().map(|d| d.index))
            .collect();
        assert!(alarms.len() >= 2, "{alarms:?}");
        let mut rng = fastrand::Rng::with_seed(11);
        for cut in [0, 9, 250, 699, 700, 1105, 1499] {
            let mut other = xs.clone();
            for x in &mut other[cut + 1..] {
                *x = 1000.0 * rng.f64() - 500.0; // anything at all after the cut
            }
            let changed = trace(cfg, &other);
            assert_eq!(full[..=cut], changed[..=cut], "rows up to {cut}");
        }
    }

    #[test]
    fn it_is_configured_like_any_detector_and_bad_settings_are_named() {
        let entry: DetectorConfig = serde_json::from_value(serde_json::json!({
            "type": "context", "metric": "m", "context": 4, "memory": 60, "tail": 1e-6, "quiet": 20
        }))
        .unwrap();
        let DetectorKind::Context(c) = &entry.kind else {
            panic!("{entry:?}")
        };
        assert_eq!((c.context, c.memory, c.neighbours), (4, 60, 3));
        assert_eq!((c.likelihood.tail, c.likelihood.quiet), (1e-6, 20));
        assert_eq!(entry.name(), "context");
        let back = serde_json::to_value(&entry).unwrap();
        assert_eq!(
            (back["memory"].as_u64(), back["window"].as_u64()),
            (Some(60), Some(400))
        );
        assert_eq!(
            c.likelihood.range_margin,
            Some(0.02),
            "the context defaults, not likelihood's"
        );
        let unknown = serde_json::from_value::<DetectorConfig>(serde_json::json!({
            "type": "context", "metric": "m", "contxt": 4
        }));
        assert!(unknown.unwrap_err().to_string().contains("contxt"));

        let bad = ContextConfig {
            context: 0,
            memory: 2,
            neighbours: 5,
            gain: f64::NAN,
            likelihood: LikelihoodConfig {
                tail: 0.7,
                ..LikelihoodConfig::default()
            },
        };
        let e = ContextDetector::new(bad).unwrap_err().to_string();
        for field in ["context", "neighbours", "gain", "tail"] {
            assert!(e.contains(field), "{field} in {e}");
        }
        let mut d = ContextDetector::new(ContextConfig::default()).unwrap();
        assert!(d.update(f64::NAN).is_err());
        assert!(
            d.detect(&[5.0; 2000]).unwrap().is_empty(),
            "a constant series is defined and quiet"
        );
        assert!(d.score() < 0.01, "{}", d.score());
        d.reset();
        assert_eq!(d.score(), 0.0);
    }
}
