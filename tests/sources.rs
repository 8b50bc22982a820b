//! The `scrape` and `prometheus` sources against the same loopback exporter, whose canary track
//! gets worse at a moment the test chooses: more errors (1% → 20%) and slower requests (p95
//! 75 ms → 486 ms). The stable track stays as it was.
//!
//! The exporter's counters are functions of the time since it started (100 requests/s), so
//! any reader at any moment sees consistent values. The `scrape` source reads the two tracks'
//! pages directly; a real Prometheus (binary from `CASED_TEST_PROMETHEUS_BIN`, else
//! `prometheus` on the PATH; `.ci/prometheus.sh` installs it) scrapes the same pages every
//! second and the `prometheus` source's range queries see the same change, on both tracks.
//! Waiting is on Prometheus' scrapes (a signal from the exporter), never on a sleep.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::routing::get;
use cased_core::metrics::{CountsSample, PollContext, Polled, Sample, SourceConfig, unix_now};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Latency bucket bounds (seconds) and the cumulative share of requests under each, before and
/// after the change: p95 = 0.05 + 0.05 · 0.05/0.1 = 75 ms before, 0.25 + 0.25 · 0.85/0.9 ≈ 486 ms
/// after.
const LE: [f64; 5] = [0.05, 0.1, 0.25, 0.5, 1.0];
const BEFORE: [f64; 5] = [0.9, 1.0, 1.0, 1.0, 1.0];
const AFTER: [f64; 5] = [0.1, 0.1, 0.1, 1.0, 1.0];

#[derive(Clone)]
struct Exporter {
    started: Instant,
    change: Arc<Mutex<Option<Instant>>>,
    scraped: mpsc::UnboundedSender<()>,
}

impl Exporter {
    fn page(&self, track: &str) -> String {
        let now = Instant::now();
        let requests = |t: Duration| (t.as_millis() / 10) as u64; // 100 per second
        let total = requests(now - self.started);
        let change = if track == "canary" {
            *self.change.lock().unwrap()
        } else {
            None
        };
        let before = change.map_or(total, |c| requests(c.min(now) - self.started));
        let after = total - before;
        let errors = before / 100 + after / 5;
        let mut out = format!(
            "# HELP cased_demo_requests_total Requests served.\n# TYPE cased_demo_requests_total counter\n\
             cased_demo_requests_total{{repository=\"acme/web\",code=\"200\"}} {}\n\
             cased_demo_requests_total{{repository=\"acme/web\",code=\"500\"}} {errors}\n\
             # TYPE cased_demo_latency_seconds histogram\n",
            total - errors
        );
        for (i, le) in LE.iter().enumerate() {
            let n = (before as f64 * BEFORE[i]).floor() + (after as f64 * AFTER[i]).floor();
            out.push_str(&format!(
                "cased_demo_latency_seconds_bucket{{repository=\"acme/web\",le=\"{le}\"}} {n}\n"
            ));
        }
        out.push_str(&format!(
            "cased_demo_latency_seconds_bucket{{repository=\"acme/web\",le=\"+Inf\"}} {total}\n\
             cased_demo_latency_seconds_count{{repository=\"acme/web\"}} {total}\n\
             # TYPE cased_demo_in_flight gauge\ncased_demo_in_flight{{repository=\"acme/web\"}} 3\n"
        ));
        out
    }
}

async fn metrics(
    State(e): State<Exporter>,
    Path(track): Path<String>,
    headers: HeaderMap,
) -> ([(header::HeaderName, &'static str); 1], String) {
    let by_prometheus = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| ua.starts_with("Prometheus"));
    if by_prometheus && track == "canary" {
        let _ = e.scraped.send(());
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        e.page(&track),
    )
}

fn prometheus_bin() -> String {
    let bin =
        std::env::var("CASED_TEST_PROMETHEUS_BIN").unwrap_or_else(|_| "prometheus".to_owned());
    let found = std::process::Command::new(&bin)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "the sources test needs a `prometheus` binary ({bin:?} not found): run `bash .ci/prometheus.sh`"
    );
    bin
}

