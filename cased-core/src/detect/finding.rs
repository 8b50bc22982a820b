//! [`Finding`]: a detection with its metric and severity, as sessions publish it.

use serde::{Deserialize, Serialize};

use super::{Detection, DetectionKind, DetectorConfig, num};
use crate::Severity;
use crate::error::{Problems, Result};

/// What one severity level needs: an effect at least `min_effect` and a confidence at least
/// `min_confidence`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityRule {
    /// The smallest effect size (on the detector's own scale) for this level.
    pub min_effect: f64,
    /// The smallest confidence (1 − p, or the detector's own) for this level.
    #[serde(default)]
    pub min_confidence: f64,
}

/// How a detection's effect size and confidence become a [`Severity`]: the highest level whose
/// rule both meet; below every rule the finding is `info`. A level set to `None` is never
/// reached.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SeverityPolicy {
    /// Needed for `warning`.
    pub warning: Option<SeverityRule>,
    /// Needed for `critical` (a critical finding makes the session unhealthy at once).
    pub critical: Option<SeverityRule>,
    /// Needed for `emergency`.
    pub emergency: Option<SeverityRule>,
}

impl Default for SeverityPolicy {
    /// For relative effects (0.2 = 20% worse): warning from any effect at 95% confidence,
    /// critical from +50% at 99%, emergency from +200% at 99.9%.
    fn default() -> Self {
        Self::relative(0.0, 0.5, 2.0)
    }
}

impl SeverityPolicy {
    /// A policy with warning / critical / emergency from the given effects, at 95%, 99% and
    /// 99.9% confidence.
    #[must_use]
    pub fn relative(warning: f64, critical: f64, emergency: f64) -> Self {
        Self {
            warning: Some(SeverityRule {
                min_effect: warning,
                min_confidence: 0.95,
            }),
            critical: Some(SeverityRule {
                min_effect: critical,
                min_confidence: 0.99,
            }),
            emergency: Some(SeverityRule {
                min_effect: emergency,
                min_confidence: 0.999,
            }),
        }
    }

    /// The severity of a detection with this `effect` (its absolute value is used) and
    /// `confidence`.
    #[must_use]
    pub fn classify(&self, effect: f64, confidence: f64) -> Severity {
        let e = effect.abs();
        let meets = |r: &Option<SeverityRule>| {
            r.is_some_and(|r| e >= r.min_effect && confidence >= r.min_confidence)
        };
        if meets(&self.emergency) {
            Severity::Emergency
        } else if meets(&self.critical) {
            Severity::Critical
        } else if meets(&self.warning) {
            Severity::Warning
        } else {
            Severity::Info
        }
    }

    /// Checks the rules are numbers in range and ordered.
    ///
    /// # Errors
    /// [`Error::Validation`](crate::Error) naming each bad level.
    pub fn validate(&self) -> Result<()> {
        let mut p = Problems::default();
        self.check(&mut p, "severity");
        p.finish("severity policy")
    }

    pub(crate) fn check(&self, p: &mut Problems, prefix: &str) {
        let levels = [
            ("warning", self.warning),
            ("critical", self.critical),
            ("emergency", self.emergency),
        ];
        let mut last: Option<f64> = None;
        for (name, rule) in levels {
            let Some(r) = rule else { continue };
            if !r.min_effect.is_finite() || r.min_effect < 0.0 {
                p.add(
                    format!("{prefix}.{name}.min_effect"),
                    "must be a finite number ≥ 0",
                );
            }
            if !(0.0..=1.0).contains(&r.min_confidence) {
                p.add(
                    format!("{prefix}.{name}.min_confidence"),
                    "must be between 0 and 1",
                );
            }
            if let Some(l) = last
                && r.min_effect < l
            {
                p.add(
                    format!("{prefix}.{name}.min_effect"),
                    "must not be below the lower levels' min_effect",
                );
            }
            last = Some(r.min_effect);
        }
    }
}

/// A detector's finding, with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The metric it is about.
    pub metric: String,
    /// The detector that raised it (`"baseline"`, `"spike"`...).
    pub detector: String,
    /// How bad it is.
    pub severity: Severity,
    /// Whether it opens an alarm or says that one cleared.
    pub kind: DetectionKind,
    /// The current value (the value, or the current window's median).
    pub current: f64,
    /// The baseline's value (the bound, the baseline median, the running level), when there is one.
    pub baseline: Option<f64>,
    /// The test statistic.
    pub statistic: f64,
    /// The p-value, for detectors that test a hypothesis.
    pub p_value: Option<f64>,
    /// How sure (1 − p, a posterior probability, or 1 for hard rules).
    pub confidence: f64,
    /// The effect size the severity was read from.
    pub effect_size: f64,
    /// How many values the decision rests on.
    pub n: usize,
    /// The rule that fired.
    pub rule: String,
    /// A sentence a person can read.
    pub message: String,
}

