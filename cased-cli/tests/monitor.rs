//! `cased monitor`, `history`, `report`, `check` and `demo` as a user runs them: the real binary,
//! a clean environment, real HTTP servers on loopback and a temporary history per test.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// The `cased` binary with an empty environment.
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
    fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// A fresh temporary directory.
fn temp_dir() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "cased-cli-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An HTTP server on loopback answering every request with `status`; returns its URL.
fn server(status: u16) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/health", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let body = if status < 400 { "ok" } else { "down" };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    url
}

/// A cased.toml with one HTTP check of `url` (or none) on a tiny schedule.
fn config(dir: &Path, url: Option<&str>, extra: &str) -> PathBuf {
    let check = url.map_or(String::new(), |u| {
        format!("[[checks]]\nname = \"web\"\ntype = \"http\"\nurl = \"{u}\"\n")
    });
    let text = format!(
        "[schedule]\nintervals = [\"40ms\"]\ncooldown = \"300ms\"\nmax_duration = \"10s\"\n\n\
         [verdict]\nmin_samples = 2\n{extra}\n{check}"
    );
    let path = dir.join("cased.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn monitor(dir: &Path, config: &Path) -> Command {
    let mut cmd = cased();
    cmd.arg("monitor")
        .arg("--config")
        .arg(config)
        .arg("--history")
        .arg(dir.join("history.db"));
    cmd.args([
        "-m",
        "Deploy v2",
        "--repository",
        "acme/shop",
        "--environment",
        "test",
    ]);
    cmd
}

/// The session id `cased monitor` printed.
fn session_id(out: &str) -> String {
    let line = out
        .lines()
        .find(|l| l.starts_with("session "))
        .expect("a session line");
    line.split_whitespace().nth(1).unwrap().to_owned()
}

#[test]
fn healthy_exits_0_writes_the_step_summary_and_is_in_history() {
    let dir = temp_dir();
    let url = server(200);
    let cfg = config(&dir, Some(&url), "");
    let summary = dir.join("step-summary.md");
    std::fs::write(&summary, "# earlier step\n").unwrap();
    let own = dir.join("summary.md");
    let r = run(monitor(&dir, &cfg)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .arg("--summary")
        .arg(&own));
    r.expect_code(0);
    assert!(r.stdout.contains("verdict healthy"), "{}", r.stdout);
    assert!(
        r.stdout.contains("tick 1 |"),
        "one plain line per update: {}",
        r.stdout
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.starts_with("# earlier step\n"), "appended: {md}");
    assert!(md.contains("healthy"), "{md}");
    assert_eq!(
        std::fs::read_to_string(&own).unwrap().trim(),
        md.trim_start_matches("# earlier step\n").trim()
    );

    let id = session_id(&r.stdout);
    let db = dir.join("history.db");
    let h = run(cased().arg("history").arg("--history").arg(&db));
    h.expect_code(0);
    let row = h
        .stdout
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("{id} listed: {}", h.stdout));
    assert!(
        row.contains("acme/shop") && row.contains("test") && row.contains("healthy"),
        "{row}"
    );
    let other = run(cased()
        .args(["history", "--repository", "other/repo", "--history"])
        .arg(&db));
    assert!(
        !other.expect_code(0).stdout.contains(&id),
        "{}",
        other.stdout
    );
    let stats = run(cased()
        .args([
            "history",
            "stats",
            "--bucket",
            "week",
            "--json",
            "--history",
        ])
        .arg(&db));
    let v: serde_json::Value = serde_json::from_str(&stats.expect_code(0).stdout).unwrap();
    assert_eq!(v["buckets"][0]["healthy"], 1, "{v}");

    let html = dir.join("out/report.html");
    run(cased()
        .args(["report", &id[..10], "--format", "html", "--out"])
        .arg(&html)
        .arg("--history")
        .arg(&db))
    .expect_code(0);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg"), "charts in the page");
    let json = run(cased()
        .args(["report", &id, "--format", "json", "--history"])
        .arg(&db));
    let v: serde_json::Value = serde_json::from_str(&json.expect_code(0).stdout).unwrap();
    assert_eq!(v["verdict"], "healthy");
    run(cased().args(["report", "nope", "--history"]).arg(&db)).expect_code(1);
    run(cased()
        .args(["report", &id, "--format", "pdf", "--history"])
        .arg(&db))
    .expect_code(3);
}