/// Waits for `n` more scrapes of the canary page by Prometheus (about one a second).
async fn scrapes(rx: &mut mpsc::UnboundedReceiver<()>, n: usize) {
    for i in 1..=n {
        tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .unwrap_or_else(|_| {
                panic!("Prometheus did not scrape the exporter ({i} of {n}) within 30 s")
            })
            .expect("exporter running");
    }
}

fn ctx() -> PollContext {
    PollContext {
        now: unix_now(),
        vars: [("repository".to_owned(), "acme/web".to_owned())].into(),
    }
}

fn value(samples: &[Sample], metric: &str) -> f64 {
    samples
        .iter()
        .rev()
        .find(|s| s.metric == metric)
        .unwrap_or_else(|| panic!("no {metric} in {samples:?}"))
        .value
}

fn rate(counts: &[CountsSample]) -> f64 {
    let c = counts.last().unwrap_or_else(|| panic!("no counts")).counts;
    assert!(c.requests > 0, "{counts:?}");
    c.errors as f64 / c.requests as f64
}

fn show(p: &Polled) -> String {
    format!(
        "canary {:?} {:?} / control {:?} {:?}",
        p.samples
            .iter()
            .map(|s| (s.metric.as_str(), s.value))
            .collect::<Vec<_>>(),
        p.counts.iter().map(|c| c.counts).collect::<Vec<_>>(),
        p.control_samples
            .iter()
            .map(|s| (s.metric.as_str(), s.value))
            .collect::<Vec<_>>(),
        p.control_counts
            .iter()
            .map(|c| c.counts)
            .collect::<Vec<_>>()
    )
}

