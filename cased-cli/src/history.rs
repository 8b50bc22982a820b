//! `cased history` (deployments, `stats`) and `cased report <id>`: queries of the history a
//! monitor or the demo recorded.
//!
//! ```text
//! cased history --repository acme/checkout --environment production --limit 20
//! cased history stats --bucket week --json
//! cased report 3f9a0c1e --format html --out report.html
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use cased_core::HistoryStore;
use cased_core::history::{Bucket, DeploymentFilter, DeploymentRecord, DetectionSummary};
use cased_core::report::{self, Format};

use crate::Failure;
use crate::monitor::{DEFAULT_HISTORY, open_history, write};

/// Flags of `cased history`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Exit codes: 0 done, 1 the history could not be read, 3 usage error.")]
pub(crate) struct HistoryArgs {
    #[command(subcommand)]
    command: Option<HistoryCommand>,

    /// Only deployments of this repository (owner/name).
    #[arg(long, global = true, value_name = "OWNER/NAME")]
    repository: Option<String>,

    /// Only deployments to this environment.
    #[arg(long, global = true, value_name = "NAME")]
    environment: Option<String>,

    /// At most this many deployments, newest first.
    #[arg(long, default_value_t = 20, value_name = "N")]
    limit: usize,

    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,

    /// The history database.
    #[arg(long, global = true, value_name = "PATH", env = "CASED_HISTORY", default_value = DEFAULT_HISTORY)]
    history: PathBuf,
}

#[derive(Debug, clap::Subcommand)]
enum HistoryCommand {
    /// Verdicts and success rate per day or week, and time to detect.
    Stats {
        /// The bucket size.
        #[arg(long, value_enum, default_value = "day")]
        bucket: BucketArg,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum BucketArg {
    Day,
    Week,
}

/// Flags of `cased report`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Exit codes: 0 written, 1 not found or not readable, 3 usage error.")]
pub(crate) struct ReportArgs {
    /// The session id (or a unique prefix of it), as `cased history` lists it.
    id: String,

    /// md (Markdown), html (a self-contained page with charts) or json.
    #[arg(long, short = 'f', default_value = "md", value_parser = parse_format)]
    format: Format,

    /// Write to this file instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    out: Option<PathBuf>,

    /// The history database.
    #[arg(long, value_name = "PATH", env = "CASED_HISTORY", default_value = DEFAULT_HISTORY)]
    history: PathBuf,
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse::<Format>().map_err(|e| {
        e.field_errors()
            .first()
            .map(|f| f.message.clone())
            .unwrap_or_else(|| e.to_string())
    })
}

fn filter(args: &HistoryArgs) -> DeploymentFilter {
    DeploymentFilter {
        repository: args.repository.clone(),
        environment: args.environment.clone(),
        ..DeploymentFilter::default()
    }
}

fn existing(path: &std::path::Path) -> Result<(), Failure> {
    if path.exists() {
        Ok(())
    } else {
        Err(Failure::Other(format!(
            "no history at {} (run `cased monitor` or `cased demo` first, or pass --history)",
            path.display()
        )))
    }
}

/// Runs `cased history` and `cased history stats`.
pub(crate) async fn run(args: HistoryArgs) -> Result<(), Failure> {
    existing(&args.history)?;
    let store = open_history(&args.history)?;
    let mut out = std::io::stdout().lock();
    match args.command {
        None => {
            let f = filter(&args).limit(args.limit);
            let rows = store.deployments(&f).await?;
            if args.json {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&rows).expect("records serialize")
                )?;
            } else {
                write_table(&mut out, &rows)?;
            }
        }
        Some(HistoryCommand::Stats { bucket }) => {
            let bucket = match bucket {
                BucketArg::Day => Bucket::Day,
                BucketArg::Week => Bucket::Week,
            };
            let f = filter(&args);
            let counts = store.verdict_counts(&f, bucket).await?;
            let detections = store.time_to_detect(&f).await?;
            let summary = DetectionSummary::of(&detections);
            if args.json {
                let v = serde_json::json!({"buckets": counts, "time_to_detect": summary});
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&v).expect("stats serialize")
                )?;
            } else {
                writeln!(
                    out,
                    "{:<12} {:>5} {:>8} {:>8} {:>9} {:>12} {:>8}",
                    "bucket",
                    "total",
                    "healthy",
                    "degraded",
                    "unhealthy",
                    "inconclusive",
                    "success"
                )?;
                for c in &counts {
                    writeln!(
                        out,
                        "{:<12} {:>5} {:>8} {:>8} {:>9} {:>12} {:>8}",
                        &date(c.start_unix_ms),
                        c.total,
                        c.healthy,
                        c.degraded,
                        c.unhealthy,
                        c.inconclusive,
                        c.success_rate
                            .map_or("-".to_owned(), |r| format!("{:.0}%", r * 100.0))
                    )?;
                }
                match summary {
                    Some(s) => writeln!(
                        out,
                        "time to detect: {} detected, mean {}, median {}, max {}",
                        s.count,
                        crate::progress::short(s.mean),
                        crate::progress::short(s.median),
                        crate::progress::short(s.max)
                    )?,
                    None => writeln!(out, "time to detect: no deployment with a detected problem")?,
                }
            }
        }
    }
    out.flush()?;
    Ok(())
}

