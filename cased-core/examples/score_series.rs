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
//! `nab` mode: a [`LikelihoodDetector`] with its defaults (an anomaly likelihood over the robust
//! z of the last 200 values, plus a breach of the range seen so far, 200 quiet values after an
//! alarm), chosen on half of the NAB development files (see BENCHMARKS.md). An alarm scores 1.0;
//! other rows score 0.49 · min(detector score, 1), so ≥ 0.5 means "cased would alarm here".
//! Flags override the settings (`--window`, `--raw-cap`, `--lik-avg`, `--lik-hist`,
//! `--lik-learn`, `--lik-eps`, `--range-margin`, `--range-warmup`, `--refractory`). The
//! combinations tried on the way (direct spike, CUSUM, BOCPD alarms on top) are in the
//! `score_series.rs` of commit dc73f31. `--detector context` runs a [`ContextDetector`] instead
//! (the same flags, plus `--context`, `--memory`, `--neighbours` and `--gain` for its context
//! model).
//!
//! `changepoints` mode: the [`ChangepointDetector`] with its defaults; prints the reported
//! change positions.

use std::io::{BufRead, Write};

use cased_core::Error;
use cased_core::detect::stats;
use cased_core::detect::{
    ChangepointConfig, ChangepointDetector, ContextConfig, ContextDetector, Detector,
    LikelihoodConfig, LikelihoodDetector, SpikeConfig, SpikeDetector,
};

fn arg(args: &[String], name: &str, default: f64) -> f64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map_or("nab", String::as_str).to_owned();
    let stdin = std::io::stdin();
    let values: Vec<Option<f64>> = stdin
        .lock()
        .lines()
        .map(|l| {
            l.ok()
                .and_then(|l| l.trim().parse::<f64>().ok())
                .filter(|v| v.is_finite())
        })
        .collect();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match mode.as_str() {
        // Answers for the peer comparisons in benches/peers_detect.py: x values, a blank line,
        // y values -> "U p"; a series -> "S z tau p" / "slope intercept".
        "mwu" | "mk" | "theil_sen" | "robust_z" => {
            let split = values
                .iter()
                .position(Option::is_none)
                .unwrap_or(values.len());
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
                    let mut d = SpikeDetector::new(SpikeConfig {
                        window: w,
                        min_samples: w,
                        threshold: 3.5,
                        refresh,
                        ..SpikeConfig::default()
                    })?;
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
            let cps: Vec<usize> = d
                .changepoints()
                .iter()
                .map(|&i| index_of[usize::try_from(i).unwrap_or(0)])
                .collect();
            writeln!(
                out,
                "{}",
                serde_json::to_string(&cps).unwrap_or_else(|_| "[]".into())
            )
            .map_err(|e| Error::Transport(e.to_string()))?;
        }
        _ => nab(&values, &args, &mut out)?,
    }
    out.flush().map_err(|e| Error::Transport(e.to_string()))
}

/// The `nab` mode: a [`LikelihoodDetector`] (or, with `--detector context`, a
/// [`ContextDetector`]) with its defaults; flags override its settings (`--range-margin -1`
/// turns the range breach off).
fn nab(values: &[Option<f64>], args: &[String], out: &mut impl Write) -> Result<(), Error> {
    let context = args
        .iter()
        .position(|a| a == "--detector")
        .and_then(|i| args.get(i + 1))
        .is_some_and(|d| d == "context");
    let c0 = ContextConfig::default();
    let d0 = if context {
        c0.likelihood
    } else {
        LikelihoodConfig::default()
    };
    let margin = arg(args, "--range-margin", d0.range_margin.unwrap_or(-1.0));
    let likelihood = LikelihoodConfig {
        window: arg(args, "--window", d0.window as f64) as usize,
        cap: arg(args, "--raw-cap", d0.cap),
        average: arg(args, "--lik-avg", d0.average as f64) as usize,
        history: arg(args, "--lik-hist", d0.history as f64) as usize,
        learning: arg(args, "--lik-learn", d0.learning as f64) as usize,
        tail: arg(args, "--lik-eps", d0.tail),
        range_margin: (margin >= 0.0).then_some(margin),
        range_warmup: arg(args, "--range-warmup", d0.range_warmup as f64) as usize,
        quiet: arg(args, "--refractory", d0.quiet as f64) as usize,
        ..d0
    };
    let mut d: Box<dyn Detector> = if context {
        Box::new(ContextDetector::new(ContextConfig {
            context: arg(args, "--context", c0.context as f64) as usize,
            memory: arg(args, "--memory", c0.memory as f64) as usize,
            neighbours: arg(args, "--neighbours", c0.neighbours as f64) as usize,
            gain: arg(args, "--gain", c0.gain),
            likelihood,
        })?)
    } else {
        Box::new(LikelihoodDetector::new(likelihood)?)
    };
    let mut last = 0.0;
    for v in values {
        if let Some(v) = *v {
            last = if d.update(v)?.is_some() {
                1.0
            } else {
                0.49 * d.score().min(1.0)
            };
        }
        writeln!(out, "{last}").map_err(|e| Error::Transport(e.to_string()))?;
    }
    Ok(())
}
