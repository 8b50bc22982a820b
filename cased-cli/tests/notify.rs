//! `cased notify` as a user runs it: the real binary, a clean environment, a mockito server.

use std::process::{Command, Output};

use mockito::{Matcher, Server};

const KEY: &str = "ck_cli_test_5e4d3c2b1a_NEVER_PRINTED";
const DEPLOYMENTS: &str = "/api/v1/deployments/";

/// The `cased` binary with an empty environment (no CI variables, no API key of the machine).
fn cased() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cased"));
    cmd.env_clear();
    cmd
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(cmd: &mut Command) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("the cased binary runs");
    Run {
        code: status.code().expect("exited, not killed"),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

impl Run {
    #[track_caller]
    fn assert_no_key(&self) {
        assert!(!self.stdout.contains(KEY), "key in stdout: {}", self.stdout);
        assert!(!self.stderr.contains(KEY), "key in stderr: {}", self.stderr);
        assert!(
            !self.stderr.contains("NEVER_PRINTED"),
            "part of the key in stderr: {}",
            self.stderr
        );
    }
}

const FULL_FLAGS: [&str; 22] = [
    "notify",
    "-m",
    "Deploy v1.4.2",
    "--repository",
    "acme/checkout",
    "--status",
    "running",
    "--external-url",
    "https://ci.example.com/runs/42",
    "--commit-sha",
    "4f2a9c1",
    "--commit-message",
    "Fix the basket",
    "--ref",
    "refs/heads/main",
    "--environment",
    "production",
    "--metadata",
    "version=1.4.2",
    "--metadata",
    "build=42",
    "--metadata=canary=true",
];

const FULL_JSON: &str = concat!(
    r#"{"deployment_request":"Deploy v1.4.2","repository_full_name":"acme/checkout","status":"running","#,
    r#""external_url":"https://ci.example.com/runs/42","commit_sha":"4f2a9c1","commit_message":"Fix the basket","#,
    r#""ref":"refs/heads/main","event_metadata":{"build":42,"canary":true,"environment":"production","version":"1.4.2"}}"#
);

#[test]
fn help_lists_the_notify_command_and_its_flags() {
    let top = run(cased().arg("--help"));
    assert_eq!(top.code, 0, "{}", top.stderr);
    assert!(top.stdout.contains("notify"), "{}", top.stdout);
    assert!(top.stdout.contains("--log <FILTER>"), "{}", top.stdout);

    let notify = run(cased().args(["notify", "--help"]));
    assert_eq!(notify.code, 0, "{}", notify.stderr);
    for flag in [
        "-m, --deployment-request <TEXT>",
        "--repository",
        "--status",
        "--external-url",
        "--commit-sha",
        "--commit-message",
        "--ref <REF>",
        "--environment",
        "--metadata <KEY=VALUE>",
        "--from-ci",
        "--api-key <KEY>",
        "[env: CASED_API_KEY]",
        "--base-url",
        "--timeout <DURATION>",
        "--max-retries",
        "--dry-run",
        "Exit codes: 0 delivered, 1 the API refused or failed, 3 usage or validation error.",
        "Timeout per attempt, not of the whole call",
    ] {
        assert!(
            notify.stdout.contains(flag),
            "{flag:?} missing from:\n{}",
            notify.stdout
        );
    }
}

#[test]
fn help_never_shows_the_key_from_the_environment() {
    let r = run(cased().args(["notify", "--help"]).env("CASED_API_KEY", KEY));
    assert_eq!(r.code, 0);
    r.assert_no_key();
}

#[test]
fn version_prints_the_crate_version() {
    let r = run(cased().arg("--version"));
    assert_eq!(
        (r.code, r.stdout.trim()),
        (0, concat!("cased ", env!("CARGO_PKG_VERSION")))
    );
}

#[test]
fn usage_errors_exit_3() {
    for args in [
        &["notify", "--bogus"][..],
        &["frobnicate"],
        &[],
        &["notify", "-m", "Deploy", "--timeout", "ten", "--dry-run"],
        &["notify", "-m", "Deploy", "--max-retries", "-1", "--dry-run"],
        &["notify", "--repository"],
    ] {
        let r = run(cased().args(args));
        assert_eq!(r.code, 3, "{args:?}: {}", r.stderr);
        assert!(!r.stderr.is_empty(), "{args:?}");
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
    }
    let r = run(cased().args(["notify", "--bogus"]));
    assert!(
        r.stderr.contains("unexpected argument '--bogus'"),
        "{}",
        r.stderr
    );
}

#[test]
fn dry_run_prints_exactly_the_json_it_would_send() {
    let r = run(cased().args(FULL_FLAGS).arg("--dry-run"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, format!("{FULL_JSON}\n"));
    assert_eq!(r.stderr, "");
}

#[test]
fn dry_run_of_the_minimal_event() {
    let r = run(cased().args(["notify", "-m", "Deploy v1", "--dry-run"]));
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (
            0,
            "{\"deployment_request\":\"Deploy v1\",\"status\":\"success\"}\n"
        )
    );
}

#[test]
fn metadata_values_are_json_when_they_parse_and_strings_otherwise() {
    let r = run(cased().args([
        "notify",
        "-m",
        "D",
        "--metadata",
        r#"obj={"a":[1,2]}"#,
        "--metadata",
        r#"quoted="42""#,
        "--metadata",
        "text=hello world",
        "--metadata",
        "eq=a=b",
        "--metadata",
        "empty=",
        "--metadata",
        "nothing=null",
        "--dry-run",
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let sent: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        sent["event_metadata"],
        serde_json::json!({"obj": {"a": [1, 2]}, "quoted": "42", "text": "hello world", "eq": "a=b", "empty": "", "nothing": null})
    );
}

#[test]
fn from_ci_reads_github_actions_and_flags_override() {
    let r = run(cased()
        .args([
            "notify",
            "--from-ci",
            "--status",
            "running",
            "--environment",
            "staging",
            "--dry-run",
        ])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567")
        .env("GITHUB_REPOSITORY", "acme/checkout")
        .env("GITHUB_REF", "refs/tags/v2.0.0")
        .env("GITHUB_SERVER_URL", "https://github.com")
        .env("GITHUB_RUN_ID", "99")
        .env("CASED_ENVIRONMENT", "production"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout.trim_end(),
        concat!(
            r#"{"deployment_request":"Deploy acme/checkout@0123456","repository_full_name":"acme/checkout","#,
            r#""status":"running","external_url":"https://github.com/acme/checkout/actions/runs/99","#,
            r#""commit_sha":"0123456789abcdef0123456789abcdef01234567","ref":"refs/tags/v2.0.0","#,
            r#""event_metadata":{"correlation_id":"github:acme/checkout:99:1","environment":"staging"}}"#
        )
    );
}

#[test]
fn from_ci_reads_gitlab_ci() {
    let r = run(cased()
        .args(["notify", "--from-ci", "-m", "Release 3", "--dry-run"])
        .env("GITLAB_CI", "true")
        .env("CI_PROJECT_PATH", "acme/platform/checkout")
        .env("CI_COMMIT_SHA", "89abcdef0123456")
        .env("CI_COMMIT_REF_NAME", "main"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout.trim_end(),
        r#"{"deployment_request":"Release 3","repository_full_name":"acme/platform/checkout","status":"success","commit_sha":"89abcdef0123456","ref":"main"}"#
    );
}

#[test]
fn without_from_ci_the_ci_environment_is_ignored() {
    let r = run(cased()
        .args(["notify", "-m", "D", "--dry-run"])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_SHA", "4f2a9c1"));
    assert_eq!(
        r.stdout.trim_end(),
        r#"{"deployment_request":"D","status":"success"}"#
    );
}

#[test]
fn from_ci_outside_ci_is_a_validation_error() {
    let r = run(cased().args(["notify", "--from-ci", "--dry-run"]));
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("environment (--from-ci): no supported CI detected"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty());
}

#[test]
fn validation_errors_list_every_field_and_exit_3() {
    let r = run(cased().args([
        "notify",
        "--repository",
        "not-a-repo",
        "--status",
        "done",
        "--commit-sha",
        "xyz",
        "--ref",
        "a..b",
        "--metadata",
        "novalue",
        "--external-url",
        "ftp://x.example.com",
        "--dry-run",
    ]));
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(
        lines[0], "error: invalid deployment event (7 problems):",
        "{}",
        r.stderr
    );
    let fields: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.trim_start_matches("  - ").split(' ').next().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "deployment_request",
            "repository_full_name",
            "status",
            "external_url",
            "commit_sha",
            "ref",
            "event_metadata"
        ]
    );
    assert!(
        lines[1].contains("is required: pass --deployment-request (-m) or --from-ci"),
        "{}",
        lines[1]
    );
    assert!(
        r.stderr
            .contains("status (--status): \"done\" is not one of pending, running"),
        "{}",
        r.stderr
    );
}

#[test]
fn event_and_client_problems_are_reported_together_without_the_key() {
    let r = run(cased()
        .args([
            "notify",
            "-m",
            "D",
            "--commit-sha",
            "xyz",
            "--base-url",
            "not a url",
        ])
        .env("CASED_API_KEY", format!("{KEY} with spaces")));
    assert_eq!(r.code, 3, "{}", r.stderr);
    for needle in [
        "commit_sha (--commit-sha)",
        "api_key (--api-key)",
        "base_url (--base-url)",
    ] {
        assert!(
            r.stderr.contains(needle),
            "{needle:?} missing:\n{}",
            r.stderr
        );
    }
    r.assert_no_key();
}

#[test]
fn missing_api_key_is_a_usage_error_and_nothing_is_sent() {
    let mut server = Server::new();
    let mock = server.mock("POST", DEPLOYMENTS).expect(0).create();
    let r = run(cased().args(["notify", "-m", "D", "--base-url", &server.url()]));
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("api_key (--api-key): is required"),
        "{}",
        r.stderr
    );
    mock.assert();
}

#[test]
fn delivers_the_event_and_prints_the_answer() {
    let mut server = Server::new();
    let mock = server
        .mock("POST", DEPLOYMENTS)
        .match_header("authorization", format!("Bearer {KEY}").as_str())
        .match_header("content-type", "application/json")
        .match_header("user-agent", Matcher::Regex("^cased/".into()))
        .match_body(Matcher::Exact(FULL_JSON.into()))
        .with_status(201)
        .with_header("content-type", "application/json")
        .with_body(r#"{"id":42,"status":"running"}"#)
        .expect(1)
        .create();

    let r = run(cased()
        .args(FULL_FLAGS)
        .args(["--base-url", &server.url()])
        .env("CASED_API_KEY", KEY));

    mock.assert();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "{\"status\":201,\"body\":{\"id\":42,\"status\":\"running\"},\"attempts\":1}\n"
    );
    assert_eq!(r.stderr, "");
    r.assert_no_key();
}

#[test]
fn key_and_base_url_flags_and_environment_variables_are_equivalent() {
    let mut server = Server::new();
    let mock = server
        .mock("POST", "/prefix/api/v1/deployments/")
        .match_header("authorization", format!("Bearer {KEY}").as_str())
        .with_status(201)
        .expect(2)
        .create();
    let base = format!("{}/prefix", server.url());
    let by_flags = run(cased().args(["notify", "-m", "D", "--api-key", KEY, "--base-url", &base]));
    let by_env = run(cased()
        .args(["notify", "-m", "D"])
        .env("CASED_API_KEY", KEY)
        .env("CASED_BASE_URL", &base));
    mock.assert();
    for r in [by_flags, by_env] {
        assert_eq!(
            (r.code, r.stdout.as_str()),
            (0, "{\"status\":201,\"body\":null,\"attempts\":1}\n"),
            "{}",
            r.stderr
        );
        r.assert_no_key();
    }
}

#[test]
fn unauthorized_exits_1_with_the_server_message_and_never_the_key() {
    let mut server = Server::new();
    let mock = server
        .mock("POST", DEPLOYMENTS)
        .with_status(401)
        .with_body(r#"{"message":"invalid API key"}"#)
        .expect(1)
        .create();

    // With debug logs on, too: logs go to stderr and must not carry the key either.
    let r = run(cased()
        .args([
            "--log",
            "debug",
            "notify",
            "-m",
            "D",
            "--repository",
            "acme/checkout",
            "--base-url",
            &server.url(),
        ])
        .env("CASED_API_KEY", KEY));

    mock.assert();
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(
        r.stderr
            .contains("error: unauthorized (HTTP 401): invalid API key"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("deployment event not delivered"),
        "logs were on: {}",
        r.stderr
    );
    assert!(r.stderr.contains("acme/checkout"), "{}", r.stderr);
    r.assert_no_key();
}

#[test]
fn retries_follow_max_retries_then_exit_1() {
    let mut server = Server::new();
    let mock = server
        .mock("POST", DEPLOYMENTS)
        .with_status(503)
        .with_body("busy")
        .expect(2)
        .create();
    let r = run(cased()
        .args([
            "notify",
            "-m",
            "D",
            "--max-retries",
            "1",
            "--base-url",
            &server.url(),
        ])
        .env("CASED_API_KEY", KEY));
    mock.assert();
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.stderr, "error: server error (HTTP 503): busy\n");
}

#[test]
fn timeout_flag_bounds_an_unanswered_request() {
    // Bound but never accepted: the kernel completes the handshake, nobody ever answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let r = run(cased()
        .args([
            "notify",
            "-m",
            "D",
            "--timeout",
            "300ms",
            "--base-url",
            &url,
        ])
        .env("CASED_API_KEY", KEY));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.starts_with("error: timed out: "), "{}", r.stderr);
    drop(listener);
}

#[test]
fn a_bad_log_filter_is_a_usage_error() {
    let r = run(cased().args(["--log", "cased_core=[", "notify", "-m", "D", "--dry-run"]));
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("filter"), "{}", r.stderr);
}
