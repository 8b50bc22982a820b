//! `cased demo`: cased catching a bad deploy of a local service, in about ten seconds and with
//! nothing to configure.
//!
//! 1. A demo service starts on 127.0.0.1 (`GET /health`, with a latency and an error rate the
//!    demo controls) and a traffic generator calls it ten times a second.
//! 2. Baseline: healthy traffic against v1 is recorded.
//! 3. Deploy: v2 rolls out. Unless `--healthy`, it brings a latency step and 5xx errors whose
//!    rate rises with time. A session monitors it on a compressed progressive schedule
//!    (250 ms, 500 ms, then 1 s; a 4 s cool-down) with an HTTP check and a `baseline` detector
//!    on the traffic's latency (its baseline: the samples of step 2), shows the live progress,
//!    sends alerts to an in-app channel printed on the console and to a `webhook` channel whose
//!    receiver runs in the demo service (`POST /alerts`), and, once the verdict is unhealthy,
//!    fires the rollback hook, which puts v1 back.
//! 4. The HTML report (check latency, traffic latency and errors before and after the deploy,
//!    with the baseline band) is written under `.cased/` (or `--out`) and the session is kept
//!    in `.cased/history.db`, so `cased history` and `cased report` work on it afterwards.
//!
//! The exit code follows the verdict table: 1 for the regression (unhealthy), 0 with `--healthy`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use cased_core::alert::InAppEvent;
use cased_core::report::{self, Baseline, SeriesPoint, check_latency_metric};
use cased_core::{
    DeploymentEvent, DeploymentStatus, Monitor, MonitorConfig, RollbackHook, Session,
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::monitor::{context_of, open_history, watch, write};
use crate::progress::Style;
use crate::{Failure, verdict_exit_code};

/// Flags of `cased demo`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 1 when the regression is caught (unhealthy, the default), \
0 with --healthy; 2 inconclusive, 3 usage error."
)]
pub(crate) struct DemoArgs {
    /// Deploy a good version instead: the demo ends healthy.
    #[arg(long)]
    healthy: bool,

    /// Where the history and the HTML report go.
    #[arg(long, value_name = "DIR", default_value = ".cased")]
    out: PathBuf,

    /// Start `cased serve` instead, post a bad and a good deployment to it, and leave Mission
    /// Control running with both (until Ctrl-C).
    #[arg(long)]
    serve: bool,

    /// With --serve: the address of the server.
    #[arg(
        long,
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:8080",
        requires = "serve"
    )]
    listen: std::net::SocketAddr,

    /// Shorter phases (for tests).
    #[arg(long, hide = true, env = "CASED_DEMO_FAST", value_parser = clap::builder::FalseyValueParser::new())]
    fast: bool,
}

const SERVICE: &str = "demo-service";
const TRAFFIC_LATENCY: &str = "traffic.latency_ms";
const TRAFFIC_ERRORS: &str = "traffic.errors";
const V1_LATENCY_MS: u64 = 12;
const V2_BAD_LATENCY_MS: u64 = 110;

/// The demo service's knobs.
#[derive(Debug)]
struct Service {
    latency_ms: AtomicU64,
    /// Whether v2's errors are on; from 0.5 s after the deploy their rate rises by 50 points a
    /// second (every request fails after 2.5 s, so the regression is always caught in time).
    failing: AtomicBool,
    since: Mutex<Option<Instant>>,
}

impl Service {
    fn error_rate(&self) -> f64 {
        if !self.failing.load(Ordering::Relaxed) {
            return 0.0;
        }
        let since = *self.since.lock().expect("since lock");
        since.map_or(0.0, |t| {
            (0.5 * (t.elapsed().as_secs_f64() - 0.5)).clamp(0.0, 1.0)
        })
    }

    fn set(&self, latency_ms: u64, failing: bool) {
        self.latency_ms.store(latency_ms, Ordering::Relaxed);
        self.failing.store(failing, Ordering::Relaxed);
        *self.since.lock().expect("since lock") = failing.then(Instant::now);
    }
}

async fn health(State(svc): State<Arc<Service>>) -> (StatusCode, String) {
    let base = svc.latency_ms.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(base + fastrand::u64(0..=base / 5))).await;
    if fastrand::f64() < svc.error_rate() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "{\"status\":\"unavailable\"}".to_owned(),
        )
    } else {
        (StatusCode::OK, "{\"status\":\"ok\"}".to_owned())
    }
}

/// The local webhook receiver: prints what the `webhook` alert channel posts.
async fn receive_alert(body: String) -> StatusCode {
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let titles: Vec<&str> = v["alerts"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["title"].as_str()).collect())
        .unwrap_or_default();
    println!(
        "{}webhook receiver: POST /alerts ({} bytes): {} {} {}",
        clear_line(),
        body.len(),
        v["status"].as_str().unwrap_or("?"),
        v["severity"].as_str().unwrap_or("?"),
        titles.join("; ")
    );
    StatusCode::NO_CONTENT
}

/// Clears the live status line on a terminal, so a message does not land in its middle.
fn clear_line() -> &'static str {
    if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        "\r\x1b[2K"
    } else {
        ""
    }
}

