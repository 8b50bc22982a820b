//! The deployments API client against a mockito server on loopback: the exact request, the
//! answer, retries and their absence, `Retry-After`, timeouts, transport errors, builder
//! validation, and an API key that never shows.
//!
//! Mockito picks, among the mocks matching a request, the first one (in creation order) that has
//! not yet received its `expect`ed hits, else the last one. So a sequence "503 once, then 201" is
//! two mocks created in that order, the first with `.expect(1)`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cased_core::{
    API_KEY_ENV, ApiResponse, Client, DEFAULT_BASE_URL, DeploymentEvent, Error, ErrorKind,
    IDEMPOTENCY_KEY_HEADER, RetryPolicy,
};
use cased_tests::{
    CapturedLogs, DEPLOYMENTS, FULL_EVENT_JSON, TEST_KEY, builder_for, client_for, fast_retry,
    full_event, minimal_event,
};
use mockito::{Matcher, Server};
use serde_json::json;

/// A mock of the deployments endpoint answering `status` with a JSON `body`.
fn answer(server: &mut Server, status: usize, body: &str) -> mockito::Mock {
    server
        .mock("POST", DEPLOYMENTS)
        .with_status(status)
        .with_header("content-type", "application/json")
        .with_body(body)
}

// ---------------------------------------------------------------------------------------------
// The request and the answer

