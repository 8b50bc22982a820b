//! Scores one series with cased's own detectors, strictly causally: the output for row i is
//! decided from rows 0..=i only. Used by the evaluation runners in `examples/eval/`.
//!
//! ```text
//! score_series nab           < values.txt > scores.txt        # one anomaly score per row, in [0, 1]
//! score_series changepoints  < values.txt > changepoints.json # [indices]
//! ```
//! Input: one number per line (blank, `nan` or unparsable lines are missing values: they get
//! the previous score and are not fed to the detectors).
//!
//! `nab` mode: the runners' fixed detector set, chosen on half of the NAB development files
//! (see BENCHMARKS.md). Two alarm sources, OR-ed:
//! - **anomaly likelihood** (Numenta's, over cased's robust z): the raw score of a row is
//!   min(|z|, 10) / 10, z being the [`SpikeDetector`]'s robust z of the value against the last
//!   200 values; the mean of the last 10 raw scores is compared with a normal fitted to the
//!   previous 8640 such means (mean ≥ 0.03, variance ≥ 0.0003, after 300 of them): alarm when
//!   its upper tail probability ([`stats::normal_sf`]) is below 1e-5;
//! - **range breach**: a [`ThresholdDetector`] whose bounds are the range of all past values
//!   widened by 5 % of that range (after 300 values; rebuilt whenever the range grows).
//!
//! Any alarm scores 1.0, then alarms are suppressed for 200 rows (one anomaly, one alert). Other
//! rows score 0.49 · (log-scaled likelihood, 1 at the alarm level), so ≥ 0.5 means "cased would
//! alarm here". Flags change every setting; `--spike-threshold T`, `--diff-threshold T`,
//! `--cusum-h H` and `--bocpd 1` add direct alarms of a [`SpikeDetector`] on the values or on
//! their first differences, a [`CusumDetector`] and a [`ChangepointDetector`] (each lowered the
//! dev score, so they are off).
//!
//! `changepoints` mode: the [`ChangepointDetector`] with its defaults; prints the reported
//! change positions.

use std::collections::VecDeque;
use std::io::{BufRead, Write};

use cased_core::Error;
use cased_core::detect::stats;
use cased_core::detect::{
    ChangepointConfig, ChangepointDetector, CusumConfig, CusumDetector, DetectionKind, Detector, SpikeConfig, SpikeDetector, ThresholdConfig,
    ThresholdDetector,
};

fn arg(args: &[String], name: &str, default: f64) -> f64 {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map_or("nab", String::as_str).to_owned();
    let stdin = std::io::stdin();
    let values: Vec<Option<f64>> = stdin
        .lock()
        .lines()
        .map(|l| l.ok().and_then(|l| l.trim().parse::<f64>().ok()).filter(|v| v.is_finite()))
        .collect();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match mode.as_str() {
        // Answers for the peer comparisons in benches/peers_detect.py: x values, a blank line,
        // y values -> "U p"; a series -> "S z tau p" / "slope intercept".
        "mwu" | "mk" | "theil_sen" | "robust_z" => {
            let split = values.iter().position(Option::is_none).unwrap_or(values.len());
            let x: Vec<f64> = values[..split].iter().flatten().copied().collect();
            let y: Vec<f64> = values[split..].iter().flatten().copied().collect();
            let line = match mode.as_str() {
                "mwu" => {
                    let r = stats::mann_whitney(&x, &y, stats::Alternative::TwoSided)?;
                    format!("{} {}", r.u, r.p_value)
                }
                "mk" => {
                    let r = stats::mann_kendall(&x)?;
                    format!("{} {} {} {}", r.s, r.z, r.tau, r.p_value)
                }
                "theil_sen" => {
                    let (s, i) = stats::theil_sen(&x)?;
                    format!("{s} {i}")
                }
                _ => {
                    // robust z over the previous `--window` values, refreshed every `--refresh`
                    // (default 1: the exact rolling form): count of |z| > 3.5
                    let w = arg(&args, "--window", 60.0) as usize;
                    let refresh = Some(arg(&args, "--refresh", 1.0) as usize);
                    let mut d = SpikeDetector::new(SpikeConfig { window: w, min_samples: w, threshold: 3.5, refresh, ..SpikeConfig::default() })?;
                    format!("{}", d.detect(&x)?.len())
                }
            };
            writeln!(out, "{line}").map_err(|e| Error::Transport(e.to_string()))?;
        }
        "changepoints" => {
            let d0 = ChangepointConfig::default();
            let cfg = ChangepointConfig {
                expected_run: arg(&args, "--expected-run", d0.expected_run),
                threshold: arg(&args, "--threshold", d0.threshold),
                warmup: arg(&args, "--warmup", d0.warmup as f64) as usize,
                prior_scale: arg(&args, "--prior-scale", d0.prior_scale),
                min_distance: arg(&args, "--min-distance", d0.min_distance as f64) as usize,
                ..ChangepointConfig::default()
            };
            let mut d = ChangepointDetector::new(cfg)?;
            let mut index_of = Vec::new(); // detector position -> row
            for (row, v) in values.iter().enumerate() {
                if let Some(v) = v {
                    index_of.push(row);
                    d.update(*v)?;
                }
            }
            let cps: Vec<usize> = d.changepoints().iter().map(|&i| index_of[usize::try_from(i).unwrap_or(0)]).collect();
            writeln!(out, "{}", serde_json::to_string(&cps).unwrap_or_else(|_| "[]".into())).map_err(|e| Error::Transport(e.to_string()))?;
        }
        _ => nab(&values, &args, &mut out)?,
    }
    out.flush().map_err(|e| Error::Transport(e.to_string()))
}

