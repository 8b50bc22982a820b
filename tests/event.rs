//! The deployment event through the public API: every validation rule, every bad field reported
//! at once, the exact JSON sent, serde, and the CI-environment constructors.

use std::collections::HashMap;

use cased_core::{
    DeploymentEvent, DeploymentEventBuilder, DeploymentStatus, Error, ErrorKind,
    MAX_COMMIT_MESSAGE_CHARS, MAX_DEPLOYMENT_REQUEST_CHARS, MAX_METADATA_BYTES, MAX_NAME_CHARS,
};
use cased_tests::{FULL_EVENT_JSON, full_event, minimal_event};
use serde_json::{Value, json};

/// The `(field, message)` pairs of a validation error; panics on success or another kind.
fn problems<T: std::fmt::Debug>(result: Result<T, Error>) -> Vec<(String, String)> {
    let err = result.expect_err("validation should fail");
    assert_eq!(err.kind(), ErrorKind::Validation, "{err}");
    err.field_errors()
        .iter()
        .map(|e| (e.field.clone(), e.message.clone()))
        .collect()
}

/// Only the field names of a validation error.
fn fields<T: std::fmt::Debug>(result: Result<T, Error>) -> Vec<String> {
    problems(result).into_iter().map(|(f, _)| f).collect()
}

/// Asserts there is exactly one problem, on `field`, whose message contains `needle`.
#[track_caller]
fn assert_one_problem<T: std::fmt::Debug>(result: Result<T, Error>, field: &str, needle: &str) {
    let p = problems(result);
    assert_eq!(p.len(), 1, "expected one problem, got {p:?}");
    assert_eq!(p[0].0, field, "{p:?}");
    assert!(
        p[0].1.contains(needle),
        "message {:?} does not contain {needle:?}",
        p[0].1
    );
}

fn with(field: &str, value: Value) -> Result<DeploymentEvent, Error> {
    let mut body = json!({"deployment_request": "Deploy v1"});
    body[field] = value;
    DeploymentEvent::from_value(body)
}

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Nesting depth

fn nested(levels: usize) -> Value {
    let mut v = json!({});
    for _ in 1..levels {
        v = json!({ "a": v });
    }
    v
}

#[test]
fn event_metadata_nests_at_most_the_shared_depth_limit() {
    let limit = cased_core::limits::MAX_JSON_DEPTH;
    assert!(with("event_metadata", nested(limit)).is_ok());
    assert_one_problem(
        with("event_metadata", nested(limit + 1)),
        "event_metadata",
        &format!("nested deeper than {limit} levels"),
    );
}

#[test]
fn a_configuration_nests_at_most_the_shared_depth_limit() {
    let limit = cased_core::limits::MAX_JSON_DEPTH;
    let config = json!({ "checks": [], "x": nested(limit) });
    assert_one_problem(
        cased_core::MonitorConfig::from_value(config.clone()),
        "config",
        &format!("nested deeper than {limit} levels"),
    );
    assert_one_problem(
        cased_core::MonitorConfig::from_json(&config.to_string()),
        "config",
        &format!("nested deeper than {limit} levels"),
    );
}

// ---------------------------------------------------------------------------------------------
// JSON shape

#[test]
fn minimal_event_sends_only_the_request_and_the_default_status() {
    assert_eq!(
        minimal_event().to_json(),
        r#"{"deployment_request":"Deploy v1","status":"success"}"#
    );
    assert_eq!(minimal_event().status(), DeploymentStatus::Success);
}

#[test]
fn absent_status_in_json_defaults_to_success() {
    let event = DeploymentEvent::from_json(r#"{"deployment_request":"Deploy v1"}"#).unwrap();
    assert_eq!(event.status(), DeploymentStatus::Success);
    assert_eq!(
        event.to_json(),
        r#"{"deployment_request":"Deploy v1","status":"success"}"#
    );
}

#[test]
fn full_event_serializes_to_the_exact_wire_text() {
    assert_eq!(full_event().to_json(), FULL_EVENT_JSON);
}

#[test]
fn wire_text_round_trips_exactly() {
    let parsed = DeploymentEvent::from_json(FULL_EVENT_JSON).unwrap();
    assert_eq!(parsed, full_event());
    assert_eq!(parsed.to_json(), FULL_EVENT_JSON);
    let minimal = r#"{"deployment_request":"Deploy v1","status":"success"}"#;
    assert_eq!(
        DeploymentEvent::from_json(minimal).unwrap().to_json(),
        minimal
    );
}

#[test]
fn git_ref_uses_the_ref_key_and_absent_fields_are_omitted_not_null() {
    let event = DeploymentEvent::builder("Deploy")
        .git_ref("v1.2.3")
        .build()
        .unwrap();
    let value = event.to_value();
    let obj = value.as_object().unwrap();
    assert_eq!(obj.get("ref"), Some(&json!("v1.2.3")));
    assert!(!obj.contains_key("git_ref"));
    let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 3, "{keys:?}");
    for key in ["deployment_request", "status", "ref"] {
        assert!(keys.contains(&key), "{keys:?}");
    }
    assert!(!event.to_json().contains("null"), "{}", event.to_json());
    assert_eq!(event.git_ref(), Some("v1.2.3"));
}