#[test]
fn unhealthy_exits_1() {
    let dir = temp_dir();
    let cfg = config(&dir, Some(&server(503)), "");
    let r = run(&mut monitor(&dir, &cfg));
    r.expect_code(1);
    assert!(r.stdout.contains("verdict: unhealthy"), "{}", r.stdout);
    assert!(r.stdout.contains("HTTP 503"), "{}", r.stdout);
}

/// A target that accepts connections and never answers; returns its URL.
fn hung_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/health", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        // Held open, never answered, until the test process ends.
        let held: Vec<_> = listener.incoming().collect();
        drop(held);
    });
    url
}

#[test]
fn a_detector_on_a_metric_nothing_produces_exits_3_naming_detector_and_metric() {
    let dir = temp_dir();
    let cfg = config(
        &dir,
        Some(&server(200)),
        "[[detectors]]\ntype = \"spike\"\nmetric = \"web.latency\"\nname = \"slow-web\"\n",
    );
    let r = run(&mut monitor(&dir, &cfg));
    r.expect_code(3);
    assert!(r.stderr.contains("detectors[0].metric"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("the \"slow-web\" detector watches \"web.latency\""),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("web.latency_ms"), "{}", r.stderr);
    // No session was started.
    assert!(!r.stdout.contains("session "), "{}", r.stdout);
    // Nothing pushes into `cased monitor`: a `pushed` list (the configuration's, for programs)
    // does not make such a detector acceptable here.
    let cfg = dir.join("pushed.toml");
    std::fs::write(
        &cfg,
        format!(
            "pushed = [\"queue_depth\"]\n\n[schedule]\nintervals = [\"40ms\"]\n\n\
             [[checks]]\nname = \"web\"\ntype = \"http\"\nurl = \"{}\"\n\n\
             [[detectors]]\ntype = \"spike\"\nmetric = \"queue_depth\"\n",
            server(200)
        ),
    )
    .unwrap();
    let r = run(&mut monitor(&dir, &cfg));
    r.expect_code(3);
    assert!(r.stderr.contains("detectors[0].metric"), "{}", r.stderr);
    assert!(r.stderr.contains("\"queue_depth\""), "{}", r.stderr);
}

#[test]
fn a_hung_target_is_unhealthy_exit_1_not_inconclusive() {
    let dir = temp_dir();
    // The check's timeout (300 ms) is longer than the interval (40 ms): it is honoured, and a
    // target that does not answer within it is a failed check, so the deployment is unhealthy.
    let cfg = dir.join("cased.toml");
    std::fs::write(
        &cfg,
        format!(
            "[schedule]\nintervals = [\"40ms\"]\ncooldown = \"300ms\"\nmax_duration = \"10s\"\n\n\
             [[checks]]\nname = \"web\"\ntype = \"http\"\nurl = \"{}\"\ntimeout = \"300ms\"\n",
            hung_server()
        ),
    )
    .unwrap();
    let r = run(&mut monitor(&dir, &cfg));
    r.expect_code(1);
    assert!(r.stdout.contains("verdict: unhealthy"), "{}", r.stdout);
    assert!(r.stdout.contains("timed out after 300 ms"), "{}", r.stdout);
}

#[test]
fn a_session_killed_with_sigkill_is_shown_interrupted_with_when_it_was_last_seen() {
    let dir = temp_dir();
    let db = dir.join("history.db");
    // A session that would run for a minute, ticking every 40 ms.
    let cfg = dir.join("cased.toml");
    std::fs::write(
        &cfg,
        format!(
            "[schedule]\nintervals = [\"40ms\"]\ncooldown = \"1m\"\nmax_duration = \"1m\"\n\n\
             [[checks]]\nname = \"web\"\ntype = \"http\"\nurl = \"{}\"\n",
            server(200)
        ),
    )
    .unwrap();
    let mut child = monitor(&dir, &cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait (bounded) until history holds the running session with a tick.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let running = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the session never showed up in history"
        );
        if db.exists() {
            let h = run(cased().args(["history", "--json", "--history"]).arg(&db));
            if h.code == 0 {
                let rows: serde_json::Value = serde_json::from_str(&h.stdout).unwrap();
                if let Some(r) = rows.as_array().and_then(|a| a.first())
                    && r["ticks"].as_u64() >= Some(1)
                {
                    break r.clone();
                }
            }
        }
        std::thread::yield_now();
    };
    // While its process lives, opening the history leaves it running.
    assert!(running["verdict"].is_null(), "{running}");
    assert!(running["interrupted_at_unix_ms"].is_null(), "{running}");
    child.kill().unwrap(); // SIGKILL: no chance to write anything
    child.wait().unwrap();

    let h = run(cased().args(["history", "--history"]).arg(&db));
    h.expect_code(0);
    let id = running["session_id"].as_str().unwrap();
    let row = h
        .stdout
        .lines()
        .find(|l| l.starts_with(id))
        .unwrap_or_else(|| panic!("{}", h.stdout));
    assert!(row.contains("interrupted"), "{}", h.stdout);
    assert!(
        h.stdout
            .contains(&format!("interrupted: {id} ended without a verdict")),
        "{}",
        h.stdout
    );
    assert!(h.stdout.contains("last seen 20"), "{}", h.stdout);
    let rows: serde_json::Value = serde_json::from_str(
        &run(cased().args(["history", "--json", "--history"]).arg(&db)).stdout,
    )
    .unwrap();
    let r = &rows[0];
    assert!(r["verdict"].is_null(), "{r}");
    let seen = r["last_seen_unix_ms"].as_u64().expect("last seen");
    let found = r["interrupted_at_unix_ms"].as_u64().expect("interrupted");
    assert!(
        seen >= r["started_at_unix_ms"].as_u64().unwrap() && seen <= found,
        "{r}"
    );
    assert!(r["reason"].as_str().unwrap().contains("last seen"), "{r}");
}

