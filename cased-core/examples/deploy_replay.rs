//! Replays the deploy-shaped evaluation cases through a [`DetectorSet`], exactly as a session
//! feeds it, and prints the answers `score.py` reads.
//!
//! ```text
//! gunzip -c "$DEPLOY_SET/dev.json.gz" > /tmp/dev.json
//! cargo run -p cased-core --example deploy_replay -- /tmp/dev.json examples/eval/deploy_configs.json > answers.json
//! python3 "$DEPLOY_SET/score.py" "$DEPLOY_SET/dev.json.gz" answers.json
//! ```
//!
//! `$DEPLOY_SET` is the directory of the deploy-shaped evaluation set (cases and scorer);
//! BENCHMARKS.md says where the project's copy lives.
//!
//! The configurations file maps each family (`latency`, `cpu`, `errors`) to the `detectors` list
//! a user would write for that kind of metric (the metric name is replaced by `"m"`). Per case:
//! the baseline goes in with [`DetectorSet::set_baseline`] (values oldest first) or, for
//! errors, [`DetectorSet::set_baseline_count_series`]; then every post sample is one tick:
//! [`DetectorSet::observe`] / [`DetectorSet::observe_counts`], then [`DetectorSet::evaluate`].
//! The answer is the post index of the first warning-or-worse alarm, or `null`.

use std::collections::BTreeMap;

use cased_core::detect::{
    Counts, DetectionKind, DetectorConfig, DetectorSet, Finding, parse_detectors,
};
use cased_core::{Baseline, BaselineSource, Sample, Severity};
use serde_json::Value;

fn alarm(f: &Finding) -> bool {
    f.kind == DetectionKind::Alarm && f.severity >= Severity::Warning
}

fn counts(v: &Value) -> Counts {
    let n = |k: &str| v[k].as_u64().expect("counts are integers");
    Counts::new(n("errors"), n("requests")).expect("errors ≤ requests")
}

fn replay(configs: &[DetectorConfig], case: &Value) -> Option<usize> {
    let mut set = DetectorSet::from_config(configs).expect("valid configuration");
    let family = case["family"].as_str().expect("family");
    let base = case["baseline"].as_array().expect("baseline");
    let post = case["post"].as_array().expect("post");
    if family == "errors" {
        let series: Vec<Counts> = base.iter().map(counts).collect();
        set.set_baseline_count_series("m", &series, "the window before the deployment")
            .expect("baseline counts");
    } else {
        let values: Vec<f64> = base.iter().map(|v| v.as_f64().expect("number")).collect();
        set.set_baseline("m", &Baseline::new(BaselineSource::PreDeploy, values))
            .expect("baseline");
    }
    for (i, v) in post.iter().enumerate() {
        let mut findings = if family == "errors" {
            set.observe_counts("m", counts(v)).expect("counts");
            Vec::new()
        } else {
            set.observe(&Sample::new("m", v.as_f64().expect("number")))
                .expect("value")
        };
        findings.extend(set.evaluate().findings);
        if findings.iter().any(alarm) {
            return Some(i);
        }
    }
    None
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, data, configs] = &args[..] else {
        eprintln!("usage: deploy_replay CASES.json CONFIGS.json > answers.json");
        std::process::exit(2);
    };
    let data: Value =
        serde_json::from_str(&std::fs::read_to_string(data).expect("cases file")).expect("JSON");
    let configs: Value =
        serde_json::from_str(&std::fs::read_to_string(configs).expect("configs file"))
            .expect("JSON");
    let mut by_family = BTreeMap::new();
    for family in ["latency", "cpu", "errors"] {
        let list =
            parse_detectors(configs[family].clone()).unwrap_or_else(|e| panic!("{family}: {e}"));
        by_family.insert(family, list);
    }
    let mut answers = serde_json::Map::new();
    for case in data["cases"].as_array().expect("cases") {
        let family = case["family"].as_str().expect("family");
        let answer = replay(&by_family[family], case);
        answers.insert(
            case["id"].as_str().expect("id").to_owned(),
            answer.map_or(Value::Null, Value::from),
        );
    }
    println!("{}", Value::Object(answers));
}
