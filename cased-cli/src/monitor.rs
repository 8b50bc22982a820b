//! `cased monitor`: run a monitoring session with the checks of `cased.toml`, live, and exit
//! with the verdict.
//!
//! ```text
//! cased monitor --config cased.toml --from-ci                    # in a CI job, after the deploy
//! cased monitor --config cased.toml -m "Deploy v1.4.2" --environment production
//! cased monitor --config cased.toml --event-json event.json --summary report.md
//! ```
//!
//! `cased.toml` is the [`MonitorConfig`] model written in TOML (`[schedule]`, `[[checks]]`,
//! `[verdict]`); a `.json` file is read as JSON. The deployment is normally finished when the
//! command runs (the event's status defaults to `success`), so the session starts its cool-down
//! at once and ends when it is over, when the verdict turns unhealthy, or at `max_duration`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cased_core::alert::{ChannelConfig, InAppEvent};
use cased_core::limits::MAX_CONFIG_BYTES;
use cased_core::metrics::SqliteBaselineStore;
use cased_core::report::{self, ReportContext};
use cased_core::{
    DeploymentEvent, Error, HistoryStore, Monitor, MonitorConfig, Report, Session, SqliteHistory,
    Verdict,
};
use serde_json::Value;

use crate::notify::{EventArgs, build_event, process_env};
use crate::progress::{self, Style};
use crate::{Failure, verdict_exit_code};

/// How long queued alert deliveries may take once the session is over.
const ALERT_GRACE: std::time::Duration = std::time::Duration::from_secs(15);

/// Where history is kept unless `--history` says otherwise.
pub(crate) const DEFAULT_HISTORY: &str = ".cased/history.db";

/// The baseline store's file name, beside the history unless `--baselines` says otherwise.
pub(crate) const BASELINES_FILE: &str = "baselines.db";

/// The baseline store's path: `explicit`, else `baselines.db` beside the history.
pub(crate) fn baselines_path(explicit: Option<&Path>, history: &Path) -> PathBuf {
    explicit.map_or_else(
        || {
            history
                .parent()
                .unwrap_or(Path::new(""))
                .join(BASELINES_FILE)
        },
        Path::to_path_buf,
    )
}

/// Flags of `cased monitor`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 healthy or degraded, 1 unhealthy, 2 inconclusive (or Ctrl-C), \
3 configuration or usage error.\n\
The Markdown report is appended to $GITHUB_STEP_SUMMARY when it is set."
)]
pub(crate) struct MonitorArgs {
    /// The monitor configuration: TOML (cased.toml) or JSON (*.json).
    #[arg(long, short = 'c', value_name = "FILE", default_value = "cased.toml")]
    config: PathBuf,

    /// Read the deployment event from this JSON file (the wire format of `cased notify`).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["deployment_request", "from_ci"])]
    event_json: Option<PathBuf>,

    #[command(flatten)]
    event: EventArgs,

    /// The history database (SQLite; created with its directory when missing).
    #[arg(long, value_name = "PATH", env = "CASED_HISTORY", default_value = DEFAULT_HISTORY)]
    history: PathBuf,

    /// The baseline store (SQLite): each deployment's samples and outcome, so the next one is
    /// compared with the last healthy ones [default: baselines.db beside the history].
    #[arg(long, value_name = "PATH", env = "CASED_BASELINES")]
    baselines: Option<PathBuf>,

    /// Also write the Markdown report to this file.
    #[arg(long, value_name = "FILE")]
    summary: Option<PathBuf>,

    /// Post the deployment event to the deployments API first (as `[api] notify = true`; key
    /// from CASED_API_KEY, URL from CASED_BASE_URL).
    #[arg(long)]
    notify: bool,

    /// Run this shell command when the verdict turns unhealthy (as `[rollback] command`).
    #[arg(long, value_name = "COMMAND")]
    rollback_command: Option<String>,
}