/// A receiver on loopback that sends the body of every POST it gets on `tx`.
fn receiver(tx: std::sync::mpsc::Sender<String>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/alerts", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut got = Vec::new();
            let mut buf = [0u8; 8192];
            let body = loop {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break None,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
                let text = String::from_utf8_lossy(&got).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        break Some(body.to_owned());
                    }
                }
            };
            // Sent before answering, so the body is there once the sender has its answer.
            if let Some(body) = body {
                let _ = tx.send(body);
            }
            let _ = conn.write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n");
        }
    });
    url
}

#[test]
fn alerts_of_cased_toml_are_delivered_before_exit() {
    let dir = temp_dir();
    let (tx, rx) = std::sync::mpsc::channel();
    let hook = receiver(tx);
    let alerts = format!(
        "\n[alerts]\nchannels = [{{ name = \"hook\", type = \"webhook\", url = \"{hook}\", secret = \"s3cret\" }},\n\
         {{ name = \"console\", type = \"inapp\" }}]\n\
         routes = [{{ name = \"all\", channels = [\"hook\", \"console\"], group_wait = \"0s\" }}]\n"
    );
    let cfg = config(&dir, Some(&server(503)), &alerts);
    let r = run(&mut monitor(&dir, &cfg));
    r.expect_code(1);
    let body = rx
        .try_recv()
        .expect("the webhook was posted before the command exited");
    assert!(body.contains("Deployment unhealthy"), "{body}");
    assert!(
        r.stdout.contains("alert [critical] console"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("notifications delivered"), "{}", r.stdout);
}

#[test]
fn nothing_to_monitor_is_a_configuration_error() {
    let dir = temp_dir();
    let cfg = config(&dir, None, "no_data = \"inconclusive\"");
    let r = run(&mut monitor(&dir, &cfg));
    r.expect_code(3);
    assert!(r.stderr.contains("nothing to monitor"), "{}", r.stderr);
    let empty = dir.join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    let r = run(&mut monitor(&dir, &empty));
    r.expect_code(3);
    assert!(r.stderr.contains("nothing to monitor"), "{}", r.stderr);
    assert!(
        !dir.join("history.db").exists() || !r.stdout.contains("session "),
        "no session ran"
    );
}

#[test]
fn configuration_limits_are_enforced_naming_the_key() {
    let dir = temp_dir();
    let url = server(200);
    // 1,001 checks: refused at load, before any of them runs.
    let mut text = String::from("[schedule]\nintervals = [\"40ms\"]\n");
    for i in 0..1_001 {
        text.push_str(&format!(
            "[[checks]]\nname = \"c{i}\"\ntype = \"http\"\nurl = \"{url}\"\n"
        ));
    }
    let cfg = dir.join("many.toml");
    std::fs::write(&cfg, &text).unwrap();
    let r = run(&mut monitor(&dir, &cfg));
    r.expect_code(3);
    assert!(
        r.stderr
            .contains("checks: has 1001 entries; at most 1000 are allowed"),
        "{}",
        r.stderr
    );
    // A long check name, a NUL in a name.
    let long = "n".repeat(300);
    let cfg = config(&dir, Some(&url), "");
    let base = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        base.replace("name = \"web\"", &format!("name = \"{long}\"")),
    )
    .unwrap();
    let r = run(&mut monitor(&dir, &cfg));
    r.expect_code(3);
    assert!(
        r.stderr
            .contains("checks[0].name: is 300 characters long; at most 256"),
        "{}",
        r.stderr
    );
    std::fs::write(&cfg, base.replace("name = \"web\"", "name = \"w\\u0000b\"")).unwrap();
    let r = run(&mut monitor(&dir, &cfg));
    r.expect_code(3);
    assert!(r.stderr.contains("checks[0].name"), "{}", r.stderr);
    // An unknown key of 200,000 characters is named, cut short.
    let key = "k".repeat(200_000);
    std::fs::write(&cfg, format!("{base}{key} = 1\n")).unwrap();
    let r = run(&mut monitor(&dir, &cfg));
    r.expect_code(3);
    assert!(r.stderr.contains(&"k".repeat(64)), "{}", r.stderr);
    assert!(
        r.stderr.len() < 2_000,
        "the key is not echoed in full: {} bytes",
        r.stderr.len()
    );
    // A file over 1 MiB is not read.
    std::fs::write(&cfg, format!("{base}# {}\n", "x".repeat(1 << 20))).unwrap();
    let r = run(&mut monitor(&dir, &cfg));
    r.expect_code(3);
    assert!(
        r.stderr.contains("at most 1048576 are read"),
        "{}",
        r.stderr
    );
}

