//! One-off comparisons for callers who hold their own baseline: [`compare_values`] (a
//! [`BaselineComparisonDetector`] over two samples) and [`compare_counts`] (an
//! [`ErrorRateDetector`] over two `(errors, requests)` pairs). Python's `cased.compare` /
//! `cased.compare_error_rates` and Node's `compare` / `compareErrorRates` are these functions.

use serde::Serialize;
use serde_json::{Map, Value};

use super::{
    BaselineComparison, BaselineComparisonDetector, Counts, DetectorConfig, DetectorKind,
    ErrorRateComparison, ErrorRateDetector, Finding,
};
use crate::error::{Error, Result};

/// A comparison and the finding it raised (`None` when no rule fired). Serializes as the
/// comparison's fields plus `finding`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Judged<C> {
    /// What the comparison measured.
    #[serde(flatten)]
    pub comparison: C,
    /// The finding, with the severity the policy gives it.
    pub finding: Option<Finding>,
}

/// Reads `settings` (an object of the detector's settings, optionally with `name` and
/// `severity`; `null` for the defaults) as a `detector_type` detector watching `metric`.
fn config(detector_type: &str, metric: &str, settings: Value) -> Result<DetectorConfig> {
    let mut map = match settings {
        Value::Null => Map::new(),
        Value::Object(m) => m,
        other => {
            return Err(Error::invalid(
                "config",
                format!("must be an object of settings, got {other}"),
            ));
        }
    };
    for key in ["type", "metric"] {
        if map.contains_key(key) {
            return Err(Error::invalid(
                format!("config.{key}"),
                format!(
                    "is set by the call (`{key}` = {:?}); leave it out of the settings",
                    if key == "type" { detector_type } else { metric }
                ),
            ));
        }
    }
    map.insert("type".into(), Value::from(detector_type));
    map.insert("metric".into(), Value::from(metric));
    DetectorConfig::from_value(Value::Object(map))
}

/// Compares `current` with `baseline` once (Mann–Whitney U against the allowed change,
/// Hodges–Lehmann shift and CI, Brown–Forsythe spread).
///
/// `settings` are a `baseline` detector's settings (`direction`, `allowed_change`, `alpha`…,
/// optionally `name` and `severity`), or `null` for the defaults. `look`: `None` judges at
/// the full level α (a single look); `Some(k)` judges as look k (1-based) of a session, at
/// the level [`LookSpending::level`](super::LookSpending::level) gives it, so a loop of calls
/// with looks 1, 2, 3… keeps its false-alarm rate within α as a session does.
///
/// # Errors
/// [`Error::Validation`] naming a bad setting, a look of 0, or empty / non-finite samples.
pub fn compare_values(
    settings: Value,
    metric: &str,
    baseline: &[f64],
    current: &[f64],
    look: Option<u32>,
) -> Result<Judged<BaselineComparison>> {
    let config = config("baseline", metric, settings)?;
    let DetectorKind::Baseline(k) = config.kind else {
        unreachable!("the type was set above")
    };
    let detector = BaselineComparisonDetector::new(k)?;
    let comparison = match look {
        None => detector.compare(baseline, current)?,
        Some(look) => detector.compare_at_look(baseline, current, look)?,
    };
    let policy = config
        .severity
        .unwrap_or_else(|| super::Detector::default_severity(&detector));
    let finding = detector
        .detection(&comparison)
        .map(|d| Finding::from_detection(metric, config.name(), d, &policy));
    Ok(Judged {
        comparison,
        finding,
    })
}

