//! Property tests (proptest, stable Rust) of what reads input from outside: the deployment
//! event parser, the monitor configuration (and every check, source, detector and alert
//! channel in it), durations and the webhook signature verifier. For every input: no panic, and
//! every error is a validation error whose problems each name a field. The Prometheus answer
//! parser has its own in `metrics::prometheus`, and `cased.toml` in `cased-cli`.
//!
//! `cargo test` runs a bounded budget (`DEFAULT_CASES` per property, a few seconds in all);
//! `CASED_FUZZ_CASES=100000 cargo test -p cased-core --test properties` runs a long one
//! (RELIABILITY.md has the figures).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cased_core::alert::{sign_webhook, verify_webhook_signature};
use cased_core::{DeploymentEvent, Error, Monitor, MonitorConfig};
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Value, json};

/// Cases per property when `CASED_FUZZ_CASES` is not set.
const DEFAULT_CASES: u32 = 1000;

fn config() -> Config {
    let cases = std::env::var("CASED_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    Config {
        cases,
        // Failures are reported with their minimal input; nothing is written beside the tests.
        failure_persistence: None,
        ..Config::default()
    }
}

/// Field names of the configuration and the event, so that generated objects reach the code
/// behind them, not only the unknown-field check.
const KEYS: &[&str] = &[
    "schedule",
    "intervals",
    "cooldown",
    "max_duration",
    "jitter",
    "checks",
    "name",
    "type",
    "url",
    "timeout",
    "expect",
    "status",
    "json",
    "pointer",
    "equals",
    "host",
    "port",
    "program",
    "args",
    "verdict",
    "failure_limit",
    "consecutive_error_limit",
    "min_samples",
    "no_data",
    "detectors",
    "metric",
    "direction",
    "allowed_change",
    "window",
    "alerts",
    "channels",
    "routes",
    "secret",
    "delivery",
    "max_retries",
    "sources",
    "every",
    "queries",
    "baseline",
    "deployment_request",
    "repository_full_name",
    "commit_sha",
    "ref",
    "event_metadata",
    "http",
    "tcp",
    "dns",
    "command",
    "spike",
    "webhook",
    "slack",
    "host",
    "prometheus",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(KEYS).prop_map(str::to_owned),
        1 => ".{0,12}",
    ]
}

/// Strings that look like what the fields hold (durations, URLs, names), and anything else.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(
            &[
                "10s",
                "0s",
                "1ms",
                "250ms",
                "1h",
                "7days",
                "584942417y",
                "-1s",
                "1e400s",
                "http",
                "2xx",
                "5xx",
                "http://127.0.0.1:9/",
                "https://[::1]:0/x?token=y",
                "localhost",
                "/status",
                "increase",
                "inconclusive",
                "extend",
                "fail",
                "true",
                "\u{0}",
                "",
            ][..]
        )
        .prop_map(str::to_owned),
        ".{0,40}",
    ]
}

/// Any JSON value, nested a few levels, numbers at their edges included.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(&[0i64, -1, 1, 65535, 65536, u32::MAX as i64, i64::MIN][..])
            .prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A configuration that loads, touching every kind of entry.
fn valid_config() -> Value {
    json!({
        "schedule": {"intervals": ["10s", "30s"], "cooldown": "5m", "max_duration": "1h", "jitter": "1s"},
        "checks": [
            {"name": "web", "type": "http", "url": "http://127.0.0.1:9/health", "timeout": "2s",
             "expect": {"status": [200, "2xx"], "max_latency": "800ms",
                        "json": [{"pointer": "/status", "equals": "ok"}]}},
            {"name": "db", "type": "tcp", "host": "127.0.0.1", "port": 5432},
            {"name": "resolver", "type": "dns", "host": "localhost"},
            {"name": "script", "type": "command", "program": "true", "args": ["a"]}
        ],
        "verdict": {"failure_limit": 1, "consecutive_error_limit": 3, "min_samples": 2, "no_data": "inconclusive"},
        "detectors": [
            {"type": "baseline", "metric": "web.latency_ms", "direction": "increase", "allowed_change": 0.2},
            {"type": "spike", "metric": "web.latency_ms"}
        ],
        "alerts": {
            "channels": [{"name": "hooks", "type": "webhook", "url": "https://hooks.example/x", "secret": "k"}],
            "routes": [{"channels": ["hooks"]}]
        },
        "sources": [{"type": "host"}]
    })
}

fn valid_event() -> Value {
    json!({
        "deployment_request": "Deploy v2", "repository_full_name": "acme/shop", "status": "running",
        "external_url": "https://ci.example/1", "commit_sha": "0123456789abcdef0123456789abcdef01234567",
        "commit_message": "Fix", "ref": "refs/heads/main",
        "event_metadata": {"environment": "prod", "replicas": [1, 2.5, null]}
    })
}

fn count(v: &Value) -> u32 {
    1 + match v {
        Value::Array(a) => a.iter().map(count).sum(),
        Value::Object(m) => m.values().map(count).sum(),
        _ => 0,
    }
}

/// Replaces the node at preorder position `at` with `with` (taken when placed).
fn replace_at(v: &mut Value, at: &mut u32, with: &mut Option<Value>) {
    if *at == 0 {
        if let Some(w) = with.take() {
            *v = w;
        }
        return;
    }
    *at -= 1;
    let children: Vec<&mut Value> = match v {
        Value::Array(a) => a.iter_mut().collect(),
        Value::Object(m) => m.values_mut().collect(),
        _ => return,
    };
    for c in children {
        if with.is_none() {
            return;
        }
        replace_at(c, at, with);
    }
}