#[test]
fn min_samples_out_of_reach_is_inconclusive() {
    let dir = temp_dir();
    let cfg = config(&dir, Some(&server(200)), "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("min_samples = 2", "min_samples = 1000");
    std::fs::write(&cfg, text).unwrap();
    run(&mut monitor(&dir, &cfg)).expect_code(2);
}

#[test]
fn the_event_can_come_from_a_json_file() {
    let dir = temp_dir();
    let cfg = config(&dir, Some(&server(200)), "");
    let event = dir.join("event.json");
    std::fs::write(
        &event,
        r#"{"deployment_request": "Deploy from file", "repository_full_name": "acme/file"}"#,
    )
    .unwrap();
    let mut cmd = cased();
    cmd.arg("monitor")
        .arg("-c")
        .arg(&cfg)
        .arg("--event-json")
        .arg(&event)
        .arg("--history")
        .arg(dir.join("h.db"));
    let r = run(&mut cmd);
    r.expect_code(0);
    assert!(
        r.stdout.contains("\"Deploy from file\" of acme/file"),
        "{}",
        r.stdout
    );
}

#[test]
fn bad_configuration_exits_3_naming_the_key_and_line() {
    let dir = temp_dir();
    let path = dir.join("cased.toml");
    let cases = [
        (
            "[schedule]\nintervals = [\"1s\", \"fast\"]\n",
            "schedule.intervals",
            Some("line 2"),
        ),
        (
            "[schedule]\ncooldown = \"1s\"\n\n[verdikt]\nmin_samples = 1\n",
            "verdikt",
            Some("line 4"),
        ),
        (
            "[[checks]]\nname = \"a\"\ntype = \"http\"\nurl = \"http://x\"\nurll = 1\n",
            "urll",
            Some("line 5, column 1"),
        ),
        ("[schedule\nintervals = 1\n", "line 1", None),
        // The second check's port, not the first `port =` of the file.
        (
            "[[checks]]\nname = \"a\"\ntype = \"tcp\"\nhost = \"127.0.0.1\"\nport = 80\n\n\
             [[checks]]\nname = \"b\"\ntype = \"tcp\"\nhost = \"127.0.0.1\"\nport = 70000\n",
            "checks[1]: invalid value: integer `70000`",
            Some("(`port`, line 11, column 8)"),
        ),
        (
            "[schedule]\ncooldown = \"1s\"\n\n[[checks]]\nname = \"a\"\ntype = \"tcp\"\n  hots = \"x\"\n",
            "hots",
            Some("(line 7, column 3)"),
        ),
    ];
    for (text, key, line) in cases {
        std::fs::write(&path, text).unwrap();
        let r = run(&mut monitor(&dir, &path));
        r.expect_code(3);
        assert!(r.stderr.contains(key), "{key} in: {}", r.stderr);
        if let Some(line) = line {
            assert!(r.stderr.contains(line), "{line} in: {}", r.stderr);
        }
    }
    run(&mut monitor(&dir, &dir.join("missing.toml"))).expect_code(3);
    // The event is checked too.
    std::fs::write(&path, "").unwrap();
    let r = run(monitor(&dir, &path).args(["--commit-sha", "xyz"]));
    r.expect_code(3);
    assert!(r.stderr.contains("commit_sha"), "{}", r.stderr);
}

#[test]
fn completions_and_man_pages_are_generated_from_the_commands() {
    let r = run(cased().args(["completions", "bash"]));
    r.expect_code(0);
    for word in ["_cased()", "monitor", "serve", "--config"] {
        assert!(r.stdout.contains(word), "{word} in the bash script");
    }
    // The script is valid bash.
    let dir = temp_dir();
    let script = dir.join("cased.bash");
    std::fs::write(&script, &r.stdout).unwrap();
    let syntax = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        syntax.status.success(),
        "{}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let r = run(cased().args(["completions", shell]));
        r.expect_code(0);
        assert!(r.stdout.contains("monitor"), "{shell}");
    }
    run(cased().args(["completions", "tcsh"])).expect_code(3);
    let r = run(cased().arg("man"));
    r.expect_code(0);
    assert!(r.stdout.contains(".TH cased 1"), "{}", r.stdout);
    let pages = dir.join("man1");
    run(cased().arg("man").arg("--out-dir").arg(&pages)).expect_code(0);
    for page in ["cased.1", "cased-monitor.1", "cased-serve.1"] {
        let text = std::fs::read_to_string(pages.join(page)).unwrap();
        assert!(text.contains(".TH"), "{page}");
    }
}

