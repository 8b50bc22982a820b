//! `cased gate`: ask `cased serve` for a deployment's final verdict, waiting for it, and exit
//! with the CLI's codes, so a pipeline can promote or roll back without running the monitor.
//!
//! ```text
//! cased gate dep_5d0c1e9a7b3f2864 --wait 10m --base-url http://cased.internal:8080
//! ```
//!
//! It long-polls `GET /api/v1/deployments/{id}/verdict?wait=…` in calls of at most a minute
//! (so no proxy idles a connection out), until the answer is final or the wait is over.

use std::io::Write;
use std::time::Duration;

use cased_core::{Client, Secret};
use serde_json::Value;

use crate::{EXIT_API, EXIT_INCONCLUSIVE, EXIT_OK, Failure};

/// The longest single long poll; the server caps one at 10 minutes.
const POLL: Duration = Duration::from_secs(60);

/// Flags of `cased gate`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 pass (healthy or degraded), 1 fail (unhealthy, or the deployment \
                  failed) or the API refused or failed, 2 inconclusive, unmonitored or still \
                  pending when the wait ended, 3 usage error.\n\
                  The answer is printed on stdout as JSON: {\"id\", \"final\", \"result\", \
                  \"state\", \"status\", \"verdict\", \"reason\"}."
)]
pub(crate) struct GateArgs {
    /// The deployment's id (`dep_…`, the `id` of `cased notify`'s answer).
    #[arg(value_name = "ID")]
    id: String,

    /// How long to wait for the verdict to be final, e.g. 10m, 90s [default: 0: answer now].
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    wait: Option<Duration>,

    /// A key with the read scope. Prefer the environment variable: flags show up in process
    /// listings.
    #[arg(long, env = cased_core::API_KEY_ENV, hide_env_values = true, value_name = "KEY", value_parser = parse_secret)]
    api_key: Option<Secret>,

    /// The base URL of `cased serve` [default: https://app.cased.com].
    #[arg(long, env = "CASED_BASE_URL", value_name = "URL")]
    base_url: Option<String>,
}

fn parse_secret(s: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::new(s))
}

/// The exit code of a gate answer's `result`.
fn exit_code(result: &str) -> u8 {
    match result {
        "pass" => EXIT_OK,
        "fail" => EXIT_API,
        _ => EXIT_INCONCLUSIVE,
    }
}

/// Runs `cased gate`: prints the last answer and exits with its code.
pub(crate) async fn run(args: GateArgs) -> Result<(), Failure> {
    let mut builder = Client::builder();
    if let Some(key) = args.api_key {
        builder = builder.api_key(key);
    }
    if let Some(url) = args.base_url {
        builder = builder.base_url(url);
    }
    let client = builder.build()?;
    let wait = args.wait.unwrap_or(Duration::ZERO);
    let deadline = tokio::time::Instant::now() + wait;
    let answer: Value = loop {
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let answer = client.verdict(&args.id, remaining.min(POLL)).await?;
        if answer["final"] == Value::Bool(true) || remaining <= POLL {
            break answer;
        }
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{answer}")?;
    let result = answer["result"].as_str().unwrap_or("pending");
    let reason = answer["reason"].as_str().unwrap_or("");
    eprintln!(
        "cased gate: {result}{}{reason}",
        if reason.is_empty() { "" } else { ": " }
    );
    match exit_code(result) {
        EXIT_OK => Ok(()),
        code => Err(Failure::Exit(code)),
    }
}
