//! Metric source benchmarks: the exposition parser and whole polls over loopback HTTP.
//!
//! | bench | input |
//! |---|---|
//! | `sources/parse_exposition_1000` (wall), `sources_thread_cpu/parse_exposition_1000` (CPU) | a 1,000-series page (65,212 bytes): 400 counter series in 10 families, 4 histograms × 5 routes × 12 lines, 360 gauge series with escaped label values |
//! | `sources/scrape_poll_1000` | one `scrape` poll of that page from an axum server on 127.0.0.1 (3 metrics, 1 count; counters, a p95, a gauge selected by label) |
//! | `sources/prometheus_lookback_10x360` | one `prometheus` lookback whose range-query answer is 10 series × 360 points (75,664 bytes of JSON; labels copied to each of the 3,600 samples) |
//!
//! `cargo bench -p cased-benches --bench sources`
//!
//! The bench writes the page to `$TMPDIR/cased-bench-sources/page.txt` with the expected
//! series count and value sum (`answer.json`), so that `benches/peers_sources.py` parses the
//! same bytes with `prometheus_client` and checks the same answer before timing.

use std::hint::black_box;
use std::time::{Duration, Instant};

use cased_benches::thread_cpu_time;
use cased_core::metrics::{Exposition, PollContext, SourceConfig};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;

/// The 1,000-series page (deterministic).
fn page() -> String {
    let mut out = String::new();
    let mut i: u64 = 0;
    for f in 0..10 {
        out.push_str(&format!("# HELP app_requests_{f}_total Requests of part {f}.\n# TYPE app_requests_{f}_total counter\n"));
        for m in ["GET", "POST"] {
            for c in [200, 404, 500, 503] {
                for r in 0..5 {
                    i += 1;
                    out.push_str(&format!(
                        "app_requests_{f}_total{{method=\"{m}\",code=\"{c}\",route=\"/api/v{f}/r{r}\"}} {}\n",
                        (i * 7919) % 100_003
                    ));
                }
            }
        }
    }
    let les = [
        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf",
    ];
    for f in 0..4 {
        out.push_str(&format!(
            "# HELP app_latency_{f}_seconds Latency.\n# TYPE app_latency_{f}_seconds histogram\n"
        ));
        for r in 0..5 {
            let mut n = 0;
            for (k, le) in les.iter().enumerate() {
                i += 1;
                n += (i * 31 + k as u64 * 17) % 100;
                out.push_str(&format!(
                    "app_latency_{f}_seconds_bucket{{route=\"/api/r{r}\",le=\"{le}\"}} {n}\n"
                ));
            }
            out.push_str(&format!("app_latency_{f}_seconds_sum{{route=\"/api/r{r}\"}} {n}.5\napp_latency_{f}_seconds_count{{route=\"/api/r{r}\"}} {n}\n"));
        }
    }
    for f in 0..12 {
        out.push_str(&format!(
            "# HELP app_gauge_{f} A gauge.\n# TYPE app_gauge_{f} gauge\n"
        ));
        for j in 0..30 {
            i += 1;
            out.push_str(&format!(
                "app_gauge_{f}{{instance=\"host-{j}\",path=\"C:\\\\data\\\\{j}\"}} {}.25\n",
                (i * 104_729) % 1000
            ));
        }
    }
    out
}

/// A range-query answer: 10 series × 360 points.
fn range_answer() -> String {
    let result: Vec<_> = (0..10)
        .map(|s| {
            let values: Vec<_> = (0..360).map(|p| json!([1_700_000_000 + p * 10, format!("{}.{}", (s * 7 + p) % 500, p % 10)])).collect();
            json!({"metric": {"__name__": "x", "instance": format!("web-{s}"), "job": "web"}, "values": values})
        })
        .collect();
    json!({"status": "success", "data": {"resultType": "matrix", "result": result}}).to_string()
}

/// Serves `/metrics` and `/api/v1/query_range` from its own thread; returns the base URL.
fn serve(page: String, answer: String) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            tx.send(listener.local_addr().expect("addr"))
                .expect("report");
            let app = axum::Router::new()
                .route(
                    "/metrics",
                    axum::routing::get(move || std::future::ready(page.clone())),
                )
                .route(
                    "/api/v1/query_range",
                    axum::routing::get(move || std::future::ready(answer.clone())),
                );
            axum::serve(listener, app).await.expect("serve");
        });
    });
    format!("http://{}", rx.recv().expect("address"))
}

