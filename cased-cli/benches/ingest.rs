//! Ingest of `cased serve`: deployment events accepted per second, and the answer time's
//! percentiles, with 64 concurrent clients on loopback (not criterion: a load run, as the
//! issue's target is a throughput at a concurrency).
//!
//! ```sh
//! cargo bench -p cased-cli --bench ingest            # 20,000 events per row
//! CASED_BENCH_EVENTS=5000 cargo bench -p cased-cli --bench ingest
//! ```
//!
//! Each row starts the real `cased serve` binary (`--no-auth`, a fresh store in a temporary
//! directory, SQLite WAL as by default) on a free loopback port and posts distinct `running`
//! events (one repository, one commit each, seeded) from 64 tasks over keep-alive connections,
//! each waiting for its answer before the next. Every answer must be `201`. Rows:
//!
//! - `stored`: no `cased.toml`: validated and stored (not monitored);
//! - `monitored (tcp)` / `monitored (http)`: a `[[services]]` entry matches every event:
//!   validated, stored and a session started, whose first tick checks a loopback target at once
//!   (a TCP connect to a listener that accepts and closes, or an HTTP GET answered 200), then
//!   every hour: the run measures the start;
//! - `fastapi peer` (when `CASED_BENCH_PEER_PYTHON` names a Python with
//!   `benches/requirements-ingest.txt` installed): `benches/peer_ingest.py`, a minimal FastAPI +
//!   SQLite receiver doing the same validation, tables and identity matching, under uvicorn with
//!   `CASED_BENCH_PEER_WORKERS` workers (default 2, one per core here).
//!
//! ```sh
//! python3 -m venv /tmp/peer && /tmp/peer/bin/pip install -r cased-cli/benches/requirements-ingest.txt
//! CASED_BENCH_PEER_PYTHON=/tmp/peer/bin/python cargo bench -p cased-cli --bench ingest
//! ```

#[path = "common/serve.rs"]
mod serve_common;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serve_common::{Server, spawn, start};

const CLIENTS: usize = 64;

/// The FastAPI peer under `python`, its database in `dir`.
fn start_peer(python: &str, dir: &std::path::Path) -> Server {
    let workers = std::env::var("CASED_BENCH_PEER_WORKERS").unwrap_or_else(|_| "2".into());
    let mut cmd = Command::new(python);
    cmd.current_dir(dir)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/benches/peer_ingest.py"
        ))
        .args(["--port", "0", "--workers", &workers, "--db"])
        .arg(dir.join("peer.db"));
    spawn(cmd)
}

fn event(i: usize) -> String {
    // Seeded commits: event i deploys commit i of acme/shop.
    format!(
        r#"{{"deployment_request":"Deploy {i}","repository_full_name":"acme/shop","status":"running","commit_sha":"{i:012x}","event_metadata":{{"environment":"production"}}}}"#
    )
}

async fn post(http: &reqwest::Client, url: &str, i: usize) {
    let r = http
        .post(url)
        .header("content-type", "application/json")
        .body(event(i))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let _ = r.bytes().await.unwrap();
    assert_eq!(status, 201, "event {i}");
}

async fn run(base: &str, events: usize) -> (f64, Vec<Duration>) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()
        .unwrap();
    let url = Arc::new(format!("{base}/api/v1/deployments/"));
    // Warm-up: connections open (not counted; commits of their own).
    let warm: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (http, url) = (http.clone(), Arc::clone(&url));
            tokio::spawn(async move { post(&http, &url, events + c).await })
        })
        .collect();
    for w in warm {
        w.await.unwrap();
    }
    let started = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (http, url) = (http.clone(), Arc::clone(&url));
            tokio::spawn(async move {
                let mut times = Vec::new();
                for i in (c..events).step_by(CLIENTS) {
                    let t = Instant::now();
                    post(&http, &url, i).await;
                    times.push(t.elapsed());
                }
                times
            })
        })
        .collect();
    let mut times = Vec::with_capacity(events);
    for t in tasks {
        times.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    times.sort_unstable();
    (events as f64 / elapsed, times)
}

fn pct(times: &[Duration], p: f64) -> f64 {
    let i = ((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1;
    times[i].as_secs_f64() * 1000.0
}

fn main() {
    // `cargo bench` passes `--bench`; filter arguments are ignored.
    let events: usize = std::env::var("CASED_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // The monitored rows' check targets: a TCP listener that accepts and closes, and an HTTP
    // server answering 200 (a check's connection is kept alive and reused across sessions).
    let (port, http_url) = rt.block_on(async {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = tcp.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((conn, _)) = tcp.accept().await {
                drop(conn);
            }
        });
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", http.local_addr().unwrap());
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
        tokio::spawn(async move { axum::serve(http, app).await });
        (port, url)
    });
    println!("| row | events | clients | events/s | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|---|");
    let peer = std::env::var("CASED_BENCH_PEER_PYTHON").ok();
    let rows: &[&str] = if peer.is_some() {
        &[
            "stored",
            "monitored (tcp)",
            "monitored (http)",
            "fastapi peer",
        ]
    } else {
        &["stored", "monitored (tcp)", "monitored (http)"]
    };
    for &row in rows {
        let dir = std::env::temp_dir().join(format!(
            "cased-bench-ingest-{}-{}",
            std::process::id(),
            row.replace([' ', '(', ')'], "")
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let check = match row {
            "monitored (tcp)" => {
                format!("name = \"tcp\"\ntype = \"tcp\"\nhost = \"127.0.0.1\"\nport = {port}\n")
            }
            "monitored (http)" => {
                format!("name = \"web\"\ntype = \"http\"\nurl = \"{http_url}\"\n")
            }
            _ => String::new(),
        };
        let config = (!check.is_empty()).then(|| {
            let path = dir.join("cased.toml");
            std::fs::write(
                &path,
                format!(
                    "[[services]]\nrepository = \"acme/*\"\n[services.schedule]\nintervals = [\"1h\"]\n\
                     cooldown = \"1h\"\nmax_duration = \"2h\"\n[[services.checks]]\n{check}"
                ),
            )
            .unwrap();
            path
        });
        let server = match (row, &peer) {
            ("fastapi peer", Some(python)) => start_peer(python, &dir),
            _ => start(&dir, config.as_deref()),
        };
        let (rate, times) = rt.block_on(run(&server.base, events));
        println!(
            "| {row} | {events} | {CLIENTS} | {rate:.0} | {:.2} | {:.2} | {:.2} |",
            pct(&times, 0.50),
            pct(&times, 0.99),
            pct(&times, 1.0)
        );
        drop(server);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