#[tokio::test]
async fn posts_the_exact_request() {
    let mut server = Server::new_async().await;
    let mock = server
        .mock("POST", DEPLOYMENTS)
        .match_header("authorization", format!("Bearer {TEST_KEY}").as_str())
        .match_header("content-type", "application/json")
        .match_header("accept", "application/json")
        .match_header("user-agent", Matcher::Regex(r"^cased/\d+\.\d+\.\d+".into()))
        .match_body(Matcher::Exact(FULL_EVENT_JSON.into()))
        .with_status(201)
        .with_header("content-type", "application/json")
        .with_body(r#"{"id":17,"status":"running"}"#)
        .expect(1)
        .create_async()
        .await;

    let answer = client_for(&server.url(), 0)
        .create_deployment(&full_event())
        .await
        .unwrap();

    mock.assert_async().await;
    assert_eq!(
        answer,
        ApiResponse {
            status: 201,
            body: Some(json!({"id": 17, "status": "running"})),
            attempts: 1
        }
    );
}

#[tokio::test]
async fn sends_no_cookie_or_unexpected_auth_headers() {
    let mut server = Server::new_async().await;
    // The only Authorization header is ours; nothing else carries the key.
    let mock = server
        .mock("POST", DEPLOYMENTS)
        .match_request(|req| {
            let auth = req.header("authorization");
            auth.len() == 1
                && req.header("cookie").is_empty()
                && req.header("x-api-key").is_empty()
                && req.path_and_query() == "/api/v1/deployments/"
        })
        .with_status(201)
        .expect(1)
        .create_async()
        .await;
    client_for(&server.url(), 0)
        .create_deployment(&minimal_event())
        .await
        .unwrap();
    mock.assert_async().await;
}

#[tokio::test]
async fn minimal_event_body_has_no_nulls() {
    let mut server = Server::new_async().await;
    let mock = server
        .mock("POST", DEPLOYMENTS)
        .match_body(Matcher::Exact(
            r#"{"deployment_request":"Deploy v1","status":"success"}"#.into(),
        ))
        .with_status(201)
        .expect(1)
        .create_async()
        .await;
    let answer = client_for(&server.url(), 0)
        .create_deployment(&minimal_event())
        .await
        .unwrap();
    mock.assert_async().await;
    assert_eq!(
        answer,
        ApiResponse {
            status: 201,
            body: None,
            attempts: 1
        }
    );
}

#[tokio::test]
async fn other_2xx_answers_are_success_and_non_json_bodies_are_kept_as_text() {
    let mut server = Server::new_async().await;
    let mock = server
        .mock("POST", DEPLOYMENTS)
        .with_status(202)
        .with_body("queued")
        .expect(1)
        .create_async()
        .await;
    let answer = client_for(&server.url(), 0)
        .create_deployment(&minimal_event())
        .await
        .unwrap();
    mock.assert_async().await;
    assert_eq!(
        answer,
        ApiResponse {
            status: 202,
            body: Some(json!("queued")),
            attempts: 1
        }
    );
}

#[tokio::test]
async fn base_url_path_prefix_is_kept() {
    let mut server = Server::new_async().await;
    let mock = server
        .mock("POST", "/cased/proxy/api/v1/deployments/")
        .with_status(201)
        .expect(2)
        .create_async()
        .await;
    for base in [
        format!("{}/cased/proxy", server.url()),
        format!("{}/cased/proxy/", server.url()),
    ] {
        let client = builder_for(&base).build().unwrap();
        assert_eq!(
            client.endpoint(),
            format!("{}/cased/proxy/api/v1/deployments/", server.url())
        );
        client.create_deployment(&minimal_event()).await.unwrap();
    }
    mock.assert_async().await;
}

#[test]
fn default_base_url_is_the_hosted_api() {
    assert_eq!(DEFAULT_BASE_URL, "https://app.cased.com");
    let client = Client::builder().api_key(TEST_KEY).build().unwrap();
    assert_eq!(
        client.endpoint(),
        "https://app.cased.com/api/v1/deployments/"
    );
}

#[tokio::test]
async fn clones_share_the_configuration() {
    let mut server = Server::new_async().await;
    let mock = server
        .mock("POST", DEPLOYMENTS)
        .match_header("authorization", format!("Bearer {TEST_KEY}").as_str())
        .with_status(201)
        .expect(2)
        .create_async()
        .await;
    let client = client_for(&server.url(), 0);
    let clone = client.clone();
    let (first, second) = (minimal_event(), full_event());
    let (a, b) = tokio::join!(
        client.create_deployment(&first),
        clone.create_deployment(&second)
    );
    assert_eq!((a.unwrap().status, b.unwrap().status), (201, 201));
    assert_eq!(clone.endpoint(), client.endpoint());
    mock.assert_async().await;
}

// ---------------------------------------------------------------------------------------------
// Retries

#[tokio::test]
async fn retries_each_retryable_status_then_succeeds() {
    for status in [408, 429, 502, 503, 504] {
        let mut server = Server::new_async().await;
        let failing = answer(&mut server, status, r#"{"message":"try again"}"#)
            .expect(2)
            .create_async()
            .await;
        let ok = answer(&mut server, 201, r#"{"id":1}"#)
            .expect(1)
            .create_async()
            .await;

        let result = client_for(&server.url(), 3)
            .create_deployment(&full_event())
            .await;

        failing.assert_async().await;
        ok.assert_async().await;
        assert_eq!(
            result.unwrap(),
            ApiResponse {
                status: 201,
                body: Some(json!({"id": 1})),
                attempts: 3
            },
            "after two HTTP {status}"
        );
    }
}

#[tokio::test]
async fn each_retry_resends_the_same_body() {
    let mut server = Server::new_async().await;
    let failing = server
        .mock("POST", DEPLOYMENTS)
        .match_body(Matcher::Exact(FULL_EVENT_JSON.into()))
        .with_status(503)
        .expect(1)
        .create_async()
        .await;
    let ok = server
        .mock("POST", DEPLOYMENTS)
        .match_body(Matcher::Exact(FULL_EVENT_JSON.into()))
        .match_header("authorization", format!("Bearer {TEST_KEY}").as_str())
        .with_status(201)
        .expect(1)
        .create_async()
        .await;
    let answer = client_for(&server.url(), 1)
        .create_deployment(&full_event())
        .await
        .unwrap();
    failing.assert_async().await;
    ok.assert_async().await;
    assert_eq!(answer.attempts, 2);
}

/// A deployments endpoint on loopback that answers 503 to the first `failures` requests and
/// 201 after, and keeps the `Idempotency-Key` of each request it gets.
async fn flaky_endpoint(failures: usize) -> (String, Arc<Mutex<Vec<Option<String>>>>) {
    let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let keys = Arc::clone(&seen);
    let app = axum::Router::new().route(
        DEPLOYMENTS,
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let keys = Arc::clone(&keys);
            async move {
                let key = headers
                    .get(IDEMPOTENCY_KEY_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let mut keys = keys.lock().unwrap();
                keys.push(key);
                if keys.len() <= failures {
                    axum::http::StatusCode::SERVICE_UNAVAILABLE
                } else {
                    axum::http::StatusCode::CREATED
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test]
async fn one_idempotency_key_per_event_kept_across_its_retries() {
    let (url, seen) = flaky_endpoint(2).await;
    let client = client_for(&url, 3);
    let answer = client.create_deployment(&full_event()).await.unwrap();
    assert_eq!((answer.status, answer.attempts), (201, 3));
    client.create_deployment(&full_event()).await.unwrap();
    let keys: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|k| k.clone().expect("every attempt carries an Idempotency-Key"))
        .collect();
    assert_eq!(keys.len(), 4, "{keys:?}");
    assert!(
        keys[0].len() == 32 && keys[0].chars().all(|c| c.is_ascii_hexdigit()),
        "{keys:?}"
    );
    // The three attempts of the first event share one key; the second event has another.
    assert_eq!((&keys[0], &keys[0]), (&keys[1], &keys[2]));
    assert_ne!(keys[0], keys[3]);
}

#[tokio::test]
async fn non_retryable_statuses_are_tried_once_and_mapped_to_their_kind() {
    let cases = [
        (400, ErrorKind::InvalidRequest),
        (401, ErrorKind::Unauthorized),
        (403, ErrorKind::Unauthorized),
        (404, ErrorKind::InvalidRequest),
        (409, ErrorKind::InvalidRequest),
        (422, ErrorKind::InvalidRequest),
        (500, ErrorKind::Server),
        (501, ErrorKind::Server),
    ];
    for (status, kind) in cases {
        let mut server = Server::new_async().await;
        let message = format!("nope {status}");
        let mock = answer(
            &mut server,
            status,
            &json!({"message": message}).to_string(),
        )
        .expect(1)
        .create_async()
        .await;

        let err = client_for(&server.url(), 3)
            .create_deployment(&full_event())
            .await
            .unwrap_err();

        mock.assert_async().await;
        assert_eq!(err.kind(), kind, "HTTP {status}: {err}");
        assert_eq!(err.status().map(usize::from), Some(status));
        let text = err.to_string();
        assert!(
            text.contains(&format!("(HTTP {status}): {message}")),
            "{text}"
        );
    }
}

#[tokio::test]
async fn errors_carry_the_server_message_in_its_usual_shapes() {
    let cases = [
        (
            r#"{"detail":"commit_sha is unknown"}"#,
            "invalid request (HTTP 422): commit_sha is unknown",
        ),
        (
            r#"{"error":"bad token"}"#,
            "invalid request (HTTP 422): bad token",
        ),
        (
            r#"{"commit_sha":["invalid"]}"#,
            r#"invalid request (HTTP 422): {"commit_sha":["invalid"]}"#,
        ),
        (
            "plain text reason",
            "invalid request (HTTP 422): plain text reason",
        ),
        ("", "invalid request (HTTP 422): Unprocessable Entity"),
    ];
    for (body, expected) in cases {
        let mut server = Server::new_async().await;
        let mock = server
            .mock("POST", DEPLOYMENTS)
            .with_status(422)
            .with_body(body)
            .expect(1)
            .create_async()
            .await;
        let err = client_for(&server.url(), 3)
            .create_deployment(&minimal_event())
            .await
            .unwrap_err();
        mock.assert_async().await;
        assert_eq!(err.to_string(), expected);
    }
}

#[tokio::test]
async fn huge_server_messages_are_truncated() {
    let mut server = Server::new_async().await;
    let long = "e".repeat(50_000);
    let mock = server
        .mock("POST", DEPLOYMENTS)
        .with_status(400)
        .with_body(json!({"message": long}).to_string())
        .expect(1)
        .create_async()
        .await;
    let err = client_for(&server.url(), 0)
        .create_deployment(&minimal_event())
        .await
        .unwrap_err();
    mock.assert_async().await;
    let text = err.to_string();
    assert!(text.len() < 1100, "{} bytes", text.len());
    assert!(text.ends_with('…'));
}

#[tokio::test]
async fn a_success_body_over_1_mib_is_a_clear_error_and_never_retried() {
    let mut server = Server::new_async().await;
    let huge = format!("\"{}\"", "x".repeat(cased_core::MAX_RESPONSE_BYTES + 10));
    let mock = answer(&mut server, 201, &huge)
        .expect(1)
        .create_async()
        .await;
    let err = client_for(&server.url(), 3)
        .create_deployment(&minimal_event())
        .await
        .unwrap_err();
    mock.assert_async().await;
    assert_eq!(err.kind(), ErrorKind::Transport);
    let text = err.to_string();
    assert!(
        text.contains("HTTP 201") && text.contains("1 MiB"),
        "{text}"
    );
    assert!(
        text.len() < 400,
        "the body is not echoed: {} bytes",
        text.len()
    );

    // Exactly at the cap is still read.
    let mut server = Server::new_async().await;
    let at_cap = format!("\"{}\"", "y".repeat(cased_core::MAX_RESPONSE_BYTES - 2));
    answer(&mut server, 201, &at_cap).create_async().await;
    let ok = client_for(&server.url(), 0)
        .create_deployment(&minimal_event())
        .await
        .unwrap();
    assert_eq!(
        ok.body.unwrap().as_str().unwrap().len(),
        cased_core::MAX_RESPONSE_BYTES - 2
    );
}

#[tokio::test]
async fn attempts_are_capped_by_max_retries() {
    for max_retries in [0, 1, 4] {
        let mut server = Server::new_async().await;
        let mock = answer(&mut server, 503, r#"{"message":"down for maintenance"}"#)
            .expect(max_retries as usize + 1)
            .create_async()
            .await;

        let err = client_for(&server.url(), max_retries)
            .create_deployment(&minimal_event())
            .await
            .unwrap_err();

        mock.assert_async().await;
        assert_eq!(err.kind(), ErrorKind::Server);
        assert_eq!(
            err.to_string(),
            "server error (HTTP 503): down for maintenance"
        );
    }
}

#[tokio::test]
async fn rate_limited_until_the_budget_runs_out() {
    let mut server = Server::new_async().await;
    let mock = answer(&mut server, 429, r#"{"message":"slow down"}"#)
        .expect(3)
        .create_async()
        .await;
    let err = client_for(&server.url(), 2)
        .create_deployment(&minimal_event())
        .await
        .unwrap_err();
    mock.assert_async().await;
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.status(), Some(429));
    let Error::RateLimited {
        retry_after,
        message,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!((*retry_after, message.as_str()), (None, "slow down"));
    assert_eq!(err.to_string(), "rate limited (HTTP 429): slow down");
}

#[tokio::test]
async fn retry_after_is_honoured() {
    // Real time, not tokio's paused clock: under a paused clock the runtime auto-advances time
    // whenever it is idle, and it is idle while reqwest waits for the mock server's socket (the
    // server runs on another thread), so the request's own timeout would fire "instantly". A
    // one-second Retry-After is the shortest the header can express.
    let mut server = Server::new_async().await;
    let limited = server
        .mock("POST", DEPLOYMENTS)
        .with_status(429)
        .with_header("retry-after", "1")
        .expect(1)
        .create_async()
        .await;
    let ok = answer(&mut server, 201, r#"{"id":2}"#)
        .expect(1)
        .create_async()
        .await;
    // Backoffs of at most 5 ms: without Retry-After the retry would come almost at once.
    let client = client_for(&server.url(), 3);

    let started = Instant::now();
    let answer = client.create_deployment(&minimal_event()).await.unwrap();
    let elapsed = started.elapsed();

    limited.assert_async().await;
    ok.assert_async().await;
    assert_eq!(answer.attempts, 2);
    assert!(
        elapsed >= Duration::from_secs(1),
        "retried after {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(3),
        "retried after {elapsed:?}"
    );
}

#[tokio::test]
async fn retry_after_on_a_503_is_honoured_as_an_http_date_in_the_past() {
    // A date in the past means "now": the retry follows at once.
    let mut server = Server::new_async().await;
    let busy = server
        .mock("POST", DEPLOYMENTS)
        .with_status(503)
        .with_header("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")
        .expect(1)
        .create_async()
        .await;
    let ok = answer(&mut server, 201, "{}")
        .expect(1)
        .create_async()
        .await;
    let answer = client_for(&server.url(), 1)
        .create_deployment(&minimal_event())
        .await
        .unwrap();
    busy.assert_async().await;
    ok.assert_async().await;
    assert_eq!(
        answer,
        ApiResponse {
            status: 201,
            body: Some(json!({})),
            attempts: 2
        }
    );
}

#[tokio::test]
async fn retry_after_beyond_the_time_budget_fails_at_once_with_the_delay() {
    let mut server = Server::new_async().await;
    let mock = server
        .mock("POST", DEPLOYMENTS)
        .with_status(429)
        .with_header("retry-after", "3600")
        .with_body(r#"{"message":"quota exceeded"}"#)
        .expect(1)
        .create_async()
        .await;
    let policy = RetryPolicy {
        max_elapsed: Duration::from_secs(60),
        ..fast_retry(5)
    };
    let client = builder_for(&server.url())
        .retry_policy(policy)
        .build()
        .unwrap();

    let started = Instant::now();
    let err = client
        .create_deployment(&minimal_event())
        .await
        .unwrap_err();

    mock.assert_async().await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "waited {:?}",
        started.elapsed()
    );
    let Error::RateLimited {
        retry_after,
        message,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(*retry_after, Some(Duration::from_secs(3600)));
    assert_eq!(message, "quota exceeded");
    assert_eq!(
        err.to_string(),
        "rate limited (HTTP 429), retry after 3600s: quota exceeded"
    );
}

#[tokio::test]
async fn a_retry_after_of_u64_max_seconds_ends_the_retries_with_a_clear_error() {
    let mut server = Server::new_async().await;
    let mock = server
        .mock("POST", DEPLOYMENTS)
        .with_status(503)
        .with_header("retry-after", "18446744073709551615")
        .with_body(r#"{"message":"maintenance"}"#)
        .expect(1)
        .create_async()
        .await;
    let err = client_for(&server.url(), 3)
        .create_deployment(&minimal_event())
        .await
        .unwrap_err();
    mock.assert_async().await;
    assert_eq!(err.kind(), ErrorKind::Server, "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("maintenance")
            && text.contains("Retry-After 18446744073709551615s is beyond the retry budget"),
        "{text}"
    );
}

#[tokio::test]
async fn retry_after_as_a_future_http_date_beyond_the_budget() {
    let mut server = Server::new_async().await;
    let when = std::time::SystemTime::now() + Duration::from_secs(7200);
    let mock = server
        .mock("POST", DEPLOYMENTS)
        .with_status(429)
        .with_header("retry-after", &httpdate_fmt(when))
        .expect(1)
        .create_async()
        .await;
    let err = client_for(&server.url(), 3)
        .create_deployment(&minimal_event())
        .await
        .unwrap_err();
    mock.assert_async().await;
    let Error::RateLimited {
        retry_after: Some(after),
        ..
    } = err
    else {
        panic!("{err:?}")
    };
    assert!(
        after > Duration::from_secs(7100) && after <= Duration::from_secs(7200),
        "{after:?}"
    );
}

/// RFC 9110 IMF-fixdate, formatted by hand so the test needs no date crate.
fn httpdate_fmt(t: std::time::SystemTime) -> String {
    let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let days = secs / 86_400;
    let (h, m, s) = ((secs % 86_400) / 3600, (secs % 3600) / 60, secs % 60);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{weekday}, {d:02} {} {year} {h:02}:{m:02}:{s:02} GMT",
        months[(month - 1) as usize]
    )
}

#[test]
fn httpdate_helper_matches_a_known_date() {
    let t = std::time::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
    assert_eq!(httpdate_fmt(t), "Wed, 21 Oct 2015 07:28:00 GMT");
}

// ---------------------------------------------------------------------------------------------
// Transport faults

#[tokio::test]
async fn connection_refused_is_a_transport_error_after_retries() {
    // A refused connection leaves no trace on any server, so the attempts are counted in the
    // client's own logs.
    let logs = CapturedLogs::new();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    // A port nothing listens on: bind one, note it, close it.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };

    let err = client_for(&format!("http://127.0.0.1:{port}"), 2)
        .create_deployment(&minimal_event())
        .await
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Transport, "{err}");
    assert_eq!(err.status(), None);
    let text = err.to_string().to_lowercase();
    assert!(text.starts_with("transport error: "), "{text}");
    assert!(text.contains("refused"), "the cause is named: {text}");
    let logs = logs.contents();
    assert_eq!(
        logs.matches("retrying deployment event").count(),
        2,
        "{logs}"
    );
    let last = logs
        .lines()
        .find(|l| l.contains("deployment event not delivered"))
        .unwrap_or_default();
    assert!(last.contains("attempt=3"), "{logs}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_without_retry() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = std::sync::Arc::clone(&accepted);
    // Accept connections and hold them open without ever reading or answering.
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(socket);
        }
    });
    let client = builder_for(&format!("http://{addr}"))
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();

    let started = Instant::now();
    let err = client
        .create_deployment(&minimal_event())
        .await
        .unwrap_err();
    let elapsed = started.elapsed();

    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.to_string().starts_with("timed out: "), "{err}");
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    // The request may have been received, so it is not sent again (3 retries would be ≥ 1.2 s).
    assert!(elapsed < Duration::from_millis(1000), "{elapsed:?}");
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    holder.abort();
}

// ---------------------------------------------------------------------------------------------
// Builder validation

#[test]
fn builder_reports_every_bad_setting_at_once() {
    let err = Client::builder()
        .api_key("   ")
        .base_url("ftp://example.com")
        .timeout(Duration::ZERO)
        .connect_timeout(Duration::ZERO)
        .retry_policy(RetryPolicy {
            initial_backoff: Duration::ZERO,
            ..RetryPolicy::default()
        })
        .max_retries(101)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Validation);
    let fields: Vec<&str> = err
        .field_errors()
        .iter()
        .map(|e| e.field.as_str())
        .collect();
    assert_eq!(
        fields,
        [
            "api_key",
            "base_url",
            "timeout",
            "connect_timeout",
            "retry.initial_backoff",
            "max_retries"
        ]
    );
    assert!(
        err.to_string()
            .starts_with("invalid client configuration (6 problems): "),
        "{err}"
    );
}

#[test]
fn base_url_must_be_absolute_http() {
    for bad in [
        "example.com",
        "/api",
        "ftp://example.com",
        "http://",
        "",
        "mailto:ops@example.com",
    ] {
        let err = Client::builder()
            .api_key(TEST_KEY)
            .base_url(bad)
            .build()
            .unwrap_err();
        let fields: Vec<&str> = err
            .field_errors()
            .iter()
            .map(|e| e.field.as_str())
            .collect();
        assert_eq!(fields, ["base_url"], "{bad:?}: {err}");
        assert!(
            err.to_string().contains("is not an absolute http(s) URL"),
            "{err}"
        );
    }
    for ok in ["http://localhost:8080", "https://cased.internal/prefix/"] {
        assert!(
            Client::builder()
                .api_key(TEST_KEY)
                .base_url(ok)
                .build()
                .is_ok(),
            "{ok}"
        );
    }
}

#[test]
fn api_key_with_whitespace_or_header_breaking_characters_is_rejected_without_echo() {
    for bad in ["ck live", "ck_live\n", "ck_\r\nX-Evil: 1", "ck_\u{7f}"] {
        let err = Client::builder().api_key(bad).build().unwrap_err();
        let fields: Vec<&str> = err
            .field_errors()
            .iter()
            .map(|e| e.field.as_str())
            .collect();
        assert_eq!(fields, ["api_key"], "{bad:?}");
        assert!(!err.to_string().contains("ck"), "the key is echoed: {err}");
        assert!(
            !format!("{err:?}").contains("ck"),
            "the key is echoed: {err:?}"
        );
    }
}

/// The only test that depends on `CASED_API_KEY`. The process environment is global and, in
/// edition 2024, `set_var` is `unsafe` because another thread (another test, or C code such as
/// the TLS stack) may read it at the same time. So this test sets nothing in its own process:
/// it re-runs its own test binary, filtered to itself, with a controlled environment.
#[test]
fn api_key_falls_back_to_cased_api_key() {
    const CHILD: &str = "CASED_TESTS_ENV_CHILD";
    if let Ok(base_url) = std::env::var(CHILD) {
        return env_child(&base_url);
    }
    let mut server = Server::new();
    let from_env = server
        .mock("POST", DEPLOYMENTS)
        .match_header("authorization", "Bearer ck_from_env_123")
        .with_status(201)
        .expect(1)
        .create();
    let from_builder = server
        .mock("POST", DEPLOYMENTS)
        .match_header("authorization", "Bearer ck_from_builder_456")
        .with_status(201)
        .expect(1)
        .create();
    let run = |key: Option<&str>| {
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "api_key_falls_back_to_cased_api_key",
            "--nocapture",
            "--test-threads=1",
        ]);
        cmd.env(CHILD, server.url());
        match key {
            // With the key, the base URL comes from the environment too.
            Some(k) => cmd.env(API_KEY_ENV, k).env("CASED_BASE_URL", server.url()),
            None => cmd
                .env_remove(API_KEY_ENV)
                .env("CASED_BASE_URL", "not a url"),
        };
        let out = cmd.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "child failed:\n{text}");
        assert!(text.contains("1 passed"), "the child ran the test:\n{text}");
    };
    run(Some("ck_from_env_123"));
    run(None);
    from_env.assert();
    from_builder.assert();
}

/// The child half of [`api_key_falls_back_to_cased_api_key`].
fn env_child(base_url: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    match std::env::var(API_KEY_ENV) {
        Ok(key) => {
            assert_eq!(key, "ck_from_env_123");
            // No key and no base URL given: the environment's are used.
            assert_eq!(std::env::var("CASED_BASE_URL").unwrap(), base_url);
            let client = Client::builder().max_retries(0).build().unwrap();
            assert!(!format!("{client:?}").contains(&key));
            runtime
                .block_on(client.create_deployment(&minimal_event()))
                .unwrap();
        }
        Err(_) => {
            // Neither given nor in the environment: the error names the field and the variable.
            let err = Client::builder().base_url(base_url).build().unwrap_err();
            let fields: Vec<&str> = err
                .field_errors()
                .iter()
                .map(|e| e.field.as_str())
                .collect();
            assert_eq!(
                fields,
                ["api_key"],
                "a base URL given wins over CASED_BASE_URL"
            );
            assert!(
                err.to_string()
                    .contains("is required: pass it to the client or set CASED_API_KEY"),
                "{err}"
            );
            let err = Client::builder().build().unwrap_err();
            let fields: Vec<&str> = err
                .field_errors()
                .iter()
                .map(|e| e.field.as_str())
                .collect();
            assert_eq!(fields, ["api_key", "base_url"]);
            assert!(
                err.to_string()
                    .contains("\"not a url\" (from CASED_BASE_URL) is not an absolute http(s) URL"),
                "{err}"
            );
            // A key given to the builder is used (the other half of this check runs with the
            // variable set, where the builder's key must win too; the mock proves which was sent).
            let client = Client::builder()
                .api_key("ck_from_builder_456")
                .base_url(base_url)
                .max_retries(0)
                .build()
                .unwrap();
            runtime
                .block_on(client.create_deployment(&minimal_event()))
                .unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The key never shows

#[test]
fn debug_of_client_and_builder_hides_the_key() {
    let builder = builder_for("http://127.0.0.1:9");
    let builder_debug = format!("{builder:?} {builder:#?}");
    assert!(!builder_debug.contains(TEST_KEY), "{builder_debug}");
    assert!(builder_debug.contains("redacted"), "{builder_debug}");

    let client = builder.build().unwrap();
    let client_debug = format!("{client:?} {client:#?}");
    assert!(!client_debug.contains(TEST_KEY), "{client_debug}");
    assert!(
        client_debug.contains("127.0.0.1:9/api/v1/deployments/"),
        "{client_debug}"
    );
    let secret = cased_core::Secret::new(TEST_KEY);
    assert_eq!(format!("{secret:?}"), "Secret([redacted])");
    assert_eq!(secret.expose(), TEST_KEY);
}

#[tokio::test]
async fn errors_never_contain_the_key() {
    let mut errors: Vec<Error> = Vec::new();
    let mut server = Server::new_async().await;
    for status in [400, 401, 403, 404, 422, 429, 500, 503] {
        let path = format!("/s{status}/api/v1/deployments/");
        server
            .mock("POST", path.as_str())
            .with_status(status)
            .with_body("{}")
            .create_async()
            .await;
        let client = client_for(&format!("{}/s{status}", server.url()), 0);
        errors.push(
            client
                .create_deployment(&minimal_event())
                .await
                .unwrap_err(),
        );
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    errors.push(
        client_for(&format!("http://127.0.0.1:{port}"), 0)
            .create_deployment(&minimal_event())
            .await
            .unwrap_err(),
    );
    errors.push(
        Client::builder()
            .api_key(TEST_KEY)
            .base_url("nope")
            .build()
            .unwrap_err(),
    );
    errors.push(
        Client::builder()
            .api_key(format!("{TEST_KEY} x"))
            .build()
            .unwrap_err(),
    );

    assert_eq!(errors.len(), 11);
    for err in &errors {
        for text in [err.to_string(), format!("{err:?}"), format!("{err:#?}")] {
            assert!(!text.contains(TEST_KEY), "{text}");
            assert!(!text.contains("DO_NOT_LEAK"), "{text}");
        }
    }
}

#[tokio::test]
async fn logs_carry_the_event_fields_but_never_the_key() {
    let logs = CapturedLogs::new();
    let _guard = tracing::subscriber::set_default(logs.subscriber());

    let mut server = Server::new_async().await;
    let refused = answer(&mut server, 401, r#"{"message":"bad key"}"#)
        .expect(1)
        .create_async()
        .await;
    let bad = client_for(&server.url(), 2);
    let err = bad.create_deployment(&full_event()).await.unwrap_err();
    refused.assert_async().await;
    assert_eq!(err.kind(), ErrorKind::Unauthorized);

    let mut server = Server::new_async().await;
    let busy = answer(&mut server, 503, "{}")
        .expect(1)
        .create_async()
        .await;
    let ok = answer(&mut server, 201, r#"{"id":9}"#)
        .expect(1)
        .create_async()
        .await;
    let good = client_for(&server.url(), 2);
    assert_eq!(
        good.create_deployment(&full_event())
            .await
            .unwrap()
            .attempts,
        2
    );
    busy.assert_async().await;
    ok.assert_async().await;

    let text = logs.contents();
    assert!(!text.contains(TEST_KEY), "the key was logged:\n{text}");
    assert!(
        !text.contains("DO_NOT_LEAK"),
        "part of the key was logged:\n{text}"
    );
    for needle in [
        r#"repository="acme/checkout""#,
        r#"environment="production""#,
        r#"correlation_id="github:acme/checkout:42:1""#,
        r#"status="running""#,
        "status=201 attempt=2",
        "deployment event accepted",
        "deployment event not delivered",
        "retrying deployment event",
        "unauthorized (HTTP 401): bad key",
    ] {
        assert!(
            text.contains(needle),
            "{needle:?} missing from the logs:\n{text}"
        );
    }
}

#[tokio::test]
async fn concurrent_requests_are_each_delivered_once() {
    let mut server = Server::new_async().await;
    let mock = answer(&mut server, 201, r#"{"id":1}"#)
        .expect(20)
        .create_async()
        .await;
    let client = client_for(&server.url(), 0);
    let events: Vec<DeploymentEvent> = (0..20)
        .map(|i| {
            DeploymentEvent::builder(format!("Deploy {i}"))
                .build()
                .unwrap()
        })
        .collect();
    let answers = post_all(&client, events).await;
    assert_eq!(answers.len(), 20);
    assert!(
        answers
            .iter()
            .all(|a| a.as_ref().is_ok_and(|a| a.status == 201 && a.attempts == 1))
    );
    mock.assert_async().await;
}

/// Posts every event from its own task, all at once; the answers in completion order.
async fn post_all(
    client: &Client,
    events: Vec<DeploymentEvent>,
) -> Vec<cased_core::Result<ApiResponse>> {
    let mut set = tokio::task::JoinSet::new();
    for event in events {
        let client = client.clone();
        set.spawn(async move { client.create_deployment(&event).await });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.unwrap());
    }
    out
}
