//! Reports of a session, from its [`Report`] (and what history adds): JSON, Markdown for a pull
//! request comment or `$GITHUB_STEP_SUMMARY`, and a self-contained HTML page with one inline
//! SVG chart per metric (no scripts, no network: not a single external URL).
//!
//! A [`ReportContext`] carries what the report itself does not: baseline bands, sample series
//! (before and after the deploy start), the tick at which each finding was raised (history
//! knows it) and the alerts. [`load`] builds both from a [`HistoryStore`].
//!
//! Charts: one per check (its latency at each tick, keyed by [`check_latency_metric`]), one per
//! pushed metric (its series from the context, or else its summary: mean and last value), and
//! one per other series in the context. A chart shows the baseline band when the context has
//! one for its key, colours samples before the deploy start (negative times), during the
//! rollout and after the cool-down start differently, and marks the findings whose `metric`
//! is the chart's key (or the check's name) at the time they were raised.
//!
//! The SVG is generated here rather than with `plotters`: a chart is a few dozen elements, the
//! output must carry classes, `<title>` tooltips and escaped text we control, and it keeps the
//! core free of a drawing stack.

mod html;
mod markdown;
mod svg;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::history::{AlertRecord, HistoryStore};
use crate::update::Report;

/// A band of normal values for one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Lower edge.
    pub low: f64,
    /// Upper edge.
    pub high: f64,
    /// Where it comes from, e.g. `"last 5 healthy deployments (240 samples)"`.
    pub label: String,
}

/// One sample of a series, timed from the deploy start (negative: before it).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoint {
    /// Milliseconds from the session's start; negative before the deploy.
    pub elapsed_ms: f64,
    /// The value.
    pub value: f64,
}

/// What a report shows beyond the [`Report`] itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReportContext {
    /// Baseline bands by metric key.
    pub baselines: BTreeMap<String, Baseline>,
    /// Sample series by metric key.
    pub series: BTreeMap<String, Vec<SeriesPoint>>,
    /// The tick that raised each of the report's findings (same order), where known.
    pub finding_ticks: Vec<Option<u32>>,
    /// The session's alerts.
    pub alerts: Vec<AlertRecord>,
}

/// The chart key of a check's latency: `"<check>.latency_ms"`.
#[must_use]
pub fn check_latency_metric(check: &str) -> String {
    format!("{check}.latency_ms")
}

/// A report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// The report as pretty JSON.
    Json,
    /// Markdown for a pull request comment or a CI step summary.
    Markdown,
    /// A self-contained HTML page.
    Html,
}

impl FromStr for Format {
    type Err = Error;

    /// `json`, `md` / `markdown`, `html` (any case).
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(Self::Json),
            "md" | "markdown" => Ok(Self::Markdown),
            "html" | "htm" => Ok(Self::Html),
            other => Err(Error::invalid(
                "format",
                format!("{other:?} is not one of json, md, html"),
            )),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Json => "json",
            Self::Markdown => "md",
            Self::Html => "html",
        })
    }
}

/// Renders `report` in `format`.
#[must_use]
pub fn render(report: &Report, context: &ReportContext, format: Format) -> String {
    match format {
        Format::Json => to_json(report),
        Format::Markdown => to_markdown(report, context),
        Format::Html => to_html(report, context),
    }
}

/// The report as pretty JSON (the same fields as [`Report::to_json`]).
#[must_use]
pub fn to_json(report: &Report) -> String {
    serde_json::to_string_pretty(report).expect("reports always serialize")
}

/// The report as Markdown: the verdict first, then the deployment, the findings with their
/// evidence, per-check and per-tick tables, pushed metrics and alerts. Table cells are escaped
/// (`|`, `<`, `>`, line breaks), so user text cannot break the layout or inject HTML.
#[must_use]
pub fn to_markdown(report: &Report, context: &ReportContext) -> String {
    markdown::render(report, context)
}

/// The report as one self-contained HTML page: no script, no external URL, every user-provided
/// text escaped, one inline `<svg>` chart per metric.
#[must_use]
pub fn to_html(report: &Report, context: &ReportContext) -> String {
    html::render(report, context)
}

/// The HTML report's metrics section alone: a `<style>` for its charts, then `<section
/// id="charts">` with one `<figure>` of inline SVG per metric (its baseline band, the deploy and
/// cool-down marks, the findings and the located change), exactly as [`to_html`] draws them.
/// For pages that show the charts among content of their own (Mission Control's deployment
/// page); every user-provided text is escaped, and there is no script and no external URL.
#[must_use]
pub fn charts_html(report: &Report, context: &ReportContext) -> String {
    html::charts_section(report, context)
}

/// A finished session's report and its context (finding ticks, alerts) from history; `None`
/// when the session is unknown or has no final report yet.
///
/// # Errors
/// [`Error::Storage`] when the store fails.
pub async fn load(
    store: &dyn HistoryStore,
    session_id: &str,
) -> Result<Option<(Report, ReportContext)>> {
    let Some(report) = store.report(session_id).await? else {
        return Ok(None);
    };
    let findings = store.findings(session_id).await?;
    let finding_ticks = (0..report.findings.len())
        .map(|i| findings.get(i).and_then(|f| f.tick))
        .collect();
    let alerts = store.alerts(session_id).await?;
    Ok(Some((
        report,
        ReportContext {
            finding_ticks,
            alerts,
            ..ReportContext::default()
        },
    )))
}