/// Runs `cased monitor`.
pub(crate) async fn run(args: MonitorArgs) -> Result<(), Failure> {
    let (config, mut settings) = load_config_and_settings(&args.config)?;
    if args.notify {
        settings
            .api
            .get_or_insert(crate::settings::ApiSettings {
                notify: true,
                base_url: None,
                api_key_env: cased_core::API_KEY_ENV.to_owned(),
            })
            .notify = true;
    }
    if let Some(command) = &args.rollback_command {
        settings.rollback = Some(crate::settings::RollbackSettings {
            command: command.clone(),
            timeout: settings
                .rollback
                .as_ref()
                .map_or(std::time::Duration::from_secs(300), |r| r.timeout),
        });
    }
    let event = match &args.event_json {
        Some(path) => {
            let text = read(path)?;
            DeploymentEvent::from_json(&text)?
        }
        None => build_event(&args.event, &process_env(), Some("Deployment"))?,
    };
    if config.checks.is_empty() && config.sources.is_empty() {
        // Nothing would be measured: the session would only wait for its cool-down.
        return Err(Failure::Usage(format!(
            "invalid configuration in {}: nothing to monitor: declare at least one [[checks]] \
             or [[sources]] entry",
            args.config.display()
        )));
    }
    // Nothing can push metrics into `cased monitor`: a detector on a metric no check or source
    // produces would leave every run inconclusive, whatever `pushed` declares.
    MonitorConfig {
        pushed: Vec::new(),
        ..config.clone()
    }
    .check_detector_metrics(&[])
    .map_err(|e| config_error(&args.config, "", e))?;
    let history = open_history(&args.history)?;
    let inapp: Vec<String> = config
        .alerts
        .channels
        .iter()
        .filter(|c| matches!(c, ChannelConfig::Inapp(_)))
        .map(|c| c.name().to_owned())
        .collect();
    let baselines = open_baselines(&baselines_path(args.baselines.as_deref(), &args.history))?;
    let mut builder = Monitor::builder(config)
        .history(history.clone())
        .baseline_store(baselines);
    if let Some(r) = &settings.rollback {
        builder = builder.on_rollback(crate::settings::rollback_hook(r));
    }
    let monitor = builder.build()?;
    if let Some(api) = settings.api.as_ref().filter(|a| a.notify) {
        crate::settings::notify(api, &event).await;
    }
    // In-app alert channels are printed on the console.
    let mut printers = Vec::new();
    for name in inapp {
        let mut stream = monitor.alerts(&name)?;
        printers.push(tokio::spawn(async move {
            while let Some(event) = stream.next().await {
                if let InAppEvent::Notification(n) = event {
                    for a in &n.alerts {
                        println!(
                            "alert [{}] {name}: {:?}: {}: {}",
                            a.severity, a.state, a.title, a.summary
                        );
                    }
                }
            }
        }));
    }
    println!(
        "monitoring {} with {} check{}: {}",
        describe(&event),
        monitor.check_names().len(),
        if monitor.check_names().len() == 1 {
            ""
        } else {
            "s"
        },
        monitor.check_names().join(", ")
    );
    let session = monitor.start(event)?;
    let report = watch(&session, Style::detect(), |prev, u| {
        println!("verdict: {prev} -> {} ({})", u.verdict, u.reason);
    })
    .await;
    // Deliver the alerts still queued (webhook, Slack, email) before the process exits.
    if let Some(manager) = monitor.alert_manager() {
        let stats = manager.shutdown(ALERT_GRACE).await;
        if stats.fired > 0 {
            let retried = if stats.delivered_after_retry > 0 {
                format!(" ({} after a retry)", stats.delivered_after_retry)
            } else {
                String::new()
            };
            println!(
                "alerts: {} fired, {} notifications delivered{retried}, {} failed",
                stats.fired, stats.delivered, stats.failed
            );
            for r in manager.retried() {
                if let Some(note) = &r.retried {
                    println!("alert to {}: {note}", r.channel);
                }
            }
        }
    }
    for p in printers {
        p.abort();
    }
    let context = context_of(history.as_ref(), &report).await;
    // The session into the .db file itself (not left in .db-wal): a CI job uploads that file.
    if let Err(e) = history.checkpoint().await {
        eprintln!("warning: history: {e}");
    }
    let markdown = report::to_markdown(&report, &context);
    write_summaries(&markdown, args.summary.as_deref())?;
    print_outcome(&report, &args.history);
    match verdict_exit_code(report.verdict) {
        0 => Ok(()),
        code => Err(Failure::Exit(code)),
    }
}

