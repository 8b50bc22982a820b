//! The built-in checks against real servers on loopback: every row of the fault matrix of
//! issue 4, and the positive cases of each check type. Postgres and Redis come from
//! `.ci/pg-redis.sh` (`CASED_TEST_POSTGRES_URL`, `CASED_TEST_REDIS_URL`); without them those
//! tests fail with what to run.

use std::time::{Duration, Instant};

use cased_core::checks::{HttpCheck, HttpCheckConfig, JsonExpect, TcpCheck, TcpCheckConfig};
use cased_core::{CheckCategory, CheckConfig, CheckOutcome, CheckStatus, HealthCheck, run_check};
use cased_tests::*;
use serde_json::{Value, json};

async fn run(config: Value) -> CheckOutcome {
    let config = CheckConfig::from_value(config).expect("valid check configuration");
    run_check(&config).await.expect("buildable check")
}

fn evidence(o: &CheckOutcome) -> &Value {
    o.evidence
        .as_ref()
        .unwrap_or_else(|| panic!("no evidence on {o:?}"))
}

#[track_caller]
fn assert_status(o: &CheckOutcome, status: CheckStatus) {
    assert_eq!(o.status, status, "{o:#?}");
}

#[track_caller]
fn assert_fails_with(o: &CheckOutcome, error: &str) {
    assert_status(o, CheckStatus::Fail);
    assert_eq!(evidence(o)["error"], error, "{o:#?}");
}

// ---------------------------------------------------------------- fault matrix: HTTP

#[tokio::test]
async fn http_connection_refused_fails() {
    let port = closed_port().await;
    let o = run(json!({"name": "web", "type": "http", "url": format!("http://127.0.0.1:{port}/"), "timeout": "5s"})).await;
    assert_fails_with(&o, "connection_refused");
    assert!(o.message.contains("connection refused"), "{}", o.message);
    assert_eq!(evidence(&o)["expected"], "an HTTP response");
}

#[tokio::test]
async fn http_reset_mid_response_fails() {
    let addr = reset_mid_response().await;
    let o = run(
        json!({"name": "web", "type": "http", "url": format!("http://{addr}/"), "timeout": "5s"}),
    )
    .await;
    assert_status(&o, CheckStatus::Fail);
    let e = evidence(&o);
    assert_eq!(
        (e["phase"].as_str(), e["error"].as_str()),
        (Some("body"), Some("connection_reset")),
        "{o:#?}"
    );
    assert_eq!(e["status"], 200);
    assert!(e["body_bytes"].as_u64().unwrap() <= 10, "{o:#?}");
}

#[tokio::test]
async fn http_name_that_does_not_resolve_fails() {
    let o = run(json!({"name": "web", "type": "http", "url": "http://no-such-host.invalid/", "timeout": "5s"})).await;
    assert_fails_with(&o, "dns");
}

#[tokio::test]
async fn http_server_that_never_answers_times_out() {
    let addr = silent_server().await;
    let started = Instant::now();
    let o = run(json!({"name": "web", "type": "http", "url": format!("http://{addr}/"), "timeout": "300ms"})).await;
    assert_fails_with(&o, "timeout");
    assert_eq!(evidence(&o)["phase"], "headers");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert!(o.latency >= Duration::from_millis(300));
}

