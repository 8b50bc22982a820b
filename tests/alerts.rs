//! Alerts against real receivers on loopback: Slack and webhook receivers (axum), a real SMTP
//! server (Python's aiosmtpd, see `support/smtp_sink.py`), and in-process notifiers for the
//! routing timers under tokio's paused clock.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use cased_core::alert::{
    Alert, AlertManager, AlertState, AlertsConfig, Deliveries, DeliveryEvent, DeliveryOutcome,
    DeliveryReport, FnNotifier, InAppEvent, NOTIFICATION_ID_HEADER, Notification, SIGNATURE_HEADER,
    TIMESTAMP_HEADER, slack_message, verify_webhook_signature,
};
use cased_core::{DeploymentEvent, Finding, Severity};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

// ---------------------------------------------------------------- helpers

fn event() -> DeploymentEvent {
    DeploymentEvent::builder("Deploy v1.4.2")
        .repository("acme/web")
        .commit_sha("9fceb02d0ae598e95dc970b74767f19372d61af8")
        .git_ref("refs/heads/main")
        .external_url("https://ci.example/acme/web/runs/7")
        .environment("production")
        .correlation_id("deploy-42")
        .build()
        .unwrap()
}

fn finding(metric: &str, severity: Severity, message: &str) -> Finding {
    Finding::new(metric, "baseline", severity, message)
}

fn alert(severity: Severity, title: &str) -> Alert {
    Alert::builder(severity, title)
        .summary("p99 went from 180 ms to 410 ms after the deploy")
        .event(&event())
        .finding(finding(
            "latency_p99",
            severity,
            "p99 latency is 2.3x the baseline (p < 0.001)",
        ))
        .build()
        .unwrap()
}

fn config(v: Value) -> AlertsConfig {
    AlertsConfig::from_value(v).unwrap()
}

/// Fast retries for tests that run in real time.
fn fast_delivery() -> Value {
    json!({"timeout": "2s", "max_retries": 20, "initial_backoff": "20ms", "max_backoff": "100ms", "max_elapsed": "30s"})
}

async fn next_report(d: &mut Deliveries) -> Arc<DeliveryReport> {
    match tokio::time::timeout(Duration::from_secs(30), d.next())
        .await
        .expect("a delivery report within 30 s")
    {
        Some(DeliveryEvent::Report(r)) => r,
        Some(DeliveryEvent::Skipped(n)) => panic!("{n} reports skipped"),
        None => panic!("the delivery stream ended"),
    }
}

/// The next final report (delivered or failed), skipping retries and coalescing.
async fn next_final(d: &mut Deliveries) -> Arc<DeliveryReport> {
    loop {
        let r = next_report(d).await;
        if matches!(
            r.outcome,
            DeliveryOutcome::Delivered | DeliveryOutcome::Failed
        ) {
            return r;
        }
    }
}

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Bytes,
    at: std::time::Instant,
}

/// What a receiver answers, in order; 200 `ok` once the list is used up.
#[derive(Debug, Clone)]
enum Reply {
    Status(u16, Vec<(&'static str, &'static str)>, &'static str),
    Hang,
}

#[derive(Debug)]
struct ReceiverState {
    tx: mpsc::UnboundedSender<Received>,
    replies: Mutex<VecDeque<Reply>>,
    gate: watch::Receiver<bool>,
}

/// A real HTTP server on loopback that records every request.
struct Receiver {
    addr: SocketAddr,
    rx: mpsc::UnboundedReceiver<Received>,
    open_gate: watch::Sender<bool>,
}

impl Receiver {
    async fn start(replies: Vec<Reply>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, replies, true)
    }

    /// A receiver whose answers wait until `open()`.
    async fn gated() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, Vec::new(), false)
    }

    fn serve(listener: tokio::net::TcpListener, replies: Vec<Reply>, open: bool) -> Self {
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let (open_gate, gate) = watch::channel(open);
        let state = Arc::new(ReceiverState {
            tx,
            replies: Mutex::new(replies.into()),
            gate,
        });
        let app = axum::Router::new().fallback(record).with_state(state);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            addr,
            rx,
            open_gate,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn open(&self) {
        self.open_gate.send_replace(true);
    }

    async fn next(&mut self) -> Received {
        tokio::time::timeout(Duration::from_secs(30), self.rx.recv())
            .await
            .expect("a request within 30 s")
            .unwrap()
    }
}

async fn record(
    State(s): State<Arc<ReceiverState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let _ = s.tx.send(Received {
        path: uri.path().to_owned(),
        headers,
        body,
        at: std::time::Instant::now(),
    });
    let reply = s.replies.lock().unwrap().pop_front();
    let mut gate = s.gate.clone();
    let _ = gate.wait_for(|open| *open).await;
    match reply {
        None => (StatusCode::OK, "ok").into_response(),
        Some(Reply::Hang) => std::future::pending().await,
        Some(Reply::Status(code, headers, body)) => {
            let mut r = (StatusCode::from_u16(code).unwrap(), body).into_response();
            for (k, v) in headers {
                r.headers_mut().insert(k, v.parse().unwrap());
            }
            r
        }
    }
}

fn header<'a>(r: &'a Received, name: &str) -> &'a str {
    r.headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

// ---------------------------------------------------------------- Slack

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_gets_the_exact_block_kit_message() {
    let mut slack = Receiver::start(Vec::new()).await;
    let url = slack.url("/services/T000/B000/tok3nSecretPart");
    let alerts = AlertManager::new(config(json!({
        "channels": [{"name": "ops", "type": "slack", "webhook_url": url, "send_resolved": true}],
        "routes": [{"channels": ["ops"], "group_wait": "0s", "group_interval": "10ms"}],
        "delivery": fast_delivery()
    })))
    .unwrap();
    let mut deliveries = alerts.deliveries();
    alerts
        .fire(alert(Severity::Critical, "p99 latency doubled"))
        .unwrap();
    let got = slack.next().await;
    let report = next_final(&mut deliveries).await;
    assert_eq!(report.outcome, DeliveryOutcome::Delivered);
    assert_eq!(got.path, "/services/T000/B000/tok3nSecretPart");
    assert_eq!(header(&got, "content-type"), "application/json");
    let body: Value = serde_json::from_slice(&got.body).unwrap();
    let headline = "[CRITICAL] p99 latency doubled — acme/web (production)";
    let expected = json!({
        "text": headline,
        "attachments": [{
            "color": "#D40E0D",
            "fallback": headline,
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": format!(":red_circle: {headline}"), "emoji": true}},
                {"type": "section", "text": {"type": "mrkdwn",
                    "text": "• *CRITICAL* p99 latency doubled — p99 went from 180 ms to 410 ms after the deploy"}},
                {"type": "section", "fields": [
                    {"type": "mrkdwn", "text": "*Deployment*\nDeploy v1.4.2"},
                    {"type": "mrkdwn", "text": "*Repository*\nacme/web"},
                    {"type": "mrkdwn", "text": "*Environment*\nproduction"},
                    {"type": "mrkdwn", "text": "*Commit*\n`9fceb02d0ae5`"},
                    {"type": "mrkdwn", "text": "*Ref*\nrefs/heads/main"}
                ]},
                {"type": "section", "text": {"type": "mrkdwn",
                    "text": "*Findings*\n• *latency_p99* (baseline, critical): p99 latency is 2.3x the baseline (p &lt; 0.001)"}},
                {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "View deployment"},
                    "url": "https://ci.example/acme/web/runs/7"}]},
                {"type": "context", "elements": [{"type": "mrkdwn",
                    "text": format!("cased · notification `{}` · correlation `deploy-42`", report.notification_id)}]}
            ]
        }]
    });
    assert_eq!(body, expected);

    // Resolved: green, with a check mark.
    assert_eq!(alerts.resolve("deploy-42/p99 latency doubled").unwrap(), 1);
    let got = slack.next().await;
    let body: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(body["attachments"][0]["color"], "#2EB67D");
    assert_eq!(
        body["text"],
        "[RESOLVED] p99 latency doubled — acme/web (production)"
    );
    assert!(
        body["attachments"][0]["blocks"][1]["text"]["text"]
            .as_str()
            .unwrap()
            .starts_with("• *RESOLVED*")
    );
    assert_eq!(
        next_final(&mut deliveries).await.status,
        AlertState::Resolved
    );
    alerts.shutdown(Duration::from_secs(5)).await;
}

