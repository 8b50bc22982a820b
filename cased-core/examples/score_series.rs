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
//! `nab` mode: the runners' fixed detector set, tuned on the NAB development data only — a
//! [`SpikeDetector`] (robust z over the last 100 values, |z| > 12) and a [`CusumDetector`]
//! (k 0.5σ, h 30σ, target and σ from the first 100 values, rebasing after an alarm); any alarm
//! scores 1.0, then alarms are suppressed for 400 rows (one anomaly, one alert). `--bocpd 1`
//! adds a [`ChangepointDetector`] (it lowered the dev score, so it is off). Other rows score
//! 0.49 · (highest detector score), so ≥ 0.5 means "cased would alarm here".
//!
//! `changepoints` mode: the [`ChangepointDetector`] with its defaults; prints the reported
//! change positions.

use std::io::{BufRead, Write};

use cased_core::Error;
use cased_core::detect::stats;
use cased_core::detect::{ChangepointConfig, ChangepointDetector, CusumConfig, CusumDetector, Detector, SpikeConfig, SpikeDetector};

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
                    // rolling robust z over the previous `--window` values: count of |z| > 3.5
                    let w = arg(&args, "--window", 60.0) as usize;
                    let mut d = SpikeDetector::new(SpikeConfig { window: w, min_samples: w, threshold: 3.5, ..SpikeConfig::default() })?;
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
        _ => {
            let spike_t = arg(&args, "--spike-threshold", 12.0);
            let window = arg(&args, "--window", 100.0) as usize;
            let h = arg(&args, "--cusum-h", 30.0);
            let refractory = arg(&args, "--refractory", 400.0) as usize;
            let use_bocpd = arg(&args, "--bocpd", 0.0) > 0.0;
            let bocpd_t = arg(&args, "--bocpd-threshold", 0.9);
            let mut spike = SpikeDetector::new(SpikeConfig { window, min_samples: 10.min(window), threshold: spike_t, ..SpikeConfig::default() })?;
            let mut cusum = CusumDetector::new(CusumConfig { h, warmup: arg(&args, "--cusum-warmup", 100.0) as usize, ..CusumConfig::default() })?;
            let mut bocpd = ChangepointDetector::new(ChangepointConfig {
                expected_run: arg(&args, "--expected-run", 1000.0),
                threshold: bocpd_t,
                warmup: 50,
                ..ChangepointConfig::default()
            })?;
            let mut quiet_until = 0usize;
            let mut last = 0.0;
            for (row, v) in values.iter().enumerate() {
                let Some(v) = *v else {
                    writeln!(out, "{last}").map_err(|e| Error::Transport(e.to_string()))?;
                    continue;
                };
                let mut alarm = spike.update(v)?.is_some();
                alarm |= cusum.update(v)?.is_some();
                if use_bocpd {
                    alarm |= bocpd.update(v)?.is_some();
                }
                let score = if alarm && row >= quiet_until {
                    quiet_until = row + refractory;
                    1.0
                } else {
                    let s = spike.score().max(cusum.score()).max(if use_bocpd { bocpd.score() } else { 0.0 });
                    0.49 * s.min(1.0)
                };
                last = score;
                writeln!(out, "{score}").map_err(|e| Error::Transport(e.to_string()))?;
            }
        }
    }
    out.flush().map_err(|e| Error::Transport(e.to_string()))
}
