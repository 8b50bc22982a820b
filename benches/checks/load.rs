//! Load generator for the health-check benchmark (issue 4): runs `N` checks with `C` in flight
//! against a target and prints one JSON line: checks/s, p50, p99 and errors.
//!
//! ```text
//! cargo run --release -p cased-benches --example checks_load -- http-pooled http://127.0.0.1:18080/ 20000 64
//! cargo run --release -p cased-benches --example checks_load -- http-fresh  http://127.0.0.1:18080/ 20000 64
//! cargo run --release -p cased-benches --example checks_load -- tcp         127.0.0.1:18080         20000 64
//! ```
//! Each check is a real `HttpCheck` / `TcpCheck` (`HealthCheck::check`, outcome and evidence
//! included), spawned on the multi-threaded runtime with `buffer_unordered(C)`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cased_core::checks::{ConnectionMode, HttpCheck, HttpCheckConfig, TcpCheck, TcpCheckConfig};
use cased_core::{CheckStatus, HealthCheck};
use futures::StreamExt;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: checks_load <http-pooled|http-fresh|tcp|reqwest-raw> <url|host:port> <n> <concurrency>";
    let [_, mode, target, n, c] = args.as_slice() else {
        panic!("{usage}")
    };
    let n: usize = n.parse().expect(usage);
    let c: usize = c.parse().expect(usage);
    if mode == "reqwest-raw" {
        return raw_reqwest(target, n, c).await;
    }
    let check: Arc<dyn HealthCheck> = match mode.as_str() {
        "http-pooled" | "http-fresh" => {
            let mut config = HttpCheckConfig::new("bench", target.clone());
            config.connection = if mode == "http-pooled" {
                ConnectionMode::Pooled
            } else {
                ConnectionMode::Fresh
            };
            Arc::new(HttpCheck::new(config).expect("valid http check"))
        }
        "tcp" => {
            let (host, port) = target.rsplit_once(':').expect("host:port");
            Arc::new(
                TcpCheck::new(TcpCheckConfig::new(
                    "bench",
                    host,
                    port.parse().expect("port"),
                ))
                .expect("valid tcp check"),
            )
        }
        _ => panic!("{usage}"),
    };
    // Warm-up: 1% of the runs, not measured.
    run(&check, n / 100, c).await;
    let started = Instant::now();
    let results = run(&check, n, c).await;
    let elapsed = started.elapsed();
    report(mode, n, c, elapsed, results);
}

/// The floor under the HTTP check: plain reqwest (pooled), GET and read the body, no judging.
async fn raw_reqwest(url: &str, n: usize, c: usize) {
    let client = reqwest::Client::new();
    let go = |n: usize| {
        let client = client.clone();
        futures::stream::iter(0..n)
            .map(move |_| {
                let client = client.clone();
                let url = url.to_owned();
                tokio::spawn(async move {
                    let t = Instant::now();
                    let ok = match client.get(url).send().await {
                        Ok(r) => r.bytes().await.is_ok(),
                        Err(_) => false,
                    };
                    (
                        if ok {
                            CheckStatus::Pass
                        } else {
                            CheckStatus::Error
                        },
                        t.elapsed(),
                    )
                })
            })
            .buffer_unordered(c)
            .map(|r| r.expect("task"))
            .collect::<Vec<_>>()
    };
    go(n / 100).await;
    let started = Instant::now();
    let results = go(n).await;
    report("reqwest-raw", n, c, started.elapsed(), results);
}

fn report(
    mode: &str,
    n: usize,
    c: usize,
    elapsed: Duration,
    results: Vec<(CheckStatus, Duration)>,
) {
    let errors = results
        .iter()
        .filter(|(s, _)| *s != CheckStatus::Pass)
        .count();
    let mut lat: Vec<Duration> = results.iter().map(|(_, l)| *l).collect();
    lat.sort();
    let q =
        |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1000.0;
    println!(
        "{{\"mode\":\"{mode}\",\"n\":{n},\"concurrency\":{c},\"checks_per_s\":{:.0},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"errors\":{errors}}}",
        n as f64 / elapsed.as_secs_f64(),
        q(0.50),
        q(0.99)
    );
}

async fn run(check: &Arc<dyn HealthCheck>, n: usize, c: usize) -> Vec<(CheckStatus, Duration)> {
    futures::stream::iter(0..n)
        .map(|_| {
            let check = check.clone();
            tokio::spawn(async move {
                let o = check.check().await;
                (o.status, o.latency)
            })
        })
        .buffer_unordered(c)
        .map(|r| r.expect("check task"))
        .collect()
        .await
}