/// Follows the session's progress until it ends; Ctrl-C cancels it (the report says so).
pub(crate) async fn watch(
    session: &Session,
    style: Style,
    on_change: impl FnMut(Verdict, &cased_core::StatusUpdate),
) -> Report {
    let cancel = session.clone();
    let ctrl_c = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\ninterrupted: cancelling the session (press Ctrl-C again to quit at once)");
            cancel.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    progress::follow(session, style, on_change).await;
    let report = session.wait().await;
    ctrl_c.abort();
    report
}

/// The report's context from history (finding ticks, alerts), or an empty one.
pub(crate) async fn context_of(history: &dyn HistoryStore, report: &Report) -> ReportContext {
    match report::load(history, &report.session_id).await {
        Ok(Some((_, context))) => context,
        _ => ReportContext::default(),
    }
}

/// Appends to `$GITHUB_STEP_SUMMARY` when set, and writes `--summary`.
fn write_summaries(markdown: &str, summary: Option<&Path>) -> Result<(), Failure> {
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| {
                Failure::Other(format!("cannot open $GITHUB_STEP_SUMMARY {path:?}: {e}"))
            })?;
        writeln!(f, "{markdown}")
            .map_err(|e| Failure::Other(format!("cannot write $GITHUB_STEP_SUMMARY: {e}")))?;
    }
    if let Some(path) = summary {
        write(path, markdown)?;
    }
    Ok(())
}

fn print_outcome(report: &Report, history: &Path) {
    println!(
        "verdict: {} after {} ({}): {}",
        report.verdict,
        progress::short(report.duration),
        ended_by(report),
        report.reason
    );
    for c in &report.changes {
        println!("changed: {}", c.message);
    }
    if report.verdict == Verdict::Degraded && std::env::var_os("GITHUB_ACTIONS").is_some() {
        println!(
            "::warning title=cased::deployment degraded: {}",
            report.reason
        );
    }
    println!(
        "session {} recorded in {}; `cased report {} --format html` renders it",
        report.session_id,
        history.display(),
        report.session_id
    );
}

fn ended_by(report: &Report) -> String {
    serde_json::to_value(report.ended_by)
        .ok()
        .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
        .unwrap_or_default()
}

fn describe(event: &DeploymentEvent) -> String {
    let mut s = format!("{:?}", event.deployment_request());
    if let Some(r) = event.repository_full_name() {
        s.push_str(&format!(" of {r}"));
    }
    if let Some(e) = event.environment() {
        s.push_str(&format!(" to {e}"));
    }
    s
}

/// Opens (creating) the SQLite history at `path`.
pub(crate) fn open_history(path: &Path) -> Result<Arc<SqliteHistory>, Failure> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            Failure::Other(format!(
                "cannot create the history directory {}: {e}",
                dir.display()
            ))
        })?;
    }
    SqliteHistory::open(path)
        .map(Arc::new)
        .map_err(|e| Failure::Other(format!("cannot open the history {}: {e}", path.display())))
}

/// Reads a configuration or event file of at most [`MAX_CONFIG_BYTES`] bytes.
pub(crate) fn read(path: &Path) -> Result<String, Failure> {
    let cannot = |e: std::io::Error| Failure::Usage(format!("cannot read {}: {e}", path.display()));
    let size = std::fs::metadata(path).map_err(cannot)?.len();
    if size > MAX_CONFIG_BYTES as u64 {
        return Err(Failure::Usage(format!(
            "{} is {size} bytes; at most {MAX_CONFIG_BYTES} are read",
            path.display()
        )));
    }
    std::fs::read_to_string(path).map_err(cannot)
}

pub(crate) fn write(path: &Path, text: &str) -> Result<(), Failure> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::Other(format!("cannot create {}: {e}", dir.display())))?;
    }
    std::fs::write(path, text)
        .map_err(|e| Failure::Other(format!("cannot write {}: {e}", path.display())))
}

