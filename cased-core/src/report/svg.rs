//! Inline SVG line charts: samples over time, a baseline band, the deploy and cool-down starts,
//! findings marked. Every text is escaped; nothing refers outside the document.

use std::fmt::Write as _;

use super::{Baseline, number};
use crate::severity::Severity;

const W: f64 = 720.0;
const H: f64 = 240.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 40.0;

/// Escapes text for HTML / SVG content and attribute values.
pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A finding to mark: when (seconds from the deploy start), how bad, what.
#[derive(Debug)]
pub(super) struct Mark {
    pub(super) at_secs: f64,
    pub(super) severity: Severity,
    pub(super) label: String,
}

/// A located change of level: when (seconds from the deploy start), its interval, what.
#[derive(Debug)]
pub(super) struct ChangeMark {
    pub(super) at_secs: f64,
    pub(super) earliest_secs: f64,
    pub(super) latest_secs: f64,
    pub(super) label: String,
}

/// One chart.
#[derive(Debug, Default)]
pub(super) struct Chart<'a> {
    /// The metric key (`data-metric`).
    pub(super) key: String,
    /// Unit shown on the y axis.
    pub(super) unit: String,
    /// `(seconds from the deploy start, value)`.
    pub(super) points: Vec<(f64, f64)>,
    pub(super) baseline: Option<&'a Baseline>,
    /// Seconds from the deploy start.
    pub(super) cooldown_at: Option<f64>,
    /// The session's end, in seconds: the x axis reaches at least this far.
    pub(super) end_secs: f64,
    pub(super) marks: Vec<Mark>,
    /// Where the level changed, when it was located.
    pub(super) change: Option<ChangeMark>,
    /// Horizontal reference lines (summary charts): label and value.
    pub(super) levels: Vec<(String, f64)>,
}

