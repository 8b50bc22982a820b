//! [`ThresholdDetector`]: static bounds with k-of-n hysteresis.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::stats::check_value;
use super::{Detection, DetectionKind, Detector, num};
use crate::error::{Problems, Result};

/// Settings of a [`ThresholdDetector`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThresholdConfig {
    /// Values below this breach (none by default).
    pub lower: Option<f64>,
    /// Values above this breach (none by default).
    pub upper: Option<f64>,
    /// Alarm when at least this many of the last `window` values breach (default 1).
    pub trigger: usize,
    /// The window of the k-of-n rule (default: `trigger`, i.e. k in a row).
    pub window: Option<usize>,
    /// Clear the alarm after this many values in a row within bounds (default 1).
    pub resolve: usize,
}

impl Default for ThresholdConfig {
    fn default() -> Self {
        Self {
            lower: None,
            upper: None,
            trigger: 1,
            window: None,
            resolve: 1,
        }
    }
}

/// Alarms when at least `trigger` of the last `window` values fall outside static bounds, and
/// resolves after `resolve` values in a row inside them.
///
/// Effect size: how far the value is beyond the bound, relative to the bound
/// (`(x − upper) / |upper|`; the absolute distance when the bound is 0). Confidence is 1.
#[derive(Debug, Clone)]
pub struct ThresholdDetector {
    config: ThresholdConfig,
    window: usize,
    recent: VecDeque<bool>,
    breaches: usize,
    alarming: bool,
    ok_run: usize,
    seen: u64,
}

impl ThresholdDetector {
    /// A detector with these bounds and counts.
    ///
    /// # Errors
    /// [`Error::Validation`](crate::Error) when no bound is set, a bound is not finite,
    /// `lower > upper`, `trigger` or `resolve` is 0, or `window < trigger`.
    pub fn new(config: ThresholdConfig) -> Result<Self> {
        let mut p = Problems::default();
        config.check(&mut p, "");
        p.finish("threshold detector")?;
        let window = config.window.unwrap_or(config.trigger);
        Ok(Self {
            config,
            window,
            recent: VecDeque::with_capacity(window),
            breaches: 0,
            alarming: false,
            ok_run: 0,
            seen: 0,
        })
    }

    /// Whether the detector is alarming.
    #[must_use]
    pub fn is_alarming(&self) -> bool {
        self.alarming
    }

    fn breach(&self, x: f64) -> Option<(f64, &'static str)> {
        if let Some(u) = self.config.upper
            && x > u
        {
            return Some((u, "above"));
        }
        if let Some(l) = self.config.lower
            && x < l
        {
            return Some((l, "below"));
        }
        None
    }
}

impl ThresholdConfig {
    pub(crate) fn check(&self, p: &mut Problems, prefix: &str) {
        if self.lower.is_none() && self.upper.is_none() {
            p.add(format!("{prefix}upper"), "set `upper`, `lower` or both");
        }
        for (name, v) in [("lower", self.lower), ("upper", self.upper)] {
            if v.is_some_and(|v| !v.is_finite()) {
                p.add(format!("{prefix}{name}"), "must be a finite number");
            }
        }
        if let (Some(l), Some(u)) = (self.lower, self.upper)
            && l > u
        {
            p.add(format!("{prefix}lower"), "must not be above `upper`");
        }
        if self.trigger == 0 {
            p.add(format!("{prefix}trigger"), "must be at least 1");
        }
        if self.resolve == 0 {
            p.add(format!("{prefix}resolve"), "must be at least 1");
        }
        if let Some(w) = self.window
            && w < self.trigger
        {
            p.add(format!("{prefix}window"), "must be at least `trigger`");
        }
    }
}

