//! `cased serve` as a user runs it: the real binary on a loopback port it picks itself (the
//! test reads the "listening on" line), the real `cased_core::Client`, `cased notify`, reqwest,
//! and real HTTP services on loopback for the monitored checks. Each test has its own store.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use cased_core::{Client, DeploymentEvent, DeploymentStatus};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// How long any one wait for the server may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(20);

/// A fresh temporary directory.
fn temp_dir() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "cased-serve-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The `cased` binary with an empty environment, run in `dir`.
fn cased(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cased"));
    cmd.env_clear().current_dir(dir);
    cmd
}

/// A running `cased serve`; killed when dropped.
struct Serve {
    child: Child,
    base: String,
    /// Everything it wrote on stderr so far.
    log: Arc<Mutex<String>>,
    /// The thread reading stderr; it ends when the process has exited.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Serve {
    /// Starts `cased serve --listen 127.0.0.1:0 --store <dir>/.cased` plus `args` in `dir` and
    /// waits for its "listening on" line.
    fn start(dir: &Path, args: &[&str]) -> Self {
        let mut child = cased(dir)
            .args(["serve", "--listen", "127.0.0.1:0", "--store"])
            .arg(dir.join(".cased"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cased serve starts");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.split("listening on ").nth(1) {
                    let _ = tx.send(url.trim().to_owned());
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        match rx.recv_timeout(PATIENCE) {
            Ok(base) => Self {
                child,
                base,
                log,
                reader: Some(reader),
            },
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "cased serve did not start listening:\n{}",
                    log.lock().unwrap()
                );
            }
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits (at most [`PATIENCE`]) for the process to exit; its exit code and whole stderr.
    fn exit(mut self) -> (Option<i32>, String) {
        let (tx, rx) = mpsc::channel();
        let mut child = std::mem::replace(&mut self.child, Command::new("true").spawn().unwrap());
        std::thread::spawn(move || tx.send(child.wait().unwrap()));
        let status = rx.recv_timeout(PATIENCE).expect("cased serve exits");
        self.reader.take().unwrap().join().unwrap();
        (status.code(), self.log())
    }

    /// SIGKILL, as a crash or an OOM kill would.
    fn kill_9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `cased keys create --scope <scope>` in `dir`: the key it printed.
fn create_key(dir: &Path, scope: &str) -> String {
    let out = cased(dir)
        .args([
            "keys", "create", "--scope", scope, "--name", "test", "--store",
        ])
        .arg(dir.join(".cased"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(key.starts_with(&format!("cased_{scope}_")), "{key}");
    key
}

/// A service on loopback: `/ok` answers 200, `/broken` 500; returns its base URL.
async fn target() -> String {
    let app = axum::Router::new()
        .route("/ok", axum::routing::get(|| async { "ok" }))
        .route(
            "/broken",
            axum::routing::get(|| async {
                (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "down")
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// A cased.toml with two services: `acme/*` in production checking `/ok`, and `acme/pay`
/// (any environment) checking `/broken`.
fn config(dir: &Path, target: &str) -> PathBuf {
    let service = |name: &str, repo: &str, env: &str, path: &str| {
        format!(
            "[[services]]\nname = \"{name}\"\nrepository = \"{repo}\"\n{env}\n\
             [services.schedule]\nintervals = [\"50ms\"]\ncooldown = \"300ms\"\nmax_duration = \"20s\"\n\
             [services.verdict]\nmin_samples = 2\n\
             [[services.checks]]\nname = \"web\"\ntype = \"http\"\nurl = \"{target}{path}\"\n\n"
        )
    };
    let text = service("pay", "acme/pay", "", "/broken")
        + &service("shop", "acme/*", "environment = \"production\"", "/ok");
    let path = dir.join("cased.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(PATIENCE * 2)
        .build()
        .unwrap()
}

/// A `Client` for the server with `key` and quick retries.
fn client(server: &Serve, key: &str) -> Client {
    Client::builder()
        .base_url(&server.base)
        .api_key(key)
        .retry_policy(cased_core::RetryPolicy {
            max_retries: 3,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            max_elapsed: Duration::from_secs(30),
        })
        .build()
        .unwrap()
}

fn event(repo: &str, sha: &str, env: &str, status: DeploymentStatus) -> DeploymentEvent {
    DeploymentEvent::builder(format!("Deploy {sha}"))
        .repository(repo)
        .commit_sha(sha)
        .environment(env)
        .status(status)
        .build()
        .unwrap()
}

async fn post(server: &Serve, key: Option<&str>, body: &str) -> (StatusCode, Value) {
    let mut req = http()
        .post(server.url("/api/v1/deployments/"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let r = req.send().await.unwrap();
    (r.status(), r.json().await.unwrap())
}

async fn get(server: &Serve, key: Option<&str>, path: &str) -> (StatusCode, Value) {
    let mut req = http().get(server.url(path));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The final verdict of deployment `id`, long-polling the verdict endpoint.
async fn final_verdict(server: &Serve, key: Option<&str>, id: &str) -> Value {
    let (status, v) = get(
        server,
        key,
        &format!("/api/v1/deployments/{id}/verdict?wait=20s"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["final"], json!(true), "not final within the wait: {v}");
    v
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_errors_name_every_field_at_once_as_the_library_does() {
    let dir = temp_dir();
    let server = Serve::start(&dir, &["--no-auth"]);
    let body = r#"{"deployment_request":" ","commit_sha":"xyz","status":"done","external_url":"ftp://x","ref":1,"environmnet":"prod"}"#;
    let (status, answer) = post(&server, None, body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let expected = DeploymentEvent::from_json(body).unwrap_err();
    assert_eq!(answer["code"], "validation");
    assert_eq!(answer["message"], expected.to_string());
    assert_eq!(answer["errors"], json!(expected.field_errors()));
    let fields: Vec<&str> = answer["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    for f in [
        "environmnet",
        "deployment_request",
        "commit_sha",
        "status",
        "external_url",
        "ref",
    ] {
        assert!(fields.contains(&f), "{f} not reported: {fields:?}");
    }
    // Not JSON at all: 400, the library's words.
    let (status, answer) = post(&server, None, "{not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["errors"][0]["field"], "body");
    // Nothing was stored.
    let (_, list) = get(&server, None, "/api/v1/deployments/").await;
    assert_eq!(list["deployments"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_required_scoped_revocable_and_never_shown() {
    let dir = temp_dir();
    let ingest = create_key(&dir, "ingest");
    let read = create_key(&dir, "read");
    let list = cased(&dir)
        .args(["keys", "list", "--store"])
        .arg(dir.join(".cased"))
        .output()
        .unwrap();
    let listed = String::from_utf8(list.stdout).unwrap();
    assert!(
        listed.contains("ingest") && listed.contains("read"),
        "{listed}"
    );
    assert!(
        !listed.contains(&ingest) && !listed.contains(&read),
        "{listed}"
    );

    let server = Serve::start(&dir, &[]);
    let good = event("acme/shop", "4f2a9c1", "staging", DeploymentStatus::Success).to_json();
    let (status, answer) = post(&server, None, &good).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert_eq!(answer["code"], "unauthorized");
    assert!(answer["message"].as_str().unwrap().contains("Bearer"));
    let (status, answer) = post(&server, Some("cased_ingest_0000"), &good).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("unknown"));
    let (status, answer) = post(&server, Some(&read), &good).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("ingest scope"));
    let (status, answer) = get(&server, Some(&ingest), "/api/v1/deployments/").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");

    // The library's Client and `cased notify` work unchanged.
    let answer = client(&server, &ingest)
        .create_deployment(&event(
            "acme/shop",
            "4f2a9c1",
            "staging",
            DeploymentStatus::Success,
        ))
        .await
        .unwrap();
    assert_eq!(answer.status, 201, "{answer:?}");
    let id = answer.body.as_ref().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        answer.body.as_ref().unwrap()["url"],
        json!(server.url(&format!("/deployments/{id}")))
    );
    let notify = cased(&dir)
        .args([
            "notify",
            "-m",
            "Deploy v2",
            "--repository",
            "acme/web",
            "--environment",
            "staging",
        ])
        .env("CASED_API_KEY", &ingest)
        .env("CASED_BASE_URL", &server.base)
        .output()
        .unwrap();
    let stdout = String::from_utf8(notify.stdout.clone()).unwrap();
    assert!(notify.status.success(), "{stdout} {notify:?}");
    let printed: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(printed["status"], 201, "{printed}");
    // A wrong key through the Client is its typed Unauthorized error.
    let err = client(&server, "cased_ingest_nope")
        .create_deployment(&event("acme/x", "4f2a9c1", "s", DeploymentStatus::Success))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), cased_core::ErrorKind::Unauthorized, "{err}");

    let (status, list) = get(&server, Some(&read), "/api/v1/deployments/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["deployments"].as_array().unwrap().len(), 2, "{list}");

    // Revoked: refused from the next request on.
    let key_id = String::from_utf8(
        cased(&dir)
            .args(["keys", "list", "--store"])
            .arg(dir.join(".cased"))
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .lines()
    .find(|l| l.contains("read"))
    .and_then(|l| l.split_whitespace().next().map(str::to_owned))
    .unwrap();
    let revoke = cased(&dir)
        .args(["keys", "revoke", &key_id, "--store"])
        .arg(dir.join(".cased"))
        .output()
        .unwrap();
    assert!(revoke.status.success(), "{revoke:?}");
    let (status, _) = get(&server, Some(&read), "/api/v1/deployments/").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let log = server.log();
    assert!(!log.contains(&ingest) && !log.contains(&read), "{log}");
    assert!(!log.contains("cased_ingest_nope"), "{log}");
}

#[test]
fn no_auth_is_refused_off_loopback() {
    let dir = temp_dir();
    let out = cased(&dir)
        .args(["serve", "--listen", "0.0.0.0:0", "--no-auth", "--store"])
        .arg(dir.join(".cased"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("--no-auth is allowed only on a loopback address"),
        "{stderr}"
    );
}

/// A proxy in front of `upstream` that forwards every request but answers the first one with
/// 502, as a proxy whose upstream answer was lost would.
async fn lossy_proxy(upstream: String) -> String {
    let first = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let app = axum::Router::new().fallback(
        move |headers: axum::http::HeaderMap, uri: axum::http::Uri, body: axum::body::Bytes| {
            let (upstream, first) = (upstream.clone(), Arc::clone(&first));
            async move {
                let mut req = http()
                    .post(format!("{upstream}{uri}"))
                    .header("content-type", "application/json")
                    .body(body.to_vec());
                for name in ["authorization", "idempotency-key"] {
                    if let Some(v) = headers.get(name) {
                        req = req.header(name, v.to_str().unwrap());
                    }
                }
                let r = req.send().await.unwrap();
                let status = r.status().as_u16();
                let text = r.text().await.unwrap();
                if first.swap(false, Ordering::SeqCst) {
                    (
                        axum::http::StatusCode::BAD_GATEWAY,
                        "upstream answer lost".to_owned(),
                    )
                } else {
                    (axum::http::StatusCode::from_u16(status).unwrap(), text)
                }
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_post_never_creates_a_second_deployment() {
    let dir = temp_dir();
    let server = Serve::start(&dir, &["--no-auth"]);
    let proxy = lossy_proxy(server.base.clone()).await;
    let through_proxy = Client::builder()
        .base_url(&proxy)
        .api_key("unused-with-no-auth")
        .retry_policy(cased_core::RetryPolicy {
            max_retries: 3,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            max_elapsed: Duration::from_secs(30),
        })
        .build()
        .unwrap();
    let answer = through_proxy
        .create_deployment(&event(
            "acme/shop",
            "abcdef1",
            "staging",
            DeploymentStatus::Running,
        ))
        .await
        .unwrap();
    // The first attempt was stored, its answer lost; the retry got that first answer.
    assert_eq!((answer.status, answer.attempts), (201, 2), "{answer:?}");
    let (_, list) = get(&server, None, "/api/v1/deployments/").await;
    let all = list["deployments"].as_array().unwrap();
    assert_eq!(all.len(), 1, "{list}");
    assert_eq!(all[0]["id"], answer.body.as_ref().unwrap()["id"]);

    // By hand: the same key and body replay the first answer; another body is refused.
    let send = |key: &'static str, body: String| {
        http()
            .post(server.url("/api/v1/deployments/"))
            .header("idempotency-key", key)
            .body(body)
            .send()
    };
    let body = event(
        "acme/other",
        "abcdef2",
        "staging",
        DeploymentStatus::Pending,
    )
    .to_json();
    let first = send("k-1", body.clone()).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    let again = send("k-1", body.clone()).await.unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    let other = event(
        "acme/other",
        "abcdef3",
        "staging",
        DeploymentStatus::Pending,
    )
    .to_json();
    let reused = send("k-1", other).await.unwrap();
    assert_eq!(reused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        reused.json::<Value>().await.unwrap()["code"],
        "idempotency_key_reused"
    );
    let (_, list) = get(&server, None, "/api/v1/deployments/").await;
    assert_eq!(list["deployments"].as_array().unwrap().len(), 2, "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_start_update_and_end_monitoring() {
    let dir = temp_dir();
    let target = target().await;
    let config = config(&dir, &target);
    let server = Serve::start(&dir, &["--no-auth", "--config", config.to_str().unwrap()]);
    let c = client(&server, "unused");

    // pending records; running starts; success moves it to its cool-down: healthy.
    let a = c
        .create_deployment(&event(
            "acme/shop",
            "aaaaaaa",
            "production",
            DeploymentStatus::Pending,
        ))
        .await
        .unwrap();
    let body = a.body.unwrap();
    assert_eq!(a.status, 201);
    assert_eq!(
        (&body["state"], &body["monitored"], &body["service"]),
        (&json!("recorded"), &json!(true), &json!("shop")),
        "{body}"
    );
    let id = body["id"].as_str().unwrap().to_owned();
    let (_, v) = get(&server, None, &format!("/api/v1/deployments/{id}/verdict")).await;
    assert_eq!(
        (&v["final"], &v["result"]),
        (&json!(false), &json!("pending"))
    );
    let running = c
        .create_deployment(&event(
            "acme/shop",
            "AAAAAAA",
            "production",
            DeploymentStatus::Running,
        ))
        .await
        .unwrap();
    let body = running.body.unwrap();
    assert_eq!(
        running.status, 200,
        "a later event of the same deployment: {body}"
    );
    assert_eq!(body["id"], json!(id));
    assert_eq!(body["state"], "monitoring");
    assert!(body["session_id"].is_string(), "{body}");
    c.create_deployment(&event(
        "acme/shop",
        "aaaaaaa",
        "production",
        DeploymentStatus::Success,
    ))
    .await
    .unwrap();
    let v = final_verdict(&server, None, &id).await;
    assert_eq!(
        (&v["result"], &v["verdict"]),
        (&json!("pass"), &json!("healthy")),
        "{v}"
    );

    // running, then failure: the session ends with that reason.
    let failing = event(
        "acme/shop",
        "bbbbbbb",
        "production",
        DeploymentStatus::Running,
    )
    .to_builder()
    .correlation_id("release-42")
    .build()
    .unwrap();
    let b = c.create_deployment(&failing).await.unwrap().body.unwrap();
    let b_id = b["id"].as_str().unwrap().to_owned();
    // Found again by its correlation id alone.
    let failed = DeploymentEvent::builder("Deploy bbbbbbb")
        .status(DeploymentStatus::Failure)
        .correlation_id("release-42")
        .build()
        .unwrap();
    let answer = c.create_deployment(&failed).await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body.unwrap()["id"], json!(b_id));
    let v = final_verdict(&server, None, &b_id).await;
    let (status, report) = get(
        &server,
        None,
        &format!("/api/v1/deployments/{b_id}/report?format=json"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["ended_by"], "deployment_failed", "{report}");
    assert_eq!(v["verdict"], report["verdict"]);

    // Failed before monitoring started: final at once, no session.
    let e = event(
        "acme/shop",
        "eeeeeee",
        "production",
        DeploymentStatus::Pending,
    );
    let e_id = c.create_deployment(&e).await.unwrap().body.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let failed = e
        .to_builder()
        .status(DeploymentStatus::Failure)
        .build()
        .unwrap();
    let answer = c.create_deployment(&failed).await.unwrap().body.unwrap();
    assert_eq!(
        (&answer["state"], &answer["session_id"]),
        (&json!("recorded"), &Value::Null)
    );
    let v = final_verdict(&server, None, &e_id).await;
    assert_eq!(v["result"], "fail", "{v}");
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("before monitoring started"),
        "{v}"
    );

    // A service whose check fails: unhealthy, the gate says fail.
    let pay = c
        .create_deployment(&event(
            "acme/pay",
            "ccccccc",
            "production",
            DeploymentStatus::Success,
        ))
        .await
        .unwrap()
        .body
        .unwrap();
    assert_eq!(pay["service"], "pay");
    let v = final_verdict(&server, None, pay["id"].as_str().unwrap()).await;
    assert_eq!(
        (&v["result"], &v["verdict"]),
        (&json!("fail"), &json!("unhealthy")),
        "{v}"
    );

    // Cancelled while running.
    let d = c
        .create_deployment(&event(
            "acme/shop",
            "ddddddd",
            "production",
            DeploymentStatus::Running,
        ))
        .await
        .unwrap()
        .body
        .unwrap();
    c.create_deployment(&event(
        "acme/shop",
        "ddddddd",
        "production",
        DeploymentStatus::Cancelled,
    ))
    .await
    .unwrap();
    let d_id = d["id"].as_str().unwrap();
    final_verdict(&server, None, d_id).await;
    let (_, report) = get(&server, None, &format!("/api/v1/deployments/{d_id}/report")).await;
    assert_eq!(report["ended_by"], "cancelled", "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_matching_no_service_is_stored_and_says_why() {
    let dir = temp_dir();
    let target = target().await;
    let config = config(&dir, &target);
    let server = Serve::start(&dir, &["--no-auth", "--config", config.to_str().unwrap()]);
    let c = client(&server, "unused");
    for (repo, env, why) in [
        (
            "other/shop",
            "production",
            "no service matches repository \"other/shop\"",
        ),
        ("acme/shop", "staging", "environment \"staging\""),
    ] {
        let answer = c
            .create_deployment(&event(repo, "1234567", env, DeploymentStatus::Running))
            .await
            .unwrap();
        let body = answer.body.unwrap();
        assert_eq!(answer.status, 201);
        assert_eq!(
            (&body["monitored"], &body["state"]),
            (&json!(false), &json!("recorded"))
        );
        let reason = body["unmonitored_reason"].as_str().unwrap();
        assert!(reason.contains(why), "{reason}");
        let v = final_verdict(&server, None, body["id"].as_str().unwrap()).await;
        assert_eq!(v["result"], "unmonitored", "{v}");
    }
    let (_, list) = get(&server, None, "/api/v1/deployments/?repository=other/shop").await;
    assert_eq!(list["deployments"][0]["monitored"], json!(false), "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_api_lists_pages_details_and_reports() {
    let dir = temp_dir();
    let target = target().await;
    let config = config(&dir, &target);
    let ingest = create_key(&dir, "ingest");
    let read = create_key(&dir, "read");
    let server = Serve::start(&dir, &["--config", config.to_str().unwrap()]);
    let c = client(&server, &ingest);
    let mut ids = Vec::new();
    for (repo, sha, env) in [
        ("acme/shop", "1111111", "production"),
        ("acme/web", "2222222", "production"),
        ("acme/web", "3333333", "staging"),
    ] {
        let body = c
            .create_deployment(&event(repo, sha, env, DeploymentStatus::Success))
            .await
            .unwrap()
            .body
            .unwrap();
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    final_verdict(&server, Some(&read), &ids[0]).await;
    final_verdict(&server, Some(&read), &ids[1]).await;

    // Newest first, one per page, the cursor leads to the next.
    let mut seen = Vec::new();
    let mut path = "/api/v1/deployments/?limit=1".to_owned();
    loop {
        let (status, page) = get(&server, Some(&read), &path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["deployments"].as_array().unwrap();
        assert!(items.len() <= 1);
        seen.extend(items.iter().map(|d| d["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/deployments/?limit=1&cursor={cursor}"),
            None => break,
        }
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);
    let (_, web) = get(
        &server,
        Some(&read),
        "/api/v1/deployments/?repository=acme/web&environment=production",
    )
    .await;
    let web = web["deployments"].as_array().unwrap();
    assert_eq!(web.len(), 1);
    assert_eq!(web[0]["id"], json!(ids[1]));
    let (_, healthy) = get(&server, Some(&read), "/api/v1/deployments/?verdict=healthy").await;
    assert_eq!(
        healthy["deployments"].as_array().unwrap().len(),
        2,
        "{healthy}"
    );
    let (status, bad) = get(&server, Some(&read), "/api/v1/deployments/?verdict=fine").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");

    // One deployment: the event, the session's ticks from history.
    let (status, d) = get(
        &server,
        Some(&read),
        &format!("/api/v1/deployments/{}", ids[0]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{d}");
    assert_eq!(d["event"]["repository_full_name"], "acme/shop");
    assert_eq!(d["events"].as_array().unwrap().len(), 1);
    assert!(!d["session"]["ticks"].as_array().unwrap().is_empty(), "{d}");
    assert_eq!(d["session"]["record"]["verdict"], "healthy");

    // Reports in three formats, from the core's renderers.
    for (format, content_type, needle) in [
        ("md", "text/markdown", "acme/shop"),
        ("html", "text/html", "<html"),
        ("json", "application/json", "\"verdict\""),
    ] {
        let r = http()
            .get(server.url(&format!(
                "/api/v1/deployments/{}/report?format={format}",
                ids[0]
            )))
            .bearer_auth(&read)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(content_type),
            "{format}"
        );
        let text = r.text().await.unwrap();
        assert!(text.contains(needle), "{format}: {text}");
    }
    let (status, _) = get(&server, Some(&read), "/api/v1/deployments/dep_nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Staging of acme/web matched no service: no report.
    let (status, e) = get(
        &server,
        Some(&read),
        &format!("/api/v1/deployments/{}/report", ids[2]),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_reads_deployments_back_filtered_paged_and_one_by_one() {
    let dir = temp_dir();
    let target = target().await;
    let config = config(&dir, &target);
    let ingest = create_key(&dir, "ingest");
    let read = create_key(&dir, "read");
    let server = Serve::start(&dir, &["--config", config.to_str().unwrap()]);
    let c = client(&server, &ingest);
    let mut ids = Vec::new();
    for (repo, sha, env) in [
        ("acme/pay", "aaaaaaa", "production"),
        ("acme/shop", "bbbbbbb", "production"),
        ("acme/shop", "ccccccc", "production"),
    ] {
        let body = c
            .create_deployment(&event(repo, sha, env, DeploymentStatus::Success))
            .await
            .unwrap()
            .body
            .unwrap();
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        final_verdict(&server, Some(&read), id).await;
    }
    let reader = client(&server, &read);

    // Every page of one, through the cursors: newest first.
    let mut seen = Vec::new();
    let mut query = cased_core::DeploymentQuery {
        limit: Some(1),
        ..Default::default()
    };
    loop {
        let page = reader.deployments(&query).await.unwrap();
        assert!(page.deployments.len() <= 1, "{page:?}");
        seen.extend(
            page.deployments
                .iter()
                .map(|d| d["id"].as_str().unwrap().to_owned()),
        );
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => break,
        }
    }
    assert_eq!(seen, ids.iter().rev().cloned().collect::<Vec<_>>());

    // Filters: repository + environment, and the verdict.
    let shop = reader
        .deployments(&cased_core::DeploymentQuery {
            repository: Some("acme/shop".into()),
            environment: Some("production".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let shop: Vec<&str> = shop
        .deployments
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(shop, [ids[2].as_str(), ids[1].as_str()]);
    let unhealthy = reader
        .deployments(&cased_core::DeploymentQuery {
            verdict: Some("unhealthy".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(unhealthy.deployments.len(), 1, "{unhealthy:?}");
    assert_eq!(unhealthy.deployments[0]["id"], json!(ids[0]));

    // One deployment: its event, events and session.
    let d = reader.deployment(&ids[0]).await.unwrap();
    assert_eq!(d["event"]["repository_full_name"], "acme/pay");
    assert_eq!(d["session"]["record"]["verdict"], "unhealthy");
    assert!(!d["session"]["ticks"].as_array().unwrap().is_empty(), "{d}");

    // Errors: a bad filter, an unknown id (a `/` in it stays in one path segment), an empty id,
    // and the ingest key, which may not read.
    let bad = reader
        .deployments(&cased_core::DeploymentQuery {
            verdict: Some("fine".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&bad, cased_core::Error::InvalidRequest { status: 400, message } if message.contains("verdict")),
        "{bad:?}"
    );
    let missing = reader.deployment("dep_nope/../x").await.unwrap_err();
    assert!(
        matches!(&missing, cased_core::Error::InvalidRequest { status: 404, message } if message.contains("dep_nope/../x")),
        "{missing:?}"
    );
    let empty = reader.deployment(" ").await.unwrap_err();
    assert_eq!(empty.field_errors()[0].field, "id", "{empty:?}");
    let refused = c.deployment(&ids[0]).await.unwrap_err();
    assert!(
        matches!(refused, cased_core::Error::Unauthorized { status: 403, .. }),
        "{refused:?}"
    );
}

/// Runs `cased gate` with `args` (the base URL and `key` from the environment, as CI passes
/// them); its exit code, stdout parsed as JSON (or `null`) and stderr.
async fn gate(server: &Serve, key: &str, args: &[&str]) -> (Option<i32>, Value, String) {
    let mut cmd = cased(Path::new("/"));
    cmd.arg("gate")
        .args(args)
        .env("CASED_BASE_URL", &server.base)
        .env("CASED_API_KEY", key);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    (
        out.status.code(),
        serde_json::from_str(&stdout).unwrap_or(Value::Null),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cased_gate_waits_for_the_verdict_and_exits_with_its_code() {
    let dir = temp_dir();
    let target = target().await;
    let config = config(&dir, &target);
    let ingest = create_key(&dir, "ingest");
    let read = create_key(&dir, "read");
    let server = Serve::start(&dir, &["--config", config.to_str().unwrap()]);
    let c = client(&server, &ingest);
    let id = |repo: &'static str, sha: &'static str, env: &'static str, status| {
        let c = c.clone();
        async move {
            let body = c
                .create_deployment(&event(repo, sha, env, status))
                .await
                .unwrap()
                .body
                .unwrap();
            body["id"].as_str().unwrap().to_owned()
        }
    };
    let bad = id(
        "acme/pay",
        "baaaaad",
        "production",
        DeploymentStatus::Running,
    )
    .await;
    let good = id(
        "acme/shop",
        "600d000",
        "production",
        DeploymentStatus::Success,
    )
    .await;
    let unmonitored = id("acme/web", "7777777", "staging", DeploymentStatus::Running).await;
    let waiting = id(
        "acme/shop",
        "8888888",
        "production",
        DeploymentStatus::Pending,
    )
    .await;

    // Pending when asked: the gate waits on the server until the verdict is final.
    let (code, answer, stderr) = gate(&server, &read, &[&bad, "--wait", "20s"]).await;
    assert_eq!(code, Some(1), "{answer} {stderr}");
    assert_eq!(answer["result"], "fail", "{answer}");
    assert_eq!(answer["verdict"], "unhealthy", "{answer}");
    assert!(stderr.contains("cased gate: fail: "), "{stderr}");
    let (code, answer, stderr) = gate(&server, &read, &[&good, "--wait", "20s"]).await;
    assert_eq!(code, Some(0), "{answer} {stderr}");
    assert_eq!(answer["result"], "pass", "{answer}");
    let (code, answer, _) = gate(&server, &read, &[&unmonitored]).await;
    assert_eq!((code, &answer["result"]), (Some(2), &json!("unmonitored")));
    // Still pending when the wait ends: 2, and the answer says it is not final.
    let (code, answer, _) = gate(&server, &read, &[&waiting, "--wait", "100ms"]).await;
    assert_eq!(code, Some(2), "{answer}");
    assert_eq!(
        (&answer["final"], &answer["result"]),
        (&json!(false), &json!("pending"))
    );

    // Errors: an unknown id and a key without the read scope exit 1; usage errors 3.
    let (code, _, stderr) = gate(&server, &read, &["dep_nope"]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("404") && stderr.contains("dep_nope"),
        "{stderr}"
    );
    let (code, _, stderr) = gate(&server, &ingest, &[&good]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("read scope"), "{stderr}");
    assert!(
        !stderr.contains(&ingest),
        "the key is never printed: {stderr}"
    );
    let (code, _, stderr) = gate(&server, &read, &[&good, "--wait", "soon"]).await;
    assert_eq!(code, Some(3), "{stderr}");
    let (code, _, stderr) = gate(&server, "", &[&good]).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("api_key"), "{stderr}");
}

/// `POST /api/v1/incidents` with `key`.
async fn post_incident(server: &Serve, key: &str, body: &Value) -> (StatusCode, Value) {
    post_incident_to(server, key, "/api/v1/incidents", body).await
}

async fn post_incident_to(
    server: &Serve,
    key: &str,
    path: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let r = http()
        .post(server.url(path))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_and_mapped_webhooks_record_correlated_incidents() {
    let dir = temp_dir();
    let ingest = create_key(&dir, "ingest");
    let read = create_key(&dir, "read");
    let server = Serve::start(&dir, &[]);
    let c = client(&server, &ingest);
    let deployed = c
        .create_deployment(
            &DeploymentEvent::builder("Deploy shop")
                .repository("acme/shop")
                .commit_sha("abc1234")
                .environment("production")
                .correlation_id("deploy-42")
                .status(DeploymentStatus::Success)
                .build()
                .unwrap(),
        )
        .await
        .unwrap()
        .body
        .unwrap();
    let id = deployed["id"].clone();
    // Alertmanager: two firing alerts (one by correlation id, one by repository and time) and
    // a resolved one, which is not an incident.
    let alerts = json!({"version": "4", "status": "firing", "receiver": "cased", "alerts": [
        {"status": "firing", "labels": {"alertname": "HighErrorRate", "correlation_id": "deploy-42"},
         "annotations": {"summary": "5xx above 5 %"}, "startsAt": "2026-12-04T15:00:00Z",
         "generatorURL": "http://prometheus.example/graph"},
        {"status": "firing", "labels": {"alertname": "Slow", "repository": "acme/shop",
         "env": "production"}},
        {"status": "resolved", "labels": {"alertname": "Old", "repository": "acme/shop"}}
    ]});
    let (status, a) =
        post_incident_to(&server, &ingest, "/api/v1/incidents/alertmanager", &alerts).await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
    assert_eq!(a["resolved_ignored"], json!(1));
    let incidents = a["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 2, "{a}");
    assert_eq!(incidents[0]["rule"], "correlation_id");
    assert_eq!(incidents[0]["deployments"][0]["id"], id);
    assert_eq!(incidents[1]["deployments"][0]["id"], id, "{a}");
    // A bad alert refuses the whole post, naming it; nothing is stored.
    let bad = json!({"alerts": [{"status": "firing", "labels": {"alertname": "X"}}]});
    let (status, e) =
        post_incident_to(&server, &ingest, "/api/v1/incidents/alertmanager", &bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["errors"][0]["field"], "alerts[0].repository", "{e}");
    // Any JSON body, mapped by JSON Pointers in the URL (a ticket tracker's webhook).
    let ticket = json!({"issue": {"title": "Checkout fails", "url": "https://tracker.example/7"},
                        "project": {"path": "acme/shop"}, "env": "production"});
    let (status, m) = post_incident_to(
        &server,
        &ingest,
        "/api/v1/incidents/webhook?title=/issue/title&repository=/project/path\
         &environment=/env&external_url=/issue/url",
        &ticket,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{m}");
    assert_eq!(m["deployments"][0]["id"], id, "{m}");
    let (status, e) = post_incident_to(
        &server,
        &ingest,
        "/api/v1/incidents/webhook?title=/issue/name&priority=/p",
        &ticket,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = e["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["title", "priority"], "{e}");
    // The deployment lists the three incidents; the read key cannot post them.
    let (_, d) = get(
        &server,
        Some(&read),
        &format!("/api/v1/deployments/{}", id.as_str().unwrap()),
    )
    .await;
    assert_eq!(d["incidents"].as_array().unwrap().len(), 3, "{d}");
    let (status, _) =
        post_incident_to(&server, &read, "/api/v1/incidents/alertmanager", &alerts).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incidents_are_validated_stored_and_correlated_to_their_deployments() {
    let dir = temp_dir();
    let target = target().await;
    let config = config(&dir, &target);
    let ingest = create_key(&dir, "ingest");
    let read = create_key(&dir, "read");
    let server = Serve::start(&dir, &["--config", config.to_str().unwrap()]);
    let c = client(&server, &ingest);
    let post = |e: DeploymentEvent| {
        let c = c.clone();
        async move {
            let body = c.create_deployment(&e).await.unwrap().body.unwrap();
            body["id"].as_str().unwrap().to_owned()
        }
    };
    let tagged = post(
        DeploymentEvent::builder("Deploy tagged")
            .repository("acme/web")
            .commit_sha("abcdef1")
            .environment("staging")
            .metadata_entry("correlation_id", "release-42")
            .status(DeploymentStatus::Pending)
            .build()
            .unwrap(),
    )
    .await;
    let finished = post(event(
        "acme/shop",
        "1111111",
        "production",
        DeploymentStatus::Success,
    ))
    .await;
    final_verdict(&server, Some(&read), &finished).await;
    let incident = |title: &str, extra: Value| {
        let mut body =
            json!({"title": title, "repository": "acme/shop", "environment": "production"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    // After the first finished (a second later, so strictly after its window), before any
    // other deployment of acme/shop: the latest before it.
    let (_, c2) = post_incident(
        &server,
        &ingest,
        &incident(
            "a blip",
            json!({"time": store_now() + 1000, "service": "shop"}),
        ),
    )
    .await;
    assert_eq!(
        (&c2["rule"], &c2["deployments"][0]["id"]),
        (&json!("latest_before"), &json!(finished))
    );
    // Running: monitored until a later event ends it (max_duration 20 s).
    let running = post(event(
        "acme/shop",
        "2222222",
        "production",
        DeploymentStatus::Running,
    ))
    .await;
    let (_, d) = get(
        &server,
        Some(&read),
        &format!("/api/v1/deployments/{running}"),
    )
    .await;
    assert_eq!(d["state"], "monitoring", "{d}");

    // The correlation id first, whatever the repository says.
    let (status, a) = post_incident(
        &server,
        &ingest,
        &incident("checkout errors", json!({"correlation_id": "release-42"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
    assert_eq!(a["rule"], "correlation_id");
    assert_eq!(a["deployments"][0]["id"], json!(tagged));
    assert_eq!(
        a["deployments"][0]["url"],
        json!(server.url(&format!("/deployments/{tagged}")))
    );
    // Now: the running deployment of acme/shop in production.
    let (_, b) = post_incident(&server, &ingest, &incident("slow pages", json!({}))).await;
    assert_eq!(
        (&b["rule"], &b["deployments"][0]["id"]),
        (&json!("active"), &json!(running))
    );
    // Nothing of that repository: stored, correlated to nothing.
    let (status, none) = post_incident(
        &server,
        &ingest,
        &json!({"title": "elsewhere", "repository": "acme/none"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        (&none["rule"], &none["deployments"]),
        (&json!(null), &json!([]))
    );

    // Each deployment lists its incidents, with the rule.
    let (_, d) = get(
        &server,
        Some(&read),
        &format!("/api/v1/deployments/{running}"),
    )
    .await;
    let titles: Vec<&str> = d["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["slow pages"], "{d}");
    assert_eq!(d["incidents"][0]["rule"], "active");
    let (_, d) = get(
        &server,
        Some(&read),
        &format!("/api/v1/deployments/{finished}"),
    )
    .await;
    assert_eq!(d["incidents"][0]["title"], "a blip");
    assert_eq!(d["incidents"][0]["service"], "shop");

    // Validation names every field; the read key may not post; bad JSON is 400.
    let (status, bad) = post_incident(
        &server,
        &ingest,
        &json!({"title": "", "repository": "shop", "time": "soon", "sevrity": 1}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    let fields: Vec<&str> = bad["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["sevrity", "title", "repository", "time"], "{bad}");
    let (status, _) = post_incident(&server, &read, &incident("x", json!({}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trends_give_the_dora_metrics_of_a_repository_and_environment() {
    let dir = temp_dir();
    let target = target().await;
    let config = config(&dir, &target);
    let ingest = create_key(&dir, "ingest");
    let read = create_key(&dir, "read");
    let server = Serve::start(&dir, &["--config", config.to_str().unwrap()]);
    let c = client(&server, &ingest);
    // acme/pay checks /broken: unhealthy. The commit was made two hours before.
    let commit_time = store_now() - 2 * 3_600_000;
    let body = c
        .create_deployment(
            &DeploymentEvent::builder("Deploy pay")
                .repository("acme/pay")
                .commit_sha("abcabc1")
                .environment("production")
                .metadata_entry("commit_time", commit_time)
                .status(DeploymentStatus::Success)
                .build()
                .unwrap(),
        )
        .await
        .unwrap()
        .body
        .unwrap();
    let id = body["id"].as_str().unwrap().to_owned();
    final_verdict(&server, Some(&read), &id).await;
    let (status, t) = get(
        &server,
        Some(&read),
        "/api/v1/trends?repository=acme/pay&environment=production&days=7",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(t["deployments"][0]["id"], json!(id));
    assert_eq!(t["deployments"][0]["verdict"], "unhealthy");
    let d = &t["dora"];
    assert_eq!((&d["deployments"], &d["days"]), (&json!(1), &json!(7.0)));
    assert_eq!(d["change_failure_rate"], json!(1.0));
    assert_eq!((&d["restored"], &d["unrestored"]), (&json!(0), &json!(1)));
    let lead = d["lead_time_ms"].as_u64().unwrap();
    assert!(
        (2 * 3_600_000..2 * 3_600_000 + 60_000).contains(&lead),
        "{d}"
    );
    // Its session detected the failing check: the time to detect is the deployment's and the
    // summary's; the performance trend has the check's median latency.
    let detected = t["deployments"][0]["time_to_detect_ms"].as_f64().unwrap();
    assert!(detected < 20_000.0, "{t}");
    assert_eq!(t["time_to_detect"]["count"], json!(1), "{t}");
    assert_eq!(t["time_to_detect"]["median_ms"], json!(detected), "{t}");
    let perf = t["performance"].as_array().unwrap();
    assert_eq!(perf.len(), 1, "{t}");
    assert_eq!(perf[0]["id"], json!(id));
    assert!(
        perf[0]["medians"]["web.latency_ms"].as_f64().unwrap() >= 0.0,
        "{t}"
    );
    // Another environment has none; a missing repository or bad days is refused by name.
    let (_, staging) = get(
        &server,
        Some(&read),
        "/api/v1/trends?repository=acme/pay&environment=staging",
    )
    .await;
    assert_eq!(staging["dora"]["deployments"], json!(0));
    assert_eq!(staging["dora"]["change_failure_rate"], json!(null));
    let (status, e) = get(&server, Some(&read), "/api/v1/trends").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(e["message"].as_str().unwrap().contains("repository"), "{e}");
    let (status, e) = get(&server, Some(&read), "/api/v1/trends?repository=a/b&days=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(e["message"].as_str().unwrap().contains("days"), "{e}");
}

#[test]
fn cased_demo_serve_leaves_mission_control_showing_a_bad_and_a_good_deployment() {
    let dir = temp_dir();
    let mut child = cased(&dir)
        .args(["demo", "--serve", "--listen", "127.0.0.1:0", "--out"])
        .arg(dir.join(".cased"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("cased demo: Mission Control at ") {
                let _ = tx.send(url.split(' ').next().unwrap().to_owned());
            }
        }
    });
    let url = rx.recv_timeout(Duration::from_secs(60));
    let list = url.as_ref().ok().map(|url| {
        let out = Command::new("curl")
            .args(["-sS", &format!("{url}api/v1/deployments/")])
            .output()
            .unwrap();
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    });
    let _ = child.kill();
    let _ = child.wait();
    let list = list.expect("the demo printed where Mission Control is");
    let shown: Vec<(&str, &str)> = list["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["event"]["deployment_request"].as_str().unwrap(),
                d["verdict"].as_str().unwrap_or("none"),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("Deploy demo/shop v3", "healthy"),
            ("Deploy demo/shop v2", "unhealthy")
        ],
        "{list}"
    );
}

/// Now, in milliseconds since the Unix epoch.
fn store_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Reads Server-Sent Events from `response` until one of type `kind` satisfies `pred`.
async fn next_event(
    response: &mut reqwest::Response,
    buffer: &mut String,
    kind: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let wait = async {
        loop {
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                let mut event = "message";
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(e) = line.strip_prefix("event:") {
                        event = e.trim();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push_str(d.trim_start());
                    }
                }
                if event == kind
                    && let Ok(v) = serde_json::from_str::<Value>(&data)
                    && pred(&v)
                {
                    return v;
                }
            }
            let chunk = response
                .chunk()
                .await
                .unwrap()
                .expect("the stream stays open");
            buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    tokio::time::timeout(PATIENCE, wait)
        .await
        .expect("the event arrives")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_updates_arrive_on_the_event_stream_and_kill_9_marks_the_deployment_interrupted() {
    let dir = temp_dir();
    let target = target().await;
    let config = config(&dir, &target);
    let config = config.to_str().unwrap();
    let server = Serve::start(&dir, &["--no-auth", "--config", config]);
    let mut stream = http()
        .get(server.url("/api/v1/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(
        stream.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut buffer = String::new();
    let answer = client(&server, "unused")
        .create_deployment(&event(
            "acme/shop",
            "9999999",
            "production",
            DeploymentStatus::Running,
        ))
        .await
        .unwrap();
    let id = answer.body.unwrap()["id"].as_str().unwrap().to_owned();
    let created = next_event(&mut stream, &mut buffer, "deployment", |v| {
        v["deployment"]["id"] == json!(id)
    })
    .await;
    assert_eq!(created["deployment"]["state"], "monitoring");
    // Three ticks seen live: the session is running and writing history (a tick is published,
    // then written, so the two before the last one seen are in history).
    let update = next_event(&mut stream, &mut buffer, "status", |v| {
        v["deployment_id"] == json!(id) && v["update"]["tick"].as_u64() >= Some(3)
    })
    .await;
    assert_eq!(update["update"]["phase"], "active", "{update}");
    assert_eq!(update["update"]["checks"][0]["name"], "web");

    // kill -9 mid-session, then start again on the same store.
    server.kill_9();
    let server = Serve::start(&dir, &["--no-auth", "--config", config]);
    assert!(
        server
            .log()
            .contains(&format!("deployment {id} was being monitored")),
        "{}",
        server.log()
    );
    let (_, d) = get(&server, None, &format!("/api/v1/deployments/{id}")).await;
    assert_eq!(d["state"], "interrupted", "{d}");
    assert!(
        d["reason"]
            .as_str()
            .unwrap()
            .contains("cased serve stopped"),
        "{d}"
    );
    // The ticks written before the kill are still there: tick 1 was recorded before tick 2 ran
    // (an update is published before it is written, so tick 2 itself may be lost to the kill).
    assert!(!d["session"]["ticks"].as_array().unwrap().is_empty(), "{d}");
    assert_eq!(d["session"]["record"]["verdict"], Value::Null, "{d}");
    // History, reopened by the new process, tells the same: its process is gone.
    assert!(
        d["session"]["record"]["interrupted_at_unix_ms"].is_u64(),
        "{d}"
    );
    let v = final_verdict(&server, None, &id).await;
    assert_eq!(v["result"], "inconclusive", "{v}");
    // A later event of that deployment does not start it again.
    let again = client(&server, "unused")
        .create_deployment(&event(
            "acme/shop",
            "9999999",
            "production",
            DeploymentStatus::Success,
        ))
        .await
        .unwrap();
    assert_eq!(again.body.unwrap()["state"], "interrupted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_server_even_with_an_event_stream_open() {
    let dir = temp_dir();
    let server = Serve::start(&dir, &["--no-auth"]);
    let mut stream = http()
        .get(server.url("/api/v1/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let pid = server.child.id().to_string();
    let term = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(term.success());
    // The stream ends (not cut by a crash: the server closes it), then the process exits 0.
    let ended = tokio::time::timeout(PATIENCE, async {
        while stream.chunk().await.unwrap().is_some() {}
    })
    .await;
    assert!(
        ended.is_ok(),
        "the event stream stayed open: {}",
        server.log()
    );
    let (code, log) = server.exit();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("cased serve: stopped"), "{log}");
}

#[test]
fn a_bad_service_configuration_is_refused_naming_the_key_and_line() {
    let dir = temp_dir();
    let path = dir.join("cased.toml");
    std::fs::write(
        &path,
        "[[services]]\nrepository = \"acme/*\"\n\n[[services.checks]]\nname = \"web\"\n\
         type = \"http\"\nurl = \"http://127.0.0.1:9/\"\ntimeot = \"1s\"\n",
    )
    .unwrap();
    let out = cased(&dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&path)
        .arg("--store")
        .arg(dir.join(".cased"))
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("services[0].checks[0]"), "{stderr}");
    assert!(
        stderr.contains("timeot") && stderr.contains("(line 8, column 1)"),
        "{stderr}"
    );

    std::fs::write(&path, "[[services]]\nenvironment = \"production\"\n").unwrap();
    let out = cased(&dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&path)
        .arg("--store")
        .arg(dir.join(".cased"))
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("services[0].repository: is required"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_use_the_public_url_when_given() {
    let dir = temp_dir();
    let server = Serve::start(
        &dir,
        &["--no-auth", "--public-url", "https://cased.example.com/"],
    );
    let body = event("acme/shop", "4f2a9c1", "staging", DeploymentStatus::Success).to_json();
    let (status, answer) = post(&server, None, &body).await;
    assert_eq!(status, StatusCode::CREATED);
    let id = answer["id"].as_str().unwrap();
    assert_eq!(
        answer["url"],
        json!(format!("https://cased.example.com/deployments/{id}"))
    );
}

/// The documented `curl` of docs/serve.md, run as written against a real server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_curl_post_works() {
    let doc = include_str!("../../docs/serve.md");
    let post = doc
        .split("```sh\n")
        .skip(1)
        .map(|b| &b[..b.find("```").unwrap()])
        .find(|b| b.starts_with("curl") && b.contains("-d '"))
        .expect("a curl POST in docs/serve.md");
    let dir = temp_dir();
    let key = create_key(&dir, "ingest");
    let server = Serve::start(&dir, &[]);
    let script = post.replace("http://127.0.0.1:8080", &server.base);
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .env("CASED_API_KEY", &key)
        .output()
        .expect("curl runs");
    assert!(out.status.success(), "{out:?}");
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["created"], json!(true), "{answer}");
    assert_eq!(answer["status"], "running");
    assert!(answer["id"].as_str().unwrap().starts_with("dep_"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_posts_of_one_deployment_make_one_deployment() {
    let dir = temp_dir();
    let server = Serve::start(&dir, &["--no-auth"]);
    let body = event("acme/shop", "7777777", "staging", DeploymentStatus::Running).to_json();
    // 16 copies of one request with one Idempotency-Key, all in flight at once.
    let same_key = (0..16).map(|_| {
        http()
            .post(server.url("/api/v1/deployments/"))
            .header("idempotency-key", "deploy-7777777")
            .body(body.clone())
            .send()
    });
    let answers = futures::future::join_all(same_key).await;
    let mut ids = Vec::new();
    for a in answers {
        let a = a.unwrap();
        assert_eq!(a.status(), StatusCode::CREATED);
        ids.push(a.json::<Value>().await.unwrap()["id"].clone());
    }
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    // 16 events of that same deployment (same repository, commit and environment), no keys.
    let c = client(&server, "unused");
    let later = event("acme/shop", "7777777", "staging", DeploymentStatus::Success);
    let answers = futures::future::join_all((0..16).map(|_| c.create_deployment(&later))).await;
    for a in answers {
        let a = a.unwrap();
        assert_eq!((a.status, &a.body.unwrap()["id"]), (200, &ids[0]));
    }
    let (_, list) = get(&server, None, "/api/v1/deployments/").await;
    assert_eq!(list["deployments"].as_array().unwrap().len(), 1, "{list}");
    let (_, d) = get(
        &server,
        None,
        &format!("/api/v1/deployments/{}", ids[0].as_str().unwrap()),
    )
    .await;
    assert_eq!(
        d["events"].as_array().unwrap().len(),
        17,
        "one stored, 16 later ones"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_committed_together_are_answered_one_by_one() {
    let dir = temp_dir();
    let server = Serve::start(&dir, &["--no-auth"]);
    let first = event(
        "acme/shop",
        "1000000",
        "production",
        DeploymentStatus::Running,
    )
    .to_json();
    let taken = http()
        .post(server.url("/api/v1/deployments/"))
        .header("idempotency-key", "taken")
        .body(first)
        .send()
        .await
        .unwrap();
    assert_eq!(taken.status(), StatusCode::CREATED);
    // 64 posts in flight at once (the writer commits them in batches): 62 new deployments, a
    // reused key with another body, and a body that is not an event.
    let posts = (0..64).map(|i| {
        let mut request = http().post(server.url("/api/v1/deployments/"));
        let body = match i {
            10 => {
                request = request.header("idempotency-key", "taken");
                event(
                    "acme/shop",
                    "2000000",
                    "production",
                    DeploymentStatus::Running,
                )
                .to_json()
            }
            20 => r#"{"deployment_request": ""}"#.to_owned(),
            _ => event(
                "acme/shop",
                &format!("{:07x}", 0x300_0000 + i),
                "production",
                DeploymentStatus::Pending,
            )
            .to_json(),
        };
        request.body(body).send()
    });
    let answers = futures::future::join_all(posts).await;
    let mut ids = std::collections::HashSet::new();
    for (i, a) in answers.into_iter().enumerate() {
        let a = a.unwrap();
        let status = a.status();
        let body: Value = a.json().await.unwrap();
        match i {
            10 => assert_eq!(
                (status, body["code"].as_str()),
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Some("idempotency_key_reused")
                )
            ),
            20 => assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}"),
            _ => {
                assert_eq!(status, StatusCode::CREATED, "{body}");
                assert!(ids.insert(body["id"].as_str().unwrap().to_owned()));
            }
        }
    }
    assert_eq!(ids.len(), 62);
    let (_, list) = get(&server, None, "/api/v1/deployments/?limit=100").await;
    assert_eq!(
        list["deployments"].as_array().unwrap().len(),
        63,
        "62 and the first"
    );
}

#[test]
fn help_names_the_listen_address_and_every_flag() {
    let out = cased(&temp_dir())
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{help}");
    for flag in [
        "--listen <HOST:PORT>",
        "[default: 127.0.0.1:8080]",
        "--store <DIR>",
        "--config <FILE>",
        "--no-auth",
        "--public-url <URL>",
    ] {
        assert!(help.contains(flag), "{flag:?} missing from:\n{help}");
    }
    let keys = cased(&temp_dir())
        .args(["keys", "create", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(keys.stdout).unwrap();
    assert!(
        help.contains("--scope <SCOPE>") && help.contains("ingest") && help.contains("read"),
        "{help}"
    );
}