#[test]
fn accessors_return_what_was_built() {
    let e = full_event();
    assert_eq!(e.deployment_request(), "Deploy v1.4.2 to production");
    assert_eq!(e.repository_full_name(), Some("acme/checkout"));
    assert_eq!(e.status(), DeploymentStatus::Running);
    assert_eq!(
        e.external_url(),
        Some("https://github.com/acme/checkout/actions/runs/42")
    );
    assert_eq!(
        e.commit_sha(),
        Some("4f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39")
    );
    assert_eq!(
        e.commit_message(),
        Some("Fix the basket total\n\nRounds half to even.")
    );
    assert_eq!(e.git_ref(), Some("refs/heads/main"));
    assert_eq!(e.environment(), Some("production"));
    assert_eq!(e.correlation_id(), Some("github:acme/checkout:42:1"));
    assert_eq!(
        e.event_metadata().unwrap().get("version"),
        Some(&json!("1.4.2"))
    );
}

#[test]
fn to_builder_changes_one_field_and_keeps_the_rest() {
    let done = full_event()
        .to_builder()
        .status(DeploymentStatus::Success)
        .build()
        .unwrap();
    assert_eq!(done.status(), DeploymentStatus::Success);
    assert_eq!(
        done.to_json(),
        FULL_EVENT_JSON.replace(r#""status":"running""#, r#""status":"success""#)
    );
}

#[test]
fn every_status_has_its_wire_name_both_ways() {
    let names = ["pending", "running", "success", "failure", "cancelled"];
    assert_eq!(DeploymentStatus::ALL.map(DeploymentStatus::as_str), names);
    for (status, name) in DeploymentStatus::ALL.into_iter().zip(names) {
        assert_eq!(status.to_string(), name);
        assert_eq!(DeploymentStatus::parse(name).unwrap(), status);
        let event = with("status", json!(name)).unwrap();
        assert_eq!(event.status(), status);
        assert!(event.to_json().contains(&format!(r#""status":"{name}""#)));
    }
}

#[test]
fn unknown_status_names_the_allowed_values() {
    for bad in ["Success", "succeeded", "done", ""] {
        assert_one_problem(
            with("status", json!(bad)),
            "status",
            "pending, running, success, failure, cancelled",
        );
    }
    assert_one_problem(
        DeploymentStatus::parse("SUCCESS"),
        "status",
        "\"SUCCESS\" is not one of",
    );
    assert_one_problem(
        with("status", json!(1)),
        "status",
        "must be a string, got a number",
    );
    assert_one_problem(
        with("status", Value::Null),
        "status",
        "must be a string, got null",
    );
}

#[test]
fn metadata_keys_serialize_in_name_order() {
    let event = DeploymentEvent::builder("Deploy")
        .metadata_entry("zeta", 1)
        .metadata_entry("alpha", true)
        .metadata_entry("mid", json!({"nested": [1, 2]}))
        .build()
        .unwrap();
    assert_eq!(
        event.to_json(),
        r#"{"deployment_request":"Deploy","status":"success","event_metadata":{"alpha":true,"mid":{"nested":[1,2]},"zeta":1}}"#
    );
}

// ---------------------------------------------------------------------------------------------
// deployment_request

#[test]
fn deployment_request_is_required() {
    assert_one_problem(
        DeploymentEvent::from_json(r#"{"status":"success"}"#),
        "deployment_request",
        "is required",
    );
    assert_one_problem(
        DeploymentEvent::from_json("{}"),
        "deployment_request",
        "is required",
    );
}

#[test]
fn deployment_request_must_not_be_empty_after_trimming() {
    for blank in ["", " ", "   \t\n  "] {
        assert_one_problem(
            DeploymentEvent::builder(blank).build(),
            "deployment_request",
            "must not be empty",
        );
        assert_one_problem(
            with("deployment_request", json!(blank)),
            "deployment_request",
            "must not be empty",
        );
    }
    let padded = DeploymentEvent::builder("  Deploy v1  ").build().unwrap();
    assert_eq!(
        padded.deployment_request(),
        "  Deploy v1  ",
        "the value is kept as given"
    );
}

#[test]
fn deployment_request_of_the_wrong_type_is_reported_once() {
    for (value, kind) in [
        (json!(42), "a number"),
        (Value::Null, "null"),
        (json!(["a"]), "an array"),
    ] {
        assert_eq!(
            problems(with("deployment_request", value)),
            [(
                "deployment_request".to_owned(),
                format!("must be a string, got {kind}")
            )]
        );
    }
}

#[test]
fn deployment_request_length_counts_characters_not_bytes() {
    assert_eq!(MAX_DEPLOYMENT_REQUEST_CHARS, 1000);
    let at_limit = "é".repeat(MAX_DEPLOYMENT_REQUEST_CHARS);
    assert_eq!(
        DeploymentEvent::builder(at_limit.clone())
            .build()
            .unwrap()
            .deployment_request(),
        at_limit
    );
    assert_one_problem(
        DeploymentEvent::builder("x".repeat(1001)).build(),
        "deployment_request",
        "is 1001 characters long; at most 1000 are allowed",
    );
}

#[test]
fn very_long_strings_are_rejected_without_flooding_the_message() {
    let huge = "x".repeat(1_000_000);
    let err = DeploymentEvent::builder(huge.clone())
        .commit_sha(huge)
        .build()
        .unwrap_err();
    let names: Vec<&str> = err
        .field_errors()
        .iter()
        .map(|e| e.field.as_str())
        .collect();
    assert_eq!(names, ["deployment_request", "commit_sha"]);
    let text = err.to_string();
    assert!(
        text.len() < 500,
        "error message is {} bytes long",
        text.len()
    );
    assert!(text.contains("is 1000000 characters long"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// control characters

#[test]
fn control_characters_are_rejected_in_free_text() {
    assert_one_problem(
        DeploymentEvent::builder("Deploy\u{0}v1").build(),
        "deployment_request",
        "U+0000",
    );
    assert_one_problem(
        DeploymentEvent::builder("Deploy \u{1b}[31mred").build(),
        "deployment_request",
        "contains the control character U+001B",
    );
    assert_one_problem(
        DeploymentEvent::builder("Deploy")
            .commit_message("bell \u{7}")
            .build(),
        "commit_message",
        "U+0007",
    );
    // JSON escapes arrive as the same characters.
    assert_one_problem(
        DeploymentEvent::from_json(r#"{"deployment_request":"Deploy \u0000"}"#),
        "deployment_request",
        "U+0000",
    );
    // C1 controls too.
    assert_one_problem(
        DeploymentEvent::builder("Deploy \u{85}").build(),
        "deployment_request",
        "U+0085",
    );
}

#[test]
fn tabs_and_line_breaks_are_allowed_in_free_text() {
    let event = DeploymentEvent::builder("Deploy\tv1\r\n")
        .commit_message("Subject\n\n\tbody line\r\n")
        .build()
        .unwrap();
    assert_eq!(event.commit_message(), Some("Subject\n\n\tbody line\r\n"));
}

#[test]
fn control_characters_and_whitespace_are_rejected_in_identifiers() {
    let b = || DeploymentEvent::builder("Deploy");
    assert_one_problem(
        b().repository("acme/check\u{0}out").build(),
        "repository_full_name",
        "U+0000",
    );
    assert_one_problem(b().git_ref("main\u{7f}").build(), "ref", "U+007F");
    assert_one_problem(
        b().git_ref("my branch").build(),
        "ref",
        "whitespace or a control character (U+0020)",
    );
    assert_one_problem(
        b().external_url("https://ci.example.com/run\n1").build(),
        "external_url",
        "U+000A",
    );
    assert_one_problem(
        b().environment("prod\tx").build(),
        "event_metadata.environment",
        "U+0009",
    );
}

#[test]
fn non_ascii_text_is_accepted_where_it_is_text() {
    let event = DeploymentEvent::builder("Déploiement 🚀 v2")
        .commit_message("修复购物车")
        .environment("producción")
        .build()
        .unwrap();
    let back = DeploymentEvent::from_json(&event.to_json()).unwrap();
    assert_eq!(back, event);
}

// ---------------------------------------------------------------------------------------------
// repository_full_name

#[test]
fn repository_accepts_owner_name_and_gitlab_nested_groups() {
    for ok in [
        "acme/checkout",
        "Acme-Corp/check_out.rs",
        "a/b",
        "group/sub/project",
        "group/sub/sub2/sub3/project",
        "user.name/repo-1",
    ] {
        let event = DeploymentEvent::builder("Deploy").repository(ok).build();
        assert_eq!(event.unwrap().repository_full_name(), Some(ok));
    }
}

#[test]
fn repository_rejects_what_is_not_a_path_of_names() {
    for bad in [
        "checkout",
        "acme/",
        "/checkout",
        "acme//checkout",
        "acme/check out",
        "acme/../etc",
        "./checkout",
        "acme/check$out",
        "https://github.com/acme/checkout",
        "acme\\checkout",
        "acme/chéckout",
    ] {
        let p = problems(DeploymentEvent::builder("Deploy").repository(bad).build());
        assert_eq!(p.len(), 1, "{bad}: {p:?}");
        assert_eq!(p[0].0, "repository_full_name", "{bad}");
    }
    assert_one_problem(
        DeploymentEvent::builder("Deploy")
            .repository("checkout")
            .build(),
        "repository_full_name",
        "must look like `owner/name` (or `group/sub/project`)",
    );
    assert_one_problem(
        DeploymentEvent::builder("Deploy").repository("").build(),
        "repository_full_name",
        "must not be empty",
    );
    assert_one_problem(
        with("repository_full_name", json!(7)),
        "repository_full_name",
        "must be a string",
    );
}

#[test]
fn repository_longer_than_the_name_limit_is_rejected() {
    let long = format!("acme/{}", "r".repeat(MAX_NAME_CHARS));
    assert_one_problem(
        DeploymentEvent::builder("Deploy").repository(long).build(),
        "repository_full_name",
        "is longer than 2048 characters",
    );
}

// ---------------------------------------------------------------------------------------------
// external_url

#[test]
fn external_url_accepts_absolute_http_and_https() {
    for ok in [
        "https://github.com/acme/checkout/actions/runs/42",
        "http://ci.internal:8080/job/7?tab=log#end",
        "https://[::1]/x",
        "http://127.0.0.1",
    ] {
        let event = DeploymentEvent::builder("Deploy")
            .external_url(ok)
            .build()
            .unwrap();
        assert_eq!(event.external_url(), Some(ok), "the URL is kept as given");
    }
}

#[test]
fn external_url_rejects_relative_and_other_schemes() {
    let check = |url: &str, needle: &str| {
        assert_one_problem(
            DeploymentEvent::builder("Deploy").external_url(url).build(),
            "external_url",
            needle,
        );
    };
    check("/actions/runs/42", "is not an absolute http(s) URL");
    check("github.com/acme", "is not an absolute http(s) URL");
    check(
        "ftp://files.example.com/x",
        "must be an absolute http(s) URL, not ftp:",
    );
    check("javascript:alert(1)", "not javascript:");
    check("mailto:ops@example.com", "not mailto:");
    check("file:///etc/passwd", "not file:");
    check("http://", "is not an absolute http(s) URL");
    check("", "must not be empty");
}

// ---------------------------------------------------------------------------------------------
// commit_sha

#[test]
fn commit_sha_accepts_7_to_64_hex_characters() {
    for ok in [
        "4f2a9c1",
        "4F2A9C1",
        "4f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39",
        &"a".repeat(64),
    ] {
        let event = DeploymentEvent::builder("Deploy")
            .commit_sha(ok)
            .build()
            .unwrap();
        assert_eq!(event.commit_sha(), Some(ok));
    }
}

#[test]
fn commit_sha_rejects_wrong_lengths_and_non_hex() {
    for bad in [
        "4f2a9c",
        &"a".repeat(65),
        "4f2a9cg",
        "4f2a 9c1",
        "",
        "0x4f2a9c1",
        "４f2a9c1e",
    ] {
        assert_one_problem(
            DeploymentEvent::builder("Deploy").commit_sha(bad).build(),
            "commit_sha",
            "must be 7 to 64 hexadecimal characters",
        );
    }
    assert_one_problem(
        with("commit_sha", json!(1234567)),
        "commit_sha",
        "must be a string, got a number",
    );
}

// ---------------------------------------------------------------------------------------------
// commit_message

#[test]
fn commit_message_has_a_length_cap() {
    assert_eq!(MAX_COMMIT_MESSAGE_CHARS, 65_536);
    let at_limit = "m".repeat(MAX_COMMIT_MESSAGE_CHARS);
    assert!(
        DeploymentEvent::builder("Deploy")
            .commit_message(at_limit)
            .build()
            .is_ok()
    );
    assert_one_problem(
        DeploymentEvent::builder("Deploy")
            .commit_message("m".repeat(MAX_COMMIT_MESSAGE_CHARS + 1))
            .build(),
        "commit_message",
        "is 65537 characters long; at most 65536 are allowed",
    );
    // An empty commit message is allowed (git allows it with --allow-empty-message).
    assert_eq!(
        DeploymentEvent::builder("Deploy")
            .commit_message("")
            .build()
            .unwrap()
            .commit_message(),
        Some("")
    );
    assert_one_problem(
        with("commit_message", json!(false)),
        "commit_message",
        "got a boolean",
    );
}

// ---------------------------------------------------------------------------------------------
// ref

#[test]
fn ref_accepts_full_refs_and_bare_names() {
    for ok in [
        "refs/heads/main",
        "refs/tags/v1.2.3",
        "main",
        "v1.2.3",
        "feature/checkout-v2",
        "release-2024.10",
    ] {
        let event = DeploymentEvent::builder("Deploy")
            .git_ref(ok)
            .build()
            .unwrap();
        assert_eq!(event.git_ref(), Some(ok));
    }
}

#[test]
fn ref_rejects_what_git_rejects() {
    for bad in [
        "main..dev",
        "main~1",
        "main^",
        "a:b",
        "what?",
        "feat*",
        "feat[1]",
        "a\\b",
        "refs/heads/",
        "main.",
        "main.lock",
        "HEAD@{1}",
    ] {
        assert_one_problem(
            DeploymentEvent::builder("Deploy").git_ref(bad).build(),
            "ref",
            "is not a valid git ref name",
        );
    }
    assert_one_problem(
        DeploymentEvent::builder("Deploy").git_ref("").build(),
        "ref",
        "must not be empty",
    );
    assert_one_problem(
        DeploymentEvent::builder("Deploy")
            .git_ref("r".repeat(MAX_NAME_CHARS + 1))
            .build(),
        "ref",
        "longer than 2048",
    );
    assert_one_problem(
        with("ref", json!({"name": "main"})),
        "ref",
        "must be a string, got an object",
    );
}

// ---------------------------------------------------------------------------------------------
// event_metadata

#[test]
fn event_metadata_must_be_an_object() {
    for (value, kind) in [
        (json!(["production"]), "an array"),
        (json!("production"), "a string"),
        (json!(3), "a number"),
        (json!(true), "a boolean"),
        (Value::Null, "null"),
    ] {
        assert_one_problem(
            with("event_metadata", value),
            "event_metadata",
            &format!("must be a JSON object, got {kind}"),
        );
    }
    let empty = with("event_metadata", json!({})).unwrap();
    assert_eq!(empty.event_metadata().map(serde_json::Map::len), Some(0));
    assert!(
        empty.to_json().ends_with(r#""event_metadata":{}}"#),
        "{}",
        empty.to_json()
    );
}

#[test]
fn event_metadata_keeps_arbitrary_nested_values() {
    let meta = json!({"version": "1.4.2", "build": 42, "canary": true, "regions": ["eu", "us"], "owner": {"team": "payments"}, "note": null});
    let event = with("event_metadata", meta.clone()).unwrap();
    assert_eq!(event.to_value()["event_metadata"], meta);
}

#[test]
fn environment_and_correlation_id_must_be_strings() {
    assert_one_problem(
        with("event_metadata", json!({"environment": 1})),
        "event_metadata.environment",
        "must be a string, got a number",
    );
    assert_one_problem(
        with("event_metadata", json!({"correlation_id": ["a"]})),
        "event_metadata.correlation_id",
        "must be a string, got an array",
    );
    assert_eq!(
        fields(with(
            "event_metadata",
            json!({"environment": null, "correlation_id": 7})
        )),
        [
            "event_metadata.environment",
            "event_metadata.correlation_id"
        ]
    );
    assert_one_problem(
        DeploymentEvent::builder("Deploy").environment("").build(),
        "event_metadata.environment",
        "must not be empty",
    );
    let ok = with(
        "event_metadata",
        json!({"environment": "staging", "correlation_id": "run-7"}),
    )
    .unwrap();
    assert_eq!(
        (ok.environment(), ok.correlation_id()),
        (Some("staging"), Some("run-7"))
    );
}

#[test]
fn event_metadata_has_a_size_cap() {
    assert_eq!(MAX_METADATA_BYTES, 65_536);
    let big = "v".repeat(MAX_METADATA_BYTES);
    assert_one_problem(
        DeploymentEvent::builder("Deploy")
            .metadata_entry("blob", big)
            .build(),
        "event_metadata",
        "at most 65536 are allowed",
    );
    let fits = "v".repeat(MAX_METADATA_BYTES - 100);
    assert!(
        DeploymentEvent::builder("Deploy")
            .metadata_entry("blob", fits)
            .build()
            .is_ok()
    );
}

#[test]
fn builder_metadata_replaces_and_helpers_add_keys() {
    let mut map = serde_json::Map::new();
    map.insert("version".into(), json!("2"));
    let event = DeploymentEventBuilder::default()
        .deployment_request("Deploy")
        .metadata_entry("dropped", 1)
        .metadata(map)
        .environment("prod")
        .build()
        .unwrap();
    assert_eq!(
        event.to_value()["event_metadata"],
        json!({"version": "2", "environment": "prod"})
    );
}

// ---------------------------------------------------------------------------------------------
// several problems, unknown fields, malformed bodies

#[test]
fn every_bad_field_is_reported_at_once_from_the_builder() {
    let result = DeploymentEvent::builder("  ")
        .repository("not-a-repo")
        .external_url("ftp://x.example.com")
        .commit_sha("xyz")
        .commit_message("\u{0}")
        .git_ref("main..dev")
        .metadata_entry("environment", 5)
        .build();
    assert_eq!(
        fields(result),
        [
            "deployment_request",
            "repository_full_name",
            "external_url",
            "commit_sha",
            "commit_message",
            "ref",
            "event_metadata.environment",
        ]
    );
}

#[test]
fn every_bad_field_is_reported_at_once_from_json() {
    let body = json!({
        "deployment_request": "",
        "repository_full_name": "x",
        "status": "done",
        "external_url": "nope",
        "commit_sha": "123",
        "ref": "a b",
        "event_metadata": [],
        "comit_message": "typo",
    });
    assert_eq!(
        fields(DeploymentEvent::from_value(body)),
        [
            "comit_message",
            "status",
            "event_metadata",
            "deployment_request",
            "repository_full_name",
            "external_url",
            "commit_sha",
            "ref",
        ]
    );
}

#[test]
fn the_error_message_lists_every_problem() {
    let err = DeploymentEvent::builder("")
        .commit_sha("xyz")
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"invalid deployment event (2 problems): deployment_request: must not be empty; commit_sha: "xyz" must be 7 to 64 hexadecimal characters"#
    );
    let one = DeploymentEvent::builder("").build().unwrap_err();
    assert_eq!(
        one.to_string(),
        "invalid deployment event (1 problem): deployment_request: must not be empty"
    );
    assert_eq!(one.kind().code(), "validation");
    assert_eq!(one.status(), None);
}

#[test]
fn unknown_field_is_rejected_by_name_with_a_typo_hint() {
    let p = problems(DeploymentEvent::from_json(
        r#"{"deployment_request":"Deploy","comit_sha":"4f2a9c1"}"#,
    ));
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].0, "comit_sha");
    assert!(
        p[0].1
            .starts_with("unknown field; did you mean `commit_sha`?"),
        "{}",
        p[0].1
    );
    assert!(
        p[0].1
            .contains("known fields: deployment_request, repository_full_name"),
        "{}",
        p[0].1
    );

    let p = problems(DeploymentEvent::from_json(
        r#"{"deployment_request":"Deploy","reff":"main"}"#,
    ));
    assert_eq!(p[0].0, "reff");
    assert!(p[0].1.contains("did you mean `ref`?"), "{}", p[0].1);

    let p = problems(DeploymentEvent::from_json(
        r#"{"deployment_request":"Deploy","Status":"running"}"#,
    ));
    assert!(p[0].1.contains("did you mean `status`?"), "{}", p[0].1);
}

#[test]
fn unknown_field_far_from_any_known_one_gets_no_hint() {
    let p = problems(DeploymentEvent::from_json(
        r#"{"deployment_request":"Deploy","colour":"blue"}"#,
    ));
    assert_eq!(
        p,
        [(
            "colour".to_owned(),
            format!("unknown field (known fields: {})", known_fields())
        )]
    );
}

fn known_fields() -> &'static str {
    "deployment_request, repository_full_name, status, external_url, commit_sha, commit_message, ref, event_metadata"
}

#[test]
fn several_unknown_fields_are_all_named_in_sorted_order() {
    assert_eq!(
        fields(DeploymentEvent::from_json(
            r#"{"deployment_request":"D","zzz":1,"env":"prod","aaa":null}"#
        )),
        ["aaa", "env", "zzz"]
    );
}

#[test]
fn body_must_be_a_json_object() {
    for (text, kind) in [
        ("[]", "an array"),
        (r#""Deploy""#, "a string"),
        ("42", "a number"),
        ("null", "null"),
        ("true", "a boolean"),
    ] {
        assert_one_problem(
            DeploymentEvent::from_json(text),
            "body",
            &format!("must be a JSON object, got {kind}"),
        );
    }
}

#[test]
fn empty_body_is_rejected() {
    for text in ["", "   ", "\n\t"] {
        assert_one_problem(
            DeploymentEvent::from_json(text),
            "body",
            "is empty; expected a JSON object",
        );
    }
    assert_one_problem(DeploymentEvent::from_slice(b""), "body", "is empty");
}

#[test]
fn malformed_json_is_rejected_with_the_parser_position() {
    assert_one_problem(
        DeploymentEvent::from_json("{"),
        "body",
        "is not valid JSON: EOF while parsing",
    );
    assert_one_problem(
        DeploymentEvent::from_json(r#"{"deployment_request":"D",}"#),
        "body",
        "line 1 column 27",
    );
    assert_one_problem(
        DeploymentEvent::from_json(r#"{"deployment_request":"D"} trailing"#),
        "body",
        "trailing characters",
    );
}

#[test]
fn non_utf8_bytes_are_rejected_with_their_offset() {
    let mut bytes = br#"{"deployment_request":""#.to_vec();
    let offset = bytes.len();
    bytes.extend_from_slice(b"Deploy \xff\xfe\"}");
    assert_one_problem(
        DeploymentEvent::from_slice(&bytes),
        "body",
        &format!("is not valid UTF-8 (invalid byte at offset {})", offset + 7),
    );
    // A truncated multi-byte sequence is also invalid.
    assert_one_problem(
        DeploymentEvent::from_slice(b"{\"a\":\"\xe2\x82\"}"),
        "body",
        "offset 6",
    );
}

#[test]
fn from_slice_accepts_valid_utf8_bytes() {
    assert_eq!(
        DeploymentEvent::from_slice(FULL_EVENT_JSON.as_bytes()).unwrap(),
        full_event()
    );
}

#[test]
fn json_with_duplicate_keys_keeps_the_last_value() {
    // serde_json keeps the last duplicate; the validated value is what is sent.
    let event =
        DeploymentEvent::from_json(r#"{"deployment_request":"a","deployment_request":"b"}"#)
            .unwrap();
    assert_eq!(event.deployment_request(), "b");
}

// ---------------------------------------------------------------------------------------------
// serde

#[test]
fn serde_deserialize_validates_like_from_json() {
    let event: DeploymentEvent = serde_json::from_str(FULL_EVENT_JSON).unwrap();
    assert_eq!(event, full_event());

    let err = serde_json::from_str::<DeploymentEvent>(
        r#"{"deployment_request":"D","comit_sha":"4f2a9c1","commit_sha":"zz"}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("comit_sha: unknown field"), "{err}");
    assert!(
        err.contains("commit_sha: \"zz\" must be 7 to 64 hexadecimal characters"),
        "{err}"
    );
    assert!(
        err.starts_with("invalid deployment event (2 problems)"),
        "{err}"
    );
}

#[test]
fn serde_deserialize_works_inside_a_larger_document() {
    #[derive(Debug, serde::Deserialize)]
    struct Envelope {
        events: Vec<DeploymentEvent>,
    }
    let doc = format!(r#"{{"events":[{FULL_EVENT_JSON},{{"deployment_request":"Deploy v1"}}]}}"#);
    let env: Envelope = serde_json::from_str(&doc).unwrap();
    assert_eq!(env.events, [full_event(), minimal_event()]);

    let bad = r#"{"events":[{"deployment_request":""}]}"#;
    let err = serde_json::from_str::<Envelope>(bad)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("deployment_request: must not be empty"),
        "{err}"
    );
}

#[test]
fn serde_serialize_matches_to_json() {
    assert_eq!(
        serde_json::to_string(&full_event()).unwrap(),
        FULL_EVENT_JSON
    );
    assert_eq!(
        serde_json::to_value(full_event()).unwrap(),
        full_event().to_value()
    );
}

// ---------------------------------------------------------------------------------------------
// CI environments

fn github_vars() -> HashMap<String, String> {
    env(&[
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_SHA", "4f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39"),
        ("GITHUB_REPOSITORY", "acme/checkout"),
        ("GITHUB_REF", "refs/heads/main"),
        ("GITHUB_SERVER_URL", "https://github.com/"),
        ("GITHUB_RUN_ID", "123456"),
        ("GITHUB_RUN_ATTEMPT", "2"),
        ("CASED_ENVIRONMENT", "production"),
    ])
}

fn gitlab_vars() -> HashMap<String, String> {
    env(&[
        ("GITLAB_CI", "true"),
        ("CI_COMMIT_SHA", "0123456789abcdef0123456789abcdef01234567"),
        ("CI_PROJECT_PATH", "acme/platform/checkout"),
        ("CI_COMMIT_REF_NAME", "release/2.0"),
        (
            "CI_PIPELINE_URL",
            "https://gitlab.example.com/acme/platform/checkout/-/pipelines/777",
        ),
        ("CI_COMMIT_MESSAGE", "Release 2.0\n"),
        ("CI_ENVIRONMENT_NAME", "staging"),
        ("CI_PIPELINE_ID", "777"),
    ])
}

#[test]
fn github_actions_environment_maps_to_the_event() {
    let event = DeploymentEventBuilder::from_github_actions(&github_vars())
        .build()
        .unwrap();
    assert_eq!(
        event.to_json(),
        concat!(
            r#"{"deployment_request":"Deploy acme/checkout@4f2a9c1","repository_full_name":"acme/checkout","#,
            r#""status":"success","external_url":"https://github.com/acme/checkout/actions/runs/123456","#,
            r#""commit_sha":"4f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39","ref":"refs/heads/main","#,
            r#""event_metadata":{"correlation_id":"github:acme/checkout:123456:2","environment":"production"}}"#
        )
    );
}

#[test]
fn github_run_attempt_defaults_to_one_and_url_needs_all_three_parts() {
    let mut vars = github_vars();
    vars.remove("GITHUB_RUN_ATTEMPT");
    let event = DeploymentEvent::from_ci_env(&vars).unwrap();
    assert_eq!(
        event.correlation_id(),
        Some("github:acme/checkout:123456:1")
    );

    vars.remove("GITHUB_RUN_ID");
    let event = DeploymentEvent::from_ci_env(&vars).unwrap();
    assert_eq!(event.external_url(), None);
    assert_eq!(event.correlation_id(), None);
}

#[test]
fn gitlab_ci_environment_maps_to_the_event() {
    let event = DeploymentEventBuilder::from_gitlab_ci(&gitlab_vars())
        .build()
        .unwrap();
    assert_eq!(
        event.to_json(),
        concat!(
            r#"{"deployment_request":"Deploy acme/platform/checkout@0123456","#,
            r#""repository_full_name":"acme/platform/checkout","status":"success","#,
            r#""external_url":"https://gitlab.example.com/acme/platform/checkout/-/pipelines/777","#,
            r#""commit_sha":"0123456789abcdef0123456789abcdef01234567","commit_message":"Release 2.0\n","#,
            r#""ref":"release/2.0","#,
            r#""event_metadata":{"correlation_id":"gitlab:acme/platform/checkout:777","environment":"staging"}}"#
        )
    );
}

#[test]
fn cased_variables_override_the_ci_defaults() {
    let mut vars = gitlab_vars();
    vars.insert("CASED_ENVIRONMENT".into(), "production".into());
    vars.insert("CASED_DEPLOYMENT_REQUEST".into(), "Ship 2.0".into());
    let event = DeploymentEvent::from_ci_env(&vars).unwrap();
    assert_eq!(event.deployment_request(), "Ship 2.0");
    assert_eq!(event.environment(), Some("production"));
}

#[test]
fn empty_ci_variables_count_as_absent() {
    let vars = env(&[
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_SHA", ""),
        ("GITHUB_REPOSITORY", ""),
        ("GITHUB_REF", ""),
    ]);
    let event = DeploymentEvent::from_ci_env(&vars).unwrap();
    assert_eq!(
        event.to_json(),
        r#"{"deployment_request":"Deploy repository","status":"success"}"#
    );
}

#[test]
fn ci_detection_picks_github_then_gitlab() {
    let github = DeploymentEvent::from_ci_env(&github_vars()).unwrap();
    assert_eq!(github.repository_full_name(), Some("acme/checkout"));

    let gitlab = DeploymentEvent::from_ci_env(&gitlab_vars()).unwrap();
    assert_eq!(
        gitlab.repository_full_name(),
        Some("acme/platform/checkout")
    );

    let mut both = gitlab_vars();
    both.extend(github_vars());
    assert_eq!(
        DeploymentEvent::from_ci_env(&both)
            .unwrap()
            .repository_full_name(),
        Some("acme/checkout")
    );

    let mut upper = gitlab_vars();
    upper.insert("GITLAB_CI".into(), "TRUE".into());
    assert!(DeploymentEvent::from_ci_env(&upper).is_ok());
}

#[test]
fn no_ci_detected_is_an_error_on_environment() {
    for vars in [
        HashMap::new(),
        env(&[("GITHUB_ACTIONS", "false"), ("GITLAB_CI", "1")]),
        env(&[("CI", "true"), ("GITHUB_SHA", "4f2a9c1")]),
    ] {
        assert_one_problem(
            DeploymentEvent::from_ci_env(&vars),
            "environment",
            "no supported CI detected (expected GITHUB_ACTIONS=true or GITLAB_CI=true)",
        );
        assert!(DeploymentEventBuilder::from_ci_env(&vars).is_err());
    }
}

#[test]
fn bad_ci_values_are_reported_as_field_problems() {
    let mut vars = github_vars();
    vars.insert("GITHUB_SHA".into(), "not-a-sha".into());
    vars.insert("GITHUB_REPOSITORY".into(), "acme".into());
    assert_eq!(
        fields(DeploymentEvent::from_ci_env(&vars)),
        ["repository_full_name", "commit_sha"]
    );
}

#[test]
fn non_ascii_ci_sha_is_a_field_problem_not_a_panic() {
    let mut vars = github_vars();
    vars.insert("GITHUB_SHA".into(), "ééééééé".into());
    assert_eq!(fields(DeploymentEvent::from_ci_env(&vars)), ["commit_sha"]);
}

#[test]
fn ci_builder_can_be_completed_by_the_caller() {
    let event = DeploymentEventBuilder::from_ci_env(&github_vars())
        .unwrap()
        .status(DeploymentStatus::Running)
        .deployment_request("Deploy v1.4.2")
        .metadata_entry("version", "1.4.2")
        .build()
        .unwrap();
    assert_eq!(event.status(), DeploymentStatus::Running);
    assert_eq!(event.deployment_request(), "Deploy v1.4.2");
    assert_eq!(event.environment(), Some("production"));
    assert_eq!(
        event.event_metadata().unwrap().get("version"),
        Some(&json!("1.4.2"))
    );
}