/// Every string in a JSON value (keys excluded).
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
        Value::Object(o) => o.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_messages_escape_mentions_and_links_from_the_deployment() {
    let mut slack = Receiver::start(Vec::new()).await;
    let alerts = AlertManager::new(config(json!({
        "channels": [{"name": "ops", "type": "slack", "webhook_url": slack.url("/services/T/B/x")}],
        "routes": [{"channels": ["ops"], "group_wait": "0s"}],
        "delivery": fast_delivery()
    })))
    .unwrap();
    let evil = DeploymentEvent::builder("<!channel> <https://evil.example|Approve rollback>")
        .environment("<!channel>")
        .correlation_id("c&<!here>")
        .build()
        .unwrap();
    alerts
        .fire(
            Alert::builder(Severity::Critical, "Deployment unhealthy")
                .summary("<@U024BE7LH> & co")
                .event(&evil)
                .finding(finding(
                    "<!everyone>",
                    Severity::Critical,
                    "<https://x.example|y>",
                ))
                .build()
                .unwrap(),
        )
        .unwrap();
    let got = slack.next().await;
    let body: Value = serde_json::from_slice(&got.body).unwrap();
    let headline = "[CRITICAL] Deployment unhealthy — &lt;!channel&gt; \
                    &lt;https://evil.example|Approve rollback&gt; (&lt;!channel&gt;)";
    assert_eq!(body["text"], headline);
    assert_eq!(body["attachments"][0]["fallback"], headline);
    let mut all = Vec::new();
    strings(&body, &mut all);
    for s in &all {
        assert!(
            !s.contains('<') && !s.contains('>'),
            "unescaped mrkdwn control characters in {s:?}"
        );
    }
    let text = all.join("\n");
    assert!(text.contains("&lt;@U024BE7LH&gt; &amp; co"), "{text}");
    assert!(text.contains("correlation `c&amp;&lt;!here&gt;`"), "{text}");
    alerts.shutdown(Duration::from_secs(5)).await;
}

#[test]
fn slack_colours_follow_the_severity() {
    let colour = |s| {
        let n = notification_of(vec![alert(s, "x")]);
        slack_message(&n, 5)["attachments"][0]["color"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        [
            Severity::Info,
            Severity::Warning,
            Severity::Critical,
            Severity::Emergency
        ]
        .map(colour),
        ["#439FE0", "#DAA038", "#D40E0D", "#7A0019"]
    );
}

/// A notification made the way the manager makes it, through an in-app channel.
fn notification_of(alerts: Vec<Alert>) -> Notification {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let m = AlertManager::new(config(json!({
            "channels": [{"name": "app", "type": "inapp"}],
            "routes": [{"channels": ["app"], "group_wait": "0s"}]
        })))
        .unwrap();
        let mut s = m.subscribe("app").unwrap();
        for a in alerts {
            m.fire(a).unwrap();
        }
        let Some(InAppEvent::Notification(n)) = s.next().await else {
            panic!("no notification")
        };
        m.shutdown(Duration::from_secs(1)).await;
        (*n).clone()
    })
}

