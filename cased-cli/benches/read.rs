//! The read side of `cased serve` with 100,000 deployments stored: answer times of what
//! Mission Control's pages fetch, and the event stream's fan-out to 1,000 dashboards (not
//! criterion: answer-time percentiles over a seeded store, and a fan-out run).
//!
//! ```sh
//! cargo bench -p cased-cli --bench read
//! CASED_BENCH_DEPLOYMENTS=20000 CASED_BENCH_STREAMS=200 cargo bench -p cased-cli --bench read
//! ```
//!
//! It starts the real `cased serve` binary (`--no-auth`, a fresh SQLite store) and posts
//! 100,000 distinct events of `acme/shop` (production; not monitored) through the API, plus one
//! deployment of `acme/watched`, which a `[[services]]` entry monitors with a one-second
//! schedule until its verdict. Then each read is requested 300 times in a row over one
//! keep-alive connection (after 20 unmeasured); on loopback the answer time bounds the server
//! time from above. Rows: the live board's list (`?limit=100`, what `/` fetches), a page deep
//! in the history (cursor), a filtered list, the watched deployment (event, ticks, findings,
//! alerts), its report as JSON, its charts and its HTML report, and the trends of `acme/shop`
//! over 30 days (100,000 deployments in the window).
//!
//! Fan-out: 1,000 connections (`CASED_BENCH_STREAMS`) follow `/api/v1/events`; one event is
//! posted per second for 20 seconds; every stream must receive every event. The row gives the
//! delay from posting to each stream's receipt.

#[path = "common/serve.rs"]
mod serve_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serve_common::start;

const CLIENTS: usize = 64;
const REPEAT: usize = 300;
const WARM: usize = 20;
const FANOUT_EVENTS: usize = 20;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn event(repo: &str, request: &str, status: &str, sha: usize) -> String {
    format!(
        r#"{{"deployment_request":"{request}","repository_full_name":"{repo}","status":"{status}","commit_sha":"{sha:012x}","event_metadata":{{"environment":"production"}}}}"#
    )
}

async fn post(http: &reqwest::Client, url: &str, body: String) -> serde_json::Value {
    let r = http
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let answer: serde_json::Value = r.json().await.unwrap();
    assert!(status == 200 || status == 201, "{status}: {answer}");
    answer
}

