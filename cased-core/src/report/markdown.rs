//! The Markdown report.

use std::fmt::Write as _;

use super::{
    Columns, ReportContext, check_stats, finding_time, headline, latency, number, shown_ticks,
    span, timestamp,
};
use crate::update::Report;

/// Escapes text for a Markdown table cell (or a line): no table breaks, no raw HTML, no links,
/// images or emphasis (`[`, `]`, `*`, `_`, `~` are backslash-escaped, so user text such as
/// `[Approve](https://evil.example)` or `**urgent**` shows as typed).
fn cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let chars: Vec<char> = s.chars().collect();
    for (i, &ch) in chars.iter().enumerate() {
        // An underscore inside a word (`latency_ms`) never starts emphasis: kept as is.
        let in_word = |j: Option<usize>| {
            j.and_then(|j| chars.get(j))
                .is_some_and(|c| c.is_alphanumeric())
        };
        match ch {
            '_' if in_word(i.checked_sub(1)) && in_word(Some(i + 1)) => out.push('_'),
            '|' | '\\' | '`' | '[' | ']' | '*' | '_' | '~' => {
                out.push('\\');
                out.push(ch);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\r' => {}
            '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

pub(super) fn render(r: &Report, ctx: &ReportContext) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "## {}\n", cell(&headline(r)));
    let _ = writeln!(o, "**Verdict: {}.** {}\n", r.verdict, cell(&r.reason));

    let e = &r.event;
    let _ = writeln!(
        o,
        "| Deployment | {} |\n|---|---|",
        cell(e.deployment_request())
    );
    let mut fact = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            let _ = writeln!(o, "| {k} | {v} |");
        }
    };
    fact("Repository", e.repository_full_name().map(cell));
    fact("Environment", e.environment().map(cell));
    fact("Commit", e.commit_sha().map(|c| format!("`{c}`")));
    fact("Ref", e.git_ref().map(cell));
    fact("Status", Some(e.status().as_str().to_owned()));
    fact("Pipeline", e.external_url().map(cell));
    fact("Session", Some(cell(&r.session_id)));
    fact("Started", Some(timestamp(r.started_at_unix_ms)));
    fact("Duration", Some(span(r.duration)));
    fact(
        "Cool-down started",
        r.cooldown_started.map(|d| format!("at {}", span(d))),
    );
    fact("Ended by", Some(ended_by(r)));
    let c = &r.counters;
    fact(
        "Ticks",
        Some(format!(
            "{} ({} measured, {} failed, {} warned; {} check errors)",
            r.ticks.len(),
            c.measured_ticks,
            c.failed_ticks,
            c.warned_ticks,
            c.errors
        )),
    );
    fact(
        "Rollback",
        r.rollback.as_ref().map(|rb| match &rb.error {
            None => format!("fired at {}", span(rb.elapsed)),
            Some(err) => format!("fired at {}; failed: {}", span(rb.elapsed), cell(err)),
        }),
    );
    if r.extended {
        fact(
            "Extended",
            Some("kept monitoring past the cool-down for lack of data".to_owned()),
        );
    }

    let _ = writeln!(o, "\n### Findings\n");
    if r.findings.is_empty() {
        let _ = writeln!(o, "No findings.");
    } else {
        let _ = writeln!(
            o,
            "| # | Severity | Metric | Detector | Raised | Evidence |\n|---|---|---|---|---|---|"
        );
        for (i, f) in r.findings.iter().enumerate() {
            let at = finding_time(r, ctx, i).map_or_else(
                || "-".to_owned(),
                |(t, d)| format!("tick {t} ({})", span(d)),
            );
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {at} | {} |",
                i + 1,
                f.severity,
                cell(&f.metric),
                cell(&f.detector),
                cell(&f.message)
            );
        }
    }

    if !r.changes.is_empty() {
        let _ = writeln!(o, "\n### When it changed\n");
        for c in &r.changes {
            let _ = writeln!(o, "- {}", cell(&c.message));
        }
    }

    let stats = check_stats(r);
    if !stats.is_empty() {
        let _ = writeln!(
            o,
            "\n### Checks\n\n| Check | Category | Pass | Warn | Fail | Error | Median latency | Max latency |\n|---|---|---|---|---|---|---|---|"
        );
        for s in &stats {
            let [p, w, f, e] = s.counts;
            let med = s.median().map_or_else(|| "-".to_owned(), latency);
            let max = s.max().map_or_else(|| "-".to_owned(), latency);
            let _ = writeln!(
                o,
                "| {} | {} | {p} | {w} | {f} | {e} | {med} | {max} |",
                cell(&s.name),
                s.category
            );
        }

        let _ = write!(o, "\n### Ticks\n\n| Tick | At | Phase | Verdict |");
        for s in &stats {
            let _ = write!(o, " {} |", cell(&s.name));
        }
        let _ = write!(o, "\n|---|---|---|---|");
        for _ in &stats {
            o.push_str("---|");
        }
        o.push('\n');
        let (ticks, omitted) = shown_ticks(r);
        let columns = Columns::new(&stats);
        for (k, t) in ticks.iter().enumerate() {
            if omitted > 0 && k == 10 {
                let _ = writeln!(
                    o,
                    "| ... | {omitted} ticks omitted | | |{}",
                    " |".repeat(stats.len())
                );
            }
            let phase = serde_json::to_value(t.phase)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let _ = write!(
                o,
                "| {} | {} | {phase} | {} |",
                t.tick,
                span(t.elapsed),
                t.verdict
            );
            for result in columns.row(t) {
                match result {
                    Some(c) => {
                        let _ = write!(o, " {}, {} |", c.status, latency(c.latency));
                    }
                    None => o.push_str(" - |"),
                }
            }
            o.push('\n');
        }
    }

    if !r.metrics.is_empty() {
        let _ = writeln!(
            o,
            "\n### Pushed metrics\n\n| Metric | Samples | In window | Last | Mean |\n|---|---|---|---|---|"
        );
        for (name, m) in &r.metrics {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} |",
                cell(name),
                m.count,
                m.window,
                number(m.last),
                number(m.mean)
            );
        }
    }

    if !ctx.alerts.is_empty() {
        let _ = writeln!(
            o,
            "\n### Alerts\n\n| Severity | State | Title | Dedup key | Fired |\n|---|---|---|---|---|"
        );
        for a in &ctx.alerts {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} |",
                a.severity,
                cell(&a.state),
                cell(&a.title),
                cell(&a.dedup_key),
                timestamp(a.created_at_unix_ms)
            );
        }
    }
    o
}

pub(super) fn ended_by(r: &Report) -> String {
    serde_json::to_value(r.ended_by)
        .ok()
        .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
        .unwrap_or_default()
}
