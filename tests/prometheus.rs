//! The Prometheus source against a real Prometheus server (the Debian `prometheus` package),
//! scraping an exporter this test serves on loopback.
//!
//! The test starts Prometheus itself (binary from `CASED_TEST_PROMETHEUS_BIN`, else
//! `prometheus` on the PATH; `make test` installs it through `.ci/prometheus.sh`). It waits
//! for the exporter to have been scraped twice — a signal from the exporter, not a sleep — so the
//! first scrape is committed before the queries run. A missing Prometheus fails the test.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use cased_core::ErrorKind;
use cased_core::metrics::PrometheusSource;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

fn prometheus_bin() -> String {
    let bin =
        std::env::var("CASED_TEST_PROMETHEUS_BIN").unwrap_or_else(|_| "prometheus".to_owned());
    let found = std::process::Command::new(&bin)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "the Prometheus test needs a `prometheus` binary ({bin:?} not found): run `bash .ci/prometheus.sh`"
    );
    bin
}

async fn exporter(scraped: mpsc::UnboundedSender<()>) -> u16 {
    async fn metrics(State(tx): State<mpsc::UnboundedSender<()>>) -> &'static str {
        let _ = tx.send(());
        "# TYPE cased_demo_requests_total counter\ncased_demo_requests_total{service=\"web\"} 42\n"
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new()
        .route("/metrics", get(metrics))
        .with_state(scraped);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

async fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn queries_a_real_prometheus() {
    let bin = prometheus_bin();
    let (tx, mut scraped) = mpsc::unbounded_channel();
    let target = exporter(tx).await;
    let web = free_port().await;
    let dir = std::env::temp_dir().join(format!("cased-prom-{}-{web}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             scrape_configs:\n  - job_name: cased\n    static_configs: [{{targets: ['127.0.0.1:{target}']}}]\n"
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
    for n in 1..=2 {
        tokio::time::timeout(Duration::from_secs(60), scraped.recv())
            .await
            .unwrap_or_else(|_| {
                panic!("Prometheus did not scrape the exporter ({n} of 2) within 60 s")
            });
    }

    let source = PrometheusSource::builder(format!("http://127.0.0.1:{web}"))
        .build()
        .unwrap();
    let samples = source
        .query("requests", "cased_demo_requests_total", None)
        .await
        .unwrap();
    assert_eq!(samples.len(), 1, "{samples:?}");
    assert_eq!(samples[0].metric, "requests");
    assert_eq!(samples[0].value, 42.0);

    let now = cased_core::metrics::unix_now();
    let range = source
        .query_range(
            "requests",
            "cased_demo_requests_total",
            now - 60.0,
            now,
            Duration::from_secs(1),
        )
        .await
        .unwrap();
    assert!(!range.is_empty());
    assert!(range.iter().all(|s| s.value == 42.0), "{range:?}");

    let none = source
        .query("missing", "cased_no_such_metric", None)
        .await
        .unwrap_err();
    assert_eq!(none.kind(), ErrorKind::NoData);
    let bad = source.query("bad", "sum(", None).await.unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::Query, "{bad}");

    server.kill().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
