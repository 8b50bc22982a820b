//! `cased replay`: re-judges deployments already in history under a configuration (usually a new
//! one) and prints which verdicts would change and how much earlier or later the first finding
//! would come — a backtest of a policy before it goes live.
//!
//! ```text
//! cased replay --config cased.new.toml                # the last 20 deployments in history
//! cased replay --config cased.new.toml --repository acme/shop --environment production --limit 100
//! ```
//!
//! Each deployment is rebuilt from history (its event and check outcomes, by time) and from the
//! baseline store (the samples its sources and pushes produced, with their times, before and
//! during the deployment), then replayed through the new configuration's pipeline on a virtual
//! clock: no check runs, nothing is sent, nothing is written.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use cased_core::history::{DeploymentFilter, DeploymentRecord};
use cased_core::{
    BaselineStore, HistoryStore, Monitor, RecordedCheck, RecordedCounts, Recording, Report,
    Severity, Verdict,
};

use crate::Failure;
use crate::monitor::{DEFAULT_HISTORY, baselines_path, load_config, open_baselines, open_history};

/// Flags of `cased replay`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 replayed (whatever the verdicts), 1 history could not be read, \
3 configuration or usage error."
)]
pub(crate) struct ReplayArgs {
    /// The configuration to judge with: TOML (cased.toml) or JSON (*.json).
    #[arg(long, short = 'c', value_name = "FILE", default_value = "cased.toml")]
    config: PathBuf,

    /// Only deployments of this repository.
    #[arg(long, value_name = "OWNER/NAME")]
    repository: Option<String>,

    /// Only deployments to this environment.
    #[arg(long, value_name = "NAME")]
    environment: Option<String>,

    /// How many of the most recent finished deployments.
    #[arg(long, default_value_t = 20, value_name = "N")]
    limit: usize,

    /// Print one JSON object per deployment instead of a table.
    #[arg(long)]
    json: bool,

    /// The history database (SQLite).
    #[arg(long, value_name = "PATH", env = "CASED_HISTORY", default_value = DEFAULT_HISTORY)]
    history: PathBuf,

    /// The baseline store (SQLite) holding the deployments' samples [default: baselines.db
    /// beside the history].
    #[arg(long, value_name = "PATH", env = "CASED_BASELINES")]
    baselines: Option<PathBuf>,
}

/// One deployment, judged then and now.
#[derive(Debug, serde::Serialize)]
struct Rejudged {
    session_id: String,
    deployment: String,
    before: Option<Verdict>,
    after: Verdict,
    /// Seconds from the start to the first warning-or-worse finding, then and now.
    first_finding_before_s: Option<f64>,
    first_finding_after_s: Option<f64>,
    reason: String,
}

/// Runs `cased replay`.
pub(crate) async fn run(args: ReplayArgs) -> Result<(), Failure> {
    let monitor = Monitor::new(load_config(&args.config)?)?;
    if !args.history.exists() {
        return Err(Failure::Usage(format!(
            "no history at {} (run `cased monitor` first)",
            args.history.display()
        )));
    }
    let history = open_history(&args.history)?;
    let store = open_baselines(&baselines_path(args.baselines.as_deref(), &args.history))?;
    let mut filter = DeploymentFilter::all().limit(args.limit.max(1) * 4);
    if let Some(r) = &args.repository {
        filter = filter.repository(r.clone());
    }
    if let Some(e) = &args.environment {
        filter = filter.environment(e.clone());
    }
    let records: Vec<DeploymentRecord> = history
        .deployments(&filter)
        .await?
        .into_iter()
        .filter(DeploymentRecord::is_finished)
        .take(args.limit)
        .collect();
    if records.is_empty() {
        println!(
            "no finished deployment in {} matches",
            args.history.display()
        );
        return Ok(());
    }
    let mut rows = Vec::new();
    for record in &records {
        rows.push(rejudge(&monitor, history.as_ref(), store.as_ref(), record).await?);
    }
    if args.json {
        for r in &rows {
            println!("{}", serde_json::to_string(r).unwrap_or_default());
        }
    } else {
        print_table(&rows);
    }
    Ok(())
}