/// Posts `n` events of acme/shop from [`CLIENTS`] tasks.
async fn seed(http: &reqwest::Client, base: &str, n: usize) {
    let url = Arc::new(format!("{base}/api/v1/deployments/"));
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (http, url) = (http.clone(), Arc::clone(&url));
            tokio::spawn(async move {
                for i in (c..n).step_by(CLIENTS) {
                    post(
                        &http,
                        &url,
                        event("acme/shop", &format!("Deploy {i}"), "success", i),
                    )
                    .await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

/// `REPEAT` answer times of `path` (after `WARM` unmeasured), sorted.
async fn times(http: &reqwest::Client, base: &str, path: &str) -> (Vec<Duration>, usize) {
    let mut out = Vec::with_capacity(REPEAT);
    let mut bytes = 0;
    for i in 0..WARM + REPEAT {
        let t = Instant::now();
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        let status = r.status();
        let body = r.bytes().await.unwrap();
        let took = t.elapsed();
        assert!(status.is_success(), "{path}: {status}");
        if i >= WARM {
            out.push(took);
            bytes = body.len();
        }
    }
    out.sort_unstable();
    (out, bytes)
}

fn pct(times: &[Duration], p: f64) -> f64 {
    let i = ((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1;
    times[i].as_secs_f64() * 1000.0
}

/// Follows the event stream on `streams` connections while one event a second is posted; the
/// delays from post to receipt over every stream, sorted.
async fn fanout(base: &str, streams: usize) -> Vec<Duration> {
    let sent: Arc<std::sync::Mutex<Vec<Option<Instant>>>> =
        Arc::new(std::sync::Mutex::new(vec![None; FANOUT_EVENTS]));
    let mut followers = Vec::with_capacity(streams);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(streams);
    for _ in 0..streams {
        let (base, sent, ready) = (base.to_owned(), Arc::clone(&sent), ready_tx.clone());
        followers.push(tokio::spawn(async move {
            // One connection per dashboard.
            let http = reqwest::Client::new();
            let mut r = http
                .get(format!("{base}/api/v1/events"))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success());
            ready.send(()).await.unwrap();
            let mut delays = Vec::with_capacity(FANOUT_EVENTS);
            let mut buf = String::new();
            while delays.len() < FANOUT_EVENTS {
                let chunk = r.chunk().await.unwrap().expect("the stream ended early");
                let at = Instant::now();
                buf.push_str(std::str::from_utf8(&chunk).unwrap());
                while let Some(end) = buf.find("\n\n") {
                    let message: String = buf.drain(..end + 2).collect();
                    if let Some(k) = message
                        .split("\"deployment_request\":\"fanout ")
                        .nth(1)
                        .and_then(|rest| rest.split('"').next())
                        .and_then(|k| k.parse::<usize>().ok())
                    {
                        let posted = sent.lock().unwrap()[k].expect("posted before received");
                        delays.push(at - posted);
                    }
                }
            }
            delays
        }));
    }
    drop(ready_tx);
    for _ in 0..streams {
        ready_rx.recv().await.expect("every stream connects");
    }
    let http = reqwest::Client::new();
    let url = format!("{base}/api/v1/deployments/");
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    for k in 0..FANOUT_EVENTS {
        tick.tick().await;
        sent.lock().unwrap()[k] = Some(Instant::now());
        post(
            &http,
            &url,
            event("acme/fanout", &format!("fanout {k}"), "pending", k),
        )
        .await;
    }
    let mut all = Vec::with_capacity(streams * FANOUT_EVENTS);
    for f in followers {
        all.extend(f.await.unwrap());
    }
    all.sort_unstable();
    all
}

fn main() {
    let deployments = env_usize("CASED_BENCH_DEPLOYMENTS", 100_000);
    let streams = env_usize("CASED_BENCH_STREAMS", 1_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = target.local_addr().unwrap().port();
    let dir = std::env::temp_dir().join(format!("cased-bench-read-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("cased.toml");
    std::fs::write(
        &config,
        format!(
            "[[services]]\nrepository = \"acme/watched\"\n[services.schedule]\nintervals = [\"1s\"]\n\
             cooldown = \"3s\"\nmax_duration = \"30s\"\n[[services.checks]]\nname = \"tcp\"\n\
             type = \"tcp\"\nhost = \"127.0.0.1\"\nport = {port}\n"
        ),
    )
    .unwrap();
    let server = start(&dir, Some(&config));
    let base = server.base.clone();
    rt.block_on(async {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(CLIENTS)
            .build()
            .unwrap();
        let t = Instant::now();
        seed(&http, &base, deployments).await;
        eprintln!(
            "seeded {deployments} deployments in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let url = format!("{base}/api/v1/deployments/");
        let watched = post(&http, &url, event("acme/watched", "Watched", "running", 1)).await;
        let id = watched["id"].as_str().unwrap().to_owned();
        post(&http, &url, event("acme/watched", "Watched", "success", 1)).await;
        let verdict: serde_json::Value = http
            .get(format!("{url}{id}/verdict?wait=60s"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(verdict["final"], true, "{verdict}");
        // A cursor deep in the history: the 500th page of 100.
        let mut cursor = String::new();
        let deep_page = deployments / 200;
        for _ in 0..deep_page {
            let page: serde_json::Value = http
                .get(format!("{url}?limit=100{cursor}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            match page["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => break,
            }
        }
        let rows = [
            (
                "board: `GET /api/v1/deployments/?limit=100`",
                "/api/v1/deployments/?limit=100".to_owned(),
            ),
            (
                "a page half-way down (cursor)",
                format!("/api/v1/deployments/?limit=100{cursor}"),
            ),
            (
                "filtered: `?repository=acme/watched`",
                "/api/v1/deployments/?repository=acme/watched&limit=100".to_owned(),
            ),
            (
                "deployment: `GET /api/v1/deployments/{id}`",
                format!("/api/v1/deployments/{id}"),
            ),
            (
                "report JSON",
                format!("/api/v1/deployments/{id}/report?format=json"),
            ),
            (
                "report charts",
                format!("/api/v1/deployments/{id}/report?format=charts"),
            ),
            (
                "report HTML",
                format!("/api/v1/deployments/{id}/report?format=html"),
            ),
            (
                "trends: acme/shop, 30 days",
                "/api/v1/trends?repository=acme/shop&environment=production&days=30".to_owned(),
            ),
        ];
        println!("{deployments} deployments stored; {REPEAT} requests per row, one after another");
        println!();
        println!("| read | bytes | p50 ms | p99 ms | max ms |");
        println!("|---|---|---|---|---|");
        let one = reqwest::Client::new();
        for (name, path) in rows {
            let (t, bytes) = times(&one, &base, &path).await;
            println!(
                "| {name} | {bytes} | {:.2} | {:.2} | {:.2} |",
                pct(&t, 0.50),
                pct(&t, 0.99),
                pct(&t, 1.0)
            );
        }
        let delays = fanout(&base, streams).await;
        println!();
        println!("| event stream | streams | events | received | p50 ms | p99 ms | max ms |");
        println!("|---|---|---|---|---|---|---|");
        println!(
            "| one event a second | {streams} | {FANOUT_EVENTS} | {} | {:.2} | {:.2} | {:.2} |",
            delays.len(),
            pct(&delays, 0.50),
            pct(&delays, 0.99),
            pct(&delays, 1.0)
        );
        assert_eq!(
            delays.len(),
            streams * FANOUT_EVENTS,
            "every stream gets every event"
        );
    });
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
