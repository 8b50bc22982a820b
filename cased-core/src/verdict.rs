//! Verdicts with Argo Rollouts' counters: failed ticks tolerated (`failure_limit`), consecutive
//! errors tolerated per check (`consecutive_error_limit`; an error means the check could not run,
//! it is not a failure), and `min_samples` measured ticks before a deployment may be called
//! healthy. With too little data the `no_data` policy decides, and the report says so.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::check::CheckStatus;
use crate::detect::{DetectionKind, Finding};
use crate::severity::Severity;

/// How healthy the deployment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Enough data, nothing wrong.
    Healthy,
    /// Warnings, or failures within the tolerated limit.
    Degraded,
    /// Failures beyond the limit, or a critical finding: roll back.
    Unhealthy,
    /// Not enough data to say (never silently "healthy").
    Inconclusive,
}

impl Verdict {
    /// The wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Unhealthy => "unhealthy",
            Self::Inconclusive => "inconclusive",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to conclude when a session ends with fewer than `min_samples` measured ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoDataPolicy {
    /// No data is a failure: the verdict is unhealthy.
    Fail,
    /// No data gives an inconclusive verdict (the default).
    #[default]
    Inconclusive,
    /// Keep monitoring past the cool-down until there is enough data or `max_duration` is
    /// reached (then inconclusive).
    Extend,
}

/// The verdict rules as written in configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerdictConfig {
    /// Failed ticks tolerated; one more makes the deployment unhealthy (default 0).
    pub failure_limit: u32,
    /// Consecutive errors of one check tolerated; one more ends the session inconclusive
    /// (default 4).
    pub consecutive_error_limit: u32,
    /// Measured ticks needed before a healthy or degraded verdict (default 5).
    pub min_samples: u32,
    /// What too little data means (default `inconclusive`).
    pub no_data: NoDataPolicy,
}

impl Default for VerdictConfig {
    fn default() -> Self {
        Self {
            failure_limit: 0,
            consecutive_error_limit: 4,
            min_samples: 5,
            no_data: NoDataPolicy::Inconclusive,
        }
    }
}

/// The counters behind a verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Ticks where at least one check measured the service (pass, warn or fail).
    pub measured_ticks: u32,
    /// Ticks with at least one failed check.
    pub failed_ticks: u32,
    /// Ticks with a warning and no failure.
    pub warned_ticks: u32,
    /// Check runs that ended in an error.
    pub errors: u32,
    /// Detector findings of severity `warning` (they make a deployment degraded at most).
    #[serde(default)]
    pub warning_findings: u32,
}

/// A verdict and the sentence that explains it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Judgement {
    /// The verdict.
    pub verdict: Verdict,
    /// Why, for a person.
    pub reason: String,
}

impl Judgement {
    fn new(verdict: Verdict, reason: impl Into<String>) -> Self {
        Self {
            verdict,
            reason: reason.into(),
        }
    }
}

/// Applies the [`VerdictConfig`] rules tick by tick.
#[derive(Debug, Clone)]
pub struct VerdictTracker {
    config: VerdictConfig,
    counters: Counters,
    consecutive_errors: Vec<u32>,
    terminal: Option<Judgement>,
}

impl VerdictTracker {
    /// A tracker for `checks` checks.
    #[must_use]
    pub fn new(config: VerdictConfig, checks: usize) -> Self {
        Self {
            config,
            counters: Counters::default(),
            consecutive_errors: vec![0; checks],
            terminal: None,
        }
    }

    /// The counters so far.
    #[must_use]
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Whether there are at least `min_samples` measured ticks.
    #[must_use]
    pub fn has_enough_data(&self) -> bool {
        self.counters.measured_ticks >= self.config.min_samples
    }

    /// A verdict that ends the session early (unhealthy, or inconclusive after too many
    /// consecutive errors), once reached.
    #[must_use]
    pub fn terminal(&self) -> Option<&Judgement> {
        self.terminal.as_ref()
    }

    /// Records one tick: the status of each check, in check order, with its name and message.
    pub fn record_tick(&mut self, results: &[(&str, CheckStatus, &str)]) {
        self.record_tick_with(results, false);
    }

