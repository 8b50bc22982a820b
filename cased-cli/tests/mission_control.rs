//! Mission Control in a real headless browser: Debian's `chromium` (from `CASED_TEST_CHROMIUM`,
//! else `chromium` on the PATH; `make test` installs it through `.ci/chromium.sh`), driven over
//! the DevTools protocol with a minimal WebSocket client written here. A missing browser fails
//! the test.
//!
//! Waits happen inside the page: an expression re-checked on every DOM mutation until it holds
//! (or a bound passes), never a sleep. Screenshots are written to `CARGO_TARGET_TMPDIR`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine;
use cased_core::{Client, DeploymentEvent, DeploymentStatus};
use serde_json::{Value, json};

const PATIENCE: Duration = Duration::from_secs(30);

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cased-mc-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A child process killed when dropped, and the first stderr line containing `marker`.
struct Proc {
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_waiting_for(mut cmd: Command, marker: &'static str) -> (Proc, String) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = String::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split(marker).nth(1) {
                let _ = tx.send(Ok(rest.trim().to_owned()));
            }
            seen.push_str(&line);
            seen.push('\n');
        }
        let _ = tx.send(Err(seen));
    });
    match rx.recv_timeout(PATIENCE) {
        Ok(Ok(found)) => (Proc { child }, found),
        Ok(Err(log)) => panic!("{marker:?} never printed:\n{log}"),
        Err(_) => panic!("{marker:?} not printed within {PATIENCE:?}"),
    }
}

fn serve(dir: &Path, args: &[&str]) -> (Proc, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cased"));
    cmd.env_clear()
        .current_dir(dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--store"])
        .arg(dir.join(".cased"))
        .args(args);
    spawn_waiting_for(cmd, "listening on ")
}

fn chromium_bin() -> String {
    let bin = std::env::var("CASED_TEST_CHROMIUM").unwrap_or_else(|_| "chromium".to_owned());
    let found = Command::new(&bin)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "the Mission Control test needs Debian's `chromium` ({bin:?} not found): run `bash .ci/chromium.sh`"
    );
    bin
}

/// Headless Chromium; returns it and its DevTools `host:port`.
fn chromium(dir: &Path) -> (Proc, String) {
    let mut cmd = Command::new(chromium_bin());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--remote-debugging-port=0",
        "--window-size=1280,900",
    ])
    .arg(format!(
        "--user-data-dir={}",
        dir.join("chromium").display()
    ))
    .arg("about:blank");
    let (proc, ws) = spawn_waiting_for(cmd, "DevTools listening on ");
    let host = ws
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    (proc, host)
}

/// A DevTools session on one page, over a WebSocket (RFC 6455, client side, text frames).
struct Page {
    stream: TcpStream,
    next_id: u64,
}

