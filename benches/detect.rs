//! Detector benchmarks (issue 5). Seeded inputs; sizes:
//!
//! | bench | input |
//! |---|---|
//! | `stream/*` | 1,000,000 points, N(100, 10) with a spike every 1000; window 60; one `update` per point |
//! | `mwu/1000v1000` | two N(0,1)/N(0.1,1) samples of 1000 (rounded to 0.01: ties) |
//! | `hodges_lehmann/1000v1000` | the same samples |
//! | `mann_kendall/1000`, `theil_sen/1000` | a noisy ramp of 1000 |
//! | `bocpd/10k` | 10,000 points with a mean shift every 2,000 |
//! | `stream_100k/*` | the first 100,000 points of the `stream/*` input; detector defaults |
//!
//! `cargo bench -p cased-benches --bench detect`

use std::hint::black_box;

use cased_core::detect::stats::{self, Alternative};
use cased_core::detect::{
    ChangepointConfig, ChangepointDetector, ContextConfig, ContextDetector, CusumConfig,
    CusumDetector, Detector, EwmaConfig, EwmaDetector, LikelihoodConfig, LikelihoodDetector,
    SpikeConfig, SpikeDetector, ThresholdConfig, ThresholdDetector,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn normal(rng: &mut fastrand::Rng) -> f64 {
    let u1 = rng.f64().max(1e-300);
    let u2 = rng.f64();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

fn stream_input() -> Vec<f64> {
    let mut rng = fastrand::Rng::with_seed(1);
    (0..1_000_000)
        .map(|i| {
            if i % 1000 == 999 {
                400.0
            } else {
                100.0 + 10.0 * normal(&mut rng)
            }
        })
        .collect()
}

/// The naive rolling z-score the issue compares with: running sums over a ring buffer.
fn naive_rolling_z(xs: &[f64], w: usize, t: f64) -> usize {
    let mut ring = vec![0.0; w];
    let (mut s, mut s2) = (0.0, 0.0);
    let mut alarms = 0;
    for (i, &x) in xs.iter().enumerate() {
        if i >= w {
            let n = w as f64;
            let mean = s / n;
            let var = (s2 / n - mean * mean).max(0.0);
            if var > 0.0 && ((x - mean) / var.sqrt()).abs() > t {
                alarms += 1;
            }
            let old = ring[i % w];
            s -= old;
            s2 -= old * old;
        }
        ring[i % w] = x;
        s += x;
        s2 += x * x;
    }
    alarms
}

/// Feeds every value through `update` (static dispatch) and counts the alarms.
fn alarms(mut d: impl Detector, xs: &[f64]) -> usize {
    let mut n = 0usize;
    for &x in xs {
        n += usize::from(d.update(black_box(x)).unwrap().is_some());
    }
    black_box(n)
}

fn streaming(c: &mut Criterion) {
    let xs = stream_input();
    let mut g = c.benchmark_group("stream");
    g.throughput(Throughput::Elements(xs.len() as u64));
    g.sample_size(10);
    g.bench_function("naive_rolling_z_1M", |b| {
        b.iter(|| black_box(naive_rolling_z(black_box(&xs), 60, 3.5)))
    });
    let spike = SpikeConfig::default();
    let exact = SpikeConfig {
        refresh: Some(1),
        ..spike
    };
    let cusum = CusumConfig::default();
    let ewma = EwmaConfig::default();
    let bounds = ThresholdConfig {
        upper: Some(300.0),
        trigger: 3,
        window: Some(5),
        ..ThresholdConfig::default()
    };
    // The same streams with thresholds no value reaches: the per-value cost without the
    // findings' evidence (each alarm formats its rule and sentence, about 1–2 µs).
    let spike_quiet = SpikeConfig {
        threshold: 1e3,
        ..spike
    };
    let cusum_quiet = CusumConfig { h: 1e9, ..cusum };
    eprintln!(
        "alarms over the 1M points: spike {}, spike exact {}, cusum {}, ewma {}, threshold {}",
        alarms(SpikeDetector::new(spike).unwrap(), &xs),
        alarms(SpikeDetector::new(exact).unwrap(), &xs),
        alarms(CusumDetector::new(cusum).unwrap(), &xs),
        alarms(EwmaDetector::new(ewma).unwrap(), &xs),
        alarms(ThresholdDetector::new(bounds).unwrap(), &xs),
    );
    g.bench_function("spike_robust_z_1M", |b| {
        b.iter(|| alarms(SpikeDetector::new(spike).unwrap(), &xs))
    });
    g.bench_function("spike_robust_z_exact_1M", |b| {
        b.iter(|| alarms(SpikeDetector::new(exact).unwrap(), &xs))
    });
    g.bench_function("spike_robust_z_no_alarms_1M", |b| {
        b.iter(|| alarms(SpikeDetector::new(spike_quiet).unwrap(), &xs))
    });
    g.bench_function("cusum_no_alarms_1M", |b| {
        b.iter(|| alarms(CusumDetector::new(cusum_quiet).unwrap(), &xs))
    });
    g.bench_function("cusum_1M", |b| {
        b.iter(|| alarms(CusumDetector::new(cusum).unwrap(), &xs))
    });
    g.bench_function("ewma_1M", |b| {
        b.iter(|| alarms(EwmaDetector::new(ewma).unwrap(), &xs))
    });
    g.bench_function("threshold_3_of_5_1M", |b| {
        b.iter(|| alarms(ThresholdDetector::new(bounds).unwrap(), &xs))
    });
    g.finish();
}

/// The NAB detectors (anomaly likelihood of the robust z; that plus the context prediction
/// error) on 100,000 points: the context model compares each value's context with every
/// remembered one, so it costs O(`memory` · `context`) per value.
fn likelihoods(c: &mut Criterion) {
    let xs = stream_input()[..100_000].to_vec();
    let mut g = c.benchmark_group("stream_100k");
    g.throughput(Throughput::Elements(xs.len() as u64));
    g.sample_size(10);
    let likelihood = LikelihoodConfig::default();
    let context = ContextConfig::default();
    let small = ContextConfig {
        context: 8,
        memory: 250,
        ..context
    };
    eprintln!(
        "alarms over the 100k points: likelihood {}, context {}, context (8 × 250) {}",
        alarms(LikelihoodDetector::new(likelihood).unwrap(), &xs),
        alarms(ContextDetector::new(context).unwrap(), &xs),
        alarms(ContextDetector::new(small).unwrap(), &xs),
    );
    g.bench_function("naive_rolling_z_100k", |b| {
        b.iter(|| black_box(naive_rolling_z(black_box(&xs), 60, 3.5)))
    });
    g.bench_function("likelihood_100k", |b| {
        b.iter(|| alarms(LikelihoodDetector::new(likelihood).unwrap(), &xs))
    });
    g.bench_function("context_100k", |b| {
        b.iter(|| alarms(ContextDetector::new(context).unwrap(), &xs))
    });
    g.bench_function("context_8x250_100k", |b| {
        b.iter(|| alarms(ContextDetector::new(small).unwrap(), &xs))
    });
    g.finish();
}

fn tests(c: &mut Criterion) {
    let mut rng = fastrand::Rng::with_seed(2);
    let x: Vec<f64> = (0..1000)
        .map(|_| (normal(&mut rng) * 100.0).round() / 100.0)
        .collect();
    let y: Vec<f64> = (0..1000)
        .map(|_| ((0.1 + normal(&mut rng)) * 100.0).round() / 100.0)
        .collect();
    c.bench_function("mwu/1000v1000", |b| {
        b.iter(|| {
            black_box(
                stats::mann_whitney(black_box(&x), black_box(&y), Alternative::TwoSided).unwrap(),
            )
        })
    });
    c.bench_function("hodges_lehmann/1000v1000", |b| {
        b.iter(|| black_box(stats::hodges_lehmann(black_box(&x), black_box(&y), 0.95).unwrap()))
    });
    let ramp: Vec<f64> = (0..1000)
        .map(|i| 0.01 * f64::from(i) + normal(&mut rng))
        .collect();
    c.bench_function("mann_kendall/1000", |b| {
        b.iter(|| black_box(stats::mann_kendall(black_box(&ramp)).unwrap()))
    });
    c.bench_function("theil_sen/1000", |b| {
        b.iter(|| black_box(stats::theil_sen(black_box(&ramp)).unwrap()))
    });
}

fn bocpd(c: &mut Criterion) {
    let mut rng = fastrand::Rng::with_seed(3);
    let xs: Vec<f64> = (0..10_000)
        .map(|i| f64::from(i / 2000) * 3.0 + normal(&mut rng))
        .collect();
    let mut g = c.benchmark_group("bocpd");
    g.throughput(Throughput::Elements(xs.len() as u64));
    g.sample_size(10);
    g.bench_function("10k", |b| {
        b.iter(|| {
            let mut d = ChangepointDetector::new(ChangepointConfig::default()).unwrap();
            black_box(d.changepoints_of(black_box(&xs)).unwrap())
        });
    });
    g.finish();
}

criterion_group!(benches, streaming, likelihoods, tests, bocpd);
criterion_main!(benches);