    /// Records one tick whose checks gave `results` and whose sources returned data or not
    /// (`data`): a tick is measured when a check measured the service or a source returned
    /// data, so a session with sources and no checks reaches every verdict.
    pub fn record_tick_with(&mut self, results: &[(&str, CheckStatus, &str)], data: bool) {
        if self.terminal.is_some() {
            return;
        }
        let mut measured = data;
        let mut failed: Option<(&str, &str)> = None;
        let mut warned = false;
        for (i, (name, status, message)) in results.iter().enumerate() {
            if i >= self.consecutive_errors.len() {
                self.consecutive_errors.resize(i + 1, 0);
            }
            if *status == CheckStatus::Error {
                self.counters.errors += 1;
                self.consecutive_errors[i] += 1;
                if self.consecutive_errors[i] > self.config.consecutive_error_limit
                    && self.terminal.is_none()
                {
                    self.terminal = Some(Judgement::new(
                        Verdict::Inconclusive,
                        format!(
                            "check {name:?} could not run {} times in a row (limit {}): {message}",
                            self.consecutive_errors[i], self.config.consecutive_error_limit
                        ),
                    ));
                }
                continue;
            }
            self.consecutive_errors[i] = 0;
            measured = true;
            match status {
                CheckStatus::Fail => failed = failed.or(Some((name, message))),
                CheckStatus::Warn => warned = true,
                _ => {}
            }
        }
        if measured {
            self.counters.measured_ticks += 1;
        }
        if let Some((name, message)) = failed {
            self.counters.failed_ticks += 1;
            if self.counters.failed_ticks > self.config.failure_limit {
                self.terminal = Some(Judgement::new(
                    Verdict::Unhealthy,
                    format!(
                        "{} failed tick{} (limit {}); check {name:?} failed: {message}",
                        self.counters.failed_ticks,
                        if self.counters.failed_ticks == 1 {
                            ""
                        } else {
                            "s"
                        },
                        self.config.failure_limit
                    ),
                ));
            }
        } else if warned {
            self.counters.warned_ticks += 1;
        }
    }

    /// Records a detector finding under its detector's rules: a `dry_run` detector never
    /// changes the verdict; an alarm of severity `critical` or worse (or `warning` or worse from
    /// a `critical` detector) makes the deployment unhealthy at once; a `warning` makes it
    /// degraded at best.
    pub fn record_finding(&mut self, f: &Finding, rules: FindingRules) {
        if rules.dry_run || f.kind != DetectionKind::Alarm {
            return;
        }
        if f.severity >= Severity::Critical || (rules.critical && f.severity >= Severity::Warning) {
            let why = if f.severity < Severity::Critical {
                " (a critical detector)"
            } else {
                ""
            };
            self.record_critical(format!(
                "{} finding on {} ({}{why}): {}",
                f.severity, f.metric, f.detector, f.message
            ));
        } else if f.severity == Severity::Warning {
            self.record_warning();
        }
    }

    /// Records a detector finding of severity `warning`: the deployment is degraded at best.
    pub fn record_warning(&mut self) {
        self.counters.warning_findings += 1;
    }

    /// Records a finding severe enough to end the session unhealthy at once.
    pub fn record_critical(&mut self, reason: impl Into<String>) {
        if self
            .terminal
            .as_ref()
            .is_none_or(|j| j.verdict != Verdict::Unhealthy)
        {
            self.terminal = Some(Judgement::new(Verdict::Unhealthy, reason));
        }
    }

    /// The verdict so far, while the session runs.
    #[must_use]
    pub fn current(&self) -> Judgement {
        if let Some(t) = &self.terminal {
            return t.clone();
        }
        if !self.has_enough_data() {
            return Judgement::new(
                Verdict::Inconclusive,
                format!(
                    "collecting data: {} of {} measured ticks",
                    self.counters.measured_ticks, self.config.min_samples
                ),
            );
        }
        self.judge_with_data()
    }

    /// The final verdict when the session ends normally (cool-down or `max_duration` over),
    /// applying the no-data policy when there is too little data.
    #[must_use]
    pub fn conclude(&self) -> Judgement {
        if let Some(t) = &self.terminal {
            return t.clone();
        }
        if self.has_enough_data() {
            return self.judge_with_data();
        }
        let have = format!(
            "only {} of {} measured ticks",
            self.counters.measured_ticks, self.config.min_samples
        );
        match self.config.no_data {
            NoDataPolicy::Fail => Judgement::new(
                Verdict::Unhealthy,
                format!("no data: {have} (no_data = fail)"),
            ),
            NoDataPolicy::Inconclusive => Judgement::new(
                Verdict::Inconclusive,
                format!("no data: {have} (no_data = inconclusive)"),
            ),
            NoDataPolicy::Extend => Judgement::new(
                Verdict::Inconclusive,
                format!("no data: {have} even after extending to max_duration (no_data = extend)"),
            ),
        }
    }

    fn judge_with_data(&self) -> Judgement {
        let c = &self.counters;
        if c.failed_ticks > 0 || c.warned_ticks > 0 || c.warning_findings > 0 {
            Judgement::new(
                Verdict::Degraded,
                format!(
                    "{} failed (limit {}) and {} warning ticks in {} measured; {} warning findings",
                    c.failed_ticks,
                    self.config.failure_limit,
                    c.warned_ticks,
                    c.measured_ticks,
                    c.warning_findings
                ),
            )
        } else {
            Judgement::new(
                Verdict::Healthy,
                format!("all {} measured ticks passed", c.measured_ticks),
            )
        }
    }
}