impl Page {
    /// Opens a new tab at `url`.
    async fn open(devtools: &str, url: &str) -> Self {
        let target: Value = reqwest::Client::new()
            .put(format!("http://{devtools}/json/new?about:blank"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ws = target["webSocketDebuggerUrl"].as_str().unwrap();
        let path = &ws[ws.find("/devtools/").unwrap()..];
        let mut stream = TcpStream::connect(devtools).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {devtools}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: Y2FzZWQtbWlzc2lvbi1jdGw=\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let mut page = Self { stream, next_id: 0 };
        page.call("Page.enable", json!({}));
        page.navigate(url);
        page
    }

    fn send(&mut self, text: &str) {
        let payload = text.as_bytes();
        let mut frame = vec![0x81u8];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n < 65536 => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mask = [0x5a, 0x17, 0xc3, 0x8e];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&frame).unwrap();
    }

    fn receive(&mut self) -> String {
        let mut message = Vec::new();
        loop {
            let mut h = [0u8; 2];
            self.stream.read_exact(&mut h).unwrap();
            let (fin, opcode) = (h[0] & 0x80 != 0, h[0] & 0x0f);
            let len = match h[1] & 0x7f {
                126 => {
                    let mut b = [0u8; 2];
                    self.stream.read_exact(&mut b).unwrap();
                    u64::from(u16::from_be_bytes(b))
                }
                127 => {
                    let mut b = [0u8; 8];
                    self.stream.read_exact(&mut b).unwrap();
                    u64::from_be_bytes(b)
                }
                n => u64::from(n),
            };
            let mut payload = vec![0u8; len as usize];
            self.stream.read_exact(&mut payload).unwrap();
            assert_ne!(opcode, 8, "the browser closed the DevTools connection");
            if opcode == 9 || opcode == 10 {
                continue; // ping / pong
            }
            message.extend_from_slice(&payload);
            if fin {
                return String::from_utf8(message).unwrap();
            }
        }
    }

    /// Calls a DevTools method and returns its result (events in between are skipped).
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({"id": id, "method": method, "params": params}).to_string());
        loop {
            let m: Value = serde_json::from_str(&self.receive()).unwrap();
            if m["id"] == json!(id) {
                assert!(m.get("error").is_none(), "{method}: {m}");
                return m["result"].clone();
            }
        }
    }

    /// Evaluates `expression` in the page (awaiting a promise); its value.
    fn eval(&mut self, expression: &str) -> Value {
        let r = tokio::task::block_in_place(|| {
            self.call(
                "Runtime.evaluate",
                json!({"expression": expression, "awaitPromise": true, "returnByValue": true}),
            )
        });
        assert!(
            r.get("exceptionDetails").is_none(),
            "{expression}: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    /// Waits until `condition` (a JS expression) is truthy, re-checking on every DOM change;
    /// its value.
    fn wait_for(&mut self, condition: &str) -> Value {
        let ms = PATIENCE.as_millis();
        self.eval(&format!(
            r#"new Promise((resolve, reject) => {{
                const check = () => {{ try {{ return ({condition}); }} catch (_) {{ return null; }} }};
                const now = check();
                if (now) return resolve(now);
                const obs = new MutationObserver(() => {{
                    const v = check();
                    if (v) {{ obs.disconnect(); clearTimeout(t); resolve(v); }}
                }});
                obs.observe(document, {{subtree: true, childList: true, characterData: true, attributes: true}});
                const t = setTimeout(() => {{ obs.disconnect(); reject(new Error("not within {ms} ms: " + {cond:?})); }}, {ms});
            }})"#,
            cond = condition
        ))
    }

    /// Loads `url` and returns once its load event fired.
    fn navigate(&mut self, url: &str) {
        tokio::task::block_in_place(|| {
            self.call("Page.navigate", json!({"url": url}));
            loop {
                let m: Value = serde_json::from_str(&self.receive()).unwrap();
                if m["method"] == "Page.loadEventFired" {
                    break;
                }
            }
        });
    }

    /// Saves a PNG screenshot under `CARGO_TARGET_TMPDIR`; its path.
    fn screenshot(&mut self, name: &str) -> PathBuf {
        let shot = tokio::task::block_in_place(|| {
            self.call("Page.captureScreenshot", json!({"format": "png"}))
        });
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        let path =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("mission-control-{name}.png"));
        std::fs::write(&path, png).unwrap();
        eprintln!("screenshot: {}", path.display());
        path
    }
}