/// Compares current error counts with baseline counts once (exact conditional test against the
/// practical margin).
///
/// `settings` are an `error_rate` detector's settings, or `null` for the defaults. `look` as
/// for [`compare_values`]: `None` for the full level α, `Some(k)` for look k of a session.
///
/// # Errors
/// [`Error::Validation`] naming a bad setting, a look of 0, or counts without requests.
pub fn compare_counts(
    settings: Value,
    metric: &str,
    baseline: Counts,
    current: Counts,
    look: Option<u32>,
) -> Result<Judged<ErrorRateComparison>> {
    let config = config("error_rate", metric, settings)?;
    let DetectorKind::ErrorRate(k) = config.kind else {
        unreachable!("the type was set above")
    };
    let detector = ErrorRateDetector::new(k)?;
    let comparison = match look {
        None => detector.compare(baseline, current)?,
        Some(look) => detector.compare_at_look(baseline, current, look)?,
    };
    let policy = config
        .severity
        .unwrap_or_else(|| detector.default_severity());
    let finding = detector
        .detection(&comparison)
        .map(|d| Finding::from_detection(metric, config.name(), d, &policy));
    Ok(Judged {
        comparison,
        finding,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_look_number_spends_alpha_like_a_session() {
        let base: Vec<f64> = (0..40).map(|i| 100.0 + f64::from(i % 10)).collect();
        let cur: Vec<f64> = base.iter().map(|v| v * 1.3).collect();
        let once = compare_values(Value::Null, "m", &base, &cur, None).unwrap();
        let third = compare_values(Value::Null, "m", &base, &cur, Some(3)).unwrap();
        assert_eq!((once.comparison.look, third.comparison.look), (1, 3));
        assert!(
            third.comparison.level < once.comparison.level / 9.0,
            "{} vs {}",
            third.comparison.level,
            once.comparison.level
        );
        let e = compare_values(Value::Null, "m", &base, &cur, Some(0)).unwrap_err();
        assert_eq!(e.field_errors()[0].field, "look");
        let (b, c) = (
            Counts::new(50, 10_000).unwrap(),
            Counts::new(95, 10_000).unwrap(),
        );
        let one = compare_counts(Value::Null, "m", b, c, None).unwrap();
        assert!(one.comparison.alarm, "p = {}", one.comparison.p_value);
        let late = compare_counts(Value::Null, "m", b, c, Some(40)).unwrap();
        assert_eq!(
            late.comparison.p_value, one.comparison.p_value,
            "the same test..."
        );
        assert!(
            !late.comparison.alarm && late.finding.is_none(),
            "...at look 40's much smaller level"
        );
    }

    #[test]
    fn a_clear_regression_is_judged_with_a_finding() {
        let base: Vec<f64> = (0..40).map(|i| 100.0 + f64::from(i % 10)).collect();
        let cur: Vec<f64> = base.iter().map(|v| v * 1.5).collect();
        let j = compare_values(
            json!({"direction": "increase", "allowed_change": 0.1}),
            "latency",
            &base,
            &cur,
            None,
        )
        .unwrap();
        assert!(j.comparison.location_alarm);
        let f = j.finding.as_ref().unwrap();
        assert_eq!(
            (f.metric.as_str(), f.detector.as_str()),
            ("latency", "baseline")
        );
        let v = serde_json::to_value(&j).unwrap();
        assert_eq!(v["n_baseline"], 40, "flattened: {v}");
        assert!(v["finding"].is_object());
        let same = compare_values(Value::Null, "latency", &base, &base, None).unwrap();
        assert!(same.finding.is_none());
        assert!(serde_json::to_value(&same).unwrap()["finding"].is_null());
    }

    #[test]
    fn settings_are_checked_and_named() {
        let e = compare_values(json!({"alpha": 2}), "m", &[1.0], &[1.0], None).unwrap_err();
        assert_eq!(e.field_errors()[0].field, "alpha");
        let e = compare_values(json!({"alpah": 0.1}), "m", &[1.0], &[1.0], None).unwrap_err();
        assert!(e.to_string().contains("alpah"), "{e}");
        let e = compare_values(json!([1]), "m", &[1.0], &[1.0], None).unwrap_err();
        assert_eq!(e.field_errors()[0].field, "config");
        let e = compare_counts(
            json!({"type": "spike"}),
            "m",
            Counts::new(0, 1).unwrap(),
            Counts::new(0, 1).unwrap(),
            None,
        )
        .unwrap_err();
        assert_eq!(e.field_errors()[0].field, "config.type");
    }

    #[test]
    fn error_counts_are_judged_with_the_configured_name() {
        let j = compare_counts(
            json!({"name": "http_errors"}),
            "http",
            Counts::new(10, 10_000).unwrap(),
            Counts::new(60, 10_000).unwrap(),
            None,
        )
        .unwrap();
        assert!(j.comparison.alarm);
        assert_eq!(j.finding.unwrap().detector, "http_errors");
        let quiet = compare_counts(
            Value::Null,
            "http",
            Counts::new(10, 10_000).unwrap(),
            Counts::new(11, 10_000).unwrap(),
            None,
        )
        .unwrap();
        assert!(quiet.finding.is_none());
    }
}
