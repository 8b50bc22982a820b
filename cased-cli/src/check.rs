//! `cased check`: run checks once and print their outcome.
//!
//! ```text
//! cased check https://example.com/health
//! cased check '{"name": "db", "type": "tcp", "host": "127.0.0.1", "port": 5432}'
//! cased check cased.toml          # every check of a monitor configuration
//! cased check api-check.json      # one check configuration
//! ```

use std::io::Write;
use std::path::Path;

use cased_core::{CheckConfig, CheckStatus, MonitorConfig, run_check};
use serde_json::{Value, json};

use crate::Failure;
use crate::monitor::{config_error, parse_file, read};

/// Flags of `cased check`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 every check passed or warned, 1 a check failed or could not run, \
3 invalid configuration."
)]
pub(crate) struct CheckArgs {
    /// An http(s) URL (checked with GET, expecting 2xx/3xx), a TOML or JSON file holding one check
    /// or a monitor configuration (its `checks`), or one check as inline JSON.
    target: String,

    /// Print each outcome as a JSON line (with its evidence).
    #[arg(long)]
    json: bool,
}

/// Runs `cased check`.
pub(crate) async fn run(args: CheckArgs) -> Result<(), Failure> {
    let checks = checks_of(&args.target)?;
    let outcomes = futures_join(&checks).await?;
    let mut out = std::io::stdout().lock();
    let mut worst = CheckStatus::Pass;
    for (check, outcome) in checks.iter().zip(&outcomes) {
        worst = worst.max(outcome.status);
        if args.json {
            let v = json!({"name": check.name(), "outcome": outcome});
            writeln!(out, "{v}")?;
        } else {
            writeln!(
                out,
                "{:<5} {}  {:.1} ms  {}",
                outcome.status,
                check.name(),
                outcome.latency.as_secs_f64() * 1000.0,
                outcome.message
            )?;
        }
    }
    out.flush()?;
    match worst {
        CheckStatus::Pass | CheckStatus::Warn => Ok(()),
        CheckStatus::Fail | CheckStatus::Error => Err(Failure::Exit(crate::EXIT_API)),
    }
}

async fn futures_join(checks: &[CheckConfig]) -> Result<Vec<cased_core::CheckOutcome>, Failure> {
    let mut handles = Vec::new();
    for c in checks {
        let c = c.clone();
        handles.push(tokio::spawn(async move { run_check(&c).await }));
    }
    let mut outcomes = Vec::new();
    for (i, h) in handles.into_iter().enumerate() {
        let outcome = h
            .await
            .map_err(|e| Failure::Other(format!("check {i} panicked: {e}")))?;
        outcomes.push(outcome.map_err(|e| prefixed(e, &format!("checks[{i}]"), checks.len() > 1))?);
    }
    Ok(outcomes)
}

/// A validation error of check `i` with its field paths under `prefix` (when there are several).
fn prefixed(e: cased_core::Error, prefix: &str, several: bool) -> Failure {
    match e {
        cased_core::Error::Validation(mut v) if several => {
            for f in &mut v.errors {
                f.field = format!("{prefix}.{}", f.field);
            }
            Failure::Core(cased_core::Error::Validation(v))
        }
        e => Failure::Core(e),
    }
}

/// The checks `target` describes.
fn checks_of(target: &str) -> Result<Vec<CheckConfig>, Failure> {
    let t = target.trim();
    if t.starts_with("http://") || t.starts_with("https://") {
        // The check is named after its URL, shown without its secrets (password, `?token=`...).
        let v = json!({"name": cased_core::redact_url(t, &[]), "type": "http", "url": t});
        return Ok(vec![CheckConfig::from_value(v)?]);
    }
    if t.starts_with('{') {
        let v: Value = serde_json::from_str(t)
            .map_err(|e| Failure::Usage(format!("invalid inline JSON: {e}")))?;
        return Ok(vec![CheckConfig::from_value(v)?]);
    }
    let path = Path::new(target);
    if !path.exists() {
        return Err(Failure::Usage(format!(
            "{target:?} is neither an http(s) URL, inline JSON ({{...}}) nor an existing file"
        )));
    }
    let text = read(path)?;
    let value = parse_file(path, &text)?;
    let is_monitor = value.as_object().is_some_and(|o| !o.contains_key("type"));
    if is_monitor {
        let config = MonitorConfig::from_value(value).map_err(|e| config_error(path, &text, e))?;
        if config.checks.is_empty() {
            return Err(Failure::Usage(format!(
                "{} declares no checks",
                path.display()
            )));
        }
        Ok(config.checks)
    } else {
        Ok(vec![
            CheckConfig::from_value(value).map_err(|e| config_error(path, &text, e))?,
        ])
    }
}