/// A service on loopback answering 200 on `/ok`.
async fn target() -> String {
    let app = axum::Router::new().route("/ok", axum::routing::get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn client(base: &str, key: &str) -> Client {
    Client::builder()
        .base_url(base)
        .api_key(key)
        .build()
        .unwrap()
}

/// Strings that would run script if a page put them in as HTML.
const XSS: [&str; 4] = [
    "<img src=x onerror=\"window.__xss='request'\">",
    "<script>window.__xss='message'</script>",
    // No whitespace in these two: the event refuses it in `ref` and the environment.
    "\"><svg/onload=window.__xss='ref'>",
    "</td><img/src=x/onerror=window.__xss='env'>",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_live_board_shows_deployments_as_they_come_and_escapes_every_field() {
    let dir = temp_dir("board");
    let target = target().await;
    std::fs::write(
        dir.join("cased.toml"),
        format!(
            // acme/pay: every latency is over its threshold, so it is unhealthy with a finding
            // and its rollback hook runs.
            "[[services]]\nname = \"pay\"\nrepository = \"acme/pay\"\n\
             [services.schedule]\nintervals = [\"100ms\"]\ncooldown = \"600ms\"\nmax_duration = \"20s\"\n\
             [services.verdict]\nmin_samples = 3\n\
             [services.rollback]\ncommand = \"true\"\n\
             [[services.checks]]\nname = \"web\"\ntype = \"http\"\nurl = \"{target}/ok\"\n\
             [[services.detectors]]\ntype = \"threshold\"\nmetric = \"web.latency_ms\"\nupper = 0.001\ncritical = true\n\n\
             [[services]]\nname = \"shop\"\nrepository = \"acme/*\"\n\
             [services.schedule]\nintervals = [\"150ms\"]\ncooldown = \"1500ms\"\nmax_duration = \"20s\"\n\
             [services.verdict]\nmin_samples = 3\n\
             [[services.checks]]\nname = \"web\"\ntype = \"http\"\nurl = \"{target}/ok\"\n"
        ),
    )
    .unwrap();
    let (_server, base) = serve(&dir, &["--no-auth"]);
    let (_browser, devtools) = chromium(&dir);
    let c = client(&base, "unused");
    // One deployment before the page loads.
    let first = DeploymentEvent::builder("Deploy v1")
        .repository("acme/shop")
        .environment("production")
        .commit_sha("1111111")
        .status(DeploymentStatus::Pending)
        .build()
        .unwrap();
    c.create_deployment(&first).await.unwrap();

    let mut page = Page::open(&devtools, &format!("{base}/")).await;
    page.wait_for("document.querySelectorAll('#rows tr').length === 1");
    // A mark that a reload would wipe.
    page.eval("window.__mark = 'same page'; true");

    // Posted while the page is open: it appears and its verdict follows the ticks, live.
    let answer = c
        .create_deployment(
            &DeploymentEvent::builder("Deploy v2")
                .repository("acme/shop")
                .environment("production")
                .commit_sha("2222222")
                .status(DeploymentStatus::Success)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let id = answer.body.unwrap()["id"].as_str().unwrap().to_owned();
    let row = format!("document.querySelector('#rows tr[data-id=\"{id}\"]')");
    // Seen while it runs: ticks counting, the live verdict so far...
    page.wait_for(&format!(
        "{row} && Number({row}.querySelector('.tick').textContent) >= 1 \
         && {row}.querySelector('.state').textContent.startsWith('monitoring') \
         && {row}.querySelector('.verdict').textContent.endsWith('so far')"
    ));
    page.screenshot("board-live");
    // ... then the final verdict.
    page.wait_for(&format!(
        "{row}.querySelector('.verdict').textContent === 'healthy' && {row}.querySelector('.state').textContent === 'finished'"
    ));
    assert_eq!(
        page.eval("window.__mark"),
        json!("same page"),
        "the page reloaded"
    );
    // Newest first.
    assert_eq!(
        page.eval("document.querySelector('#rows tr').dataset.id"),
        json!(id)
    );

    // Every user-provided field carries a payload; none runs, each shows as text.
    let hostile = DeploymentEvent::builder(XSS[0])
        .repository("acme/shop")
        .commit_message(XSS[1])
        .git_ref(XSS[2])
        .environment(XSS[3])
        .external_url("https://ci.example.com/run?x=\"><script>window.__xss='url'</script>")
        .metadata_entry("correlation_id", XSS[0])
        .status(DeploymentStatus::Pending)
        .build()
        .unwrap();
    let bad = c.create_deployment(&hostile).await.unwrap();
    let bad_id = bad.body.unwrap()["id"].as_str().unwrap().to_owned();
    let bad_row = format!("document.querySelector('#rows tr[data-id=\"{bad_id}\"]')");
    page.wait_for(&bad_row);
    assert_eq!(
        page.eval(&format!("{bad_row}.querySelector('.request').textContent")),
        json!(XSS[0])
    );
    assert_eq!(
        page.eval(&format!(
            "{bad_row}.querySelector('.environment').textContent"
        )),
        json!(XSS[3])
    );
    assert_eq!(
        page.eval("document.querySelectorAll('#rows img, #rows script, #rows svg').length"),
        json!(0)
    );
    assert_eq!(page.eval("window.__xss === undefined"), json!(true));
    page.screenshot("board-escaped");

    // An incident with payloads in every field, correlated to it by its correlation id.
    let answer: Value = reqwest::Client::new()
        .post(format!("{base}/api/v1/incidents"))
        .json(&json!({
            "title": XSS[1], "service": XSS[2], "environment": XSS[3], "repository": "acme/shop",
            "correlation_id": XSS[0],
            "external_url": "https://status.example.com/?q=\"><script>window.__xss='incident'</script>",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["rule"], "correlation_id", "{answer}");
    assert_eq!(answer["deployments"][0]["id"], json!(bad_id), "{answer}");

    // The hostile deployment's own page: the same strings, as text.
    page.navigate(&format!("{base}/deployments/{bad_id}"));
    page.wait_for("document.getElementById('detail-title').textContent.length > 0");
    assert_eq!(
        page.eval("document.getElementById('detail-title').textContent"),
        json!(XSS[0])
    );
    let fields = page.eval("document.getElementById('detail-fields').textContent");
    for s in &XSS[1..] {
        assert!(
            fields.as_str().unwrap().contains(s),
            "{s} not shown: {fields}"
        );
    }
    page.wait_for("document.querySelector('#incidents .incident')");
    assert_eq!(
        page.eval("document.querySelector('#incidents .incident-title').textContent"),
        json!(XSS[1])
    );
    let incident = page.eval("document.querySelector('#incidents .incident').textContent");
    for s in [XSS[2], XSS[3], "same correlation id"] {
        assert!(
            incident.as_str().unwrap().contains(s),
            "{s} not shown: {incident}"
        );
    }
    assert_eq!(
        page.eval("document.querySelectorAll('#detail img, #detail script, #detail svg').length"),
        json!(0)
    );
    assert_eq!(page.eval("window.__xss === undefined"), json!(true));
    page.screenshot("deployment-escaped");
    page.eval("document.getElementById('incidents').scrollIntoView(); true");
    page.screenshot("deployment-incident");

    // The healthy deployment's page: its ticks and its report.
    page.navigate(&format!("{base}/deployments/{id}"));
    page.wait_for("document.querySelectorAll('#ticks tr').length >= 3 && !document.getElementById('report').hidden");
    assert!(
        page.eval("document.getElementById('report').srcdoc")
            .as_str()
            .unwrap()
            .contains("<svg"),
        "the report with its charts"
    );
    page.screenshot("deployment");
    page.eval("document.getElementById('report').scrollIntoView(); true");
    page.screenshot("deployment-report");
    assert_eq!(
        page.eval("document.querySelectorAll('#charts svg.chart').length > 0"),
        json!(true),
        "the charts on the page itself"
    );

    // An unhealthy deployment's page: the chart, the finding with its evidence sentence, the
    // rollback's outcome; the commit links to its page on the forge of the pipeline's URL.
    let pay = c
        .create_deployment(
            &DeploymentEvent::builder("Deploy pay v9")
                .repository("acme/pay")
                .environment("production")
                .commit_sha("9999999")
                .external_url("https://github.com/acme/pay/actions/runs/1")
                .status(DeploymentStatus::Success)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let pay_id = pay.body.unwrap()["id"].as_str().unwrap().to_owned();
    page.navigate(&format!("{base}/deployments/{pay_id}"));
    page.wait_for(
        "document.querySelector('#charts svg.chart[data-metric=\"web.latency_ms\"]') \
         && document.querySelector('#findings .finding')",
    );
    let finding = page.eval("document.querySelector('#findings .finding').textContent");
    assert!(
        finding.as_str().unwrap().contains("web.latency_ms"),
        "{finding}"
    );
    assert_eq!(
        page.eval("document.querySelector('#detail-fields .badge').textContent"),
        json!("unhealthy")
    );
    let rollback = page.eval("document.getElementById('rollback').textContent");
    assert!(
        rollback.as_str().unwrap().starts_with("Rolled back"),
        "{rollback}"
    );
    assert_eq!(
        page.eval("document.querySelector('#detail-fields a[href*=\"/commit/\"]').href"),
        json!("https://github.com/acme/pay/commit/9999999")
    );
    assert_eq!(
        page.eval("document.querySelectorAll('#charts script').length"),
        json!(0)
    );
    page.screenshot("deployment-unhealthy");

    // History and trends of acme/pay in production: its one deployment, unhealthy.
    page.navigate(&format!(
        "{base}/trends?repository=acme/pay&environment=production"
    ));
    page.wait_for("document.querySelectorAll('#dora .metric').length === 5");
    assert_ne!(
        page.eval(
            "document.querySelector('#dora [data-metric=\"Time to detect\"] .value').textContent"
        ),
        json!("–")
    );
    // The performance trend: the check's median latency in that deployment.
    assert_eq!(
        page.eval("document.querySelectorAll('#performance-rows td[data-metric]').length"),
        json!(1)
    );
    assert_eq!(
        page.eval("document.querySelector('#dora [data-metric=\"Change failure rate\"] .value').textContent"),
        json!("100 %")
    );
    assert_eq!(
        page.eval("document.querySelectorAll('#timeline .dot.unhealthy').length"),
        json!(1)
    );
    page.screenshot("trends");
    // A hostile environment in the trends page's title, as text.
    page.navigate(&format!(
        "{base}/trends?repository=acme/shop&environment={}",
        XSS[3]
            .replace('<', "%3C")
            .replace('>', "%3E")
            .replace('/', "%2F")
            .replace('\'', "%27")
            .replace('=', "%3D")
    ));
    page.wait_for("document.getElementById('trends-title').textContent.length > 0");
    assert_eq!(
        page.eval("document.getElementById('trends-title').textContent"),
        json!(format!("acme/shop · {}", XSS[3]))
    );
    assert_eq!(
        page.eval("document.querySelectorAll('#trends img, #trends script').length"),
        json!(0)
    );
    assert_eq!(page.eval("window.__xss === undefined"), json!(true));

    // A phone's width: the board fits (the table scrolls inside its box, the page does not).
    tokio::task::block_in_place(|| {
        page.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true}),
        )
    });
    page.navigate(&format!("{base}/"));
    page.wait_for("document.querySelectorAll('#rows tr').length === 4");
    page.screenshot("board-phone");
    assert_eq!(
        page.eval("document.documentElement.scrollWidth <= window.innerWidth"),
        json!(true),
        "the page scrolls sideways at 390 px"
    );
    assert_eq!(
        page.eval(&format!(
            "{row}.querySelector('.verdict').getBoundingClientRect().right <= window.innerWidth"
        )),
        json!(true),
        "the verdict is off screen at 390 px"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_keys_the_page_asks_for_a_read_key_first() {
    let dir = temp_dir("login");
    let keys = |scope: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_cased"))
            .env_clear()
            .args(["keys", "create", "--scope", scope, "--store"])
            .arg(dir.join(".cased"))
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let (ingest, read) = (keys("ingest"), keys("read"));
    let (_server, base) = serve(&dir, &[]);
    let (_browser, devtools) = chromium(&dir);
    client(&base, &ingest)
        .create_deployment(
            &DeploymentEvent::builder("Deploy v7")
                .repository("acme/shop")
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let mut page = Page::open(&devtools, &format!("{base}/")).await;
    page.wait_for("!document.getElementById('login').hidden");
    assert_eq!(
        page.eval("document.getElementById('board').hidden"),
        json!(true)
    );
    // An ingest key is refused with the server's reason.
    page.eval(&format!(
        "document.getElementById('key').value = {ingest:?}; document.getElementById('login-form').requestSubmit(); true"
    ));
    page.wait_for("document.getElementById('login-error').textContent.includes('read scope')");
    page.eval(&format!(
        "document.getElementById('key').value = {read:?}; document.getElementById('login-form').requestSubmit(); true"
    ));
    page.wait_for("document.querySelectorAll('#rows tr').length === 1");
    assert_eq!(
        page.eval("document.querySelector('#rows .request').textContent"),
        json!("Deploy v7")
    );
    page.screenshot("signed-in");
}