impl Detector for ThresholdDetector {
    fn name(&self) -> &'static str {
        "threshold"
    }

    fn update(&mut self, x: f64) -> Result<Option<Detection>> {
        check_value("value", x)?;
        let index = self.seen;
        self.seen += 1;
        let breach = self.breach(x);
        if self.alarming {
            if breach.is_some() {
                self.ok_run = 0;
                return Ok(None);
            }
            self.ok_run += 1;
            if self.ok_run < self.config.resolve {
                return Ok(None);
            }
            self.alarming = false;
            self.ok_run = 0;
            self.recent.clear();
            self.breaches = 0;
            return Ok(Some(Detection {
                kind: DetectionKind::Resolved,
                index,
                current: x,
                baseline: self.config.upper.or(self.config.lower),
                statistic: x,
                p_value: None,
                confidence: 1.0,
                effect: 0.0,
                n: self.config.resolve,
                rule: format!("{} values in a row within bounds", self.config.resolve),
                detail: format!(
                    "is back within bounds ({} for {} values in a row)",
                    num(x),
                    self.config.resolve
                ),
            }));
        }
        if self.recent.len() == self.window && self.recent.pop_front() == Some(true) {
            self.breaches -= 1;
        }
        self.recent.push_back(breach.is_some());
        let Some((bound, side)) = breach else {
            return Ok(None);
        };
        self.breaches += 1;
        if self.breaches < self.config.trigger {
            return Ok(None);
        }
        self.alarming = true;
        self.ok_run = 0;
        let effect = if bound == 0.0 {
            (x - bound).abs()
        } else {
            (x - bound).abs() / bound.abs()
        };
        let (k, n) = (self.config.trigger, self.window);
        Ok(Some(Detection {
            kind: DetectionKind::Alarm,
            index,
            current: x,
            baseline: Some(bound),
            statistic: x,
            p_value: None,
            confidence: 1.0,
            effect,
            n,
            rule: format!("{k} of the last {n} values {side} {}", num(bound)),
            detail: format!(
                "was {} ({side} the limit {}){}",
                num(x),
                num(bound),
                if n > 1 {
                    format!("; {} of the last {n} values broke it", self.breaches)
                } else {
                    String::new()
                }
            ),
        }))
    }

    fn reset(&mut self) {
        self.recent.clear();
        self.breaches = 0;
        self.alarming = false;
        self.ok_run = 0;
        self.seen = 0;
    }

    fn score(&self) -> f64 {
        if self.alarming {
            1.0
        } else {
            self.breaches as f64 / self.config.trigger as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(d: &[Detection]) -> Vec<(u64, DetectionKind)> {
        d.iter().map(|d| (d.index, d.kind)).collect()
    }

    #[test]
    fn k_of_n_triggers_and_resolves_after_m_in_a_row() {
        let cfg = ThresholdConfig {
            upper: Some(500.0),
            trigger: 2,
            window: Some(3),
            resolve: 2,
            ..Default::default()
        };
        let mut d = ThresholdDetector::new(cfg).unwrap();
        //             0      1      2      3      4      5      6      7      8      9
        let xs = [
            100.0, 600.0, 100.0, 100.0, 700.0, 100.0, 800.0, 100.0, 600.0, 100.0,
        ];
        let mut more = xs.to_vec();
        more.extend([100.0, 100.0]);
        let found = d.detect(&more).unwrap();
        // 1: one breach in [0..=1]; 4: window [2,3,4] one breach; 6: window [4,5,6] two -> alarm.
        // resolve needs 2 OK in a row: 7 ok, 8 breach, 9 ok, 10 ok -> resolved at 10.
        assert_eq!(
            kinds(&found),
            [(6, DetectionKind::Alarm), (10, DetectionKind::Resolved)]
        );
        assert_eq!(found[0].rule, "2 of the last 3 values above 500");
        assert!((found[0].effect - 0.6).abs() < 1e-12);
        assert!(
            found[0].detail.contains("was 800 (above the limit 500)"),
            "{}",
            found[0].detail
        );
    }

    #[test]
    fn single_breach_alarms_with_defaults_and_lower_bounds_work() {
        let mut d = ThresholdDetector::new(ThresholdConfig {
            lower: Some(0.99),
            ..Default::default()
        })
        .unwrap();
        let found = d.detect(&[1.0, 0.995, 0.5, 0.5, 1.0]).unwrap();
        assert_eq!(
            kinds(&found),
            [(2, DetectionKind::Alarm), (4, DetectionKind::Resolved)]
        );
        assert!(found[0].detail.contains("below"));
    }

    #[test]
    fn nonsense_configurations_are_named() {
        let e = ThresholdDetector::new(ThresholdConfig {
            lower: Some(5.0),
            upper: Some(f64::NAN),
            trigger: 0,
            resolve: 0,
            window: None,
        })
        .unwrap_err();
        let fields: Vec<_> = e.field_errors().iter().map(|f| f.field.clone()).collect();
        assert_eq!(fields, ["upper", "trigger", "resolve"]);
        assert!(ThresholdDetector::new(ThresholdConfig::default()).is_err());
        let e = ThresholdDetector::new(ThresholdConfig {
            upper: Some(1.0),
            trigger: 3,
            window: Some(2),
            ..Default::default()
        });
        assert_eq!(e.unwrap_err().field_errors()[0].field, "window");
        let mut d = ThresholdDetector::new(ThresholdConfig {
            upper: Some(1.0),
            ..Default::default()
        })
        .unwrap();
        assert!(d.update(f64::NAN).is_err());
        assert!(d.update(f64::INFINITY).is_err());
    }
}