/// Opens (creating) the SQLite baseline store at `path`.
pub(crate) fn open_baselines(path: &Path) -> Result<Arc<SqliteBaselineStore>, Failure> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            Failure::Other(format!(
                "cannot create the baselines directory {}: {e}",
                dir.display()
            ))
        })?;
    }
    SqliteBaselineStore::open(path).map(Arc::new).map_err(|e| {
        Failure::Other(format!(
            "cannot open the baseline store {}: {e}",
            path.display()
        ))
    })
}

/// Reads a configuration file: TOML, or JSON when the name ends in `.json`.
pub(crate) fn load_config(path: &Path) -> Result<MonitorConfig, Failure> {
    load_config_and_settings(path).map(|(c, _)| c)
}

/// Reads a configuration file and the `[api]` and `[rollback]` tables beside it.
pub(crate) fn load_config_and_settings(
    path: &Path,
) -> Result<(MonitorConfig, crate::settings::Settings), Failure> {
    let text = read(path)?;
    parse_config(path, &text)
}

/// Reads configuration text (TOML, or JSON when the name ends in `.json`) and the `[api]` and
/// `[rollback]` tables beside it.
pub(crate) fn parse_config(
    path: &Path,
    text: &str,
) -> Result<(MonitorConfig, crate::settings::Settings), Failure> {
    let text = text.to_owned();
    let mut value = parse_file(path, &text)?;
    let settings = crate::settings::split(&mut value).map_err(|e| match e {
        Failure::Usage(m) => {
            Failure::Usage(format!("invalid configuration in {}: {m}", path.display()))
        }
        other => other,
    })?;
    let config = MonitorConfig::from_value(value).map_err(|e| config_error(path, &text, e))?;
    Ok((config, settings))
}

/// The file as a JSON value; syntax errors name the line.
pub(crate) fn parse_file(path: &Path, text: &str) -> Result<Value, Failure> {
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if is_json {
        serde_json::from_str(text)
            .map_err(|e| Failure::Usage(format!("{}: invalid JSON: {e}", path.display())))
    } else {
        toml::from_str(text).map_err(|e| {
            Failure::Usage(format!(
                "{}: invalid TOML: {}",
                path.display(),
                e.to_string().trim_end()
            ))
        })
    }
}

/// A configuration error naming the file, each key path and, when it can be found, its line.
pub(crate) fn config_error(path: &Path, text: &str, e: Error) -> Failure {
    let Error::Validation(v) = &e else {
        return Failure::Core(e);
    };
    let mut msg = format!("invalid configuration in {}:", path.display());
    // TOML keeps where every key and value is written; JSON files get the line search.
    let spans = toml::de::DeTable::parse(text).ok();
    for p in &v.errors {
        msg.push_str(&format!("\n  - {}: {}", p.field, p.message));
        let at = spans
            .as_ref()
            .and_then(|t| position_of(t, text, &p.field, &p.message));
        match at {
            Some((line, column, None)) => {
                msg.push_str(&format!(" (line {line}, column {column})"));
            }
            Some((line, column, Some(key))) => {
                msg.push_str(&format!(" (`{key}`, line {line}, column {column})"));
            }
            None => {
                if let Some(line) = line_of(text, &p.field, &p.message) {
                    msg.push_str(&format!(" (line {line})"));
                }
            }
        }
    }
    Failure::Usage(msg)
}

