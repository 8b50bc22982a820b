//! History and trends of one repository + environment: its deployments over a window and the
//! four DORA metrics, computed by [`dora`], a plain function over a fixed history.
//!
//! - **Deployment frequency**: deployments in the window per day.
//! - **Lead time for changes**: from the commit's time (`event_metadata.commit_time`: Unix
//!   milliseconds or RFC 3339) to the deployment's arrival; the median, over the deployments
//!   that carry it.
//! - **Change failure rate**: unhealthy deployments / deployments with a final verdict.
//! - **Time to restore**: from an unhealthy deployment's arrival to the end of the session of the
//!   next healthy (or degraded) one; the median over the unhealthy deployments that were
//!   followed by one, and how many were not (yet).
//!
//! Beside them: each deployment's **time to detect** (from the history store: deploy start to
//! the first critical finding or failed tick) and, for the last [`PERFORMANCE_DEPLOYMENTS`]
//! monitored ones, each key metric's **median** in that deployment ([`medians`]).

use std::collections::BTreeMap;

use cased_core::{MetricSummary, Report, TickRecord, Verdict};
use serde::Serialize;

/// How many of the latest monitored deployments the performance trends cover.
pub(crate) const PERFORMANCE_DEPLOYMENTS: usize = 20;

/// The `event_metadata` key holding the deployed commit's time.
pub(crate) const COMMIT_TIME_KEY: &str = "commit_time";

const DAY_MS: f64 = 86_400_000.0;

/// One deployment as the trends need it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Point {
    pub(crate) id: String,
    pub(crate) created_at_unix_ms: u64,
    /// When its session ended (its verdict became final), if it did.
    pub(crate) finished_at_unix_ms: Option<u64>,
    pub(crate) verdict: Option<Verdict>,
    /// `event_metadata.commit_time` of its first event, when present and readable.
    pub(crate) commit_time_unix_ms: Option<u64>,
    /// The history session that monitored it, if one did.
    pub(crate) session_id: Option<String>,
    /// Deploy start to detection, when its session detected a problem.
    pub(crate) time_to_detect_ms: Option<f64>,
}

/// One deployment's key metrics: each one's median over the deployment's session.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Performance {
    pub(crate) id: String,
    pub(crate) created_at_unix_ms: u64,
    pub(crate) verdict: Option<Verdict>,
    /// Metric → its median in this deployment.
    pub(crate) medians: BTreeMap<String, f64>,
}

/// Each key metric's median in one session: every check's latency over the ticks it ran in
/// (`<check>.latency_ms`, as the report's charts name it) and every pushed or source metric's
/// median over its window.
pub(crate) fn medians(report: &Report) -> BTreeMap<String, f64> {
    medians_of(&report.ticks, &report.metrics)
}

fn medians_of(
    ticks: &[TickRecord],
    metrics: &BTreeMap<String, MetricSummary>,
) -> BTreeMap<String, f64> {
    let mut latencies: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for tick in ticks {
        for check in &tick.checks {
            latencies
                .entry(cased_core::report::check_latency_metric(&check.name))
                .or_default()
                .push(check.latency.as_secs_f64() * 1000.0);
        }
    }
    let mut out: BTreeMap<String, f64> = latencies
        .into_iter()
        .filter_map(|(k, v)| median_f64(v).map(|m| (k, m)))
        .collect();
    for (k, m) in metrics {
        if let Some(median) = m.median {
            out.insert(k.clone(), median);
        }
    }
    out
}

fn median_f64(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable_by(f64::total_cmp);
    let n = v.len();
    Some((v[(n - 1) / 2] + v[n / 2]) / 2.0)
}