/// One traffic sample.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    latency_ms: f64,
    error: bool,
}

/// A GET of `/health` over a fresh connection: (latency, whether it was a 5xx or failed).
async fn get_health(port: u16) -> (f64, bool) {
    let started = Instant::now();
    let result = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        s.write_all(b"GET /health HTTP/1.1\r\nhost: demo\r\nconnection: close\r\n\r\n")
            .await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    let ok = match tokio::time::timeout(Duration::from_secs(2), result).await {
        Ok(Ok(buf)) => buf.starts_with(b"HTTP/1.1 2"),
        _ => false,
    };
    (started.elapsed().as_secs_f64() * 1000.0, !ok)
}

/// Runs `cased demo`.
pub(crate) async fn run(args: DemoArgs) -> Result<(), Failure> {
    if args.serve {
        return crate::demo_serve::run(args.listen, args.out).await;
    }
    let (baseline_for, rollout_for, cooldown) = if args.fast {
        (
            Duration::from_millis(1200),
            Duration::from_millis(300),
            if args.healthy { "2s" } else { "4s" },
        )
    } else {
        (Duration::from_secs(2), Duration::from_secs(1), "4s")
    };
    let svc = Arc::new(Service {
        latency_ms: AtomicU64::new(V1_LATENCY_MS),
        failing: AtomicBool::new(false),
        since: Mutex::new(None),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| Failure::Other(format!("cannot start the demo service: {e}")))?;
    let port = listener.local_addr().map_err(Failure::Io)?.port();
    let app = axum::Router::new()
        .route("/health", get(health))
        .route("/alerts", axum::routing::post(receive_alert))
        .with_state(Arc::clone(&svc));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let url = format!("http://127.0.0.1:{port}/health");
    println!("cased demo: {SERVICE} v1 listening on {url}");

    // Traffic: ten requests a second, kept for the report and pushed into the session.
    let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
    let live: Arc<Mutex<Option<Session>>> = Arc::default();
    let traffic = {
        let (samples, live) = (Arc::clone(&samples), Arc::clone(&live));
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(100));
            loop {
                every.tick().await;
                let at = Instant::now();
                let (latency_ms, error) = get_health(port).await;
                samples.lock().expect("samples lock").push(Sample {
                    at,
                    latency_ms,
                    error,
                });
                if let Some(s) = live.lock().expect("live lock").as_ref() {
                    let _ = s.push(TRAFFIC_LATENCY, latency_ms);
                    let _ = s.push(TRAFFIC_ERRORS, if error { 1.0 } else { 0.0 });
                }
            }
        })
    };

    println!(
        "\n[1/3] baseline: healthy traffic against v1 for {}",
        crate::progress::short(baseline_for)
    );
    tokio::time::sleep(baseline_for).await;
    let base: Vec<Sample> = samples.lock().expect("samples lock").clone();
    let band = band(&base);
    println!(
        "      {} requests, mean latency {:.1} ms, {} errors; normal band {:.1}..{:.1} ms",
        base.len(),
        mean(&base),
        base.iter().filter(|s| s.error).count(),
        band.low,
        band.high
    );

    let config = MonitorConfig::from_value(json!({
        "schedule": {"intervals": ["250ms", "500ms", "1s"], "cooldown": cooldown, "max_duration": "15s"},
        "checks": [{"name": SERVICE, "type": "http", "url": url, "timeout": "200ms",
                    "expect": {"status": ["2xx"], "warn_latency": "60ms"}}],
        "verdict": {"failure_limit": 1, "consecutive_error_limit": 4, "min_samples": 3, "no_data": "inconclusive"},
        // The traffic's latency against the baseline phase: a shift of the median by more than
        // 100 % and 20 ms is a finding.
        "detectors": [{"type": "baseline", "metric": TRAFFIC_LATENCY, "allowed_change": 1.0, "min_shift": 20.0,
                       "min_samples": 8}],
        // Pushed by the traffic below (a detector's metric must have a producer).
        "pushed": [TRAFFIC_LATENCY],
        "alerts": {
            "channels": [{"name": "console", "type": "inapp"},
                         {"name": "receiver", "type": "webhook", "url": format!("http://127.0.0.1:{port}/alerts"),
                          "secret": "demo-signing-secret"}],
            "routes": [{"name": "demo", "channels": ["console", "receiver"], "min_severity": "warning",
                        "group_wait": "0s", "group_interval": "200ms"}],
            "delivery": {"timeout": "2s", "max_retries": 1}
        }
    }))?;
    let history_path = args.out.join("history.db");
    let history = open_history(&history_path)?;
    let rollback_svc = Arc::clone(&svc);
    let hook = RollbackHook::new(move |ctx: cased_core::RollbackContext| {
        let svc = Arc::clone(&rollback_svc);
        async move {
            println!(
                "{}rollback: {} ({})",
                clear_line(),
                ctx.event.deployment_request(),
                ctx.reason
            );
            svc.set(V1_LATENCY_MS, false);
            println!("rollback: {SERVICE} is back on v1");
            Ok(())
        }
    })
    .timeout(Duration::from_secs(5));
    let baseline_latencies: Vec<f64> = base.iter().map(|s| s.latency_ms).collect();
    let monitor = Monitor::builder(config)
        .history(history.clone())
        .on_rollback(hook)
        .baseline(TRAFFIC_LATENCY, baseline_latencies)
        .build()?;
    // The in-app channel, printed on the console.
    let mut console = monitor.alerts("console")?;
    let console_task = tokio::spawn(async move {
        // A notification repeats its group's alerts: print each alert once per state.
        let mut seen = std::collections::HashSet::new();
        while let Some(event) = console.next().await {
            if let InAppEvent::Notification(n) = event {
                for a in n
                    .alerts
                    .iter()
                    .filter(|a| seen.insert((a.key.clone(), format!("{:?}", a.state))))
                {
                    println!(
                        "{}alert [{}] {:?}: {}: {}",
                        clear_line(),
                        a.severity,
                        a.state,
                        a.title,
                        a.summary
                    );
                }
            }
        }
    });

    let version = if args.healthy {
        "v2 (a good release)"
    } else {
        "v2 (with a regression)"
    };
    println!("\n[2/3] deploy: {SERVICE} {version} rolls out; monitoring on a compressed schedule");
    if !args.healthy {
        svc.set(V2_BAD_LATENCY_MS, true);
    }
    let event = DeploymentEvent::builder(format!("Deploy {SERVICE} v2"))
        .repository("cased/demo-service")
        .environment("demo")
        .commit_sha(format!("{:012x}", fastrand::u64(..) >> 16))
        .git_ref("refs/heads/main")
        .status(DeploymentStatus::Running)
        .build()?;
    let session = monitor.start(event)?;
    let session_started = Instant::now();
    *live.lock().expect("live lock") = Some(session.clone());
    let completer = {
        let session = session.clone();
        tokio::spawn(async move {
            tokio::time::sleep(rollout_for).await;
            session.complete();
        })
    };
    println!(
        "      alerts go to the console (in-app channel) and to a local webhook receiver (POST /alerts)"
    );
    let report = watch(&session, Style::detect(), |prev, u| {
        println!("verdict: {prev} -> {}: {}", u.verdict, u.reason);
    })
    .await;
    completer.abort();
    // Let queued alert deliveries (the webhook) finish before the receiver stops.
    if let Some(manager) = monitor.alert_manager() {
        manager.shutdown(Duration::from_secs(3)).await;
    }
    console_task.abort();
    traffic.abort();
    server.abort();

    println!("\n[3/3] report");
    let mut context = context_of(history.as_ref(), &report).await;
    let all: Vec<Sample> = samples.lock().expect("samples lock").clone();
    let rel = |s: &Sample| {
        if s.at >= session_started {
            (s.at - session_started).as_secs_f64() * 1000.0
        } else {
            -((session_started - s.at).as_secs_f64() * 1000.0)
        }
    };
    context.series.insert(
        TRAFFIC_LATENCY.to_owned(),
        all.iter()
            .map(|s| SeriesPoint {
                elapsed_ms: rel(s),
                value: s.latency_ms,
            })
            .collect(),
    );
    context.series.insert(
        TRAFFIC_ERRORS.to_owned(),
        all.iter()
            .map(|s| SeriesPoint {
                elapsed_ms: rel(s),
                value: if s.error { 1.0 } else { 0.0 },
            })
            .collect(),
    );
    context
        .baselines
        .insert(TRAFFIC_LATENCY.to_owned(), band.clone());
    context
        .baselines
        .insert(check_latency_metric(SERVICE), band);
    let html = report::to_html(&report, &context);
    let html_path = args
        .out
        .join(format!("demo-report-{}.html", report.session_id));
    write(&html_path, &html)?;
    println!(
        "verdict: {} after {}: {}",
        report.verdict,
        crate::progress::short(report.duration),
        report.reason
    );
    if report.rollback.is_some() {
        println!("the rollback hook fired; the service is back on v1");
    }
    println!("HTML report: {}", html_path.display());
    println!(
        "history: {} (try `cased history --history {}`)",
        history_path.display(),
        history_path.display()
    );
    let code = verdict_exit_code(report.verdict);
    println!("exit code {code} ({})", report.verdict);
    match code {
        0 => Ok(()),
        code => Err(Failure::Exit(code)),
    }
}

fn mean(samples: &[Sample]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.iter().map(|s| s.latency_ms).sum::<f64>() / samples.len() as f64
}

/// Mean ± 3 standard deviations of the baseline latencies (at least ±2 ms).
fn band(samples: &[Sample]) -> Baseline {
    let m = mean(samples);
    let var = if samples.len() < 2 {
        0.0
    } else {
        samples
            .iter()
            .map(|s| (s.latency_ms - m).powi(2))
            .sum::<f64>()
            / (samples.len() - 1) as f64
    };
    let half = (3.0 * var.sqrt()).max(2.0);
    Baseline {
        low: (m - half).max(0.0),
        high: m + half,
        label: format!("baseline of v1 ({} requests, mean ± 3σ)", samples.len()),
    }
}