/// How one detector's findings count toward the verdict (its `dry_run`, `critical` and
/// `must_have_data` settings).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FindingRules {
    /// Evaluated and reported, never changes the verdict.
    pub dry_run: bool,
    /// Its alarm alone makes the deployment unhealthy.
    pub critical: bool,
    /// No data for it is judged by the no-data policy instead of being noted.
    pub must_have_data: bool,
}

/// A compared metric that could not be judged when the session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unjudged {
    pub(crate) metric: String,
    /// It never had a baseline (else: too few current values).
    pub(crate) no_baseline: bool,
    pub(crate) must_have_data: bool,
}

/// The end of a normal session whose compared metrics could not all be judged: a
/// `must_have_data` metric without data falls under the no-data policy (`fail`: unhealthy;
/// otherwise inconclusive); any other is noted — a first deployment has no earlier baseline,
/// and the verdict rests on what could be judged. Returns the judgement and the notes.
pub(crate) fn judge_unjudged(
    j: Judgement,
    unjudged: &[Unjudged],
    policy: NoDataPolicy,
) -> (Judgement, Vec<String>) {
    let mut notes = Vec::new();
    for u in unjudged.iter().filter(|u| !u.must_have_data) {
        notes.push(if u.no_baseline {
            format!(
                "no earlier baseline existed for {}: it was not compared (judged on the rest)",
                u.metric
            )
        } else {
            format!(
                "too few values of {} to compare with its baseline",
                u.metric
            )
        });
    }
    let must: Vec<&str> = unjudged
        .iter()
        .filter(|u| u.must_have_data)
        .map(|u| u.metric.as_str())
        .collect();
    if must.is_empty() || !matches!(j.verdict, Verdict::Healthy | Verdict::Degraded) {
        return (j, notes);
    }
    let what = format!(
        "no baseline or too few values for {} (must_have_data)",
        must.join(", ")
    );
    let j = match policy {
        NoDataPolicy::Fail => Judgement::new(Verdict::Unhealthy, format!("{what}; no_data = fail")),
        NoDataPolicy::Inconclusive | NoDataPolicy::Extend => Judgement::new(
            Verdict::Inconclusive,
            format!(
                "{what}; no_data = {}; checks: {}",
                if policy == NoDataPolicy::Extend {
                    "extend"
                } else {
                    "inconclusive"
                },
                j.reason
            ),
        ),
    };
    (j, notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use CheckStatus::*;

    fn tracker(
        failure_limit: u32,
        error_limit: u32,
        min_samples: u32,
        no_data: NoDataPolicy,
    ) -> VerdictTracker {
        VerdictTracker::new(
            VerdictConfig {
                failure_limit,
                consecutive_error_limit: error_limit,
                min_samples,
                no_data,
            },
            2,
        )
    }

    #[test]
    fn failure_limit_below_at_and_above() {
        let mut t = tracker(1, 4, 1, NoDataPolicy::Inconclusive);
        t.record_tick(&[("a", Pass, ""), ("b", Fail, "503")]);
        assert_eq!(t.terminal(), None, "one failure is within a limit of 1");
        assert_eq!(t.current().verdict, Verdict::Degraded);
        t.record_tick(&[("a", Fail, "timeout"), ("b", Pass, "")]);
        let j = t.terminal().expect("two failures exceed a limit of 1");
        assert_eq!(j.verdict, Verdict::Unhealthy);
        assert!(
            j.reason.contains("2 failed ticks (limit 1)") && j.reason.contains("\"a\""),
            "{}",
            j.reason
        );
    }

    #[test]
    fn zero_failure_limit_fails_on_the_first_failed_tick() {
        let mut t = tracker(0, 4, 5, NoDataPolicy::Inconclusive);
        t.record_tick(&[("a", Fail, "HTTP 500"), ("b", Fail, "x")]);
        assert_eq!(t.terminal().unwrap().verdict, Verdict::Unhealthy);
        assert_eq!(
            t.counters().failed_ticks,
            1,
            "a tick with two failures is one failed tick"
        );
    }

    #[test]
    fn errors_are_not_failures_and_reset_on_success() {
        let mut t = tracker(0, 2, 1, NoDataPolicy::Inconclusive);
        for _ in 0..2 {
            t.record_tick(&[("a", Error, "dns"), ("b", Pass, "")]);
        }
        assert_eq!(
            t.terminal(),
            None,
            "2 consecutive errors are within a limit of 2"
        );
        t.record_tick(&[("a", Pass, ""), ("b", Pass, "")]);
        for _ in 0..2 {
            t.record_tick(&[("a", Error, "dns"), ("b", Pass, "")]);
        }
        assert_eq!(t.terminal(), None, "the pass reset the count");
        t.record_tick(&[("a", Error, "dns"), ("b", Pass, "")]);
        let j = t.terminal().unwrap();
        assert_eq!(j.verdict, Verdict::Inconclusive);
        assert!(
            j.reason.contains("3 times in a row (limit 2)"),
            "{}",
            j.reason
        );
        assert_eq!(t.counters().failed_ticks, 0);
    }

    #[test]
    fn min_samples_gate_the_healthy_verdict() {
        let mut t = tracker(0, 4, 3, NoDataPolicy::Inconclusive);
        t.record_tick(&[("a", Pass, ""), ("b", Pass, "")]);
        t.record_tick(&[("a", Error, "x"), ("b", Error, "y")]);
        t.record_tick(&[("a", Pass, ""), ("b", Pass, "")]);
        assert_eq!(
            t.current().verdict,
            Verdict::Inconclusive,
            "an all-error tick measures nothing"
        );
        assert_eq!(t.conclude().verdict, Verdict::Inconclusive);
        t.record_tick(&[("a", Pass, ""), ("b", Warn, "slow")]);
        assert_eq!(t.conclude().verdict, Verdict::Degraded);
        let mut h = tracker(0, 4, 1, NoDataPolicy::Inconclusive);
        h.record_tick(&[("a", Pass, "")]);
        assert_eq!(
            h.conclude(),
            Judgement::new(Verdict::Healthy, "all 1 measured ticks passed")
        );
    }

    #[test]
    fn no_data_policies_are_reported() {
        for (policy, verdict, word) in [
            (NoDataPolicy::Fail, Verdict::Unhealthy, "no_data = fail"),
            (
                NoDataPolicy::Inconclusive,
                Verdict::Inconclusive,
                "no_data = inconclusive",
            ),
            (
                NoDataPolicy::Extend,
                Verdict::Inconclusive,
                "no_data = extend",
            ),
        ] {
            let j = tracker(0, 4, 2, policy).conclude();
            assert_eq!(j.verdict, verdict);
            assert!(j.reason.contains(word), "{}", j.reason);
        }
    }

    #[test]
    fn findings_count_by_their_detector_s_rules() {
        let warn = Finding::new("latency", "shift", Severity::Warning, "rose");
        let mut t = tracker(0, 4, 1, NoDataPolicy::Inconclusive);
        t.record_tick_with(&[], true);
        assert_eq!(
            t.current().verdict,
            Verdict::Healthy,
            "source data alone measures a tick"
        );
        t.record_finding(
            &warn,
            FindingRules {
                dry_run: true,
                ..FindingRules::default()
            },
        );
        assert_eq!(
            t.current().verdict,
            Verdict::Healthy,
            "a dry run never changes the verdict"
        );
        t.record_finding(&warn, FindingRules::default());
        assert_eq!(t.current().verdict, Verdict::Degraded);
        t.record_finding(
            &warn,
            FindingRules {
                critical: true,
                ..FindingRules::default()
            },
        );
        let j = t
            .terminal()
            .expect("a critical detector's warning is unhealthy");
        assert!(j.reason.contains("a critical detector"), "{}", j.reason);
    }

    #[test]
    fn unjudged_metrics_are_noted_unless_they_must_have_data() {
        let healthy = Judgement::new(Verdict::Healthy, "all 9 measured ticks passed");
        let first = Unjudged {
            metric: "latency".into(),
            no_baseline: true,
            must_have_data: false,
        };
        let (j, notes) = judge_unjudged(
            healthy.clone(),
            std::slice::from_ref(&first),
            NoDataPolicy::Inconclusive,
        );
        assert_eq!(
            j.verdict,
            Verdict::Healthy,
            "a first deployment is judged on the rest"
        );
        assert!(
            notes[0].contains("no earlier baseline existed for latency"),
            "{notes:?}"
        );
        let must = Unjudged {
            must_have_data: true,
            ..first
        };
        let (j, _) = judge_unjudged(
            healthy.clone(),
            std::slice::from_ref(&must),
            NoDataPolicy::Inconclusive,
        );
        assert_eq!(j.verdict, Verdict::Inconclusive);
        let (j, _) = judge_unjudged(healthy, &[must], NoDataPolicy::Fail);
        assert_eq!(j.verdict, Verdict::Unhealthy);
    }

    #[test]
    fn a_critical_finding_is_unhealthy_at_once() {
        let mut t = tracker(5, 4, 5, NoDataPolicy::Inconclusive);
        t.record_critical("p99 latency doubled");
        assert_eq!(t.terminal().unwrap().verdict, Verdict::Unhealthy);
        assert_eq!(t.conclude().reason, "p99 latency doubled");
    }
}
