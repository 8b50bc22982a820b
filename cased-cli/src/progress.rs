//! The live progress of a session, shared by `cased monitor` and `cased demo`.
//!
//! On a terminal one status line is redrawn in place (tick, phase, next check, verdict, failed
//! checks), and each verdict change is printed on a line of its own above it. When stdout is not
//! a terminal (CI logs, tests) every update is one plain line.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use cased_core::{CheckStatus, Phase, Session, StatusUpdate, UpdateEvent, Verdict};

/// How to show progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// Redraw one line in place.
    Live,
    /// One line per update.
    Plain,
}

impl Style {
    /// `Live` when stdout is a terminal.
    pub(crate) fn detect() -> Self {
        if std::io::stdout().is_terminal() {
            Self::Live
        } else {
            Self::Plain
        }
    }
}

/// Follows `session` until it finishes, printing its progress on stdout. `on_change` is called
/// for every verdict change (after the first update), with the previous verdict.
pub(crate) async fn follow(
    session: &Session,
    style: Style,
    mut on_change: impl FnMut(Verdict, &StatusUpdate),
) {
    let mut updates = session.updates();
    let mut last: Option<Verdict> = None;
    while let Some(item) = updates.next().await {
        let u = match item {
            UpdateEvent::Update(u) => u,
            UpdateEvent::Skipped(n) => {
                line(
                    style,
                    &format!("({n} updates skipped: the display fell behind)"),
                );
                continue;
            }
        };
        if u.phase == Phase::Finished {
            if style == Style::Live {
                print!("\r\x1b[2K");
            }
            if let Some(prev) = last.filter(|v| *v != u.verdict) {
                on_change(prev, &u);
            }
            break;
        }
        if let Some(prev) = last.filter(|v| *v != u.verdict) {
            if style == Style::Live {
                print!("\r\x1b[2K");
            }
            on_change(prev, &u);
        }
        last = Some(u.verdict);
        line(style, &status_line(&u));
    }
    let _ = std::io::stdout().flush();
}

fn line(style: Style, text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = match style {
        Style::Live => write!(out, "\r\x1b[2K{text}"),
        Style::Plain => writeln!(out, "{text}"),
    };
    let _ = out.flush();
}

/// `tick 3 | active | verdict degraded | next check in 1.0s | failed: web (HTTP 503)`.
pub(crate) fn status_line(u: &StatusUpdate) -> String {
    let mut s = format!(
        "tick {} | {} | verdict {} | {}",
        u.tick,
        phase_name(u.phase),
        u.verdict,
        match u.next_tick_in {
            Some(d) => format!("next check in {}", short(d)),
            None => "no further check".to_owned(),
        }
    );
    let bad: Vec<String> = u
        .checks
        .iter()
        .filter(|c| {
            matches!(
                c.status,
                CheckStatus::Fail | CheckStatus::Error | CheckStatus::Warn
            )
        })
        .map(|c| format!("{} {}: {}", c.status, c.name, c.message))
        .collect();
    if bad.is_empty() {
        let n = u.checks.len();
        s.push_str(&format!(
            " | {n} check{} passed",
            if n == 1 { "" } else { "s" }
        ));
    } else {
        s.push_str(" | ");
        s.push_str(&bad.join("; "));
    }
    s
}

fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Pending => "pending",
        Phase::Active => "active",
        Phase::Cooldown => "cooldown",
        Phase::Finished => "finished",
    }
}

/// `850ms`, `1.5s`, `2m05s`.
pub(crate) fn short(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    }
}