/// Every row of the fault → outcome table of docs/checks.md that a loopback server can play,
/// through a whole session: one HTTP check whose `timeout` (400 ms) is longer than the
/// schedule's interval (50 ms). Each fault of the target is a failed tick, so the deployment
/// ends `unhealthy` (exit 1 for `cased monitor`), never `inconclusive` (exit 2).
#[tokio::test]
async fn in_a_session_every_fault_of_the_target_is_a_fail_and_the_deployment_unhealthy() {
    let web = http_server().await;
    let refused = format!("http://127.0.0.1:{}/", closed_port().await);
    let hang = format!("http://{}/", silent_server().await);
    let reset = format!("http://{}/", reset_mid_response().await);
    let (huge, _written) = huge_body_server(100 << 20).await;
    let rows: [(&str, String, Value, &str); 6] = [
        (
            "connection refused",
            refused,
            json!({}),
            "connection_refused",
        ),
        (
            "NXDOMAIN",
            "http://no-such-host.invalid/".into(),
            json!({}),
            "dns",
        ),
        ("hang", hang, json!({}), "timeout"),
        ("reset", reset, json!({}), "connection_reset"),
        ("5xx", web.url("/500"), json!({}), "status"),
        (
            "body too large",
            format!("http://{huge}/"),
            json!({"max_body_bytes": 1024, "expect": {"body_contains": "the end"}}),
            "body_contains",
        ),
    ];
    for (fault, url, extra, error) in rows {
        let mut check = json!({"name": "web", "type": "http", "url": url, "timeout": "400ms"});
        check
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let config = cased_core::MonitorConfig::from_value(json!({
            "schedule": {"intervals": ["50ms"], "max_duration": "30s"},
            "checks": [check],
        }))
        .unwrap();
        let monitor = cased_core::Monitor::builder(config).build().unwrap();
        let report = monitor.run(minimal_event()).await.unwrap();
        assert_eq!(
            report.verdict,
            cased_core::Verdict::Unhealthy,
            "{fault}: {}",
            report.reason
        );
        let result = &report.ticks[0].checks[0];
        assert_eq!(result.status, CheckStatus::Fail, "{fault}: {result:#?}");
        let got = result.evidence["error"]
            .as_str()
            .or_else(|| result.evidence["failures"][0]["check"].as_str())
            .unwrap_or_default()
            .to_owned();
        assert!(
            got == error || result.message.contains(error),
            "{fault}: expected {error}, got {result:#?}"
        );
    }
}

