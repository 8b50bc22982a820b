//! Times `segment` on a series from a JSON file `{"values": [...], "penalty": p}` with the
//! `normal_mean` cost, and prints one JSON line: the changes found and the median time of
//! `reps` runs. Driven by `benches/peers_segment.py`, which times ruptures on the same input.
//!
//! `cargo run --release -p cased-benches --example segment_time -- series.json 20`

use std::time::Instant;

use cased_core::detect::segment;
use serde_json::{Value, json};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, path, reps] = args.as_slice() else {
        panic!("usage: segment_time SERIES.json REPS")
    };
    let input: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("series file")).expect("JSON");
    let values: Vec<f64> = serde_json::from_value(input["values"].clone()).expect("values");
    let reps: usize = reps.parse().expect("reps");
    let settings = json!({"cost": input["cost"], "penalty": input["penalty"], "min_size": 2});
    let mut times = Vec::with_capacity(reps);
    let mut changes = Vec::new();
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        let found = segment(std::hint::black_box(&values), settings.clone()).expect("valid");
        times.push(t.elapsed().as_secs_f64());
        changes = found.changes;
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{}",
        json!({"changes": changes, "median_s": times[times.len() / 2], "reps": times.len()})
    );
}
