//! When a metric changed: the values a session keeps of its watched metrics, and the change
//! points located on them when it ends ([`Report::changes`](crate::Report)).
//!
//! The detectors say *that* a metric moved; [`SeriesLog::locate`] says *when*, for every metric
//! with an alarm of warning severity or worse. With values from before the deploy (a source's
//! pre-deploy window) the level before is estimated from the series itself; without them it is
//! the level the alarm compared with (the baseline's), and the change may lie at the very first
//! value after the deploy. See [`crate::detect::locate_change`] for the model and the interval.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::detect::{DetectionKind, Finding, locate_change, num};
use crate::metrics::{CountsSample, Sample};
use crate::severity::Severity;
use crate::update::ChangePoint;

/// The most values kept per metric, before and after the deploy each (the oldest after-deploy
/// values are kept; a change after that many is located on the first ones only).
pub(crate) const MAX_POINTS: usize = 4096;

/// One metric's values: `(unix seconds, value)`, before the deploy and from it on.
#[derive(Debug, Default)]
struct Series {
    before: Vec<(f64, f64)>,
    after: Vec<(f64, f64)>,
}

/// The values of a session's watched metrics, in time order per metric.
#[derive(Debug, Default)]
pub(crate) struct SeriesLog {
    series: BTreeMap<String, Series>,
}

/// A counts sample as one value: the error rate of its interval (`None` without requests).
fn rate(c: &CountsSample) -> Option<f64> {
    (c.counts.requests > 0).then(|| c.counts.errors as f64 / c.counts.requests as f64)
}