/// Numenta's "anomaly likelihood" over a raw score in [0, 1]: the tail probability of the mean
/// of the last `avg` raw scores under a normal fitted to the last `hist` such means.
struct Likelihood {
    avg: usize,
    hist: usize,
    learn: usize,
    recent: VecDeque<f64>,
    recent_sum: f64,
    means: VecDeque<f64>,
    sum: f64,
    sum_sq: f64,
}

impl Likelihood {
    fn new(avg: usize, hist: usize, learn: usize) -> Self {
        Self { avg: avg.max(1), hist: hist.max(2), learn, recent: VecDeque::new(), recent_sum: 0.0, means: VecDeque::new(), sum: 0.0, sum_sq: 0.0 }
    }

    /// Adds a raw score; returns the tail probability of the current short mean (1 while learning).
    fn update(&mut self, raw: f64) -> f64 {
        self.recent.push_back(raw);
        self.recent_sum += raw;
        if self.recent.len() > self.avg
            && let Some(old) = self.recent.pop_front()
        {
            self.recent_sum -= old;
        }
        let m = self.recent_sum / self.recent.len() as f64;
        let tail = if self.means.len() >= self.learn.max(2) {
            let n = self.means.len() as f64;
            // Numenta's lower bounds: mean >= 0.03, variance >= 0.0003
            let mean = (self.sum / n).max(0.03);
            let var = (self.sum_sq / n - (self.sum / n).powi(2)).max(0.0003);
            stats::normal_sf((m - mean) / var.sqrt())
        } else {
            1.0
        };
        self.means.push_back(m);
        self.sum += m;
        self.sum_sq += m * m;
        if self.means.len() > self.hist
            && let Some(old) = self.means.pop_front()
        {
            self.sum -= old;
            self.sum_sq -= old * old;
        }
        tail
    }
}