/// The four DORA metrics over a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Dora {
    /// Deployments in the window.
    pub(crate) deployments: usize,
    /// The window's length in days.
    pub(crate) days: f64,
    /// Deployments per day.
    pub(crate) deployment_frequency_per_day: f64,
    /// Median lead time for changes, ms; `None` when no deployment carries `commit_time`.
    pub(crate) lead_time_ms: Option<u64>,
    /// Deployments whose lead time was known.
    pub(crate) lead_time_samples: usize,
    /// Unhealthy / deployments with a final verdict; `None` when none has one.
    pub(crate) change_failure_rate: Option<f64>,
    pub(crate) unhealthy: usize,
    /// Deployments with a final verdict (healthy, degraded, unhealthy or inconclusive).
    pub(crate) finished: usize,
    /// Median time to restore, ms; `None` when no unhealthy deployment was followed by a
    /// healthy one.
    pub(crate) time_to_restore_ms: Option<u64>,
    pub(crate) restored: usize,
    /// Unhealthy deployments not followed by a healthy one in the window.
    pub(crate) unrestored: usize,
}

/// The commit time of `event_metadata`, when it holds a readable one.
#[cfg(test)]
fn commit_time(metadata: &serde_json::Value) -> Option<u64> {
    commit_time_of(metadata.get(COMMIT_TIME_KEY)?)
}

/// A `commit_time` value as Unix milliseconds: a number of them, or an RFC 3339 time.
pub(crate) fn commit_time_of(value: &serde_json::Value) -> Option<u64> {
    match value {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => humantime::parse_rfc3339_weak(s)
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_millis() as u64),
        _ => None,
    }
}

fn median(mut v: Vec<u64>) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    })
}