/// Where (line, column, from 1) the value a problem is about is written in the TOML document:
/// the field path (`checks[1].port`, `services[0].detectors[2]`) is followed key by key and
/// index by index; an unknown key points at the key itself. When the path ends at a table whose
/// entry holds the value the message quotes, that entry's key is returned too. `None` when the
/// path leads nowhere.
fn position_of(
    doc: &toml::Spanned<toml::de::DeTable<'_>>,
    text: &str,
    field: &str,
    message: &str,
) -> Option<(usize, usize, Option<String>)> {
    use toml::de::DeValue;
    let mut segments = path_segments(field);
    if segments
        .first()
        .is_some_and(|s| s == &Segment::Key("config".into()))
    {
        segments.remove(0);
    }
    let unknown = message
        .split_once("unknown field `")
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(k, _)| k.to_owned());
    if let Some(k) = &unknown
        && segments.last() != Some(&Segment::Key(k.clone()))
    {
        segments.push(Segment::Key(k.clone()));
    }
    let mut table = doc.get_ref();
    let mut array: Option<&toml::de::DeArray<'_>> = None;
    let mut span = None;
    let mut entry = None;
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        let value = match (segment, array) {
            (Segment::Index(n), Some(items)) => items.get(*n)?,
            (Segment::Key(k), None) => {
                let (key, value) = table.iter().find(|(key, _)| key.get_ref().as_ref() == k)?;
                if last && unknown.as_deref() == Some(k.as_str()) {
                    span = Some(key.span());
                    break;
                }
                value
            }
            _ => return None,
        };
        span = Some(value.span());
        array = None;
        match value.get_ref() {
            DeValue::Table(t) => table = t,
            DeValue::Array(a) => array = Some(a),
            _ if !last => return None,
            _ => {}
        }
        // A problem reported on a whole table (an internally tagged entry such as a check)
        // that quotes the bad value: point at the entry holding that value.
        if last
            && let DeValue::Table(t) = value.get_ref()
            && let Some(quoted) = quoted_value(message)
            && let Some((k, v)) = t.iter().find(|(_, v)| {
                text.get(v.span())
                    .is_some_and(|src| src.trim().trim_matches('"') == quoted)
            })
        {
            span = Some(v.span());
            entry = Some(k.get_ref().to_string());
        }
    }
    let start = span?.start;
    let before = text.get(..start)?;
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some((line, column, entry))
}

/// The value a serde message quotes: "integer `70000`", "string \"fast\"".
fn quoted_value(message: &str) -> Option<&str> {
    for (open, close) in [("integer `", '`'), ("float `", '`'), ("string \"", '"')] {
        if let Some((_, rest)) = message.split_once(open) {
            return rest.split_once(close).map(|(v, _)| v);
        }
    }
    None
}

/// One step of a field path.
#[derive(Debug, PartialEq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// `checks[1].expect.status` → `checks`, `1`, `expect`, `status`.
fn path_segments(field: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    for part in field.split('.') {
        let (key, mut rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            out.push(Segment::Key(key.to_owned()));
        }
        while let Some((n, more)) = rest.split_once(']') {
            match n.parse() {
                Ok(n) => out.push(Segment::Index(n)),
                Err(_) => out.push(Segment::Key(n.to_owned())),
            }
            rest = more.strip_prefix('[').unwrap_or(more);
        }
    }
    out
}

/// The line (from 1) where the key a problem is about is written, when it can be found.
fn line_of(text: &str, field: &str, message: &str) -> Option<usize> {
    let key = message
        .split_once("unknown field `")
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(k, _)| k.to_owned())
        .or_else(|| {
            field
                .rsplit('.')
                .next()
                .map(|k| k.split('[').next().unwrap_or(k).to_owned())
        })?;
    if key.is_empty() || key == "config" {
        return None;
    }
    text.lines().position(|l| defines(l, &key)).map(|i| i + 1)
}

/// Whether `line` writes `key = ...` or a `[key]` / `[a.key]` header.
fn defines(line: &str, key: &str) -> bool {
    line.match_indices(key).any(|(i, _)| {
        let before = line[..i].trim_end_matches('"').chars().next_back();
        let ok_before = before.is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '-'));
        let after = line[i + key.len()..].trim_start_matches('"').trim_start();
        ok_before && (after.starts_with('=') || after.starts_with(']'))
    })
}

/// Property test of `cased.toml` reading (RELIABILITY.md): a valid file mutated at random
/// (bytes inserted, removed, lines replaced with random `key = value`), and any text, is read
/// or refused as a usage error (exit 3) that names what is wrong, never a panic.
/// `CASED_FUZZ_CASES` sets the budget.
#[cfg(test)]
mod properties {
    use std::path::Path;