/// `v` with each `(position, value)` of `ops` put in place of the node at that position
/// (modulo the number of nodes, in preorder).
fn mutate(mut v: Value, ops: Vec<(u32, Value)>) -> Value {
    for (at, with) in ops {
        let mut at = at % count(&v);
        replace_at(&mut v, &mut at, &mut Some(with));
    }
    v
}

/// The property every error of a reader must have: a validation error, each problem naming a
/// field, with a message.
fn names_fields(e: &Error) -> std::result::Result<(), TestCaseError> {
    prop_assert!(
        matches!(e, Error::Validation(_)),
        "not a validation error: {e:?}"
    );
    prop_assert!(!e.field_errors().is_empty(), "no problem listed: {e:?}");
    for f in e.field_errors() {
        prop_assert!(
            !f.field.trim().is_empty(),
            "a problem names no field: {e:?}"
        );
        prop_assert!(
            !f.message.trim().is_empty(),
            "a problem has no message: {e:?}"
        );
    }
    Ok(())
}

#[test]
fn the_seeds_are_valid() {
    let config = MonitorConfig::from_value(valid_config()).unwrap();
    Monitor::builder(config).build().unwrap();
    DeploymentEvent::from_value(valid_event()).unwrap();
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn monitor_configuration_mutated_never_panics_and_names_the_field(
        ops in prop::collection::vec((any::<u32>(), json_value()), 1..4)
    ) {
        let value = mutate(valid_config(), ops);
        match MonitorConfig::from_value(value) {
            Ok(config) => {
                // What loads also builds, or says why, naming the field.
                if let Err(e) = Monitor::builder(config).build() {
                    names_fields(&e)?;
                }
            }
            Err(e) => names_fields(&e)?,
        }
    }

    #[test]
    fn monitor_configuration_from_any_json_never_panics_and_names_the_field(value in json_value()) {
        if let Err(e) = MonitorConfig::from_value(value.clone()) {
            names_fields(&e)?;
        }
        if let Err(e) = MonitorConfig::from_json(&value.to_string()) {
            names_fields(&e)?;
        }
    }

    #[test]
    fn monitor_configuration_from_any_text_never_panics(text in ".{0,200}") {
        if let Err(e) = MonitorConfig::from_json(&text) {
            names_fields(&e)?;
        }
    }

    #[test]
    fn event_mutated_never_panics_and_names_the_field(
        ops in prop::collection::vec((any::<u32>(), json_value()), 1..4)
    ) {
        let value = mutate(valid_event(), ops);
        match DeploymentEvent::from_value(value.clone()) {
            Ok(event) => {
                // What is accepted round-trips through its JSON.
                let again = DeploymentEvent::from_json(&event.to_json());
                prop_assert_eq!(again.ok(), Some(event));
            }
            Err(e) => names_fields(&e)?,
        }
        if let Err(e) = DeploymentEvent::from_json(&value.to_string()) {
            names_fields(&e)?;
        }
    }

    #[test]
    fn event_from_any_bytes_never_panics_and_names_the_field(
        bytes in prop::collection::vec(any::<u8>(), 0..300)
    ) {
        if let Err(e) = DeploymentEvent::from_slice(&bytes) {
            names_fields(&e)?;
        }
    }

    #[test]
    fn durations_never_panic_and_what_is_formatted_parses_back(
        text in ".{0,30}",
        number in any::<u64>(),
        unit in prop::sample::select(&["ns", "us", "ms", "s", "m", "h", "d", "w", "M", "y", ""][..]),
        millis in 0u64..(7 * 24 * 3600 * 1000),
    ) {
        if let Err(m) = cased_core::duration::parse(&text) {
            prop_assert!(m.contains("is not a duration"), "{m}");
        }
        let _ = cased_core::duration::parse(&format!("{number}{unit}"));
        let d = Duration::from_millis(millis);
        prop_assert_eq!(cased_core::duration::parse(&cased_core::duration::format(d)), Ok(d));
    }

    #[test]
    fn the_webhook_verifier_never_panics_and_accepts_only_the_signed_body(
        secret in ".{0,40}",
        timestamp in prop_oneof![any::<u64>().prop_map(|t| t.to_string()), ".{0,24}"],
        body in prop::collection::vec(any::<u8>(), 0..200),
        signature in prop_oneof![".{0,80}", "v1=[0-9a-f]{64}"],
        tolerance in any::<u64>(),
        now in any::<u64>(),
        flip in any::<usize>(),
    ) {
        let now_t = UNIX_EPOCH.checked_add(Duration::from_secs(now)).unwrap_or(UNIX_EPOCH);
        let tolerance = Duration::from_secs(tolerance);
        if let Err(e) = verify_webhook_signature(&secret, &timestamp, &body, &signature, tolerance, now_t) {
            prop_assert!(!e.code().is_empty());
        }
        // A body signed now verifies; the same signature over another body does not.
        let ts = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs().to_string();
        let good = sign_webhook(&secret, &ts, &body);
        let five_min = Duration::from_secs(300);
        prop_assert!(verify_webhook_signature(&secret, &ts, &body, &good, five_min, SystemTime::now()).is_ok());
        let mut other = body.clone();
        if other.is_empty() {
            other.push(0);
        } else {
            let i = flip % other.len();
            other[i] ^= 1;
        }
        prop_assert!(verify_webhook_signature(&secret, &ts, &other, &good, five_min, SystemTime::now()).is_err());
    }
}