// ---------------------------------------------------------------- webhook

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerduty_gets_events_api_v2_triggers_and_resolves_retried_on_server_errors() {
    // A loopback stand-in for PagerDuty's Events API: one 503 (retried), then 202s.
    let mut pd = Receiver::start(vec![Reply::Status(503, vec![], "busy")]).await;
    let alerts = AlertManager::new(config(json!({
        "channels": [{"name": "pager", "type": "pagerduty", "routing_key": "R0UTINGKEY0123456789",
                      "url": pd.url("/v2/enqueue"), "send_resolved": true}],
        "routes": [{"channels": ["pager"], "group_wait": "0s", "group_interval": "10ms"}],
        "delivery": fast_delivery()
    })))
    .unwrap();
    let fired = alert(Severity::Emergency, "checkout is down");
    let key = fired.key.clone();
    alerts.fire(fired).unwrap();
    let first = pd.next().await;
    let retried = pd.next().await;
    assert_eq!(first.body, retried.body, "the retry sends the same event");
    assert_eq!(retried.path, "/v2/enqueue");
    assert_eq!(header(&retried, "content-type"), "application/json");
    let e: Value = serde_json::from_slice(&retried.body).unwrap();
    assert_eq!(e["routing_key"], "R0UTINGKEY0123456789");
    assert_eq!(e["event_action"], "trigger");
    assert_eq!(e["dedup_key"], json!(key));
    assert_eq!(e["client"], "cased");
    let payload = &e["payload"];
    assert_eq!(payload["summary"], "checkout is down");
    assert_eq!(payload["severity"], "critical");
    assert_eq!(payload["source"], "acme/web");
    assert_eq!(payload["component"], "acme/web");
    assert_eq!(payload["group"], "production");
    assert!(
        payload["timestamp"].as_str().unwrap().ends_with('Z'),
        "{payload}"
    );
    assert_eq!(
        payload["custom_details"]["findings"][0],
        "p99 latency is 2.3x the baseline (p < 0.001)"
    );
    assert_eq!(e["links"][0]["href"], "https://ci.example/acme/web/runs/7");
    alerts.resolve(&key).unwrap();
    let resolved: Value = serde_json::from_slice(&pd.next().await.body).unwrap();
    assert_eq!(
        resolved,
        json!({"routing_key": "R0UTINGKEY0123456789", "event_action": "resolve", "dedup_key": key})
    );
    // The routing key is a secret: never in Debug; a missing one is named.
    assert!(!format!("{alerts:?}").contains("R0UTINGKEY"));
    let e = AlertsConfig::from_value(json!({"channels": [{"name": "p", "type": "pagerduty"}]}))
        .unwrap_err();
    assert_eq!(e.field_errors()[0].field, "channels[0].routing_key", "{e}");
    assert_eq!(
        cased_core::alert::pagerduty_severity(Severity::Critical),
        "error"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_gets_labelled_v2_alerts_then_their_end_retried_on_server_errors() {
    // A loopback stand-in for Alertmanager's v2 API: one 503 (retried), then 200s.
    let mut am = Receiver::start(vec![Reply::Status(503, vec![], "busy")]).await;
    let alerts = AlertManager::new(config(json!({
        "channels": [{"name": "am", "type": "alertmanager", "url": am.url("/"),
                      "bearer_token": "T0KEN-for-the-proxy", "labels": {"team": "payments"}}],
        "routes": [{"channels": ["am"], "group_wait": "0s", "group_interval": "10ms"}],
        "delivery": fast_delivery()
    })))
    .unwrap();
    let fired = alert(Severity::Critical, "checkout is slow");
    let key = fired.key.clone();
    alerts.fire(fired).unwrap();
    let first = am.next().await;
    let retried = am.next().await;
    assert_eq!(first.body, retried.body, "the retry posts the same alerts");
    assert_eq!(retried.path, "/api/v2/alerts");
    assert_eq!(
        header(&retried, "authorization"),
        "Bearer T0KEN-for-the-proxy"
    );
    let posted: Value = serde_json::from_slice(&retried.body).unwrap();
    let a = &posted[0];
    assert_eq!(
        a["labels"],
        json!({"alertname": "CasedDeployment", "severity": "critical", "cased_key": key,
               "correlation_id": a["labels"]["correlation_id"], "repository": "acme/web",
               "environment": "production", "team": "payments"})
    );
    assert_eq!(a["annotations"]["summary"], "checkout is slow");
    assert_eq!(
        a["annotations"]["findings"],
        "p99 latency is 2.3x the baseline (p < 0.001)"
    );
    assert!(a["startsAt"].as_str().unwrap().ends_with('Z'), "{a}");
    assert!(a.get("endsAt").is_none(), "firing: no end");
    assert_eq!(a["generatorURL"], "https://ci.example/acme/web/runs/7");
    // Resolved (send_resolved is on by default): the same labels, with an end.
    alerts.resolve(&key).unwrap();
    let resolved: Value = serde_json::from_slice(&am.next().await.body).unwrap();
    assert_eq!(resolved[0]["labels"], a["labels"]);
    assert!(
        resolved[0]["endsAt"].as_str().unwrap().ends_with('Z'),
        "{resolved}"
    );
    // The token is a secret; bad settings are named.
    assert!(!format!("{alerts:?}").contains("T0KEN"));
    let e = AlertsConfig::from_value(json!({"channels": [{"name": "a", "type": "alertmanager",
        "url": "alertmanager:9093"}]}))
    .unwrap_err();
    assert_eq!(e.field_errors()[0].field, "channels[0].url", "{e}");
    let e = AlertManager::new(config(json!({
        "channels": [{"name": "a", "type": "alertmanager", "url": "http://127.0.0.1:9093",
                      "labels": {"bad-name": "x"}}]
    })))
    .unwrap_err();
    assert_eq!(
        e.field_errors()[0].field,
        "channels[0].labels.bad-name",
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_body_is_the_documented_json_signed_over_timestamp_and_body() {
    let mut hook = Receiver::start(Vec::new()).await;
    let alerts = AlertManager::new(config(json!({
        "channels": [
            {"name": "hooks", "type": "webhook", "url": hook.url("/cased"), "secret": "whsec_s3cret",
             "headers": {"authorization": "Bearer hdr-t0ken"}},
            {"name": "app", "type": "inapp"}
        ],
        "routes": [{"channels": ["hooks", "app"], "group_wait": "0s"}],
        "delivery": fast_delivery()
    })))
    .unwrap();
    let mut app = alerts.subscribe("app").unwrap();
    alerts
        .fire(alert(Severity::Warning, "error rate up"))
        .unwrap();
    let got = hook.next().await;
    let Some(InAppEvent::Notification(n)) = app.next().await else {
        panic!("no in-app notification")
    };

    // The exact bytes: the notification's JSON, as the in-app channel saw it.
    assert_eq!(std::str::from_utf8(&got.body).unwrap(), n.to_json());
    assert_eq!(got.path, "/cased");
    assert_eq!(header(&got, "authorization"), "Bearer hdr-t0ken");
    assert_eq!(header(&got, NOTIFICATION_ID_HEADER), n.id);
    assert_eq!(header(&got, "x-cased-event"), "firing");
    let ts = header(&got, TIMESTAMP_HEADER);
    let sig = header(&got, SIGNATURE_HEADER);
    let now = SystemTime::now();
    verify_webhook_signature(
        "whsec_s3cret",
        ts,
        &got.body,
        sig,
        Duration::from_secs(300),
        now,
    )
    .unwrap();
    assert!(
        verify_webhook_signature("wrong", ts, &got.body, sig, Duration::from_secs(300), now)
            .is_err()
    );
    let replay_later = now + Duration::from_secs(301);
    assert!(
        verify_webhook_signature(
            "whsec_s3cret",
            ts,
            &got.body,
            sig,
            Duration::from_secs(300),
            replay_later
        )
        .is_err()
    );

    let v: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(v["schema"], "cased.notification/v1");
    assert_eq!(v["kind"], "group");
    assert_eq!(v["route"], "route-0");
    assert_eq!(v["group_key"], "deploy-42");
    assert_eq!(v["status"], "firing");
    assert_eq!(v["severity"], "warning");
    assert_eq!(v["escalated"], false);
    assert_eq!(
        v["deployment"],
        json!({"deployment_request": "Deploy v1.4.2", "repository": "acme/web",
               "commit_sha": "9fceb02d0ae598e95dc970b74767f19372d61af8", "ref": "refs/heads/main",
               "environment": "production", "external_url": "https://ci.example/acme/web/runs/7"})
    );
    let a = &v["alerts"][0];
    assert_eq!(a["schema"], "cased.alert/v1");
    assert_eq!(a["key"], "deploy-42/error rate up");
    assert_eq!(a["state"], "firing");
    assert_eq!(
        a["findings"][0],
        json!({"metric": "latency_p99", "detector": "baseline", "severity": "warning",
        "kind": "alarm", "current": 0.0, "baseline": null, "statistic": 0.0, "p_value": null, "confidence": 1.0,
        "effect_size": 0.0, "n": 0, "rule": "", "message": "p99 latency is 2.3x the baseline (p < 0.001)"})
    );
    assert_eq!(
        (v["omitted"].clone(), v["omitted_keys"].clone()),
        (json!(0), json!([]))
    );
    alerts.shutdown(Duration::from_secs(5)).await;
}

// ---------------------------------------------------------------- email (real SMTP server)

/// The Python that runs aiosmtpd: `CASED_TEST_PYTHON` if set, else the first of the project's
/// `.venv` and `python3` that can import it. Missing aiosmtpd is a failure, never a skip.
fn python() -> String {
    if let Ok(p) = std::env::var("CASED_TEST_PYTHON") {
        assert!(
            can_import_aiosmtpd(&p),
            "CASED_TEST_PYTHON={p} cannot import aiosmtpd: run `{p} -m pip install aiosmtpd`"
        );
        return p;
    }
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python");
    let candidates = [venv, "python3"];
    candidates.iter().find(|p| can_import_aiosmtpd(p)).map(|p| (*p).to_owned()).unwrap_or_else(|| {
        panic!(
            "the email test needs Python's aiosmtpd, which none of {candidates:?} can import: run \
             `python3 -m pip install aiosmtpd` (or set CASED_TEST_PYTHON to a Python that has it)"
        )
    })
}

fn can_import_aiosmtpd(python: &str) -> bool {
    std::process::Command::new(python)
        .args(["-c", "import aiosmtpd"])
        .output()
        .is_ok_and(|o| o.status.success())
}

struct SmtpSink {
    port: u16,
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl SmtpSink {
    async fn start(credentials: Option<(&str, &str)>) -> Self {
        use tokio::io::AsyncBufReadExt;
        let py = python();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = tokio::process::Command::new(&py);
        cmd.args([
            "-W",
            "ignore",
            concat!(env!("CARGO_MANIFEST_DIR"), "/support/smtp_sink.py"),
            &port.to_string(),
        ]);
        if let Some((u, p)) = credentials {
            cmd.args([u, p]);
        }
        let mut child = cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the SMTP sink");
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("SMTP sink ready");
        assert_eq!(ready.unwrap().as_deref(), Some("ready"));
        Self { port, child, lines }
    }

    async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(30), self.lines.next_line())
            .await
            .expect("an email within 30 s");
        serde_json::from_str(&line.unwrap().expect("the SMTP sink ended")).unwrap()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_reaches_a_real_smtp_server_with_auth_and_both_parts() {
    let mut smtp = SmtpSink::start(Some(("alerts", "smtp-pa55word"))).await;
    let alerts = AlertManager::new(config(json!({
        "channels": [{"name": "oncall", "type": "email", "host": "127.0.0.1", "port": smtp.port, "tls": "none",
                      "username": "alerts", "password": "smtp-pa55word",
                      "from": "cased <alerts@example.com>", "to": ["oncall@example.com", "Lead <lead@example.com>"],
                      "send_resolved": true}],
        "routes": [{"channels": ["oncall"], "group_wait": "0s", "group_interval": "10ms"}],
        "delivery": fast_delivery()
    })))
    .unwrap();
    let mut deliveries = alerts.deliveries();
    let mut a = alert(Severity::Emergency, "checkout <down>");
    a.findings.push(finding(
        "error_rate",
        Severity::Critical,
        "errors 14% vs 0.2% before",
    ));
    alerts.fire(a).unwrap();
    let mail = smtp.next().await;
    let report = next_final(&mut deliveries).await;
    assert_eq!(report.outcome, DeliveryOutcome::Delivered, "{report:?}");
    assert_eq!(mail["mail_from"], "alerts@example.com");
    assert_eq!(
        mail["rcpt_tos"],
        json!(["oncall@example.com", "lead@example.com"])
    );
    assert_eq!(mail["login"], "alerts");
    assert_eq!(
        mail["subject"],
        "[cased] [EMERGENCY] checkout <down> — acme/web (production)"
    );
    assert_eq!(mail["notification_id"], report.notification_id.as_str());
    assert_eq!(mail["content_type"], "multipart/alternative");
    let text = mail["text"].as_str().unwrap();
    for needle in [
        "- [EMERGENCY] checkout <down>",
        "  p99 went from 180 ms to 410 ms after the deploy",
        "  * error_rate (baseline, critical): errors 14% vs 0.2% before",
        "Repository: acme/web",
        "Environment: production",
        "Link: https://ci.example/acme/web/runs/7",
        "Correlation id: deploy-42",
    ] {
        assert!(
            text.contains(needle),
            "{needle:?} not in the text part:\n{text}"
        );
    }
    let html = mail["html"].as_str().unwrap();
    assert!(
        html.contains("checkout &lt;down&gt;") && !html.contains("<down>"),
        "{html}"
    );
    assert!(
        html.contains("<a href=\"https://ci.example/acme/web/runs/7\">"),
        "{html}"
    );
    assert!(html.contains("border-left:6px solid #7A0019"), "{html}");

    alerts.resolve("deploy-42/checkout <down>").unwrap();
    let mail = smtp.next().await;
    assert_eq!(
        mail["subject"],
        "[cased] [RESOLVED] checkout <down> — acme/web (production)"
    );
    alerts.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_smtp_password_is_a_final_failure_that_never_shows_the_password() {
    let _smtp = SmtpSink::start(Some(("alerts", "right-pa55"))).await;
    let port = _smtp.port;
    let alerts = AlertManager::new(config(json!({
        "channels": [{"name": "oncall", "type": "email", "host": "127.0.0.1", "port": port, "tls": "none",
                      "username": "alerts", "password": "wrong-pa55", "from": "alerts@example.com", "to": ["oncall@example.com"]}],
        "routes": [{"channels": ["oncall"], "group_wait": "0s"}],
        "delivery": fast_delivery()
    })))
    .unwrap();
    let mut deliveries = alerts.deliveries();
    alerts.fire(alert(Severity::Critical, "x")).unwrap();
    let r = next_final(&mut deliveries).await;
    assert_eq!(
        (r.outcome, r.attempts),
        (DeliveryOutcome::Failed, 1),
        "535 is permanent: {r:?}"
    );
    let error = r.error.as_deref().unwrap();
    assert!(error.contains("535"), "{error}");
    assert!(!error.contains("pa55"), "{error}");
    assert_eq!(alerts.failures().len(), 1);
    alerts.shutdown(Duration::from_secs(5)).await;
}

// ---------------------------------------------------------------- faults

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_then_up_gets_the_notification_once_up() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let alerts = AlertManager::new(config(json!({
        "channels": [{"name": "hooks", "type": "webhook", "url": format!("http://127.0.0.1:{port}/in"), "secret": "k"}],
        "routes": [{"channels": ["hooks"], "group_wait": "0s"}],
        "delivery": fast_delivery()
    })))
    .unwrap();
    let mut deliveries = alerts.deliveries();
    alerts.fire(alert(Severity::Critical, "down")).unwrap();
    let first = next_report(&mut deliveries).await;
    assert_eq!(first.outcome, DeliveryOutcome::Retrying);
    assert!(
        first
            .error
            .as_deref()
            .unwrap()
            .contains("could not be reached"),
        "{first:?}"
    );
    // Now the receiver comes up on that port.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let mut hook = Receiver::serve(listener, Vec::new(), true);
    let got = hook.next().await;
    let done = next_final(&mut deliveries).await;
    assert_eq!(done.outcome, DeliveryOutcome::Delivered);
    assert!(done.attempts >= 2);
    assert_eq!(header(&got, NOTIFICATION_ID_HEADER), done.notification_id);
    assert_eq!(alerts.stats().failed, 0);
    alerts.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_with_the_same_notification_id() {
    let mut hook = Receiver::start(vec![
        Reply::Status(500, vec![], "boom"),
        Reply::Status(503, vec![], ""),
        Reply::Status(200, vec![], "ok"),
    ])
    .await;
    let alerts = AlertManager::new(config(json!({
        "channels": [{"name": "hooks", "type": "webhook", "url": hook.url("/in"), "secret": "k"}],
        "routes": [{"channels": ["hooks"], "group_wait": "0s"}],
        "delivery": fast_delivery()
    })))
    .unwrap();
    let mut deliveries = alerts.deliveries();
    alerts.fire(alert(Severity::Critical, "x")).unwrap();
    let ids: Vec<String> = [hook.next().await, hook.next().await, hook.next().await]
        .iter()
        .map(|r| header(r, NOTIFICATION_ID_HEADER).to_owned())
        .collect();
    let r1 = next_report(&mut deliveries).await;
    assert_eq!(r1.outcome, DeliveryOutcome::Retrying);
    assert_eq!(
        r1.error.as_deref(),
        Some("the webhook answered HTTP 500: boom")
    );
    let r2 = next_report(&mut deliveries).await;
    assert_eq!(r2.error.as_deref(), Some("the webhook answered HTTP 503"));
    let done = next_report(&mut deliveries).await;
    assert_eq!(
        (done.outcome, done.attempts),
        (DeliveryOutcome::Delivered, 3)
    );
    assert_eq!(ids, vec![done.notification_id.clone(); 3]);
    assert_eq!(alerts.stats().retries, 2);
    alerts.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_error_is_not_retried() {
    let mut hook = Receiver::start(vec![Reply::Status(404, vec![], "no_service")]).await;
    let alerts = AlertManager::new(config(json!({
        "channels": [{"name": "ops", "type": "slack", "webhook_url": hook.url("/services/T/B/gone-t0ken")}],
        "routes": [{"channels": ["ops"], "group_wait": "0s"}],
        "delivery": fast_delivery()
    })))
    .unwrap();
    let mut deliveries = alerts.deliveries();
    alerts.fire(alert(Severity::Critical, "x")).unwrap();
    hook.next().await;
    let r = next_report(&mut deliveries).await;
    assert_eq!((r.outcome, r.attempts), (DeliveryOutcome::Failed, 1));
    assert_eq!(
        r.error.as_deref(),
        Some("Slack answered HTTP 404: no_service")
    );
    assert_eq!(alerts.failures()[0].notification_id, r.notification_id);
    alerts.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_honoured_with_retry_after() {
    let mut hook = Receiver::start(vec![Reply::Status(
        429,
        vec![("retry-after", "1")],
        "slow down",
    )])
    .await;
    let alerts = AlertManager::new(config(json!({
        "channels": [{"name": "hooks", "type": "webhook", "url": hook.url("/in"), "secret": "k"}],
        "routes": [{"channels": ["hooks"], "group_wait": "0s"}],
        // Backoffs of at most 20 ms: only Retry-After can explain a wait of a second.
        "delivery": {"max_retries": 3, "initial_backoff": "10ms", "max_backoff": "20ms"}
    })))
    .unwrap();
    let mut deliveries = alerts.deliveries();
    alerts.fire(alert(Severity::Critical, "x")).unwrap();
    let first = hook.next().await;
    let second = hook.next().await;
    let r = next_report(&mut deliveries).await;
    assert_eq!(
        (r.outcome, r.retry_in),
        (DeliveryOutcome::Retrying, Some(Duration::from_secs(1)))
    );
    let done = next_report(&mut deliveries).await;
    assert_eq!(
        (done.outcome, done.attempts),
        (DeliveryOutcome::Delivered, 2)
    );
    let gap = second.at - first.at;
    assert!(
        gap >= Duration::from_secs(1),
        "retried after {gap:?}, before Retry-After"
    );
    alerts.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_of_u64_max_seconds_fails_that_delivery_and_the_channel_lives_on() {
    let mut hook = Receiver::start(vec![Reply::Status(
        503,
        vec![("retry-after", "18446744073709551615")],
        "busy",
    )])
    .await;
    let alerts = AlertManager::new(config(json!({
        "channels": [{"name": "hooks", "type": "webhook", "url": hook.url("/in"), "secret": "k"}],
        "routes": [{"channels": ["hooks"], "group_wait": "0s", "group_interval": "10ms"}],
        "delivery": fast_delivery()
    })))
    .unwrap();
    let mut deliveries = alerts.deliveries();
    alerts.fire(alert(Severity::Critical, "first")).unwrap();
    hook.next().await;
    let r = next_final(&mut deliveries).await;
    assert_eq!(
        (r.outcome, r.attempts),
        (DeliveryOutcome::Failed, 1),
        "{r:?}"
    );
    let error = r.error.as_deref().unwrap();
    assert!(error.contains("beyond the retry budget"), "{error}");
    // The channel's worker is still there: a later alert is delivered.
    alerts.fire(alert(Severity::Warning, "second")).unwrap();
    hook.next().await;
    let r = next_final(&mut deliveries).await;
    assert_eq!(r.outcome, DeliveryOutcome::Delivered, "{r:?}");
    alerts.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_receiver_times_out_and_never_holds_up_other_channels() {
    let mut stuck = Receiver::start(vec![Reply::Hang, Reply::Hang]).await;
    let mut fine = Receiver::start(Vec::new()).await;
    let alerts = AlertManager::new(config(json!({
        "channels": [
            {"name": "stuck", "type": "webhook", "url": stuck.url("/in"), "secret": "k",
             "delivery": {"timeout": "300ms", "max_retries": 1, "initial_backoff": "10ms", "max_backoff": "10ms"}},
            {"name": "fine", "type": "webhook", "url": fine.url("/in"), "secret": "k"}
        ],
        "routes": [{"channels": ["stuck", "fine"], "group_wait": "0s", "group_interval": "10ms"}],
        "delivery": fast_delivery()
    })))
    .unwrap();
    let mut deliveries = alerts.deliveries();
    let started = std::time::Instant::now();
    alerts.fire(alert(Severity::Critical, "first")).unwrap();
    stuck.next().await;
    fine.next().await;
    let r = next_final(&mut deliveries).await;
    assert_eq!(
        (r.channel.as_str(), r.outcome),
        ("fine", DeliveryOutcome::Delivered),
        "the fast channel finishes first"
    );
    // While `stuck` still waits, `fine` takes more.
    alerts.fire(alert(Severity::Critical, "second")).unwrap();
    fine.next().await;
    let r = next_final(&mut deliveries).await;
    assert_eq!(
        (r.channel.as_str(), r.outcome),
        ("fine", DeliveryOutcome::Delivered)
    );
    let r = next_final(&mut deliveries).await;
    assert_eq!(
        (r.channel.as_str(), r.outcome, r.attempts),
        ("stuck", DeliveryOutcome::Failed, 2)
    );
    assert!(
        r.error
            .as_deref()
            .unwrap()
            .contains("no answer within 300ms"),
        "{r:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(600));
    alerts.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_10000_alerts_is_coalesced_in_bounded_queues_and_nothing_is_lost() {
    let mut hook = Receiver::gated().await;
    let alerts = AlertManager::new(config(json!({
        "channels": [{"name": "hooks", "type": "webhook", "url": hook.url("/in"), "secret": "k",
                      "delivery": {"queue_capacity": 16, "max_alerts": 20, "timeout": "30s"}}],
        "routes": [{"channels": ["hooks"], "group_wait": "0s", "group_interval": "1h", "repeat_interval": "1h"}]
    })))
    .unwrap();
    let mut deliveries = alerts.deliveries();
    let collector = tokio::spawn(async move {
        let mut v = Vec::new();
        while let Some(e) = deliveries.next().await {
            match e {
                DeliveryEvent::Report(r) => v.push(r),
                DeliveryEvent::Skipped(n) => panic!("{n} reports skipped"),
            }
        }
        v
    });
    let mut all = HashSet::new();
    for d in 0..500 {
        for k in 0..20 {
            let a = Alert::builder(Severity::Critical, format!("finding {k}"))
                .correlation_id(format!("deploy-{d}"))
                .key(format!("deploy-{d}/finding-{k}"))
                .build()
                .unwrap();
            all.insert(a.key.clone());
            alerts.fire(a).unwrap();
        }
    }
    assert_eq!(all.len(), 10_000);
    // The receiver holds the first request until now; everything else queued meanwhile.
    let first = hook.next().await;
    hook.open();
    let stats = alerts.shutdown(Duration::from_secs(60)).await;
    let reports = collector.await.unwrap();

    let mut bodies = vec![first];
    while let Ok(r) = hook.rx.try_recv() {
        bodies.push(r);
    }
    let mut received_keys = HashSet::new();
    for b in &bodies {
        let v: Value = serde_json::from_slice(&b.body).unwrap();
        assert!(
            v["alerts"].as_array().unwrap().len() <= 20,
            "max_alerts caps every body"
        );
        for a in v["alerts"].as_array().unwrap() {
            received_keys.insert(a["key"].as_str().unwrap().to_owned());
        }
        for k in v["omitted_keys"].as_array().unwrap() {
            received_keys.insert(k.as_str().unwrap().to_owned());
        }
    }
    let delivered: Vec<_> = reports
        .iter()
        .filter(|r| r.outcome == DeliveryOutcome::Delivered)
        .collect();
    let coalesced: Vec<_> = reports
        .iter()
        .filter(|r| r.outcome == DeliveryOutcome::Coalesced)
        .collect();
    assert_eq!(stats.failed, 0, "nothing failed");
    assert_eq!(
        bodies.len(),
        delivered.len(),
        "one request per delivered report"
    );
    assert_eq!(received_keys, all, "every key reached the receiver");
    let report_keys: HashSet<String> = delivered
        .iter()
        .flat_map(|r| r.keys.iter().cloned())
        .collect();
    assert_eq!(report_keys, all, "and the delivery reports say so");
    // Hundreds of group notifications went through a queue of 16 groups plus a digest.
    assert!(
        stats.max_queue_depth <= 17,
        "queue depth {}",
        stats.max_queue_depth
    );
    assert!(
        delivered.len() < 500,
        "fewer requests than deployments: {}",
        delivered.len()
    );
    assert!(!coalesced.is_empty() && stats.coalesced as usize == coalesced.len());
    assert!(
        coalesced
            .iter()
            .all(|r| r.coalesced_into.is_some() && !r.keys.is_empty())
    );
    assert!(
        coalesced
            .iter()
            .flat_map(|r| r.keys.iter())
            .all(|k| all.contains(k))
    );
    assert_eq!((stats.fired, stats.deduplicated), (10_000, 0));
}

// ---------------------------------------------------------------- secrets

#[tokio::test] // current thread: every task logs to this thread's subscriber
async fn secrets_never_reach_logs_errors_or_debug() {
    let logs = cased_tests::CapturedLogs::new();
    let _guard = tracing::subscriber::set_default(logs.subscriber());

    let mut slack = Receiver::start(vec![
        Reply::Status(500, vec![], "oops"),
        Reply::Status(404, vec![], "no_team"),
    ])
    .await;
    let mut hook = Receiver::start(vec![Reply::Status(401, vec![], "bad signature")]).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let secrets = [
        "SLACKtok3nPART",
        "whsec_TOPsecret",
        "HDRt0ken",
        "SMTPpa55word",
    ];
    let cfg = config(json!({
        "channels": [
            {"name": "ops", "type": "slack", "webhook_url": slack.url("/services/T0/B0/SLACKtok3nPART")},
            {"name": "hooks", "type": "webhook", "url": hook.url("/in"), "secret": "whsec_TOPsecret",
             "headers": {"x-api-key": "HDRt0ken"}},
            {"name": "mail", "type": "email", "host": "127.0.0.1", "port": closed, "tls": "none",
             "username": "u", "password": "SMTPpa55word", "from": "a@example.com", "to": ["b@example.com"],
             "delivery": {"max_retries": 1, "initial_backoff": "10ms", "max_backoff": "10ms", "timeout": "2s"}}
        ],
        "routes": [{"channels": ["ops", "hooks", "mail"], "group_wait": "0s"}],
        "delivery": fast_delivery()
    }));
    let alerts = AlertManager::new(cfg.clone()).unwrap();
    let mut deliveries = alerts.deliveries();
    alerts.fire(alert(Severity::Critical, "x")).unwrap();
    slack.next().await;
    hook.next().await;
    let mut finals = Vec::new();
    while finals.len() < 3 {
        finals.push(next_final(&mut deliveries).await);
    }
    assert!(
        finals.iter().all(|r| r.outcome == DeliveryOutcome::Failed),
        "{finals:?}"
    );
    alerts.shutdown(Duration::from_secs(5)).await;

    let logs = logs.contents();
    assert!(
        logs.contains("notification not delivered"),
        "the logs were captured:\n{logs}"
    );
    assert!(logs.contains("retrying notification"), "{logs}");
    let mut shown = vec![
        logs,
        format!("{cfg:?}"),
        serde_json::to_string(&cfg).unwrap(),
        format!("{alerts:?}"),
    ];
    shown.extend(finals.iter().map(|r| format!("{r:?}")));
    shown.extend(
        alerts
            .failures()
            .iter()
            .map(|r| serde_json::to_string(&**r).unwrap()),
    );
    for text in &shown {
        for s in secrets {
            assert!(!text.contains(s), "{s} leaked into:\n{text}");
        }
    }
    // A missing secret variable names the variable, not a value.
    let e = AlertManager::new(config(json!({
        "channels": [{"name": "ops", "type": "slack", "webhook_url_env": "CASED_TEST_UNSET_SLACK_URL"}]
    })))
    .unwrap_err();
    assert_eq!(e.field_errors()[0].field, "channels[0].webhook_url_env");
    assert!(e.to_string().contains("CASED_TEST_UNSET_SLACK_URL"), "{e}");
}

// ---------------------------------------------------------------- routing under the paused clock

type Seen = mpsc::UnboundedReceiver<(String, Arc<Notification>, Instant)>;

/// A manager whose channels are in-process notifiers recording (channel, notification, time).
fn recording(cfg: Value, channels: &[&str]) -> (AlertManager, Seen) {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut b = AlertManager::builder(config(cfg));
    for name in channels {
        let tx = tx.clone();
        let name = (*name).to_owned();
        let n = name.clone();
        b = b.notifier(
            name,
            Arc::new(FnNotifier::new(n.clone(), move |note| {
                let _ = tx.send((n.clone(), note, Instant::now()));
                async { Ok(()) }
            })),
        );
    }
    (b.build().unwrap(), rx)
}

async fn seen(rx: &mut Seen) -> (String, Arc<Notification>, Instant) {
    tokio::time::timeout(Duration::from_secs(24 * 3600), rx.recv())
        .await
        .expect("a notification")
        .unwrap()
}

async fn nothing_within(rx: &mut Seen, d: Duration) {
    if let Ok(Some((c, n, _))) = tokio::time::timeout(d, rx.recv()).await {
        panic!("unexpected notification to {c}: {}", n.headline());
    }
}

fn titles(n: &Notification) -> Vec<(&str, AlertState)> {
    n.alerts
        .iter()
        .map(|a| (a.title.as_str(), a.state))
        .collect()
}

fn alert_in(severity: Severity, title: &str, env: Option<&str>, deploy: &str) -> Alert {
    let mut b = DeploymentEvent::builder("Deploy").correlation_id(deploy);
    if let Some(e) = env {
        b = b.environment(e);
    }
    Alert::builder(severity, title)
        .event(&b.build().unwrap())
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn the_routing_table_filters_by_severity_and_environment() {
    let (alerts, mut rx) = recording(
        json!({
            "channels": [{"name": "all", "type": "custom"}, {"name": "prod-warn", "type": "custom"},
                         {"name": "crit", "type": "custom"}],
            "routes": [
                {"channels": ["all"], "group_wait": "1s"},
                {"channels": ["prod-warn"], "min_severity": "warning", "environments": ["production"], "group_wait": "1s"},
                {"channels": ["crit"], "min_severity": "critical", "group_wait": "1s"}
            ]
        }),
        &["all", "prod-warn", "crit"],
    );
    let cases = [
        (Severity::Info, Some("production"), vec!["all"]),
        (
            Severity::Warning,
            Some("production"),
            vec!["all", "prod-warn"],
        ),
        (Severity::Warning, Some("staging"), vec!["all"]),
        (Severity::Warning, None, vec!["all"]),
        (Severity::Critical, Some("staging"), vec!["all", "crit"]),
        (
            Severity::Emergency,
            Some("production"),
            vec!["all", "crit", "prod-warn"],
        ),
    ];
    for (i, (sev, env, want)) in cases.into_iter().enumerate() {
        alerts
            .fire(alert_in(sev, "x", env, &format!("d{i}")))
            .unwrap();
        let mut got = Vec::new();
        for _ in 0..want.len() {
            got.push(seen(&mut rx).await.0);
        }
        got.sort();
        assert_eq!(got, want, "case {i}: {sev} in {env:?}");
        nothing_within(&mut rx, Duration::from_secs(10)).await;
    }
    alerts.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn duplicates_are_dropped_within_the_repeat_interval_and_repeated_after_it() {
    let (alerts, mut rx) = recording(
        json!({"channels": [{"name": "c", "type": "custom"}],
               "routes": [{"channels": ["c"], "group_wait": "30s", "group_interval": "5m", "repeat_interval": "1h"}]}),
        &["c"],
    );
    let t0 = Instant::now();
    alerts
        .fire(alert_in(Severity::Critical, "down", None, "d"))
        .unwrap();
    let (_, n, at) = seen(&mut rx).await;
    assert_eq!(
        (at - t0, titles(&n)),
        (Duration::from_secs(30), vec![("down", AlertState::Firing)])
    );
    tokio::time::sleep(Duration::from_secs(60)).await;
    alerts
        .fire(alert_in(Severity::Critical, "down", None, "d"))
        .unwrap();
    alerts
        .fire(alert_in(Severity::Warning, "down", None, "d"))
        .unwrap();
    // Nothing until the repeat interval after the first message...
    let (_, n, at) = seen(&mut rx).await;
    assert_eq!(
        at - t0,
        Duration::from_secs(30 + 3600),
        "repeated after the repeat interval, not before"
    );
    assert_eq!(
        n.alerts[0].severity,
        Severity::Critical,
        "a lower duplicate does not lower the alert"
    );
    assert_eq!(alerts.stats().deduplicated, 2);
    // ...and a raised severity is a change, told after the group interval.
    alerts
        .fire(alert_in(Severity::Emergency, "down", None, "d"))
        .unwrap();
    let (_, n, at) = seen(&mut rx).await;
    assert_eq!(
        (at - t0, n.severity),
        (Duration::from_secs(30 + 3600 + 300), Severity::Emergency)
    );
    alerts.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn one_message_per_group_wait_per_deployment() {
    let (alerts, mut rx) = recording(
        json!({"channels": [{"name": "c", "type": "custom"}],
               "routes": [{"channels": ["c"], "group_wait": "30s", "group_interval": "2m"}]}),
        &["c"],
    );
    let t0 = Instant::now();
    for i in 0..5 {
        alerts
            .fire(alert_in(
                Severity::Warning,
                &format!("finding {i}"),
                None,
                "d1",
            ))
            .unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    alerts
        .fire(alert_in(Severity::Critical, "other deploy", None, "d2"))
        .unwrap();
    let (_, n, at) = seen(&mut rx).await;
    assert_eq!(
        (at - t0, n.group_key.as_str(), n.alerts.len()),
        (Duration::from_secs(30), "d1", 5)
    );
    let (_, n, at) = seen(&mut rx).await;
    assert_eq!(
        (at - t0, n.group_key.as_str(), n.alerts.len()),
        (Duration::from_secs(55), "d2", 1)
    );
    // A new finding in d1 waits for the group interval and comes with the others.
    alerts
        .fire(alert_in(Severity::Warning, "finding 5", None, "d1"))
        .unwrap();
    let (_, n, at) = seen(&mut rx).await;
    assert_eq!((at - t0, n.alerts.len()), (Duration::from_secs(150), 6));
    assert_eq!(alerts.stats().notifications, 3);
    alerts.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_critical_alert_that_stays_firing_escalates_to_the_second_route_as_emergency() {
    let (alerts, mut rx) = recording(
        json!({
            "channels": [{"name": "team", "type": "custom"}, {"name": "pager", "type": "custom"}],
            "routes": [
                {"name": "main", "channels": ["team"], "group_wait": "10s", "repeat_interval": "24h",
                 "escalation": {"after": "15m", "route": "page", "raise_to_emergency": true}},
                {"name": "page", "channels": ["pager"], "escalation_only": true, "group_wait": "0s", "repeat_interval": "24h"}
            ]
        }),
        &["team", "pager"],
    );
    let t0 = Instant::now();
    alerts
        .fire(alert_in(Severity::Critical, "checkout down", None, "d"))
        .unwrap();
    alerts
        .fire(alert_in(Severity::Warning, "slow", None, "d"))
        .unwrap();
    let (c, _, at) = seen(&mut rx).await;
    assert_eq!((c.as_str(), at - t0), ("team", Duration::from_secs(10)));
    let (c, n, at) = seen(&mut rx).await;
    assert_eq!(
        (c.as_str(), at - t0),
        ("pager", Duration::from_secs(15 * 60))
    );
    assert!(n.escalated && n.alerts[0].escalated);
    assert_eq!(
        (n.severity, titles(&n)),
        (
            Severity::Emergency,
            vec![("checkout down", AlertState::Firing)]
        )
    );
    nothing_within(&mut rx, Duration::from_secs(3 * 3600)).await;
    assert_eq!(alerts.stats().escalated, 1);

    // Resolved before its delay: no escalation.
    let t1 = Instant::now();
    alerts
        .fire(alert_in(Severity::Critical, "db down", None, "e"))
        .unwrap();
    let (c, _, at) = seen(&mut rx).await;
    assert_eq!((c.as_str(), at - t1), ("team", Duration::from_secs(10)));
    tokio::time::sleep(Duration::from_secs(60)).await;
    alerts.resolve("e/db down").unwrap();
    nothing_within(&mut rx, Duration::from_secs(3600)).await;
    assert_eq!(alerts.stats().escalated, 1);
    alerts.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn resolved_messages_go_only_to_channels_that_opt_in() {
    let (alerts, mut rx) = recording(
        json!({
            "channels": [{"name": "quiet", "type": "custom"}, {"name": "tell-me", "type": "custom", "send_resolved": true}],
            "routes": [{"channels": ["quiet", "tell-me"], "group_wait": "10s", "group_interval": "1m"}]
        }),
        &["quiet", "tell-me"],
    );
    let t0 = Instant::now();
    alerts
        .fire(alert_in(Severity::Critical, "down", None, "d"))
        .unwrap();
    alerts
        .fire(alert_in(Severity::Warning, "slow", None, "d"))
        .unwrap();
    let mut first: Vec<String> = vec![seen(&mut rx).await.0, seen(&mut rx).await.0];
    first.sort();
    assert_eq!(first, ["quiet", "tell-me"]);
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(alerts.resolve("d/down").unwrap(), 1);
    // `quiet` gets the group without the resolved alert; `tell-me` sees it resolved.
    let mut got = [seen(&mut rx).await, seen(&mut rx).await];
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got[0].2 - t0,
        Duration::from_secs(70),
        "one group interval after the last message"
    );
    assert_eq!(
        (got[0].0.as_str(), titles(&got[0].1)),
        ("quiet", vec![("slow", AlertState::Firing)])
    );
    assert_eq!(
        (got[1].0.as_str(), titles(&got[1].1)),
        (
            "tell-me",
            vec![("slow", AlertState::Firing), ("down", AlertState::Resolved)]
        )
    );
    // The whole deployment clears: only `tell-me` hears of it.
    alerts.resolve_group("d").unwrap();
    let (c, n, _) = seen(&mut rx).await;
    assert_eq!(
        (c.as_str(), n.status, titles(&n)),
        (
            "tell-me",
            AlertState::Resolved,
            vec![("slow", AlertState::Resolved)]
        )
    );
    nothing_within(&mut rx, Duration::from_secs(24 * 3600)).await;
    assert!(alerts.firing().is_empty());
    alerts.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_sends_what_waits_and_then_refuses_alerts() {
    let (alerts, mut rx) = recording(
        json!({"channels": [{"name": "c", "type": "custom"}], "routes": [{"channels": ["c"], "group_wait": "1h"}]}),
        &["c"],
    );
    let mut d = alerts.deliveries();
    alerts
        .fire(alert_in(Severity::Warning, "pending", None, "d"))
        .unwrap();
    let stats = alerts.shutdown(Duration::from_secs(5)).await;
    let (_, n, _) = seen(&mut rx).await;
    assert_eq!(titles(&n), [("pending", AlertState::Firing)]);
    assert_eq!(stats.delivered, 1);
    assert_eq!(
        next_report(&mut d).await.outcome,
        DeliveryOutcome::Delivered
    );
    assert!(
        d.next().await.is_none(),
        "the delivery stream ends after shutdown"
    );
    let e = alerts
        .fire(alert_in(Severity::Warning, "late", None, "d"))
        .unwrap_err();
    assert_eq!(e.kind().code(), "closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_notifier_is_a_failed_delivery_and_its_channel_lives_on() {
    let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let c = Arc::clone(&calls);
    let alerts = AlertManager::builder(config(json!({
        "channels": [{"name": "c", "type": "custom"}],
        "routes": [{"channels": ["c"], "group_wait": "0s", "group_interval": "10ms"}],
        "delivery": fast_delivery()
    })))
    .notifier(
        "c",
        Arc::new(FnNotifier::new("c", move |_| {
            let first = c.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
            async move {
                assert!(!first, "boom in the notifier");
                Ok(())
            }
        })),
    )
    .build()
    .unwrap();
    let mut deliveries = alerts.deliveries();
    alerts.fire(alert(Severity::Critical, "first")).unwrap();
    let r = next_final(&mut deliveries).await;
    assert_eq!(
        (r.outcome, r.attempts),
        (DeliveryOutcome::Failed, 1),
        "{r:?}"
    );
    let error = r.error.as_deref().unwrap();
    assert!(
        error.contains("the notifier panicked") && error.contains("boom in the notifier"),
        "{error}"
    );
    assert_eq!(alerts.failures().len(), 1);
    alerts.fire(alert(Severity::Warning, "second")).unwrap();
    let r = next_final(&mut deliveries).await;
    assert_eq!(r.outcome, DeliveryOutcome::Delivered, "{r:?}");
    alerts.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_final_verdict_alert_failure_is_in_the_report() {
    let hook = Receiver::start(vec![Reply::Status(500, vec![], "down"); 20]).await;
    let config = cased_core::MonitorConfig::from_value(json!({
        "schedule": {"intervals": ["20ms"], "max_duration": "20s"},
        "alerts": {
            "channels": [{"name": "hooks", "type": "webhook", "url": hook.url("/in"), "secret": "k"}],
            "routes": [{"channels": ["hooks"], "group_wait": "10ms"}],
            "delivery": {"max_retries": 2, "initial_backoff": "10ms", "max_backoff": "20ms"}
        }
    }))
    .unwrap();
    let monitor = cased_core::Monitor::builder(config)
        .check(cased_core::FnCheck::new("web", || async {
            cased_core::CheckOutcome::fail("HTTP 503")
        }))
        .build()
        .unwrap();
    let report = monitor.run(event()).await.unwrap();
    assert_eq!(report.verdict, cased_core::Verdict::Unhealthy);
    assert_eq!(report.alerts.len(), 1, "{:?}", report.alerts);
    assert_eq!(
        report.alert_failures.len(),
        1,
        "{:?}",
        report.alert_failures
    );
    let failure = serde_json::to_value(&report.alert_failures[0]).unwrap();
    assert!(failure.to_string().contains("500"), "{failure}");
}

/// A receiver slower than the attempt timeout once (it may well have processed that first
/// request): the retry carries the same notification id, and the delivery that then succeeds
/// is reported as "timed out, retried" — delivered, never failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_then_delivered_webhook_is_reported_timed_out_retried_not_failed() {
    let mut hook = Receiver::start(vec![Reply::Hang]).await;
    let alerts = AlertManager::new(config(json!({
        "channels": [{"name": "hooks", "type": "webhook", "url": hook.url("/in"), "secret": "k"}],
        "routes": [{"channels": ["hooks"], "group_wait": "0s"}],
        "delivery": {"timeout": "300ms", "max_retries": 3, "initial_backoff": "10ms", "max_backoff": "20ms"}
    })))
    .unwrap();
    let mut deliveries = alerts.deliveries();
    alerts.fire(alert(Severity::Critical, "x")).unwrap();
    let (first, second) = (hook.next().await, hook.next().await);
    assert_eq!(
        header(&first, NOTIFICATION_ID_HEADER),
        header(&second, NOTIFICATION_ID_HEADER),
        "a retry carries the same notification id, so the receiver can drop the duplicate"
    );
    let done = next_final(&mut deliveries).await;
    assert_eq!(
        (done.outcome, done.attempts),
        (DeliveryOutcome::Delivered, 2)
    );
    assert_eq!(
        header(&second, NOTIFICATION_ID_HEADER),
        done.notification_id
    );
    let note = done.retried.as_deref().expect("a retried note");
    assert!(note.starts_with("timed out, retried"), "{note}");
    assert!(note.contains("no answer within 300ms"), "{note}");
    assert!(done.error.is_none(), "{done:?}");
    let stats = alerts.stats();
    assert_eq!(
        (stats.delivered, stats.delivered_after_retry, stats.failed),
        (1, 1, 0)
    );
    assert!(alerts.failures().is_empty());
    assert_eq!(alerts.retried().len(), 1);
    alerts.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_then_delivered_alert_is_in_the_report_as_retried_not_failed() {
    let hook = Receiver::start(vec![Reply::Hang]).await;
    let config = cased_core::MonitorConfig::from_value(json!({
        "schedule": {"intervals": ["20ms"], "max_duration": "20s"},
        "alerts": {
            "channels": [{"name": "hooks", "type": "webhook", "url": hook.url("/in"), "secret": "k"}],
            "routes": [{"channels": ["hooks"], "group_wait": "10ms"}],
            "delivery": {"timeout": "300ms", "max_retries": 2, "initial_backoff": "10ms", "max_backoff": "20ms"}
        }
    }))
    .unwrap();
    let monitor = cased_core::Monitor::builder(config)
        .check(cased_core::FnCheck::new("web", || async {
            cased_core::CheckOutcome::fail("HTTP 503")
        }))
        .build()
        .unwrap();
    let report = monitor.run(event()).await.unwrap();
    assert_eq!(report.verdict, cased_core::Verdict::Unhealthy);
    assert!(
        report.alert_failures.is_empty(),
        "{:?}",
        report.alert_failures
    );
    assert_eq!(report.alert_retries.len(), 1, "{:?}", report.alert_retries);
    assert!(
        report.alert_retries[0]
            .note
            .starts_with("timed out, retried"),
        "{:?}",
        report.alert_retries[0]
    );
}