// ---- shared formatting --------------------------------------------------------------------

/// `"Deployment unhealthy: acme/shop to prod"`.
pub(crate) fn headline(report: &Report) -> String {
    let what = report
        .event
        .repository_full_name()
        .unwrap_or(report.event.deployment_request());
    match report.event.environment() {
        Some(env) => format!("Deployment {}: {what} to {env}", report.verdict),
        None => format!("Deployment {}: {what}", report.verdict),
    }
}

/// A span for people: `"850 ms"`, `"40s"`, `"1m 40s"`, `"2h 5m"`.
pub(crate) fn span(d: Duration) -> String {
    if d.is_zero() {
        return "0s".to_owned();
    }
    if d < Duration::from_secs(1) {
        return latency(d);
    }
    let s = d.as_secs();
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, 0, _) => format!("{h}h"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

/// A latency: `"0.4 ms"`, `"12 ms"`, `"1.25 s"`.
pub(crate) fn latency(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

/// A number with a sensible number of digits.
pub(crate) fn number(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".to_owned();
    }
    let a = v.abs();
    let s = if a != 0.0 && !(0.01..1e6).contains(&a) {
        format!("{v:.3e}")
    } else if a >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    if s == "-0" { "0".to_owned() } else { s }
}

/// `"2024-01-01T10:00:00Z"`.
pub(crate) fn timestamp(unix_ms: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_millis(unix_ms))
        .to_string()
}

/// Per-check statistics over the ticks.
#[derive(Debug, Default)]
pub(crate) struct CheckStats {
    pub(crate) name: String,
    pub(crate) category: &'static str,
    pub(crate) counts: [u32; 4],
    pub(crate) latencies: Vec<Duration>,
    /// When each latency was measured (the tick's start), beside `latencies`.
    pub(crate) at: Vec<Duration>,
}

impl CheckStats {
    pub(crate) fn median(&self) -> Option<Duration> {
        let mut l = self.latencies.clone();
        l.sort_unstable();
        l.get(l.len().wrapping_sub(1) / 2).copied()
    }
    pub(crate) fn max(&self) -> Option<Duration> {
        self.latencies.iter().max().copied()
    }
}

/// The checks of the report, in order of first appearance. Linear in the number of results:
/// checks are found by name through a hash map, never by a search of the list.
pub(crate) fn check_stats(report: &Report) -> Vec<CheckStats> {
    let mut out: Vec<CheckStats> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for t in &report.ticks {
        for c in &t.checks {
            let i = *index.entry(&c.name).or_insert_with(|| {
                out.push(CheckStats {
                    name: c.name.to_string(),
                    category: category_name(c.category),
                    ..CheckStats::default()
                });
                out.len() - 1
            });
            let s = &mut out[i];
            s.counts[c.status as usize] += 1;
            s.latencies.push(c.latency);
            s.at.push(t.elapsed);
        }
    }
    out
}

/// Column lookup for the tick tables: each check's position in `stats`.
pub(crate) struct Columns<'a>(HashMap<&'a str, usize>);

impl<'a> Columns<'a> {
    pub(crate) fn new(stats: &'a [CheckStats]) -> Self {
        Self(
            stats
                .iter()
                .enumerate()
                .map(|(i, s)| (s.name.as_str(), i))
                .collect(),
        )
    }

    /// The results of tick `t` in the order of the columns (`None`: the check did not run).
    pub(crate) fn row<'t>(&self, t: &'t crate::TickRecord) -> Vec<Option<&'t crate::CheckResult>> {
        let mut row = vec![None; self.0.len()];
        for c in &t.checks {
            if let Some(&i) = self.0.get(&*c.name)
                && row[i].is_none()
            {
                row[i] = Some(c);
            }
        }
        row
    }
}

fn category_name(c: crate::CheckCategory) -> &'static str {
    match c {
        crate::CheckCategory::Availability => "availability",
        crate::CheckCategory::Endpoint => "endpoint",
        crate::CheckCategory::Database => "database",
        crate::CheckCategory::Dependency => "dependency",
    }
}

/// When finding `i` was raised: its tick and that tick's start, where known.
pub(crate) fn finding_time(
    report: &Report,
    context: &ReportContext,
    i: usize,
) -> Option<(u32, Duration)> {
    let tick = context.finding_ticks.get(i).copied().flatten()?;
    report
        .ticks
        .iter()
        .find(|t| t.tick == tick)
        .map(|t| (tick, t.elapsed))
}

/// The ticks shown in tables: all up to 50, else the first 10 and the last 40.
pub(crate) fn shown_ticks(report: &Report) -> (Vec<&crate::TickRecord>, usize) {
    let n = report.ticks.len();
    if n <= 50 {
        (report.ticks.iter().collect(), 0)
    } else {
        (
            report.ticks[..10]
                .iter()
                .chain(&report.ticks[n - 40..])
                .collect(),
            n - 50,
        )
    }
}
