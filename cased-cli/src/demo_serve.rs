//! `cased demo --serve`: Mission Control with something to show, with nothing to configure.
//!
//! 1. A demo service starts on 127.0.0.1 (`GET /health`: fast and 200 for a good version,
//!    slow and 500 for a bad one).
//! 2. `cased serve` starts in this process (`--no-auth`, loopback only; store `.cased/` or
//!    `--out`) with one service, `demo/shop` in production, checking that endpoint on a
//!    compressed schedule, and a rollback hook that only prints.
//! 3. A bad deployment (v2) is posted: it is caught (unhealthy, with its finding, chart and
//!    alert-free report); then a good one (v3) that fixes it: healthy. Each verdict is awaited
//!    on the verdict endpoint, as `cased gate` does.
//! 4. The server keeps running, Mission Control showing both (and the history and trends of
//!    `demo/shop`, where the change failure rate is 50 % and the time to restore is known),
//!    until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use cased_core::{Client, DeploymentEvent, DeploymentStatus};

use crate::Failure;

const REPOSITORY: &str = "demo/shop";

async fn health(State(bad): State<Arc<AtomicBool>>) -> (StatusCode, &'static str) {
    if bad.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(80)).await;
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "v2: database pool exhausted",
        )
    } else {
        (StatusCode::OK, "ok")
    }
}

/// The configuration of the demo's one service.
fn config(target: &str) -> String {
    format!(
        "# Written by `cased demo --serve`.\n\
         [[services]]\nname = \"shop\"\nrepository = \"{REPOSITORY}\"\nenvironment = \"production\"\n\n\
         [services.schedule]\nintervals = [\"250ms\", \"500ms\"]\ncooldown = \"3s\"\nmax_duration = \"1m\"\n\n\
         [services.verdict]\nmin_samples = 3\n\n\
         [services.rollback]\ncommand = \"echo rolling back demo/shop\"\n\n\
         [[services.checks]]\nname = \"web\"\ntype = \"http\"\nurl = \"{target}/health\"\n\n\
         [[services.detectors]]\ntype = \"threshold\"\nmetric = \"web.latency_ms\"\nupper = 50.0\ncritical = true\n"
    )
}

/// Runs `cased demo --serve`: returns when the server stops (Ctrl-C, SIGTERM).
pub(crate) async fn run(listen: SocketAddr, out: PathBuf) -> Result<(), Failure> {
    if !listen.ip().is_loopback() {
        return Err(Failure::Usage(format!(
            "cased demo --serve runs without API keys, so only on a loopback address, not {listen}"
        )));
    }
    let bad = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| Failure::Other(format!("cannot start the demo service: {e}")))?;
    let target = format!("http://{}", listener.local_addr().map_err(Failure::Io)?);
    let service = axum::Router::new()
        .route("/health", axum::routing::get(health))
        .with_state(Arc::clone(&bad));
    tokio::spawn(async move { axum::serve(listener, service).await });
    std::fs::create_dir_all(&out)
        .map_err(|e| Failure::Other(format!("cannot create {}: {e}", out.display())))?;
    let config_path = out.join("demo-serve.toml");
    std::fs::write(&config_path, config(&target))
        .map_err(|e| Failure::Other(format!("cannot write {}: {e}", config_path.display())))?;

    let (ready, listening) = tokio::sync::oneshot::channel();
    let args = crate::serve::ServeArgs::demo(listen, out.clone(), config_path);
    let server = tokio::spawn(crate::serve::run_notifying(args, Some(ready)));
    let Ok(addr) = listening.await else {
        // The server failed before listening: its error.
        return server
            .await
            .map_err(|e| Failure::Other(format!("the server task failed: {e}")))?;
    };
    let base = format!("http://{addr}");
    let client = Client::builder().base_url(&base).api_key("demo").build()?;
    let deploy = |version: &str, sha: &str, message: &str| {
        DeploymentEvent::builder(format!("Deploy {REPOSITORY} {version}"))
            .repository(REPOSITORY)
            .environment("production")
            .commit_sha(sha)
            .commit_message(message)
            .git_ref("refs/heads/main")
            .status(DeploymentStatus::Success)
            .build()
    };
    for (version, sha, message, is_bad) in [
        (
            "v2",
            "b2d0e5a",
            "Pool connections per request (the regression)",
            true,
        ),
        ("v3", "9f3c2e1", "Revert connection pooling change", false),
    ] {
        bad.store(is_bad, Ordering::Relaxed);
        let answer = client
            .create_deployment(&deploy(version, sha, message)?)
            .await?;
        let body = answer.body.unwrap_or_default();
        let id = body["id"].as_str().unwrap_or_default().to_owned();
        eprintln!("cased demo: deployed {REPOSITORY} {version} ({id}); waiting for its verdict");
        let verdict = client.verdict(&id, Duration::from_secs(60)).await?;
        eprintln!(
            "cased demo: {REPOSITORY} {version}: {} ({})",
            verdict["verdict"].as_str().unwrap_or("pending"),
            verdict["reason"].as_str().unwrap_or("")
        );
    }
    // The line a script waits for: both deployments are on the board.
    eprintln!("cased demo: Mission Control at {base}/ (Ctrl-C to stop)");
    server
        .await
        .map_err(|e| Failure::Other(format!("the server task failed: {e}")))?
}