    use proptest::prelude::*;

    use super::parse_config;
    use crate::Failure;

    const VALID: &str = r#"[schedule]
intervals = ["10s", "30s"]
cooldown = "5m"
max_duration = "1h"

[verdict]
failure_limit = 1
min_samples = 2

[[checks]]
name = "web"
type = "http"
url = "http://127.0.0.1:9/health"
timeout = "2s"
expect = { status = [200, "2xx"], max_latency = "800ms" }

[[checks]]
name = "db"
type = "tcp"
host = "127.0.0.1"
port = 5432

[[sources]]
type = "host"

[[detectors]]
type = "spike"
metric = "web.latency_ms"

[alerts]
channels = [{ name = "log", type = "inapp" }]
routes = [{ channels = ["log"], group_wait = "0s" }]

[rollback]
command = "true"
timeout = "1m"
"#;

    fn cases() -> u32 {
        std::env::var("CASED_FUZZ_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000)
    }

    #[derive(Debug, Clone)]
    enum Edit {
        Insert(usize, String),
        Remove(usize, usize),
        Line(usize, String),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        let key = prop::sample::select(
            &[
                "intervals",
                "timeout",
                "name",
                "type",
                "url",
                "port",
                "metric",
                "cooldown",
                "failure_limit",
                "command",
                "channels",
                "max_duration",
                "expect",
                "x",
            ][..],
        );
        let value = prop::sample::select(
            &[
                "\"0s\"",
                "\"584942417y\"",
                "-1",
                "1e400",
                "[]",
                "{}",
                "\"\"",
                "true",
                "65536",
                "\"\\u0000\"",
                "[[1]]",
                "\"http\"",
                "nan",
                "inf",
            ][..],
        );
        prop_oneof![
            (any::<usize>(), ".{0,8}").prop_map(|(at, s)| Edit::Insert(at, s)),
            (any::<usize>(), 0usize..20).prop_map(|(at, n)| Edit::Remove(at, n)),
            (any::<usize>(), key, value)
                .prop_map(|(at, k, v)| Edit::Line(at, format!("{k} = {v}"))),
        ]
    }

    fn apply(text: &str, edits: &[Edit]) -> String {
        let mut t: Vec<char> = text.chars().collect();
        for e in edits {
            match e {
                Edit::Insert(at, s) => {
                    let at = at % (t.len() + 1);
                    t.splice(at..at, s.chars());
                }
                Edit::Remove(at, n) => {
                    if !t.is_empty() {
                        let at = at % t.len();
                        let end = (at + n).min(t.len());
                        t.drain(at..end);
                    }
                }
                Edit::Line(at, line) => {
                    let s: String = t.iter().collect();
                    let mut lines: Vec<String> = s.lines().map(str::to_owned).collect();
                    if !lines.is_empty() {
                        let i = at % lines.len();
                        lines[i] = line.clone();
                    }
                    t = lines.join("\n").chars().collect();
                }
            }
        }
        t.into_iter().collect()
    }

    fn judged(text: &str) -> Result<(), TestCaseError> {
        for name in ["cased.toml", "cased.json"] {
            match parse_config(Path::new(name), text) {
                Ok((config, _)) => {
                    // What loads also builds, or says which field is wrong.
                    if let Err(e) = cased_core::Monitor::builder(config).build() {
                        prop_assert!(!e.field_errors().is_empty(), "{e:?}");
                    }
                }
                Err(Failure::Usage(m)) => prop_assert!(!m.trim().is_empty()),
                Err(other) => prop_assert!(false, "not a usage error: {other:?}"),
            }
        }
        Ok(())
    }

    #[test]
    fn the_seed_is_valid() {
        parse_config(Path::new("cased.toml"), VALID).unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: cases(),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn a_mutated_cased_toml_is_read_or_refused_naming_the_problem(
            edits in prop::collection::vec(edit(), 1..4)
        ) {
            judged(&apply(VALID, &edits))?;
        }

        #[test]
        fn any_text_is_read_or_refused(text in ".{0,200}") {
            judged(&text)?;
        }
    }
}