impl Chart<'_> {
    pub(super) fn render(&self) -> String {
        let xs = self
            .points
            .iter()
            .map(|p| p.0)
            .chain(self.marks.iter().map(|m| m.at_secs))
            .chain(
                self.change
                    .iter()
                    .flat_map(|c| [c.earliest_secs, c.latest_secs]),
            )
            .chain(self.cooldown_at);
        let (mut x0, mut x1) = (0.0f64, self.end_secs.max(0.0));
        for x in xs {
            x0 = x0.min(x);
            x1 = x1.max(x);
        }
        if x1 - x0 < 1e-9 {
            x1 = x0 + 1.0;
        }
        let ys = self
            .points
            .iter()
            .map(|p| p.1)
            .chain(self.levels.iter().map(|l| l.1))
            .chain(self.baseline.into_iter().flat_map(|b| [b.low, b.high]))
            .filter(|v| v.is_finite());
        let (mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY);
        for y in ys {
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
        if !y0.is_finite() {
            (y0, y1) = (0.0, 1.0);
        }
        if y0 >= 0.0 {
            y0 = 0.0;
        }
        if y1 - y0 < 1e-12 {
            y1 = y0 + y0.abs().max(1.0);
        }
        y1 += (y1 - y0) * 0.05;
        let step = nice_step((y1 - y0) / 4.0);
        y0 = (y0 / step).floor() * step;
        y1 = (y1 / step).ceil() * step;
        let steps = ((y1 - y0) / step).round() as i32;
        let pw = W - LEFT - RIGHT;
        let ph = H - TOP - BOTTOM;
        let sx = |x: f64| LEFT + (x - x0) / (x1 - x0) * pw;
        let sy = |y: f64| TOP + (1.0 - (y - y0) / (y1 - y0)) * ph;

        let mut o = String::new();
        let key = esc(&self.key);
        let _ = write!(
            o,
            r#"<svg class="chart" data-metric="{key}" role="img" viewBox="0 0 {W} {H}" width="{W}" height="{H}"><title>{key}</title>"#
        );
        let _ = write!(
            o,
            r#"<rect class="plot" x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}"/>"#
        );
        if let Some(b) = self
            .baseline
            .filter(|b| b.low.is_finite() && b.high.is_finite())
        {
            let (lo, hi) = (b.low.min(b.high), b.low.max(b.high));
            let _ = write!(
                o,
                r#"<rect class="baseline" x="{LEFT}" y="{:.1}" width="{pw}" height="{:.1}"><title>baseline {} to {}: {}</title></rect>"#,
                sy(hi),
                (sy(lo) - sy(hi)).max(1.0),
                number(lo),
                number(hi),
                esc(&b.label)
            );
        }
        // Y grid and labels.
        for i in 0..=steps {
            let v = y0 + step * f64::from(i);
            let y = sy(v);
            let _ = write!(
                o,
                r#"<line class="grid" x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/><text class="axis" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                LEFT + pw,
                LEFT - 6.0,
                y + 4.0,
                esc(&number(v))
            );
        }
        let _ = write!(
            o,
            r#"<text class="axis" x="12" y="{:.1}" transform="rotate(-90 12 {:.1})" text-anchor="middle">{}</text>"#,
            TOP + ph / 2.0,
            TOP + ph / 2.0,
            esc(&self.unit)
        );
        // X labels: start, deploy start, end.
        let mut xlabels = vec![x0, x1];
        if x0 < 0.0 {
            xlabels.push(0.0);
        }
        for x in xlabels {
            let _ = write!(
                o,
                r#"<text class="axis" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                sx(x),
                TOP + ph + 16.0,
                esc(&secs_label(x))
            );
        }
        let _ = write!(
            o,
            r#"<text class="axis" x="{:.1}" y="{:.1}" text-anchor="middle">time from the deploy start</text>"#,
            LEFT + pw / 2.0,
            H - 6.0
        );
        if x0 < 0.0 {
            vline(&mut o, sx(0.0), "deploy-start", "deploy start", 0.0);
        }
        if let Some(c) = self.cooldown_at {
            vline(&mut o, sx(c), "cooldown-start", "cool-down start", 1.0);
        }
        for (label, v) in &self.levels {
            let y = sy(*v);
            let _ = write!(
                o,
                r#"<line class="level" x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"><title>{}</title></line><text class="level-label" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                LEFT + pw,
                esc(&format!("{label}: {}", number(*v))),
                LEFT + pw - 4.0,
                y - 4.0,
                esc(&format!("{label} {}", number(*v)))
            );
        }
        let mut pts: Vec<(f64, f64)> = self
            .points
            .iter()
            .copied()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        if pts.len() > 1 {
            o.push_str(r#"<polyline class="series" points=""#);
            for (i, (x, y)) in pts.iter().enumerate() {
                let _ = write!(
                    o,
                    "{}{:.1},{:.1}",
                    if i == 0 { "" } else { " " },
                    sx(*x),
                    sy(*y)
                );
            }
            o.push_str(r#""/>"#);
        }
        for (x, y) in &pts {
            let class = if *x < 0.0 {
                "before"
            } else if self.cooldown_at.is_some_and(|c| *x >= c) {
                "cooldown"
            } else {
                "after"
            };
            let _ = write!(
                o,
                r#"<circle class="sample {class}" cx="{:.1}" cy="{:.1}" r="3"><title>{}: {}</title></circle>"#,
                sx(*x),
                sy(*y),
                esc(&secs_label(*x)),
                esc(&number(*y))
            );
        }
        if let Some(c) = self.change.as_ref().filter(|c| {
            c.at_secs.is_finite() && c.earliest_secs.is_finite() && c.latest_secs.is_finite()
        }) {
            let (a, b) = (sx(c.earliest_secs), sx(c.latest_secs));
            let x = sx(c.at_secs);
            let _ = write!(
                o,
                r#"<g class="change"><rect x="{a:.1}" y="{TOP}" width="{:.1}" height="{ph:.1}"/><line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}"/><title>{}</title></g>"#,
                (b - a).max(1.0),
                TOP + ph,
                esc(&c.label)
            );
        }
        for m in &self.marks {
            let x = sx(m.at_secs);
            let _ = write!(
                o,
                r#"<g class="finding {}"><line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}"/><path d="M{:.1} {TOP} l10 0 l-5 9 z"/><title>{}</title></g>"#,
                m.severity,
                TOP + ph,
                x - 5.0,
                esc(&format!(
                    "{} ({}) at {}",
                    m.label,
                    m.severity,
                    secs_label(m.at_secs)
                ))
            );
        }
        o.push_str("</svg>");
        o
    }
}

fn vline(o: &mut String, x: f64, class: &str, label: &str, row: f64) {
    // Labels near the right edge go on the line's left.
    let (lx, anchor) = if x > W - RIGHT - 110.0 {
        (x - 4.0, "end")
    } else {
        (x + 4.0, "start")
    };
    let _ = write!(
        o,
        r#"<line class="{class}" x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}"/><text class="marker-label" x="{lx:.1}" y="{:.1}" text-anchor="{anchor}">{label}</text>"#,
        H - BOTTOM,
        TOP + 12.0 + 14.0 * row
    );
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let p = 10f64.powf(raw.log10().floor());
    let f = raw / p;
    let m = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * p
}

fn secs_label(s: f64) -> String {
    let sign = if s < 0.0 { "-" } else { "" };
    let a = s.abs();
    if a < 60.0 {
        format!("{sign}{}s", number((a * 10.0).round() / 10.0))
    } else if a < 3600.0 {
        format!(
            "{sign}{}m{:02}s",
            (a / 60.0).floor(),
            (a % 60.0).round() as u64 % 60
        )
    } else {
        format!(
            "{sign}{}h{:02}m",
            (a / 3600.0).floor(),
            ((a % 3600.0) / 60.0).floor()
        )
    }
}
