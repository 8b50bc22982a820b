//! A session's timeline, kept compactly until the report: one [`TickRecord`] per tick, with
//! the check results of every tick in one flat vector (no allocation per tick), each message
//! shared with the previous tick's when it did not change, and no room for evidence that is
//! `null`. [`Timeline::into_records`] gives back exactly the records pushed.

use std::sync::Arc;
use std::time::Duration;

use crate::check::{CheckCategory, CheckStatus};
use crate::update::{CheckResult, Phase, TickRecord};
use crate::verdict::Verdict;

/// One tick, without its check results.
#[derive(Debug)]
struct Entry {
    tick: u32,
    /// How many check results the tick had (they follow the previous tick's).
    checks: u32,
    phase: Phase,
    verdict: Verdict,
    elapsed: Duration,
    late: Duration,
}

/// One check result of one tick.
#[derive(Debug)]
struct Kept {
    name: Arc<str>,
    latency: Duration,
    message: Arc<str>,
    /// `None` for `null`, the evidence of most results.
    evidence: Option<Box<serde_json::Value>>,
    category: CheckCategory,
    status: CheckStatus,
}

/// The ticks of one session so far.
#[derive(Debug, Default)]
pub(crate) struct Timeline {
    entries: Vec<Entry>,
    checks: Vec<Kept>,
}

/// Makes room for one more item, growing by half (the timeline lives as long as the session).
fn grow<T>(v: &mut Vec<T>, by: usize) {
    if v.capacity() - v.len() < by {
        let more = if v.is_empty() { 4 } else { v.len() / 2 }.max(by);
        v.reserve_exact(more);
    }
}

impl Timeline {
    /// Adds one tick.
    pub(crate) fn push(
        &mut self,
        tick: u32,
        phase: Phase,
        elapsed: Duration,
        late: Duration,
        checks: &[CheckResult],
        verdict: Verdict,
    ) {
        grow(&mut self.entries, 1);
        grow(&mut self.checks, checks.len());
        // The previous tick's results, to share unchanged messages with.
        let previous = self
            .entries
            .last()
            .map_or(0, |e| e.checks as usize)
            .min(self.checks.len());
        let previous = self.checks.len() - previous..self.checks.len();
        for (i, c) in checks.iter().enumerate() {
            let message = self.checks[previous.clone()]
                .get(i)
                .filter(|k| *k.message == *c.message)
                .map_or_else(|| Arc::from(c.message.as_str()), |k| Arc::clone(&k.message));
            self.checks.push(Kept {
                name: Arc::clone(&c.name),
                latency: c.latency,
                message,
                evidence: (!c.evidence.is_null()).then(|| Box::new(c.evidence.clone())),
                category: c.category,
                status: c.status,
            });
        }
        self.entries.push(Entry {
            tick,
            checks: u32::try_from(checks.len()).expect("fewer than 2^32 checks"),
            phase,
            verdict,
            elapsed,
            late,
        });
    }

    /// The records, in order.
    pub(crate) fn into_records(self) -> Vec<TickRecord> {
        let mut checks = self.checks.into_iter();
        self.entries
            .into_iter()
            .map(|e| TickRecord {
                tick: e.tick,
                phase: e.phase,
                elapsed: e.elapsed,
                late: e.late,
                checks: checks
                    .by_ref()
                    .take(e.checks as usize)
                    .map(|k| CheckResult {
                        name: k.name,
                        category: k.category,
                        status: k.status,
                        latency: k.latency,
                        message: k.message.to_string(),
                        evidence: k.evidence.map_or(serde_json::Value::Null, |b| *b),
                    })
                    .collect(),
                verdict: e.verdict,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &Arc<str>, status: CheckStatus, ms: u64, message: &str) -> CheckResult {
        CheckResult {
            name: Arc::clone(name),
            category: CheckCategory::default(),
            status,
            latency: Duration::from_millis(ms),
            message: message.to_owned(),
            evidence: serde_json::Value::Null,
        }
    }

    #[test]
    fn records_come_back_as_pushed() {
        let a: Arc<str> = Arc::from("a");
        let b: Arc<str> = Arc::from("b");
        let mut with_evidence = result(&b, CheckStatus::Fail, 7, "503");
        with_evidence.evidence = serde_json::json!({"status": 503, "body": "down"});
        let ticks = vec![
            vec![
                result(&a, CheckStatus::Pass, 1, "ok"),
                result(&b, CheckStatus::Pass, 2, "ok"),
            ],
            vec![result(&a, CheckStatus::Pass, 3, "ok"), with_evidence],
            // A final look: no check ran.
            vec![],
            vec![
                result(&a, CheckStatus::Warn, 4, "slow"),
                result(&b, CheckStatus::Error, 5, "ok"),
            ],
            vec![
                result(&a, CheckStatus::Pass, 6, "ok"),
                result(&b, CheckStatus::Pass, 8, "ok"),
            ],
        ];
        let mut expected = Vec::new();
        let mut timeline = Timeline::default();
        for (i, checks) in ticks.into_iter().enumerate() {
            let record = TickRecord {
                tick: i as u32 + 1,
                phase: if i < 3 {
                    Phase::Active
                } else {
                    Phase::Cooldown
                },
                elapsed: Duration::from_secs(i as u64),
                late: Duration::from_micros(i as u64 * 10),
                checks,
                verdict: if i == 1 {
                    Verdict::Degraded
                } else {
                    Verdict::Healthy
                },
            };
            timeline.push(
                record.tick,
                record.phase,
                record.elapsed,
                record.late,
                &record.checks,
                record.verdict,
            );
            expected.push(record);
        }
        // Unchanged messages are shared with the previous tick, changed ones are not.
        assert!(Arc::ptr_eq(
            &timeline.checks[0].message,
            &timeline.checks[2].message
        ));
        assert_eq!(&*timeline.checks[3].message, "503");
        assert_eq!(&*timeline.checks[5].message, "ok");
        assert_eq!(timeline.into_records(), expected);
    }
}