#[tokio::test]
async fn http_slow_body_beyond_the_timeout_fails() {
    let addr = slow_body_server().await;
    let started = Instant::now();
    let o = run(json!({"name": "web", "type": "http", "url": format!("http://{addr}/"), "timeout": "1500ms"})).await;
    assert_fails_with(&o, "timeout");
    let e = evidence(&o);
    assert_eq!(e["phase"], "body");
    let read = e["body_bytes"].as_u64().unwrap();
    assert!((1..100).contains(&read), "{o:#?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn http_100_mb_body_is_cut_at_the_cap() {
    const TOTAL: u64 = 100 << 20;
    let (addr, written) = huge_body_server(TOTAL).await;
    let started = Instant::now();
    let o = run(
        json!({"name": "web", "type": "http", "url": format!("http://{addr}/"), "timeout": "20s",
                       "max_body_bytes": 1 << 20, "expect": {"body_contains": "["}}),
    )
    .await;
    let took = started.elapsed();
    assert_status(&o, CheckStatus::Pass);
    let e = evidence(&o);
    assert_eq!(e["body_bytes"], 1 << 20);
    assert_eq!(e["body_truncated"], true);
    // The server stops when the client has gone: what it wrote is the cap plus what the
    // loopback socket buffers held, far from 100 MB.
    let written = written.await.unwrap();
    assert!(written < 32 << 20, "the server wrote {written} bytes");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[tokio::test]
async fn http_redirect_loop_fails() {
    let s = http_server().await;
    let o = run(json!({"name": "web", "type": "http", "url": s.url("/loop/a")})).await;
    assert_fails_with(&o, "redirect_loop");
    assert!(o.message.contains("redirect loop"), "{}", o.message);
    // A limit below the loop's length stops earlier with its own reason.
    let o =
        run(json!({"name": "web", "type": "http", "url": s.url("/loop/a"), "max_redirects": 1}))
            .await;
    assert_fails_with(&o, "too_many_redirects");
}

#[tokio::test]
async fn http_self_signed_certificate_fails_by_default_and_passes_with_the_opt_out() {
    let addr = self_signed_https().await;
    let url = format!("https://localhost:{}/", addr.port());
    let o = run(json!({"name": "tls", "type": "http", "url": url, "timeout": "5s"})).await;
    assert_fails_with(&o, "tls");
    let o = run(json!({"name": "tls", "type": "http", "url": url, "timeout": "5s", "insecure_skip_verify": true,
                       "expect": {"body_contains": "ok"}}))
    .await;
    assert_status(&o, CheckStatus::Pass);
}

#[tokio::test]
async fn http_invalid_json_with_a_pointer_fails_with_evidence() {
    let s = http_server().await;
    let o = run(
        json!({"name": "api", "type": "http", "url": s.url("/bad-json"),
                       "expect": {"json": [{"pointer": "/status", "equals": "ok"}]}}),
    )
    .await;
    assert_status(&o, CheckStatus::Fail);
    assert!(o.message.contains("not valid JSON"), "{}", o.message);
    let f = &evidence(&o)["failures"][0];
    assert_eq!(f["check"], "json");
    assert!(f["got"].as_str().unwrap().contains("oops"), "{f}");
}

#[tokio::test]
async fn http_5xx_fails_with_the_status_and_the_body() {
    let s = http_server().await;
    let o = run(json!({"name": "web", "type": "http", "url": s.url("/500")})).await;
    assert_status(&o, CheckStatus::Fail);
    assert!(
        o.message.contains("HTTP 500, expected 2xx"),
        "{}",
        o.message
    );
    let f = &evidence(&o)["failures"][0];
    assert_eq!(
        (f["expected"].clone(), f["got"].clone()),
        (json!(["2xx"]), json!(500))
    );
    assert_eq!(f["body_excerpt"], "database is down");
    // ...unless 500 is what is expected.
    let o = run(
        json!({"name": "web", "type": "http", "url": s.url("/500"), "expect": {"status": [500]}}),
    )
    .await;
    assert_status(&o, CheckStatus::Pass);
}

// ---------------------------------------------------------------- HTTP, positive

#[tokio::test]
async fn http_sends_method_headers_and_body() {
    let s = http_server().await;
    let o = run(
        json!({"name": "echo", "type": "http", "url": s.url("/echo"), "method": "post",
                       "headers": {"x-test": "hello"}, "body": "payload",
                       "expect": {"body_regex": "^POST\\nhello\\npayload$"}}),
    )
    .await;
    assert_status(&o, CheckStatus::Pass);
    assert_eq!(evidence(&o)["status"], 200);
    let t = &evidence(&o)["timings_ms"];
    assert!(
        t["headers"].as_f64().unwrap() <= t["total"].as_f64().unwrap(),
        "{t}"
    );
}

#[tokio::test]
async fn http_json_pointers_equal_exist_and_match() {
    let s = http_server().await;
    let o = run(
        json!({"name": "api", "type": "http", "url": s.url("/json"), "expect": {
            "json": [
                {"pointer": "/status", "equals": "ok"},
                {"pointer": "/db/up", "equals": true},
                {"pointer": "/note", "equals": null},
                {"pointer": "/items/1", "exists": true},
                {"pointer": "/missing", "exists": false},
                {"pointer": "/version", "regex": "^2\\.\\d+"},
                {"pointer": "/db/latency_ms", "regex": "^\\d$"}
            ],
            "headers": {"X-Service": "api", "content-type": "application/json"},
            "body_contains": "\"items\""
        }}),
    )
    .await;
    assert_status(&o, CheckStatus::Pass);

    let o = run(json!({"name": "api", "type": "http", "url": s.url("/json"), "expect": {
        "json": [{"pointer": "/status", "equals": "degraded"}, {"pointer": "/nope", "exists": true},
                 {"pointer": "/version", "regex": "^3\\."}],
        "headers": {"x-service": "web"}
    }}))
    .await;
    assert_status(&o, CheckStatus::Fail);
    assert!(o.message.contains("(and 3 more)"), "{}", o.message);
    let f = evidence(&o)["failures"].as_array().unwrap().clone();
    assert_eq!(f.len(), 4);
    assert_eq!(
        (f[0]["expected"].clone(), f[0]["got"].clone()),
        (json!("web"), json!(["api"]))
    );
    assert_eq!(
        (f[1]["expected"].clone(), f[1]["got"].clone()),
        (json!("degraded"), json!("ok"))
    );
    assert_eq!(
        (f[2]["expected"].clone(), f[2]["got"].clone()),
        (json!("present"), Value::Null)
    );
    assert_eq!(f[3]["got"], "2.3.1");
}

#[tokio::test]
async fn http_latency_budget_warns_then_fails() {
    let s = http_server().await;
    let o = run(
        json!({"name": "slow", "type": "http", "url": s.url("/slow?ms=300"),
                       "expect": {"warn_latency": "100ms", "max_latency": "10s"}}),
    )
    .await;
    assert_status(&o, CheckStatus::Warn);
    assert_eq!(evidence(&o)["failures"][0]["check"], "warn_latency");
    let o = run(
        json!({"name": "slow", "type": "http", "url": s.url("/slow?ms=300"),
                       "expect": {"warn_latency": "50ms", "max_latency": "100ms"}}),
    )
    .await;
    assert_status(&o, CheckStatus::Fail);
    assert_eq!(evidence(&o)["failures"][0]["check"], "max_latency");
    assert!(o.latency >= Duration::from_millis(300));
    let o = run(json!({"name": "fast", "type": "http", "url": s.url("/ok"), "expect": {"warn_latency": "5s", "max_latency": "10s"}})).await;
    assert_status(&o, CheckStatus::Pass);
}

#[tokio::test]
async fn http_redirects_are_followed_or_not() {
    let s = http_server().await;
    let o = run(json!({"name": "r", "type": "http", "url": s.url("/redirect"), "expect": {"body_contains": "ok"}})).await;
    assert_status(&o, CheckStatus::Pass);
    let o =
        run(json!({"name": "r", "type": "http", "url": s.url("/redirect"), "max_redirects": 0}))
            .await;
    assert_status(&o, CheckStatus::Fail);
    assert_eq!(evidence(&o)["status"], 307);
    let o = run(json!({"name": "r", "type": "http", "url": s.url("/redirect"), "max_redirects": 0, "expect": {"status": ["3xx"]}})).await;
    assert_status(&o, CheckStatus::Pass);
}

#[tokio::test]
async fn http_fresh_connections_are_new_each_run_and_pooled_ones_are_reused() {
    let s = http_server().await;
    let mut config = HttpCheckConfig::new("peer", s.url("/peer"));
    let fresh = HttpCheck::new(config.clone()).unwrap();
    for _ in 0..3 {
        assert_status(&fresh.check().await, CheckStatus::Pass);
    }
    assert_eq!(s.peer_connections(), 3);
    config.connection = cased_core::checks::ConnectionMode::Pooled;
    let pooled = HttpCheck::new(config).unwrap();
    for _ in 0..3 {
        assert_status(&pooled.check().await, CheckStatus::Pass);
    }
    assert_eq!(s.peer_connections(), 4);
}

#[tokio::test]
async fn http_checks_are_constructible_in_code_and_categorised() {
    let s = http_server().await;
    let mut config = HttpCheckConfig::new("api", s.url("/json"));
    assert_eq!(
        HttpCheck::new(config.clone()).unwrap().category(),
        CheckCategory::Availability
    );
    config
        .expect
        .json
        .push(JsonExpect::equals("/status", json!("ok")));
    config
        .headers
        .insert("authorization".into(), "Bearer s3cr3t-token".into());
    let check = HttpCheck::new(config).unwrap();
    assert_eq!(check.category(), CheckCategory::Endpoint);
    assert!(!format!("{check:?}").contains("s3cr3t"), "{check:?}");
    assert_status(&check.check().await, CheckStatus::Pass);
}

#[tokio::test]
async fn passwords_in_urls_stay_out_of_messages() {
    let port = closed_port().await;
    let o = run(json!({"name": "web", "type": "http", "url": format!("http://user:hunter2@127.0.0.1:{port}/")})).await;
    assert_status(&o, CheckStatus::Fail);
    let shown = format!("{o:?}");
    assert!(
        !shown.contains("hunter2") && shown.contains("***"),
        "{shown}"
    );
}

// ---------------------------------------------------------------- TCP and DNS

#[tokio::test]
async fn tcp_connects_sends_and_expects() {
    let addr = line_server().await;
    let o =
        run(json!({"name": "t", "type": "tcp", "host": "127.0.0.1", "port": addr.port()})).await;
    assert_status(&o, CheckStatus::Pass);
    let o = run(json!({"name": "t", "type": "tcp", "host": "127.0.0.1", "port": addr.port(), "send": "hello\n", "expect": "PONG hello"})).await;
    assert_status(&o, CheckStatus::Pass);
    let o = run(json!({"name": "t", "type": "tcp", "host": "localhost", "port": addr.port(), "send": "hello\n", "expect": "PONG bye"})).await;
    assert_status(&o, CheckStatus::Fail);
    assert_eq!(evidence(&o)["got"], "220 ready\nPONG hello\n");
}

#[tokio::test]
async fn tcp_faults_are_outcomes() {
    let port = closed_port().await;
    let o = TcpCheck::new(TcpCheckConfig::new("t", "127.0.0.1", port))
        .unwrap()
        .check()
        .await;
    assert_fails_with(&o, "connection_refused");
    let addr = silent_server().await;
    let o = run(json!({"name": "t", "type": "tcp", "host": "127.0.0.1", "port": addr.port(), "expect": "220", "timeout": "200ms"})).await;
    assert_fails_with(&o, "timeout");
    let o =
        run(json!({"name": "t", "type": "tcp", "host": "no-such-host.invalid", "port": 80})).await;
    assert_fails_with(&o, "dns");
}

#[tokio::test]
async fn dns_resolves_localhost_and_checks_addresses() {
    let o = run(json!({"name": "d", "type": "dns", "host": "localhost"})).await;
    assert_status(&o, CheckStatus::Pass);
    let o =
        run(json!({"name": "d", "type": "dns", "host": "localhost", "addresses": ["127.0.0.1"]}))
            .await;
    assert_status(&o, CheckStatus::Pass);
    let o =
        run(json!({"name": "d", "type": "dns", "host": "localhost", "addresses": ["10.9.9.9"]}))
            .await;
    assert_status(&o, CheckStatus::Fail);
    assert_eq!(evidence(&o)["expected"], json!(["10.9.9.9"]));
    assert!(
        evidence(&o)["got"]
            .as_array()
            .unwrap()
            .contains(&json!("127.0.0.1")),
        "{o:#?}"
    );
}

#[tokio::test]
async fn dns_name_that_does_not_resolve_fails() {
    let o = run(json!({"name": "d", "type": "dns", "host": "no-such-host.invalid"})).await;
    assert_fails_with(&o, "dns");
}

// ---------------------------------------------------------------- Postgres

fn postgres_parts() -> (String, String) {
    let mut url = url::Url::parse(&service_url("CASED_TEST_POSTGRES_URL")).unwrap();
    let password = url.password().unwrap_or_default().to_owned();
    url.set_password(None).unwrap();
    (url.to_string(), password)
}

#[tokio::test]
async fn postgres_select_1_passes() {
    let (url, password) = postgres_parts();
    let o = run(json!({"name": "db", "type": "postgres", "url": url, "password": password})).await;
    assert_status(&o, CheckStatus::Pass);
    let config = CheckConfig::from_value(
        json!({"name": "db", "type": "postgres", "url": url, "password": password}),
    )
    .unwrap();
    assert_eq!(config.build().unwrap().category(), CheckCategory::Database);
    assert!(!format!("{config:?}{:?}", config.build().unwrap()).contains(&password));
}

#[tokio::test]
async fn postgres_wrong_password_fails_without_showing_it() {
    let (url, _) = postgres_parts();
    let o =
        run(json!({"name": "db", "type": "postgres", "url": url, "password": "wrong-pass-1234"}))
            .await;
    assert_fails_with(&o, "auth");
    assert_eq!(evidence(&o)["sqlstate"], "28P01");
    assert!(!format!("{o:?}").contains("wrong-pass-1234"));
}

#[tokio::test]
async fn postgres_wrong_database_fails() {
    let (url, password) = postgres_parts();
    let mut u = url::Url::parse(&url).unwrap();
    u.set_path("/no_such_database");
    let o =
        run(json!({"name": "db", "type": "postgres", "url": u.to_string(), "password": password}))
            .await;
    assert_fails_with(&o, "no_such_database");
}

#[tokio::test]
async fn postgres_down_fails() {
    let port = closed_port().await;
    let o = run(json!({"name": "db", "type": "postgres", "url": format!("postgres://cased_test@127.0.0.1:{port}/cased_test"),
                       "password": "x", "timeout": "3s"}))
    .await;
    assert_fails_with(&o, "connection_refused");
}

#[tokio::test]
async fn postgres_tls_required_from_a_plain_server_fails() {
    let (url, password) = postgres_parts();
    let o = run(json!({"name": "db", "type": "postgres", "url": url, "password": password, "tls": "require"})).await;
    assert_status(&o, CheckStatus::Fail);
    let o = run(json!({"name": "db", "type": "postgres", "url": url, "password": password, "tls": "prefer"})).await;
    assert_status(&o, CheckStatus::Pass);
}

// ---------------------------------------------------------------- Redis

#[tokio::test]
async fn redis_ping_passes() {
    let o =
        run(json!({"name": "cache", "type": "redis", "url": service_url("CASED_TEST_REDIS_URL")}))
            .await;
    assert_status(&o, CheckStatus::Pass);
    assert!(o.message.contains("PONG"), "{}", o.message);
}

#[tokio::test]
async fn redis_down_or_wrong_fails() {
    let port = closed_port().await;
    let o =
        run(json!({"name": "cache", "type": "redis", "url": format!("redis://127.0.0.1:{port}")}))
            .await;
    assert_fails_with(&o, "connection_refused");
    // AUTH on a server without a password is refused: a fail, with the server's words.
    let o = run(json!({"name": "cache", "type": "redis", "url": service_url("CASED_TEST_REDIS_URL"), "password": "not-needed-999"})).await;
    assert_fails_with(&o, "auth");
    assert!(!format!("{o:?}").contains("not-needed-999"));
    // An HTTP server is not Redis.
    let s = http_server().await;
    let o = run(json!({"name": "cache", "type": "redis", "url": s.base.replace("http", "redis")}))
        .await;
    assert_status(&o, CheckStatus::Fail);
}

// ---------------------------------------------------------------- command

#[tokio::test]
async fn command_output_and_exit_code_match() {
    let o = run(
        json!({"name": "c", "type": "command", "program": "echo", "args": ["hello", "$((1+2))"],
                       "expect": {"stdout_regex": "^hello \\$\\(\\(1\\+2\\)\\)\\n$"}}),
    )
    .await;
    assert_status(&o, CheckStatus::Pass);
    let o = run(json!({"name": "c", "type": "command", "program": "echo $((1+2)) >&2; exit 3", "shell": true,
                       "expect": {"exit_code": 3, "stderr_contains": "3"}}))
    .await;
    assert_status(&o, CheckStatus::Pass);
    let o = run(json!({"name": "c", "type": "command", "program": "echo", "args": ["nope"], "expect": {"stdout_contains": "yes"}})).await;
    assert_status(&o, CheckStatus::Fail);
    assert_eq!(evidence(&o)["failures"][0]["got"], "nope\n");
}

#[tokio::test]
async fn command_missing_is_an_error() {
    let o = run(
        json!({"name": "c", "type": "command", "program": "/nonexistent/cased-no-such-program"}),
    )
    .await;
    assert_status(&o, CheckStatus::Error);
    assert_eq!(evidence(&o)["error"], "not_found");
}

#[tokio::test]
async fn command_timing_out_is_killed_and_fails() {
    let started = Instant::now();
    let o = run(json!({"name": "c", "type": "command", "program": "sleep", "args": ["30"], "timeout": "200ms"})).await;
    assert_fails_with(&o, "timeout");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    let pid = evidence(&o)["pid"].as_u64().unwrap();
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "process {pid} still exists"
    );
}

/// Whether `pid` is done for: gone, a zombie (not yet reaped by init), exiting (`PF_EXITING`),
/// or with a SIGKILL pending — the kill is queued when `kill(2)` returns, but the process may
/// not have been scheduled to die yet.
fn not_running(pid: u64) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    let Some((_, rest)) = stat.rsplit_once(") ") else {
        return true;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    const PF_EXITING: u64 = 0x4;
    const SIGKILL_BIT: u64 = 1 << 8;
    let dead = fields.first().is_some_and(|s| *s == "Z" || *s == "X");
    let exiting = fields
        .get(6)
        .and_then(|f| f.parse::<u64>().ok())
        .is_some_and(|f| f & PF_EXITING != 0);
    let kill_pending = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map(|status| {
            status.lines().any(|l| {
                (l.starts_with("SigPnd:") || l.starts_with("ShdPnd:"))
                    && l.split_whitespace()
                        .nth(1)
                        .and_then(|m| u64::from_str_radix(m, 16).ok())
                        .is_some_and(|m| m & SIGKILL_BIT != 0)
            })
        })
        .unwrap_or(true);
    dead || exiting || kill_pending
}

#[tokio::test]
async fn command_is_judged_by_its_exit_status_and_its_orphans_are_killed() {
    // The shell exits at once; the orphan holds stdout open for 30 s. The check must not wait
    // for it (its timeout is shorter than the orphan's life), and must not leave it running.
    let o = run(
        json!({"name": "c", "type": "command", "program": "sleep 30 & echo $!; exit 0",
                       "shell": true, "timeout": "20s"}),
    )
    .await;
    assert_status(&o, CheckStatus::Pass);
    let pid: u64 = evidence(&o)["stdout"]
        .as_str()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(not_running(pid), "the orphan {pid} is still running");
}

#[tokio::test]
async fn command_timing_out_kills_its_whole_process_group() {
    let dir = std::env::temp_dir().join(format!("cased-pg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("child.pid");
    let script = format!("sleep 30 & echo $! > {}; wait", file.display());
    let o = run(json!({"name": "c", "type": "command", "program": script, "shell": true, "timeout": "300ms"})).await;
    assert_fails_with(&o, "timeout");
    let pid: u64 = std::fs::read_to_string(&file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(not_running(pid), "the shell's child {pid} is still running");
}

#[tokio::test]
async fn command_non_zero_exit_fails() {
    let o = run(json!({"name": "c", "type": "command", "program": "false"})).await;
    assert_status(&o, CheckStatus::Fail);
    assert_eq!(
        evidence(&o)["failures"][0],
        json!({"check": "exit_code", "expected": 0, "got": 1})
    );
}

// ---------------------------------------------------------------- configuration

#[test]
fn unknown_keys_and_bad_values_name_the_field() {
    let e = CheckConfig::from_value(
        json!({"name": "t", "type": "tcp", "host": "h", "port": 1, "sned": "x"}),
    )
    .unwrap_err();
    assert!(e.to_string().contains("unknown field `sned`"), "{e}");
    let e = CheckConfig::from_value(json!({"name": "t", "type": "http", "url": "http://x", "expect": {"json": [{"pointer": "/a", "equal": 1}]}})).unwrap_err();
    assert!(e.to_string().contains("equal"), "{e}");
    let e = CheckConfig::from_value(json!({"name": "t", "type": "smtp"})).unwrap_err();
    assert!(e.to_string().contains("smtp"), "{e}");

    let bad = CheckConfig::from_value(json!({"name": "", "type": "http", "url": "ftp://x", "method": "G ET", "timeout": "0s",
        "headers": {"bad header": "v"},
        "expect": {"status": [], "warn_latency": "2s", "max_latency": "1s", "body_regex": "(",
                   "json": [{"pointer": "a", "exists": true}, {"pointer": "/b"}, {"pointer": "/c", "regex": "["}]}}))
    .unwrap();
    let fields: Vec<String> = bad
        .build()
        .unwrap_err()
        .field_errors()
        .iter()
        .map(|f| f.field.clone())
        .collect();
    assert_eq!(
        fields,
        [
            "name",
            "url",
            "method",
            "headers.bad header",
            "timeout",
            "expect.status",
            "expect.warn_latency",
            "expect.body_regex",
            "expect.json[0].pointer",
            "expect.json[1]",
            "expect.json[2].regex"
        ]
    );
    let fields = |v: Value| -> Vec<String> {
        CheckConfig::from_value(v)
            .unwrap()
            .build()
            .unwrap_err()
            .field_errors()
            .iter()
            .map(|f| f.field.clone())
            .collect()
    };
    assert_eq!(
        fields(json!({"name": "t", "type": "tcp", "host": "", "port": 0, "expect": ""})),
        ["host", "port", "expect"]
    );
    assert_eq!(
        fields(json!({"name": "d", "type": "dns", "host": "a b"})),
        ["host"]
    );
    assert_eq!(
        fields(json!({"name": "p", "type": "postgres", "url": "postgres://u:pw@h/db"})),
        ["url"]
    );
    assert_eq!(
        fields(json!({"name": "r", "type": "redis", "url": "http://h"})),
        ["url"]
    );
    assert_eq!(
        fields(
            json!({"name": "c", "type": "command", "program": "x", "args": ["y"], "shell": true,
                             "expect": {"stdout_regex": "("}})
        ),
        ["args", "expect.stdout_regex"]
    );
}

#[test]
fn categories_default_by_type_and_can_be_set() {
    let cat = |v: Value| {
        CheckConfig::from_value(v)
            .unwrap()
            .build()
            .unwrap()
            .category()
    };
    assert_eq!(
        cat(json!({"name": "t", "type": "tcp", "host": "h", "port": 1})),
        CheckCategory::Availability
    );
    assert_eq!(
        cat(json!({"name": "d", "type": "dns", "host": "h"})),
        CheckCategory::Dependency
    );
    assert_eq!(
        cat(json!({"name": "r", "type": "redis", "url": "redis://h"})),
        CheckCategory::Dependency
    );
    assert_eq!(
        cat(json!({"name": "p", "type": "postgres", "url": "postgres://u@h/db"})),
        CheckCategory::Database
    );
    assert_eq!(
        cat(json!({"name": "c", "type": "command", "program": "true"})),
        CheckCategory::Availability
    );
    assert_eq!(
        cat(json!({"name": "h", "type": "http", "url": "http://h", "category": "dependency"})),
        CheckCategory::Dependency
    );
}

#[test]
fn configurations_round_trip_without_secrets() {
    let v = json!({"name": "r", "type": "redis", "url": "redis://h:1", "password": "pw-123456", "timeout": "2s"});
    let c = CheckConfig::from_value(v).unwrap();
    let back = serde_json::to_value(&c).unwrap();
    assert_eq!(
        back,
        json!({"name": "r", "type": "redis", "url": "redis://h:1", "timeout": "2s"})
    );
    let v = json!({"name": "h", "type": "http", "url": "http://h/", "expect": {"status": [200, "3xx"], "json": [{"pointer": "/a", "equals": null}]}});
    let c = CheckConfig::from_value(v).unwrap();
    let again = CheckConfig::from_value(serde_json::to_value(&c).unwrap()).unwrap();
    assert_eq!(c, again);
}