/// The DORA metrics of `points` (any order) in the window `[from_ms, to_ms]`.
pub(crate) fn dora(points: &[Point], from_ms: u64, to_ms: u64) -> Dora {
    let mut ps: Vec<&Point> = points
        .iter()
        .filter(|p| (from_ms..=to_ms).contains(&p.created_at_unix_ms))
        .collect();
    ps.sort_by_key(|p| p.created_at_unix_ms);
    let days = (to_ms.saturating_sub(from_ms) as f64 / DAY_MS).max(1.0 / 24.0);
    let leads: Vec<u64> = ps
        .iter()
        .filter_map(|p| {
            p.commit_time_unix_ms
                .filter(|c| *c <= p.created_at_unix_ms)
                .map(|c| p.created_at_unix_ms - c)
        })
        .collect();
    let finished = ps.iter().filter(|p| p.verdict.is_some()).count();
    let unhealthy = ps
        .iter()
        .filter(|p| p.verdict == Some(Verdict::Unhealthy))
        .count();
    let mut restores = Vec::new();
    let mut unrestored = 0;
    for (i, p) in ps.iter().enumerate() {
        if p.verdict != Some(Verdict::Unhealthy) {
            continue;
        }
        let next_good = ps[i + 1..]
            .iter()
            .find(|q| matches!(q.verdict, Some(Verdict::Healthy | Verdict::Degraded)));
        match next_good {
            Some(q) => {
                let at = q.finished_at_unix_ms.unwrap_or(q.created_at_unix_ms);
                restores.push(at.saturating_sub(p.created_at_unix_ms));
            }
            None => unrestored += 1,
        }
    }
    Dora {
        deployments: ps.len(),
        days,
        deployment_frequency_per_day: ps.len() as f64 / days,
        lead_time_samples: leads.len(),
        lead_time_ms: median(leads),
        change_failure_rate: (finished > 0).then(|| unhealthy as f64 / finished as f64),
        unhealthy,
        finished,
        restored: restores.len(),
        time_to_restore_ms: median(restores),
        unrestored,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const H: u64 = 3_600_000;

    #[test]
    fn medians_are_of_every_check_latency_and_pushed_metric() {
        let check = |name: &str, ms: u64| {
            serde_json::json!({"name": name, "category": "endpoint", "status": "pass",
                "latency_ms": ms, "message": "", "evidence": null})
        };
        let tick = |n: u32, a: u64, b: u64| {
            serde_json::json!({"tick": n, "phase": "active", "elapsed_ms": 0, "late_ms": 0,
                "checks": [check("web", a), check("api", b)], "verdict": "healthy"})
        };
        let ticks: Vec<cased_core::TickRecord> = serde_json::from_value(serde_json::json!([
            tick(1, 10, 100),
            tick(2, 30, 300),
            tick(3, 20, 200),
            tick(4, 40, 900)
        ]))
        .unwrap();
        let metrics = serde_json::from_value(serde_json::json!({
            "p99_ms": {"count": 3, "window": 3, "last": 5.0, "mean": 4.0, "median": 3.5},
            "old": {"count": 1, "window": 1, "last": 1.0, "mean": 1.0}
        }))
        .unwrap();
        let got = super::medians_of(&ticks, &metrics);
        assert_eq!(
            got.into_iter().collect::<Vec<_>>(),
            [
                ("api.latency_ms".to_owned(), 250.0),
                ("p99_ms".to_owned(), 3.5),
                ("web.latency_ms".to_owned(), 25.0)
            ]
        );
    }

    fn p(id: &str, at_h: u64, verdict: Option<Verdict>, lead_h: Option<u64>) -> Point {
        Point {
            id: id.into(),
            created_at_unix_ms: at_h * H,
            finished_at_unix_ms: verdict.map(|_| at_h * H + H / 2),
            verdict,
            commit_time_unix_ms: lead_h.map(|l| at_h * H - l * H),
            session_id: None,
            time_to_detect_ms: None,
        }
    }

    /// Ten days; six deployments: healthy, unhealthy (restored 2.5 h later by the healthy one
    /// after an inconclusive), unhealthy (never restored), one still running, one outside.
    fn history() -> Vec<Point> {
        use Verdict::*;
        vec![
            p("before-window", 1, Some(Unhealthy), None),
            p("a", 24, Some(Healthy), Some(2)),
            p("b", 48, Some(Unhealthy), Some(4)),
            p("c", 49, Some(Inconclusive), None),
            p("d", 50, Some(Healthy), Some(6)),
            p("e", 100, Some(Unhealthy), Some(1)),
            p("f", 101, None, None),
        ]
    }

    #[test]
    fn the_four_metrics_of_a_fixed_history() {
        let d = dora(&history(), 10 * H, 10 * H + 240 * H);
        assert_eq!(d.deployments, 6);
        assert_eq!(d.days, 10.0);
        assert!((d.deployment_frequency_per_day - 0.6).abs() < 1e-9);
        // Lead times 2, 4, 6, 1 hours: the median is 3 h.
        assert_eq!((d.lead_time_samples, d.lead_time_ms), (4, Some(3 * H)));
        // 2 unhealthy of 5 with a final verdict.
        assert_eq!((d.unhealthy, d.finished), (2, 5));
        assert_eq!(d.change_failure_rate, Some(0.4));
        // b at 48 h is restored when d's session ends, at 50.5 h; e never is.
        assert_eq!((d.restored, d.unrestored), (1, 1));
        assert_eq!(d.time_to_restore_ms, Some(5 * H / 2));
    }

    #[test]
    fn an_empty_window_has_no_rates() {
        let d = dora(&history(), 1000 * H, 1001 * H);
        assert_eq!(d.deployments, 0);
        assert_eq!(d.change_failure_rate, None);
        assert_eq!(d.lead_time_ms, None);
        assert_eq!(d.time_to_restore_ms, None);
        assert_eq!(d.deployment_frequency_per_day, 0.0);
    }

    #[test]
    fn commit_time_is_milliseconds_or_rfc_3339() {
        assert_eq!(commit_time(&json!({"commit_time": 42})), Some(42));
        assert_eq!(
            commit_time(&json!({"commit_time": "2026-12-04T15:00:00Z"})),
            Some(1_796_396_400_000)
        );
        assert_eq!(commit_time(&json!({"commit_time": "yesterday"})), None);
        assert_eq!(commit_time(&json!({})), None);
    }
}