fn parse_sum(page: &str) -> (usize, f64) {
    let e = Exposition::parse(page).expect("parses");
    (e.len(), e.series().map(|s| s.value()).sum())
}

fn sources(c: &mut Criterion) {
    let page = page();
    let (n, sum) = parse_sum(&page);
    assert_eq!(n, 1000);
    let dir = std::env::temp_dir().join("cased-bench-sources");
    std::fs::create_dir_all(&dir).expect("bench dir");
    std::fs::write(dir.join("page.txt"), &page).expect("write page");
    std::fs::write(
        dir.join("answer.json"),
        json!({"series": n, "sum": sum}).to_string(),
    )
    .expect("write answer");
    let answer = range_answer();
    println!(
        "page: {} bytes, {n} series, value sum {sum}; range answer {} bytes; written to {}",
        page.len(),
        answer.len(),
        dir.display()
    );

    let mut g = c.benchmark_group("sources");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_exposition_1000", |b| {
        b.iter(|| black_box(parse_sum(black_box(&page))))
    });
    g.finish();
    let mut g = c.benchmark_group("sources_thread_cpu");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_exposition_1000", |b| {
        b.iter_custom(|iters| {
            let start = thread_cpu_time();
            for _ in 0..iters {
                black_box(parse_sum(black_box(&page)));
            }
            thread_cpu_time() - start
        });
    });
    g.finish();

    let base = serve(page.clone(), answer);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let scrape = SourceConfig::from_value(json!({
        "type": "scrape", "name": "app", "url": format!("{base}/metrics"),
        "metrics": {
            "rps": {"counter": "app_requests_3_total", "match": {"method": "GET"}},
            "p95_ms": {"histogram": "app_latency_2_seconds", "quantile": 0.95, "scale": 1000},
            "disk": {"gauge": "app_gauge_7", "match": {"instance": {"regex": "host-1.*"}}}
        },
        "counts": {"http": {"errors": {"counter": "app_requests_5_total", "match": {"code": {"regex": "5.."}}}, "requests": {"counter": "app_requests_5_total"}}}
    }))
    .expect("config")
    .plan()
    .expect("plan");
    let prom =
        SourceConfig::from_value(json!({"type": "prometheus", "url": base, "queries": {"x": "x"}}))
            .expect("config")
            .plan()
            .expect("plan");
    let mut scrape = scrape.start();
    let mut prom = prom.start();
    let mut now = 1_700_000_000.0;
    // Two polls so that counters have a previous value; the answers are checked.
    for _ in 0..2 {
        now += 1.0;
        let got = rt
            .block_on(scrape.poll(&PollContext {
                now,
                ..PollContext::default()
            }))
            .expect("poll");
        assert_eq!(
            got.samples
                .iter()
                .filter(|s| s.metric == "app.disk")
                .count(),
            11
        );
    }
    let back = rt
        .block_on(prom.lookback(
            &PollContext {
                now,
                ..PollContext::default()
            },
            Duration::from_secs(3600),
        ))
        .expect("lookback")
        .expect("some");
    assert_eq!(back.samples.len(), 3600);

    let mut g = c.benchmark_group("sources");
    g.throughput(Throughput::Elements(1));
    g.bench_function("scrape_poll_1000", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                now += 1.0;
                let got = rt
                    .block_on(scrape.poll(&PollContext {
                        now,
                        ..PollContext::default()
                    }))
                    .expect("poll");
                assert_eq!(got.counts.len(), 1);
            }
            start.elapsed()
        });
    });
    g.bench_function("prometheus_lookback_10x360", |b| {
        b.iter(|| {
            let got = rt
                .block_on(prom.lookback(
                    &PollContext {
                        now,
                        ..PollContext::default()
                    },
                    Duration::from_secs(3600),
                ))
                .expect("lookback");
            assert_eq!(got.map(|p| p.samples.len()), Some(3600));
        });
    });
    g.finish();
}

criterion_group!(benches, sources);
criterion_main!(benches);
