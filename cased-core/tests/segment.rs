//! `segment` against `ruptures.Pelt(jump=1)` with the same cost and penalty, on the synthetic
//! series in `fixtures/segment_ruptures.json` (written by `examples/eval/segment_fixtures.py`).

use cased_core::detect::segment;
use serde_json::{Value, json};

#[test]
fn segment_finds_the_changes_ruptures_finds() {
    let fixture: Value =
        serde_json::from_str(include_str!("fixtures/segment_ruptures.json")).expect("fixture");
    let cases = fixture["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 24);
    for (i, case) in cases.iter().enumerate() {
        let values: Vec<f64> = serde_json::from_value(case["values"].clone()).expect("values");
        let want: Vec<usize> =
            serde_json::from_value(case["ruptures_changes"].clone()).expect("changes");
        let settings = json!({
            "cost": case["cost"],
            "penalty": case["penalty"],
            "min_size": case["min_size"],
        });
        let got = segment(&values, settings).expect("valid input");
        assert_eq!(got.changes, want, "case {i} ({})", case["cost"]);
        assert_eq!(got.segments.len(), want.len() + 1);
        assert_eq!(got.segments.last().map(|s| s.end), Some(values.len()));
    }
}

#[test]
fn named_penalties_match_their_formulas() {
    let fixture: Value =
        serde_json::from_str(include_str!("fixtures/segment_ruptures.json")).expect("fixture");
    // Even cases use (p + 2) · ln n, odd ones (p + 1) · ln n: "mbic" and "bic" give the same.
    for (i, case) in fixture["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .enumerate()
    {
        let values: Vec<f64> = serde_json::from_value(case["values"].clone()).expect("values");
        let rule = if i % 2 == 0 { "mbic" } else { "bic" };
        let got = segment(&values, json!({"cost": case["cost"], "penalty": rule})).expect("valid");
        let pen = case["penalty"].as_f64().expect("penalty");
        assert!(
            (got.penalty - pen).abs() < 1e-9,
            "case {i}: {} vs {pen}",
            got.penalty
        );
        let want: Vec<usize> =
            serde_json::from_value(case["ruptures_changes"].clone()).expect("changes");
        assert_eq!(got.changes, want, "case {i} ({rule})");
    }
}