fn write_table(out: &mut impl Write, rows: &[DeploymentRecord]) -> std::io::Result<()> {
    if rows.is_empty() {
        return writeln!(out, "no deployments recorded");
    }
    writeln!(
        out,
        "{:<32} {:<20} {:<24} {:<12} {:<12} {:>8}",
        "id", "started (UTC)", "repository", "environment", "verdict", "duration"
    )?;
    for r in rows {
        let verdict = match (r.verdict, r.last_tick_verdict) {
            (Some(v), _) => v.to_string(),
            (None, _) if r.is_interrupted() => "interrupted".to_owned(),
            (None, Some(v)) => format!("({v})"),
            (None, None) => "running".to_owned(),
        };
        writeln!(
            out,
            "{:<32} {:<20} {:<24} {:<12} {:<12} {:>8}",
            r.session_id,
            datetime(r.started_at_unix_ms),
            r.repository.as_deref().unwrap_or("-"),
            r.environment.as_deref().unwrap_or("-"),
            verdict,
            r.duration.map_or("-".to_owned(), crate::progress::short)
        )?;
    }
    // Sessions whose process went away (killed, crashed) say when they were last seen.
    for r in rows.iter().filter(|r| r.is_interrupted()) {
        writeln!(
            out,
            "interrupted: {} ended without a verdict (its process is gone); last seen {} UTC",
            r.session_id,
            r.last_seen_unix_ms
                .map_or_else(|| "never".to_owned(), datetime)
        )?;
    }
    Ok(())
}

fn datetime(unix_ms: u64) -> String {
    let t =
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(unix_ms)).to_string();
    t.trim_end_matches('Z').replace('T', " ")
}

fn date(unix_ms: u64) -> String {
    datetime(unix_ms).chars().take(10).collect()
}

/// Runs `cased report`.
pub(crate) async fn report(args: ReportArgs) -> Result<(), Failure> {
    existing(&args.history)?;
    let store = open_history(&args.history)?;
    let id = resolve_id(store.as_ref(), &args.id).await?;
    let Some((report, context)) = report::load(store.as_ref(), &id).await? else {
        return Err(Failure::Other(format!(
            "session {id} has no report yet (still running, or it never finished)"
        )));
    };
    let text = report::render(&report, &context, args.format);
    match &args.out {
        Some(path) => {
            write(path, &text)?;
            println!("wrote {}", path.display());
        }
        None => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{text}")?;
            out.flush()?;
        }
    }
    Ok(())
}

/// The session id `given` names: itself, or the one session whose id starts with it.
async fn resolve_id(store: &dyn HistoryStore, given: &str) -> Result<String, Failure> {
    if store.deployment(given).await?.is_some() {
        return Ok(given.to_owned());
    }
    let all = store.deployments(&DeploymentFilter::all()).await?;
    let matches: Vec<&DeploymentRecord> = all
        .iter()
        .filter(|r| r.session_id.starts_with(given))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.session_id.clone()),
        [] => Err(Failure::Other(format!(
            "no session {given:?} in history (see `cased history`)"
        ))),
        _ => Err(Failure::Usage(format!(
            "{given:?} matches {} sessions; give more of the id",
            matches.len()
        ))),
    }
}