async fn rejudge(
    monitor: &Monitor,
    history: &dyn HistoryStore,
    store: &dyn BaselineStore,
    record: &DeploymentRecord,
) -> Result<Rejudged, Failure> {
    let id = &record.session_id;
    let event = history
        .event(id)
        .await?
        .ok_or_else(|| Failure::Other(format!("history has no event for session {id}")))?;
    let before = history.report(id).await?;
    let started_at = record.started_at_unix_ms as f64 / 1000.0;
    let checks = RecordedCheck::of_ticks(&history.ticks(id).await?);
    let samples = store
        .samples(
            record.repository.as_deref().unwrap_or(""),
            record.environment.as_deref().unwrap_or(""),
            &record.correlation_id,
        )
        .await?;
    let (samples, counts) = split_counts(samples.into_iter().map(|(_, s)| s).collect());
    let recording = Recording {
        started_at,
        completed_after: before
            .as_ref()
            .and_then(|r| r.cooldown_started)
            .map(|d| d.as_secs_f64()),
        samples,
        counts,
        checks,
        ..Recording::default()
    };
    let after = monitor.replay(event, recording).await?;
    let first_before = history
        .findings(id)
        .await?
        .iter()
        .filter(|f| f.finding.severity >= Severity::Warning)
        .filter_map(|f| f.elapsed)
        .min()
        .map(|d| d.as_secs_f64());
    Ok(Rejudged {
        session_id: id.clone(),
        deployment: record.deployment_request.clone(),
        before: record.verdict,
        after: after.verdict,
        first_finding_before_s: first_before,
        first_finding_after_s: first_finding(&after).map(|d| d.as_secs_f64()),
        reason: after.reason,
    })
}

/// When the first warning-or-worse finding of `report` came, from the start.
fn first_finding(report: &Report) -> Option<Duration> {
    report
        .findings
        .iter()
        .filter(|f| f.severity >= Severity::Warning)
        .filter_map(|f| f.tick)
        .filter_map(|t| report.ticks.iter().find(|r| r.tick == t).map(|r| r.elapsed))
        .min()
}

/// Counts kept as `<metric>:errors` / `<metric>:requests` series back into counts.
fn split_counts(all: Vec<cased_core::Sample>) -> (Vec<cased_core::Sample>, Vec<RecordedCounts>) {
    let mut values = Vec::new();
    let mut pairs: BTreeMap<(String, u64), (Option<f64>, Option<f64>)> = BTreeMap::new();
    for s in all {
        let key = |m: &str| (m.to_owned(), s.timestamp.to_bits());
        if let Some(m) = s.metric.strip_suffix(":errors") {
            pairs.entry(key(m)).or_default().0 = Some(s.value);
        } else if let Some(m) = s.metric.strip_suffix(":requests") {
            pairs.entry(key(m)).or_default().1 = Some(s.value);
        } else {
            values.push(s);
        }
    }
    let counts = pairs
        .into_iter()
        .filter_map(|((metric, ts), (e, r))| {
            let (e, r) = (e?, r?);
            (e >= 0.0 && r >= e).then(|| RecordedCounts {
                metric,
                timestamp: f64::from_bits(ts),
                errors: e as u64,
                requests: r as u64,
            })
        })
        .collect();
    (values, counts)
}

fn print_table(rows: &[Rejudged]) {
    let v = |x: Option<Verdict>| x.map_or("-".to_owned(), |v| v.to_string());
    let t = |x: Option<f64>| x.map_or("-".to_owned(), |s| format!("{s:.0}s"));
    println!(
        "{:<34} {:<13} {:<13} {:>9} {:>9}  change",
        "session", "was", "would be", "found at", "now"
    );
    let mut changed = 0;
    for r in rows {
        let change = if r.before != Some(r.after) {
            changed += 1;
            format!("{} -> {}", v(r.before), r.after)
        } else {
            match (r.first_finding_before_s, r.first_finding_after_s) {
                (Some(a), Some(b)) if (b - a).abs() >= 1.0 => format!("{:+.0}s", b - a),
                _ => String::new(),
            }
        };
        println!(
            "{:<34} {:<13} {:<13} {:>9} {:>9}  {change}",
            r.session_id,
            v(r.before),
            r.after.to_string(),
            t(r.first_finding_before_s),
            t(r.first_finding_after_s)
        );
    }
    println!(
        "{} deployment(s) re-judged: {changed} verdict(s) would change",
        rows.len()
    );
}