impl SeriesLog {
    /// Keeps the pre-deploy window of the watched metrics.
    pub(crate) fn record_before<'a>(
        &mut self,
        samples: impl IntoIterator<Item = &'a Sample>,
        counts: &[CountsSample],
        watched: &std::collections::HashSet<String>,
    ) {
        let values = samples
            .into_iter()
            .map(|s| (s.metric.as_str(), s.timestamp, s.value))
            .chain(
                counts
                    .iter()
                    .filter_map(|c| Some((c.metric.as_str(), c.timestamp, rate(c)?))),
            );
        for (metric, at, value) in values {
            if watched.contains(metric) && value.is_finite() {
                let s = self.series.entry(metric.to_owned()).or_default();
                if s.before.len() < MAX_POINTS {
                    s.before.push((at, value));
                }
            }
        }
        for s in self.series.values_mut() {
            s.before.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
    }

    /// Keeps one value seen after the deploy (values of unwatched metrics are not kept).
    pub(crate) fn record(&mut self, metric: &str, at: f64, value: f64) {
        if !value.is_finite() {
            return;
        }
        let s = match self.series.get_mut(metric) {
            Some(s) => s,
            None => self.series.entry(metric.to_owned()).or_default(),
        };
        if s.after.len() < MAX_POINTS {
            // Samples arrive in time order per tick; a late one is put in its place.
            let at_end = s.after.last().is_none_or(|l| l.0 <= at);
            if at_end {
                s.after.push((at, value));
            } else {
                let i = s.after.partition_point(|p| p.0 <= at);
                s.after.insert(i, (at, value));
            }
        }
    }

    /// Keeps one counts sample seen after the deploy, as its error rate.
    pub(crate) fn record_counts(&mut self, c: &CountsSample) {
        if let Some(r) = rate(c) {
            self.record(&c.metric, c.timestamp, r);
        }
    }

    /// One change point per metric with an alarm of warning severity or worse, located on its
    /// values; `started` is the session's start (Unix seconds).
    pub(crate) fn locate(&self, findings: &[Finding], started: f64) -> Vec<ChangePoint> {
        // The first alarm of each metric: its level is the baseline when nothing came before.
        let mut alarmed: BTreeMap<&str, &Finding> = BTreeMap::new();
        for f in findings {
            if f.kind == DetectionKind::Alarm && f.severity >= Severity::Warning {
                alarmed.entry(f.metric.as_str()).or_insert(f);
            }
        }
        alarmed
            .into_iter()
            .filter_map(|(metric, f)| self.locate_one(metric, f, started))
            .collect()
    }

    fn locate_one(&self, metric: &str, alarm: &Finding, started: f64) -> Option<ChangePoint> {
        let s = self.series.get(metric)?;
        let points: Vec<(f64, f64)> = s.before.iter().chain(&s.after).copied().collect();
        let values: Vec<f64> = points.iter().map(|p| p.1).collect();
        // Without values from before the deploy, the level before is the one the alarm compared
        // with; with them, the series says it (and a change before the deploy can be seen).
        let known = if s.before.len() >= 2 {
            None
        } else {
            alarm.baseline.filter(|b| b.is_finite())
        };
        let l = locate_change(&values, known)?;
        let at = points[l.index].0;
        // The change happened after the value before the interval (or the deploy, when the
        // interval starts at the first value and nothing came before) and at or before `high`.
        let earliest = match l.low.checked_sub(1) {
            Some(i) => points[i].0,
            None => points[0].0.min(started),
        };
        let latest = points[l.high].0;
        let ms = |t: f64| (t.max(0.0) * 1000.0).round() as u64;
        let after_start_ms = ((at - started) * 1000.0).round() as i64;
        let half_width = Duration::from_secs_f64(((latest - earliest) / 2.0).max(0.0));
        let moved = if l.after >= l.before { "rose" } else { "fell" };
        let when = crate::report::timestamp(ms(at));
        let relative = if after_start_ms >= 0 {
            format!(
                "{} after the rollout started",
                crate::report::span(Duration::from_millis(after_start_ms as u64))
            )
        } else {
            format!(
                "{} before the rollout started",
                crate::report::span(Duration::from_millis(after_start_ms.unsigned_abs()))
            )
        };
        let message = format!(
            "{metric} {moved} from {} to {} at {when} ± {}, {relative}.",
            num(l.before),
            num(l.after),
            crate::report::span(half_width),
        );
        Some(ChangePoint {
            metric: metric.to_owned(),
            at_unix_ms: ms(at),
            earliest_unix_ms: ms(earliest),
            latest_unix_ms: ms(latest),
            after_start_ms,
            before: l.before,
            after: l.after,
            n: values.len(),
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alarm(metric: &str, baseline: Option<f64>) -> Finding {
        let mut f = Finding::new(metric, "baseline", Severity::Critical, "moved");
        f.baseline = baseline;
        f
    }

    #[test]
    fn a_step_after_the_deploy_is_located_against_the_baseline() {
        let mut log = SeriesLog::default();
        let start = 1_000_000.0;
        // Ticks 10 s apart; the level moves from 100 to 200 at the fourth.
        for i in 0..12 {
            let v = if i < 3 { 100.0 } else { 200.0 } + f64::from(i % 3);
            log.record("p95", start + 10.0 * f64::from(i), v);
        }
        let changes = log.locate(&[alarm("p95", Some(100.0))], start);
        assert_eq!(changes.len(), 1, "{changes:?}");
        let c = &changes[0];
        assert_eq!(c.after_start_ms, 30_000, "{c:?}");
        assert!(c.earliest_unix_ms <= c.at_unix_ms && c.at_unix_ms <= c.latest_unix_ms);
        assert!(
            c.message.starts_with("p95 rose from 100 to"),
            "{}",
            c.message
        );
        assert!(
            c.message.contains("30s after the rollout started"),
            "{}",
            c.message
        );
    }

    #[test]
    fn pre_deploy_values_locate_a_change_with_both_levels_estimated() {
        let mut log = SeriesLog::default();
        let watched = ["errors".to_owned()].into_iter().collect();
        let before: Vec<Sample> = (0..20)
            .map(|i| Sample::at("errors", 900.0 + f64::from(i) * 5.0, 1.0 + f64::from(i % 2)))
            .collect();
        log.record_before(&before, &[], &watched);
        for i in 0..10 {
            log.record(
                "errors",
                1000.0 + f64::from(i) * 5.0,
                20.0 + f64::from(i % 2),
            );
        }
        // The baseline given to the alarm is ignored: the series has its own level before.
        let c = &log.locate(&[alarm("errors", Some(500.0))], 1000.0)[0];
        assert_eq!(c.at_unix_ms, 1_000_000);
        assert!((c.before - 1.5).abs() < 0.01, "{c:?}");
        assert_eq!(c.n, 30);
        assert!(
            c.message.contains("0s after the rollout started"),
            "{}",
            c.message
        );
    }

    #[test]
    fn only_alarms_of_warning_or_worse_are_located() {
        let mut log = SeriesLog::default();
        for i in 0..6 {
            log.record("m", f64::from(i), if i < 3 { 1.0 } else { 9.0 });
        }
        let mut info = alarm("m", Some(1.0));
        info.severity = Severity::Info;
        let mut cleared = alarm("m", Some(1.0));
        cleared.kind = DetectionKind::Resolved;
        assert!(log.locate(&[info, cleared], 0.0).is_empty());
        assert!(log.locate(&[alarm("other", None)], 0.0).is_empty());
        assert_eq!(log.locate(&[alarm("m", Some(1.0))], 0.0).len(), 1);
    }
}