/// The `nab` mode: see the module documentation. Every setting has a flag (defaults: the chosen
/// set; a threshold or margin ≤ 0, or `--range-margin -1`, turns that part off).
fn nab(values: &[Option<f64>], args: &[String], out: &mut impl Write) -> Result<(), Error> {
    let window = arg(args, "--window", 200.0) as usize;
    let raw_cap = arg(args, "--raw-cap", 10.0);
    let raw_diff = arg(args, "--raw-diff", 0.0) > 0.0;
    let lik_eps = arg(args, "--lik-eps", 1e-5);
    let range_margin = arg(args, "--range-margin", 0.05);
    let range_warmup = arg(args, "--range-warmup", 300.0) as usize;
    let refractory = arg(args, "--refractory", 200.0) as usize;
    // direct alarms, off by default (they lowered the dev score on top of the two above)
    let spike_t = arg(args, "--spike-threshold", 0.0);
    let diff_t = arg(args, "--diff-threshold", 0.0);
    let h = arg(args, "--cusum-h", 0.0);
    let use_bocpd = arg(args, "--bocpd", 0.0) > 0.0;
    let mut lik = Likelihood::new(arg(args, "--lik-avg", 10.0) as usize, arg(args, "--lik-hist", 8640.0) as usize, arg(args, "--lik-learn", 300.0) as usize);
    // a threshold <= 0 means "no alarms from this detector": it still gives the robust z
    let spike_cfg = |t: f64| SpikeConfig { window, min_samples: 10.min(window), threshold: if t > 0.0 { t } else { f64::MAX }, ..SpikeConfig::default() };
    let mut spike = SpikeDetector::new(spike_cfg(spike_t))?;
    let mut dspike = SpikeDetector::new(spike_cfg(diff_t))?;
    let mut cusum = CusumDetector::new(CusumConfig { h: if h > 0.0 { h } else { f64::MAX }, warmup: arg(args, "--cusum-warmup", 100.0) as usize, ..CusumConfig::default() })?;
    let mut bocpd = ChangepointDetector::new(ChangepointConfig {
        expected_run: arg(args, "--expected-run", 1000.0),
        threshold: arg(args, "--bocpd-threshold", 0.9),
        warmup: 50,
        ..ChangepointConfig::default()
    })?;
    // range breach: a ThresholdDetector whose bounds are the past range widened by the margin,
    // rebuilt whenever the range grows
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut range: Option<ThresholdDetector> = None;
    let mut prev: Option<f64> = None;
    let mut seen = 0usize;
    let mut quiet_until = 0usize;
    let mut last = 0.0;
    for (row, v) in values.iter().enumerate() {
        let Some(v) = *v else {
            writeln!(out, "{last}").map_err(|e| Error::Transport(e.to_string()))?;
            continue;
        };
        let mut alarm = spike.update(v)?.is_some();
        let mut s = if spike_t > 0.0 { spike.score() } else { 0.0 };
        let mut raw = spike.last_z().abs();
        if let Some(p) = prev {
            alarm |= dspike.update(v - p)?.is_some();
            if diff_t > 0.0 {
                s = s.max(dspike.score());
            }
            if diff_t > 0.0 || raw_diff {
                raw = raw.max(dspike.last_z().abs());
            }
        }
        prev = Some(v);
        if h > 0.0 {
            alarm |= cusum.update(v)?.is_some();
            s = s.max(cusum.score());
        }
        if use_bocpd {
            alarm |= bocpd.update(v)?.is_some();
            s = s.max(bocpd.score());
        }
        if lik_eps > 0.0 {
            let tail = lik.update((raw / raw_cap).min(1.0));
            alarm |= tail < lik_eps;
            // log-scaled like NAB's numenta detector: 1 at tail = lik_eps (then times 0.49)
            s = s.max((tail.max(f64::MIN_POSITIVE).ln() / lik_eps.ln()).min(1.0));
        }
        if range_margin >= 0.0 {
            if seen >= range_warmup
                && let Some(d) = range.as_mut()
            {
                alarm |= d.update(v)?.is_some_and(|d| d.kind == DetectionKind::Alarm);
            }
            if v < lo || v > hi || range.is_none() {
                lo = lo.min(v);
                hi = hi.max(v);
                let m = range_margin * (hi - lo);
                range = Some(ThresholdDetector::new(ThresholdConfig { lower: Some(lo - m), upper: Some(hi + m), ..ThresholdConfig::default() })?);
            }
        }
        seen += 1;
        let score = if alarm && row >= quiet_until {
            quiet_until = row + refractory;
            1.0
        } else {
            0.49 * s.min(1.0)
        };
        last = score;
        writeln!(out, "{score}").map_err(|e| Error::Transport(e.to_string()))?;
    }
    Ok(())
}