impl Finding {
    /// A finding stated directly, without a detector's statistics (for custom code and tests):
    /// an alarm with confidence 1 and no statistic, p-value or baseline.
    #[must_use]
    pub fn new(
        metric: impl Into<String>,
        detector: impl Into<String>,
        severity: Severity,
        message: impl Into<String>,
    ) -> Self {
        Self {
            metric: metric.into(),
            detector: detector.into(),
            severity,
            kind: DetectionKind::Alarm,
            current: 0.0,
            baseline: None,
            statistic: 0.0,
            p_value: None,
            confidence: 1.0,
            effect_size: 0.0,
            n: 0,
            rule: String::new(),
            message: message.into(),
        }
    }

    /// A finding about `metric` from `detector`'s `detection`, its severity from `policy`
    /// (a resolution is always `info`).
    #[must_use]
    pub fn from_detection(
        metric: &str,
        detector: &str,
        detection: Detection,
        policy: &SeverityPolicy,
    ) -> Self {
        let severity = match detection.kind {
            DetectionKind::Alarm => policy.classify(detection.effect, detection.confidence),
            DetectionKind::Resolved => Severity::Info,
        };
        let mut message = format!("{metric} {}", detection.detail);
        if !message.ends_with('.') {
            message.push('.');
        }
        Self {
            metric: metric.to_owned(),
            detector: detector.to_owned(),
            severity,
            kind: detection.kind,
            current: detection.current,
            baseline: detection.baseline,
            statistic: detection.statistic,
            p_value: detection.p_value,
            confidence: detection.confidence,
            effect_size: detection.effect,
            n: detection.n,
            rule: detection.rule,
            message,
        }
    }

    /// A short line: severity, metric, current vs baseline.
    #[must_use]
    pub fn headline(&self) -> String {
        match self.baseline {
            Some(b) => format!(
                "[{}] {}: {} (baseline {})",
                self.severity,
                self.metric,
                num(self.current),
                num(b)
            ),
            None => format!("[{}] {}: {}", self.severity, self.metric, num(self.current)),
        }
    }
}

/// A finding of a detector fed value by value (`Detector` in Python and Node), with the 0-based
/// stream position of the value that raised it. Serializes as the finding's fields plus `index`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndexedFinding {
    /// The position of the value in the detector's stream.
    pub index: u64,
    /// The finding.
    #[serde(flatten)]
    pub finding: Finding,
}

impl IndexedFinding {
    /// The finding the detector `config` describes raised with `detection`, its severity from
    /// `policy`.
    #[must_use]
    pub fn new(config: &DetectorConfig, policy: &SeverityPolicy, detection: Detection) -> Self {
        let index = detection.index;
        Self {
            index,
            finding: Finding::from_detection(&config.metric, config.name(), detection, policy),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detection(effect: f64, confidence: f64) -> Detection {
        Detection {
            kind: DetectionKind::Alarm,
            index: 9,
            current: 150.0,
            baseline: Some(100.0),
            statistic: 3.0,
            p_value: Some(1.0 - confidence),
            confidence,
            effect,
            n: 40,
            rule: "rule".into(),
            detail: "rose to 150 from 100".into(),
        }
    }

    #[test]
    fn severity_follows_effect_and_confidence() {
        let p = SeverityPolicy::default();
        assert_eq!(p.classify(0.1, 0.5), Severity::Info);
        assert_eq!(p.classify(0.1, 0.96), Severity::Warning);
        assert_eq!(p.classify(0.6, 0.96), Severity::Warning);
        assert_eq!(p.classify(-0.6, 0.995), Severity::Critical);
        assert_eq!(p.classify(2.5, 0.995), Severity::Critical);
        assert_eq!(p.classify(2.5, 0.9995), Severity::Emergency);
        let only_warn = SeverityPolicy {
            critical: None,
            emergency: None,
            ..SeverityPolicy::default()
        };
        assert_eq!(only_warn.classify(100.0, 1.0), Severity::Warning);
    }

    #[test]
    fn findings_carry_the_evidence_and_a_sentence() {
        let f = Finding::from_detection(
            "latency_ms",
            "baseline",
            detection(0.5, 0.999),
            &SeverityPolicy::default(),
        );
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.message, "latency_ms rose to 150 from 100.");
        assert_eq!((f.current, f.baseline, f.n), (150.0, Some(100.0), 40));
        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(json["severity"], "critical");
        assert_eq!(json["effect_size"], 0.5);
        assert_eq!(f.headline(), "[critical] latency_ms: 150 (baseline 100)");
        let mut d = detection(5.0, 1.0);
        d.kind = DetectionKind::Resolved;
        assert_eq!(
            Finding::from_detection("m", "threshold", d, &SeverityPolicy::default()).severity,
            Severity::Info
        );
    }

    #[test]
    fn policies_are_validated() {
        let bad = SeverityPolicy {
            warning: Some(SeverityRule {
                min_effect: 1.0,
                min_confidence: 2.0,
            }),
            critical: Some(SeverityRule {
                min_effect: 0.5,
                min_confidence: 0.9,
            }),
            emergency: None,
        };
        let e = bad.validate().unwrap_err();
        let fields: Vec<_> = e.field_errors().iter().map(|f| f.field.clone()).collect();
        assert_eq!(
            fields,
            [
                "severity.warning.min_confidence",
                "severity.critical.min_effect"
            ]
        );
        assert!(SeverityPolicy::default().validate().is_ok());
    }
}