#[tokio::test]
async fn scrape_and_prometheus_sources_see_the_canary_get_worse() {
    let bin = prometheus_bin();
    let (tx, mut scraped) = mpsc::unbounded_channel();
    let exporter = Exporter {
        started: Instant::now(),
        change: Arc::default(),
        scraped: tx,
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/{track}/metrics", get(metrics))
        .with_state(exporter.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let web = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("cased-sources-{}-{web}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("prometheus.yml");
    let job = |track: &str| {
        format!(
            "  - job_name: {track}\n    metrics_path: /{track}/metrics\n    \
             static_configs: [{{targets: ['{target}'], labels: {{track: {track}}}}}]\n"
        )
    };
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nscrape_configs:\n{}{}",
            job("canary"),
            job("stable")
        ),
    )
    .unwrap();
    let mut server = tokio::process::Command::new(bin)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{web}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("prometheus starts");

    let scrape = SourceConfig::from_value(json!({
        "type": "scrape", "name": "app",
        "url": format!("http://{target}/canary/metrics"), "control_url": format!("http://{target}/stable/metrics"),
        "metrics": {
            "in_flight": {"gauge": "cased_demo_in_flight"},
            "rps": {"counter": "cased_demo_requests", "match": {"repository": "acme/web"}},
            "p95_ms": {"histogram": "cased_demo_latency_seconds", "quantile": 0.95, "scale": 1000}
        },
        "counts": {"http": {
            "errors": {"counter": "cased_demo_requests_total", "match": {"code": {"regex": "5.."}}},
            "requests": {"counter": "cased_demo_requests_total"}
        }}
    }))
    .unwrap()
    .plan()
    .unwrap();
    let by_track = r#"{repository="{{repository}}", track="{{track}}"}"#;
    let prom = SourceConfig::from_value(json!({
        "type": "prometheus", "name": "prom", "url": format!("http://127.0.0.1:{web}"), "step": "1s",
        "queries": {"p95_ms": format!("1000 * histogram_quantile(0.95, sum by (le) (rate(cased_demo_latency_seconds_bucket{by_track}[3s])))")},
        "counts": {"http": {
            "errors": r#"sum(increase(cased_demo_requests_total{code=~"5..", repository="{{repository}}", track="{{track}}"}[3s]))"#,
            "requests": format!("sum(increase(cased_demo_requests_total{by_track}[3s]))")
        }},
        "control": {"track": "stable"}
    }))
    .unwrap()
    .plan()
    .unwrap();
    let (mut scrape, mut prom) = (scrape.start(), prom.start());

    // Before: three scrapes' worth of traffic, read by both sources.
    let first = scrape.poll(&ctx()).await.unwrap();
    assert_eq!(
        value(&first.samples, "app.in_flight"),
        3.0,
        "gauges from the first poll"
    );
    assert!(first.counts.is_empty(), "counters need two scrapes");
    scrapes(&mut scraped, 4).await;
    let before = scrape.poll(&ctx()).await.unwrap();
    let prom_before = prom.poll(&ctx()).await.unwrap();
    assert!(
        rate(&before.counts) < 0.05 && rate(&before.control_counts) < 0.05,
        "{}",
        show(&before)
    );
    assert!(
        value(&before.samples, "app.p95_ms") < 100.0,
        "{}",
        show(&before)
    );
    let rps = value(&before.samples, "app.rps");
    assert!(
        (50.0..=200.0).contains(&rps),
        "about 100 requests/s, got {rps}"
    );
    assert!(
        rate(&prom_before.counts) < 0.05 && rate(&prom_before.control_counts) < 0.05,
        "{}",
        show(&prom_before)
    );
    assert!(
        value(&prom_before.samples, "prom.p95_ms") < 100.0,
        "{}",
        show(&prom_before)
    );

    // The canary gets worse now; the next scrape interval is entirely after the change.
    *exporter.change.lock().unwrap() = Some(Instant::now());
    scrape.poll(&ctx()).await.unwrap();
    scrapes(&mut scraped, 5).await;
    let after = scrape.poll(&ctx()).await.unwrap();
    let canary_rate = rate(&after.counts);
    assert!(
        (0.15..=0.25).contains(&canary_rate),
        "20% errors, got {canary_rate}: {}",
        show(&after)
    );
    assert!(rate(&after.control_counts) < 0.05, "{}", show(&after));
    let p95 = value(&after.samples, "app.p95_ms");
    assert!(
        (400.0..=500.0).contains(&p95),
        "p95 about 486 ms, got {p95}"
    );
    assert!(
        value(&after.control_samples, "app.p95_ms") < 100.0,
        "{}",
        show(&after)
    );

    let prom_after = prom.poll(&ctx()).await.unwrap();
    assert!(rate(&prom_after.counts) > 0.15, "{}", show(&prom_after));
    assert!(
        rate(&prom_after.control_counts) < 0.05,
        "{}",
        show(&prom_after)
    );
    assert!(
        value(&prom_after.samples, "prom.p95_ms") > 250.0,
        "{}",
        show(&prom_after)
    );
    assert!(
        value(&prom_after.control_samples, "prom.p95_ms") < 100.0,
        "{}",
        show(&prom_after)
    );
    // Every point since the previous poll, none twice, one per second.
    let last_before = prom_before
        .samples
        .iter()
        .map(|s| s.timestamp)
        .fold(f64::MIN, f64::max);
    let times: Vec<f64> = prom_after.samples.iter().map(|s| s.timestamp).collect();
    assert!(
        times.len() >= 5 && times.iter().all(|t| *t > last_before),
        "{last_before} then {times:?}"
    );
    assert!(times.windows(2).all(|w| w[1] - w[0] == 1.0), "{times:?}");

    // Looking back over the last minute spans the change.
    let back = prom
        .lookback(&ctx(), Duration::from_secs(60))
        .await
        .unwrap()
        .expect("prometheus looks back");
    let p95s: Vec<f64> = back.samples.iter().map(|s| s.value).collect();
    assert!(
        p95s.iter().any(|v| *v < 100.0) && p95s.iter().any(|v| *v > 250.0),
        "{p95s:?}"
    );
    assert_eq!(
        scrape
            .lookback(&ctx(), Duration::from_secs(60))
            .await
            .unwrap(),
        None
    );

    server.kill().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