#[test]
fn every_command_has_help() {
    for cmd in [
        &["--help"][..],
        &["monitor", "--help"],
        &["history", "--help"],
        &["history", "stats", "--help"],
        &["report", "--help"],
        &["check", "--help"],
        &["demo", "--help"],
        &["notify", "--help"],
        &["completions", "--help"],
        &["man", "--help"],
    ] {
        let r = run(cased().args(cmd));
        r.expect_code(0);
        assert!(r.stdout.contains("Usage: cased"), "{cmd:?}: {}", r.stdout);
    }
    let r = run(cased().args(["monitor", "--help"]));
    assert!(
        r.stdout.contains("1 unhealthy") && r.stdout.contains("GITHUB_STEP_SUMMARY"),
        "{}",
        r.stdout
    );
    run(cased().args(["monitor", "--bogus"])).expect_code(3);
}

#[test]
fn check_exit_codes() {
    let ok = server(200);
    let r = run(cased().args(["check", &ok]));
    r.expect_code(0);
    assert!(r.stdout.starts_with("pass"), "{}", r.stdout);
    run(cased().args(["check", &server(503)])).expect_code(1);
    let inline = format!(
        r#"{{"name": "api", "type": "http", "url": "{ok}", "expect": {{"status": [201]}}}}"#
    );
    run(cased().args(["check", &inline])).expect_code(1);
    let r = run(cased().args(["check", r#"{"name": "api", "type": "http", "urll": "x"}"#]));
    r.expect_code(3);
    assert!(r.stderr.contains("urll"), "{}", r.stderr);
    run(cased().args(["check", "no-such-file.toml"])).expect_code(3);
    let dir = temp_dir();
    let cfg = config(&dir, Some(&ok), "");
    let r = run(cased().arg("check").arg(&cfg).arg("--json"));
    let line: serde_json::Value = serde_json::from_str(r.expect_code(0).stdout.trim()).unwrap();
    assert_eq!(line["outcome"]["status"], "pass");
}

#[test]
fn the_demo_catches_the_regression_and_exits_1() {
    let dir = temp_dir();
    let r = run(cased().args(["demo", "--fast", "--out"]).arg(&dir));
    r.expect_code(1);
    assert!(r.stdout.contains("rollback: "), "{}", r.stdout);
    assert!(r.stdout.contains("verdict: unhealthy"), "{}", r.stdout);
    assert!(
        r.stdout.contains("alert ["),
        "the in-app channel is printed: {}",
        r.stdout
    );
    assert!(
        r.stdout.contains("webhook receiver: POST /alerts"),
        "the webhook was delivered: {}",
        r.stdout
    );
    let page = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "html"))
        .expect("an HTML report");
    assert!(
        r.stdout.contains(&page.display().to_string()),
        "the path is printed"
    );
    assert!(std::fs::read_to_string(page).unwrap().contains("<svg"));
    assert!(dir.join("history.db").exists());
}

#[test]
fn the_healthy_demo_exits_0() {
    let dir = temp_dir();
    let r = run(cased()
        .args(["demo", "--healthy", "--out"])
        .arg(&dir)
        .env("CASED_DEMO_FAST", "1"));
    r.expect_code(0);
    assert!(!r.stdout.contains("rollback: "), "{}", r.stdout);
    assert!(
        !r.stdout.contains("alert ["),
        "no alert for a good release: {}",
        r.stdout
    );
    assert!(r.stdout.contains("verdict: healthy"), "{}", r.stdout);
}

#[test]
fn an_unhealthy_verdict_runs_the_rollback_command_once() {
    let dir = temp_dir();
    let marker = dir.join("rolled-back");
    let extra = format!(
        "[rollback]\ncommand = 'printf \"%s|%s\" \"$CASED_REPOSITORY\" \"$CASED_REASON\" >> {}'\ntimeout = \"10s\"\n",
        marker.display()
    );
    let path = config(&dir, Some(&server(503)), &extra);
    let out = run(&mut monitor(&dir, &path));
    out.expect_code(1);
    assert!(out.stdout.contains("rolling back"), "{}", out.stdout);
    let written = std::fs::read_to_string(&marker).expect("the rollback command ran");
    assert!(written.starts_with("acme/shop|1 failed tick"), "{written}");
    assert_eq!(
        written.matches("acme/shop|").count(),
        1,
        "exactly once: {written}"
    );
    assert!(
        dir.join("baselines.db").exists(),
        "the baseline store sits beside the history"
    );
    let bad = config(&dir, None, "[rollback]\ncommand = \" \"\n");
    let out = run(&mut monitor(&dir, &bad));
    out.expect_code(3);
    assert!(
        out.stderr.contains("[rollback]") && out.stderr.contains("must not be empty"),
        "{}",
        out.stderr
    );
}

#[test]
fn replay_rejudges_history_under_a_new_configuration() {
    let dir = temp_dir();
    let url = server(503);
    let strict = config(&dir, Some(&url), "");
    run(&mut monitor(&dir, &strict)).expect_code(1);
    let lenient_dir = dir.join("lenient");
    std::fs::create_dir_all(&lenient_dir).unwrap();
    let lenient = config(&lenient_dir, Some(&url), "failure_limit = 1000\n");
    let out = run(cased()
        .arg("replay")
        .arg("--config")
        .arg(&lenient)
        .arg("--history")
        .arg(dir.join("history.db")));
    out.expect_code(0);
    assert!(
        out.stdout.contains("unhealthy -> degraded"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("1 deployment(s) re-judged: 1 verdict(s) would change"),
        "{}",
        out.stdout
    );
    let same = run(cased()
        .arg("replay")
        .arg("--config")
        .arg(&strict)
        .arg("--history")
        .arg(dir.join("history.db"))
        .arg("--json"));
    same.expect_code(0);
    let row: serde_json::Value = serde_json::from_str(same.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(
        (row["before"].as_str(), row["after"].as_str()),
        (Some("unhealthy"), Some("unhealthy")),
        "{row}"
    );
    let none = run(cased()
        .arg("replay")
        .arg("--config")
        .arg(&strict)
        .arg("--history")
        .arg(dir.join("nothing.db")));
    none.expect_code(3);
}

/// Every file of a SQLite database (the main file, its write-ahead log and shared memory).
fn db_bytes(db: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        if let Ok(b) = std::fs::read(PathBuf::from(p)) {
            all.extend(b);
        }
    }
    all
}

#[test]
fn secrets_in_check_urls_stay_out_of_output_history_and_reports() {
    let dir = temp_dir();
    let down = server(503);
    let refused = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        format!("http://127.0.0.1:{port}/health")
    };
    let query = "?page=2&api_key=SEKRET1&X-Api-Key=SEKRET2&access_token=SEKRET3&tenant=SEKRET4";
    let text = format!(
        "[schedule]\nintervals = [\"40ms\"]\ncooldown = \"300ms\"\nmax_duration = \"10s\"\n\n\
         [verdict]\nmin_samples = 2\n\n\
         [[checks]]\nname = \"web\"\ntype = \"http\"\nurl = \"{down}{query}\"\nredact = [\"tenant\"]\n\
         headers = {{ authorization = \"Bearer SEKRET5\" }}\n\n\
         [[checks]]\nname = \"api\"\ntype = \"http\"\nurl = \"{refused}{query}\"\nredact = [\"tenant\"]\n"
    );
    let cfg = dir.join("cased.toml");
    std::fs::write(&cfg, text).unwrap();
    let r = run(&mut monitor(&dir, &cfg));
    r.expect_code(1);
    let shown = format!("{}{}", r.stdout, r.stderr);
    assert!(
        shown.contains("api_key=[redacted]") && shown.contains("page=2"),
        "the URL is shown, redacted: {shown}"
    );
    let db = dir.join("history.db");
    let id = session_id(&r.stdout);
    let mut everything = shown.into_bytes();
    everything.extend(db_bytes(&db));
    for format in ["json", "html", "md"] {
        let rep = run(cased()
            .args(["report", &id, "--format", format, "--history"])
            .arg(&db));
        rep.expect_code(0);
        if format == "json" {
            assert!(rep.stdout.contains("tenant=[redacted]"), "{}", rep.stdout);
        }
        everything.extend(rep.stdout.into_bytes());
    }
    let checked = run(cased().args(["check", &format!("{refused}?token=SEKRET6"), "--json"]));
    checked.expect_code(1);
    everything.extend(checked.stdout.into_bytes());
    everything.extend(checked.stderr.into_bytes());
    let text = String::from_utf8_lossy(&everything);
    assert!(!text.contains("SEKRET"), "a secret leaked: {text}");
}

#[test]
fn after_monitor_exits_the_history_file_alone_holds_the_session() {
    let dir = temp_dir();
    let cfg = config(&dir, Some(&server(200)), "");
    let r = run(&mut monitor(&dir, &cfg));
    r.expect_code(0);
    let id = session_id(&r.stdout);
    let wal = dir.join("history.db-wal");
    assert!(
        std::fs::metadata(&wal).map_or(0, |m| m.len()) == 0,
        "the write-ahead log was checkpointed into history.db"
    );
    // What a CI job uploads: history.db, nothing beside it.
    let upload = temp_dir();
    std::fs::copy(dir.join("history.db"), upload.join("history.db")).unwrap();
    let h = run(cased()
        .arg("history")
        .arg("--history")
        .arg(upload.join("history.db")));
    assert!(h.expect_code(0).stdout.contains(&id), "{}", h.stdout);
    let rep = run(cased()
        .args(["report", &id, "--format", "json", "--history"])
        .arg(upload.join("history.db")));
    let v: serde_json::Value = serde_json::from_str(&rep.expect_code(0).stdout).unwrap();
    assert_eq!(v["verdict"], "healthy");
}
