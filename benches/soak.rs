//! The fault soak (RELIABILITY.md, "Fault soak"): many monitoring sessions, for many minutes,
//! against loopback targets that misbehave, with alert receivers that go down and come back.
//! A documented command, not part of CI or `make test`:
//!
//! ```sh
//! cargo run --release -p cased-benches --bin soak -- --sessions 1000 --minutes 10
//! ```
//!
//! Options: `--sessions N` (at least N sessions, default 1000), `--minutes M` (keep starting
//! sessions for at least M minutes, default 10), `--concurrency C` (sessions at a time,
//! default 150), `--receivers R` (webhook receivers, default 3), `--seed S` (seeds the main
//! thread's random choices only: sessions choose on the worker threads, and timing differs, so
//! a run is not reproducible).
//!
//! **Targets**, one loopback listener per fault: `refuse` (a closed port), `reset` (accept, then
//! close with `SO_LINGER` 0: an RST), `hang` (accept, never answer), `trickle` (one byte of the
//! answer every 100 ms), `huge` (a 100 MB body, streamed from one 64 KiB buffer), `redirect`
//! (a 302 to itself, forever), `flap` (200 or 503 at random). Each session is a fresh
//! [`Monitor`] with one or two HTTP checks on those targets (1 s timeout, intervals 200 ms /
//! 500 ms / 1 s, a 3 s cool-down, `max_duration` 15 s), sometimes a threshold detector, and a
//! signed webhook channel to one of the receivers. Receivers go down (listener and every open
//! connection dropped) and come back at random; now and then one reads a notification and hangs
//! up without answering.
//!
//! **Accounting.** Fired: the distinct alert keys in each session's report (`alerts`).
//! Delivered: those keys seen by a receiver (notifications deduplicated by
//! `X-Cased-Notification-Id`). Reported failed: keys never delivered that are in the report's
//! `alert_failures` or in the monitor's alert manager's `failures()` after `close()`. Fired must
//! equal delivered + reported failed exactly (no key lost, no key received that no session
//! fired). Per deployment, the notifications a receiver got must lie between the deliveries
//! cased counted and the deliveries + failures + coalesced it counted.
//!
//! The run prints resident memory and open file descriptors every 30 s and a summary, and exits
//! 1 when an invariant fails: a session without a report within 90 s, an `internal_error`
//! session, a lost or phantom alert, a panic, RSS or fds not flat.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cased_core::{DeploymentEvent, DeploymentStatus, EndReason, Monitor, MonitorConfig, Verdict};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

static PANICS: AtomicU64 = AtomicU64::new(0);
static ZEROS: [u8; 65536] = [0; 65536];
const HUGE_BODY: u64 = 100 * 1024 * 1024;
/// Every session must have its report (and its monitor closed) within this.
const SESSION_BOUND: Duration = Duration::from_secs(90);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Fault {
    Refuse,
    Reset,
    Hang,
    Trickle,
    Huge,
    Redirect,
    Flap,
}

const FAULTS: [Fault; 7] = [
    Fault::Refuse,
    Fault::Reset,
    Fault::Hang,
    Fault::Trickle,
    Fault::Huge,
    Fault::Redirect,
    Fault::Flap,
];

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Self::Refuse => "refuse",
            Self::Reset => "reset",
            Self::Hang => "hang",
            Self::Trickle => "trickle",
            Self::Huge => "huge",
            Self::Redirect => "redirect",
            Self::Flap => "flap",
        }
    }
}

#[derive(Debug)]
struct Args {
    sessions: usize,
    minutes: f64,
    concurrency: usize,
    receivers: usize,
    seed: u64,
}

fn args() -> Args {
    let mut a = Args {
        sessions: 1000,
        minutes: 10.0,
        concurrency: 150,
        receivers: 3,
        seed: fastrand::u64(..),
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let value = argv.get(i + 1).cloned().unwrap_or_default();
        let bad = || -> ! {
            eprintln!(
                "usage: soak [--sessions N] [--minutes M] [--concurrency C] [--receivers R] [--seed S]"
            );
            std::process::exit(2)
        };
        match argv[i].as_str() {
            "--sessions" => a.sessions = value.parse().unwrap_or_else(|_| bad()),
            "--minutes" => a.minutes = value.parse().unwrap_or_else(|_| bad()),
            "--concurrency" => a.concurrency = value.parse().unwrap_or_else(|_| bad()),
            "--receivers" => a.receivers = value.parse().unwrap_or_else(|_| bad()),
            "--seed" => a.seed = value.parse().unwrap_or_else(|_| bad()),
            _ => bad(),
        }
        i += 2;
    }
    a.concurrency = a.concurrency.max(1);
    a.receivers = a.receivers.max(1);
    a
}

/// Reads one request's head (up to 16 KiB); `None` at EOF or on an error.
async fn read_head(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<usize> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(end + 4);
        }
        if buf.len() > 16 * 1024 {
            return None;
        }
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Reads until the peer closes (or errors): what a hung target does while "answering".
async fn drain(mut s: TcpStream) {
    let mut chunk = [0u8; 4096];
    while let Ok(n) = s.read(&mut chunk).await {
        if n == 0 {
            break;
        }
    }
}

/// Closes `s` with an RST (`SO_LINGER` 0).
fn reset(s: TcpStream) {
    let std = match s.into_std() {
        Ok(s) => s,
        Err(_) => return,
    };
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket descriptor owned by `std`, and a properly sized `linger`.
    unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&std),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            std::ptr::from_ref(&linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(std);
}

async fn serve_fault(kind: Fault, mut s: TcpStream) {
    let mut buf = Vec::new();
    match kind {
        Fault::Refuse => {}
        Fault::Reset => {
            let _ = read_head(&mut s, &mut buf).await;
            reset(s);
        }
        Fault::Hang => drain(s).await,
        Fault::Trickle => {
            if read_head(&mut s, &mut buf).await.is_none() {
                return;
            }
            let answer = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
            for b in answer {
                if s.write_all(std::slice::from_ref(b)).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            drain(s).await;
        }
        Fault::Huge => {
            if read_head(&mut s, &mut buf).await.is_none() {
                return;
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {HUGE_BODY}\r\nConnection: close\r\n\r\n"
            );
            if s.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let mut sent = 0u64;
            while sent < HUGE_BODY {
                if s.write_all(&ZEROS).await.is_err() {
                    return;
                }
                sent += ZEROS.len() as u64;
            }
        }
        Fault::Redirect => {
            if read_head(&mut s, &mut buf).await.is_none() {
                return;
            }
            let _ = s
                .write_all(b"HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await;
        }
        Fault::Flap => {
            if read_head(&mut s, &mut buf).await.is_none() {
                return;
            }
            let answer: &[u8] = if fastrand::bool() {
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
            } else {
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\ndown"
            };
            let _ = s.write_all(answer).await;
        }
    }
}

/// Starts the target of `kind`; returns its port (for `refuse`, a port nothing listens on).
async fn start_target(kind: Fault) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    if kind == Fault::Refuse {
        drop(listener);
        return port;
    }
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = listener.accept().await else {
                continue;
            };
            // Bounded whatever the client does.
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(60), serve_fault(kind, s)).await;
            });
        }
    });
    port
}

/// What the receivers saw.
#[derive(Debug, Default)]
struct Received {
    /// Notification id → (group key, alert keys).
    notifications: HashMap<String, (String, Vec<String>)>,
    posts: u64,
    duplicates: u64,
    hung_up: u64,
    downs: u64,
    bad: Vec<String>,
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// One receiver connection: keep-alive HTTP/1.1 POSTs, each recorded then answered 200 (or,
/// now and then, recorded and hung up on without an answer).
async fn serve_receiver(mut s: TcpStream, seen: Arc<Mutex<Received>>) {
    let mut buf = Vec::new();
    loop {
        let Some(end) = read_head(&mut s, &mut buf).await else {
            return;
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let len: usize = header(&head, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < end + len {
            let mut chunk = [0u8; 8192];
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buf[end..end + len].to_vec();
        buf.drain(..end + len);
        let id = header(&head, cased_core::alert::NOTIFICATION_ID_HEADER).map(str::to_owned);
        let hang_up = fastrand::u8(..100) < 3;
        {
            let mut r = seen.lock().expect("received lock");
            r.posts += 1;
            match (id, serde_json::from_slice::<Value>(&body)) {
                (Some(id), Ok(n)) => {
                    let group = n["group_key"].as_str().unwrap_or_default().to_owned();
                    let mut keys: Vec<String> = n["alerts"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|a| a["key"].as_str().map(str::to_owned))
                        .collect();
                    keys.extend(
                        n["omitted_keys"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|k| k.as_str().map(str::to_owned)),
                    );
                    if n["id"].as_str() != Some(id.as_str()) {
                        r.bad
                            .push(format!("header id {id} differs from body id {}", n["id"]));
                    }
                    if r.notifications.insert(id, (group, keys)).is_some() {
                        r.duplicates += 1;
                    }
                }
                (id, body) => r.bad.push(format!("id {id:?}, body {body:?}")),
            }
            if hang_up {
                r.hung_up += 1;
            }
        }
        if hang_up
            || s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .await
                .is_err()
        {
            return;
        }
    }
}

/// A receiver on a fixed port that goes down (listener and connections dropped) and comes back
/// at random until `stop`.
async fn flapping_receiver(port: u16, seen: Arc<Mutex<Received>>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", port)).await {
                Ok(l) => break l,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        let s2 = Arc::clone(&seen);
        let server = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                tokio::select! {
                    a = listener.accept() => if let Ok((s, _)) = a {
                        conns.spawn(serve_receiver(s, Arc::clone(&s2)));
                    },
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(fastrand::u64(2_000..20_000))).await;
        if stop.load(Ordering::Relaxed) {
            server.abort();
            break;
        }
        // Down: the listener and every open connection go (the JoinSet aborts them).
        server.abort();
        let _ = server.await;
        seen.lock().expect("received lock").downs += 1;
        tokio::time::sleep(Duration::from_millis(fastrand::u64(500..12_000))).await;
    }
}

/// The outcome of one session.
#[derive(Debug)]
struct Outcome {
    kinds: Vec<Fault>,
    group: String,
    verdict: Verdict,
    ended_by: EndReason,
    fired: HashSet<String>,
    failed_keys: HashSet<String>,
    report_failures: usize,
    later_failures: usize,
    delivered: u64,
    failed: u64,
    coalesced: u64,
}

fn config(kinds: &[Fault], ports: &HashMap<Fault, u16>, receiver: u16) -> Value {
    let checks: Vec<Value> = kinds
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let path = if *k == Fault::Redirect {
                "loop"
            } else {
                "health"
            };
            json!({"name": format!("c{i}"), "type": "http",
                   "url": format!("http://127.0.0.1:{}/{path}", ports[k]), "timeout": "1s",
                   "expect": {"status": ["2xx"]}})
        })
        .collect();
    let mut detectors = Vec::new();
    if fastrand::bool() {
        detectors.push(json!({"type": "threshold", "metric": "c0.latency_ms", "upper": 150}));
    }
    json!({
        "schedule": {"intervals": ["200ms", "500ms", "1s"], "cooldown": "3s", "max_duration": "15s", "jitter": "0s"},
        "checks": checks,
        "detectors": detectors,
        "verdict": {"failure_limit": fastrand::u32(0..4), "min_samples": 3, "no_data": "inconclusive"},
        "alerts": {
            "channels": [{"name": "hook", "type": "webhook", "secret": "soak-secret",
                          "url": format!("http://127.0.0.1:{receiver}/hook"), "send_resolved": true}],
            "routes": [{"name": "all", "channels": ["hook"], "min_severity": "info",
                        "group_wait": "100ms", "group_interval": "500ms"}],
            "delivery": {"timeout": "1s", "max_retries": 6, "initial_backoff": "100ms",
                         "max_backoff": "2s", "max_elapsed": "8s"}
        }
    })
}

async fn session(
    i: usize,
    ports: Arc<HashMap<Fault, u16>>,
    receivers: Arc<Vec<u16>>,
) -> Result<Outcome, String> {
    let n = if fastrand::u8(..4) == 0 { 2 } else { 1 };
    let kinds: Vec<Fault> = (0..n)
        .map(|_| FAULTS[fastrand::usize(..FAULTS.len())])
        .collect();
    let receiver = receivers[fastrand::usize(..receivers.len())];
    let config = MonitorConfig::from_value(config(&kinds, &ports, receiver))
        .map_err(|e| format!("config: {e}"))?;
    let monitor = Monitor::new(config).map_err(|e| format!("monitor: {e}"))?;
    let group = format!("soak-{i}");
    let event = DeploymentEvent::builder(format!("Deploy soak #{i}"))
        .repository("acme/soak")
        .environment("soak")
        .status(DeploymentStatus::Success)
        .correlation_id(group.clone())
        .build()
        .map_err(|e| format!("event: {e}"))?;
    let session = monitor.start(event).map_err(|e| format!("start: {e}"))?;
    let report = session.wait().await;
    let manager = monitor.alert_manager();
    let stats = monitor.close(Duration::from_secs(10)).await;
    let later = manager.map(|m| m.failures()).unwrap_or_default();
    let mut failed_keys: HashSet<String> = HashSet::new();
    for f in &report.alert_failures {
        failed_keys.extend(f.keys.iter().cloned());
    }
    let reported: HashSet<&str> = report
        .alert_failures
        .iter()
        .map(|f| f.notification_id.as_str())
        .collect();
    let later_failures = later
        .iter()
        .filter(|r| !reported.contains(r.notification_id.as_str()))
        .count();
    for r in &later {
        failed_keys.extend(r.keys.iter().cloned());
    }
    Ok(Outcome {
        kinds,
        group,
        verdict: report.verdict,
        ended_by: report.ended_by,
        fired: report.alerts.iter().map(|a| a.key.clone()).collect(),
        failed_keys,
        report_failures: report.alert_failures.len(),
        later_failures,
        delivered: stats.delivered,
        failed: stats.failed,
        coalesced: stats.coalesced,
    })
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Duration,
    rss_kib: u64,
    fds: usize,
    running: usize,
    started: usize,
    ended: usize,
}

#[derive(Debug, Default)]
struct Progress {
    started: AtomicU64,
    ended: AtomicU64,
}

fn main() {
    let args = args();
    fastrand::seed(args.seed);
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let code = runtime.block_on(soak(&args));
    // Whatever is left (hung target connections, the receivers) dies with the runtime.
    runtime.shutdown_timeout(Duration::from_secs(1));
    std::process::exit(code);
}

#[allow(clippy::too_many_lines)]
async fn soak(args: &Args) -> i32 {
    println!(
        "fault soak: ≥ {} sessions, ≥ {} min, {} at a time, {} receivers, seed {}",
        args.sessions, args.minutes, args.concurrency, args.receivers, args.seed
    );
    let begin = Instant::now();
    let mut ports = HashMap::new();
    for k in FAULTS {
        ports.insert(k, start_target(k).await);
    }
    let ports = Arc::new(ports);
    let stop = Arc::new(AtomicBool::new(false));
    let mut receiver_ports = Vec::new();
    let mut received = Vec::new();
    let mut flappers = Vec::new();
    for _ in 0..args.receivers {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = l.local_addr().expect("addr").port();
        drop(l);
        let seen = Arc::new(Mutex::new(Received::default()));
        flappers.push(tokio::spawn(flapping_receiver(
            port,
            Arc::clone(&seen),
            Arc::clone(&stop),
        )));
        receiver_ports.push(port);
        received.push(seen);
    }
    let receiver_ports = Arc::new(receiver_ports);

    let progress = Arc::new(Progress::default());
    let samples = Arc::new(Mutex::new(Vec::<Sample>::new()));
    let sample = {
        let progress = Arc::clone(&progress);
        move || {
            let started = progress.started.load(Ordering::SeqCst) as usize;
            let ended = progress.ended.load(Ordering::SeqCst) as usize;
            Sample {
                at: begin.elapsed(),
                rss_kib: rss_kib(),
                fds: open_fds(),
                running: started - ended,
                started,
                ended,
            }
        }
    };
    let print = |s: &Sample| {
        println!(
            "{:>6.0} s  RSS {:>7.1} MiB  fds {:>5}  running {:>4}  started {:>6}  ended {:>6}",
            s.at.as_secs_f64(),
            s.rss_kib as f64 / 1024.0,
            s.fds,
            s.running,
            s.started,
            s.ended
        );
    };
    let first = sample();
    print(&first);
    samples.lock().expect("samples").push(first);
    let sampler = {
        let samples = Arc::clone(&samples);
        let sample = sample.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(30));
            every.tick().await;
            loop {
                every.tick().await;
                let s = sample();
                print(&s);
                samples.lock().expect("samples").push(s);
            }
        })
    };

    let minutes = Duration::from_secs_f64(args.minutes * 60.0);
    let mut running = JoinSet::new();
    let mut outcomes = Vec::new();
    let mut unbounded = 0usize;
    let mut errors = Vec::new();
    let mut started = 0usize;
    let mut collect = |r: Result<
        Result<Result<Outcome, String>, tokio::time::error::Elapsed>,
        tokio::task::JoinError,
    >| {
        progress.ended.fetch_add(1, Ordering::SeqCst);
        match r {
            Ok(Ok(Ok(o))) => outcomes.push(o),
            Ok(Ok(Err(e))) => errors.push(e),
            Ok(Err(_)) => unbounded += 1,
            Err(e) => errors.push(format!("the session task failed: {e}")),
        }
    };
    while started < args.sessions || begin.elapsed() < minutes {
        while running.len() < args.concurrency
            && (started < args.sessions || begin.elapsed() < minutes)
        {
            let (ports, receivers) = (Arc::clone(&ports), Arc::clone(&receiver_ports));
            let i = started;
            running.spawn(tokio::time::timeout(
                SESSION_BOUND,
                session(i, ports, receivers),
            ));
            started += 1;
            progress.started.fetch_add(1, Ordering::SeqCst);
        }
        if let Some(r) = running.join_next().await {
            collect(r);
        }
    }
    while let Some(r) = running.join_next().await {
        collect(r);
    }
    let drained = begin.elapsed();
    stop.store(true, Ordering::Relaxed);
    for f in flappers {
        f.abort();
    }
    sampler.abort();
    let last = sample();
    print(&last);
    let samples = {
        let mut s = samples.lock().expect("samples");
        s.push(last);
        s.clone()
    };

    // Alerts.
    let mut delivered_keys: HashSet<String> = HashSet::new();
    let mut by_group: HashMap<String, usize> = HashMap::new();
    let (mut posts, mut duplicates, mut hung_up, mut downs) = (0, 0, 0, 0);
    let mut bad = Vec::new();
    for r in &received {
        let r = r.lock().expect("received lock");
        posts += r.posts;
        duplicates += r.duplicates;
        hung_up += r.hung_up;
        downs += r.downs;
        bad.extend(r.bad.iter().cloned());
        for (group, keys) in r.notifications.values() {
            *by_group.entry(group.clone()).or_default() += 1;
            delivered_keys.extend(keys.iter().cloned());
        }
    }
    let mut fired = 0usize;
    let mut delivered = 0usize;
    let mut failed = 0usize;
    let mut failed_then_delivered = 0usize;
    let mut lost = Vec::new();
    let mut fired_keys: HashSet<&str> = HashSet::new();
    let mut notification_problems = Vec::new();
    let (mut report_failures, mut later_failures) = (0usize, 0usize);
    let mut verdicts: BTreeMap<(Fault, &'static str), usize> = BTreeMap::new();
    let mut verdict_totals: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut ended_by: BTreeMap<(&'static str, String), usize> = BTreeMap::new();
    let mut internal = 0usize;
    for o in &outcomes {
        let v = match o.verdict {
            Verdict::Healthy => "healthy",
            Verdict::Degraded => "degraded",
            Verdict::Unhealthy => "unhealthy",
            Verdict::Inconclusive => "inconclusive",
        };
        for k in &o.kinds {
            *verdicts.entry((*k, v)).or_default() += 1;
        }
        *verdict_totals.entry(v).or_default() += 1;
        *ended_by
            .entry((v, format!("{:?}", o.ended_by)))
            .or_default() += 1;
        if o.ended_by == EndReason::InternalError {
            internal += 1;
        }
        report_failures += o.report_failures;
        later_failures += o.later_failures;
        for key in &o.fired {
            fired += 1;
            fired_keys.insert(key);
            if delivered_keys.contains(key) {
                delivered += 1;
                if o.failed_keys.contains(key) {
                    failed_then_delivered += 1;
                }
            } else if o.failed_keys.contains(key) {
                failed += 1;
            } else {
                lost.push(format!(
                    "{key} (verdict {:?}, ended by {:?}, fired {:?})",
                    o.verdict, o.ended_by, o.fired
                ));
            }
        }
        let got = by_group.get(&o.group).copied().unwrap_or(0) as u64;
        if got < o.delivered || got > o.delivered + o.failed + o.coalesced {
            notification_problems.push(format!(
                "{}: receivers got {got} notifications; cased counted {} delivered, {} failed, {} coalesced",
                o.group, o.delivered, o.failed, o.coalesced
            ));
        }
    }
    let phantom: Vec<&String> = delivered_keys
        .iter()
        .filter(|k| !fired_keys.contains(k.as_str()))
        .collect();

    let ended = outcomes.len();
    let max_rss = samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    let max_fds = samples.iter().map(|s| s.fds).max().unwrap_or(0);
    // Flat: after the first minute (warm-up) and before the drain, the later half of the
    // samples peaks no higher than 1.25× the earlier half's peak + 32 MiB. Too short a run for
    // two such samples is not judged.
    let steady: Vec<Sample> = samples
        .iter()
        .filter(|s| s.at >= Duration::from_secs(60) && s.at <= minutes)
        .copied()
        .collect();
    let peak = |s: &[Sample]| s.iter().map(|x| x.rss_kib).max().unwrap_or(0);
    let half = steady.len() / 2;
    let rss_flat =
        steady.len() < 2 || peak(&steady[half..]) <= peak(&steady[..half]) * 5 / 4 + 32 * 1024;
    // Bounded: at most 8 per running session plus a fixed allowance, and back near the start
    // once everything ended.
    let fds_bounded = max_fds <= 8 * args.concurrency + 256 && last.fds <= samples[0].fds + 32;

    let mut out = String::new();
    let _ = writeln!(out, "\n== fault soak summary ==");
    let _ = writeln!(
        out,
        "wall time                  {:.1} min (sessions started until {:.1} min)",
        drained.as_secs_f64() / 60.0,
        minutes.as_secs_f64() / 60.0
    );
    let _ = writeln!(out, "sessions started           {started}");
    let _ = writeln!(out, "sessions ended, verdict    {ended}");
    let _ = writeln!(
        out,
        "not ended within {}s       {unbounded}",
        SESSION_BOUND.as_secs()
    );
    let _ = writeln!(out, "session errors             {}", errors.len());
    let _ = writeln!(out, "ended internal_error       {internal}");
    let _ = writeln!(out, "verdicts                   {verdict_totals:?}");
    let _ = writeln!(out, "verdicts and why the sessions ended {ended_by:?}");
    let _ = writeln!(
        out,
        "verdicts by target (a session with two checks counts under both):"
    );
    for k in FAULTS {
        let row: Vec<String> = ["healthy", "degraded", "unhealthy", "inconclusive"]
            .iter()
            .map(|v| format!("{v} {}", verdicts.get(&(k, *v)).copied().unwrap_or(0)))
            .collect();
        let _ = writeln!(out, "  {:<9} {}", k.name(), row.join(", "));
    }
    let _ = writeln!(out, "alerts fired (keys)        {fired}");
    let _ = writeln!(out, "  delivered                {delivered}");
    let _ = writeln!(out, "  reported failed          {failed}");
    let _ = writeln!(out, "  lost (neither)           {}", lost.len());
    let _ = writeln!(out, "  received, not fired      {}", phantom.len());
    let _ = writeln!(
        out,
        "  delivered though a notification carrying it was reported failed  {failed_then_delivered}"
    );
    let _ = writeln!(
        out,
        "failure reports            {report_failures} in session reports, {later_failures} more from the alert managers after close()"
    );
    let _ = writeln!(
        out,
        "receivers                  {posts} posts, {} distinct notifications, {duplicates} duplicates (same id), {hung_up} hung up on, {downs} times down",
        by_group.values().sum::<usize>()
    );
    let _ = writeln!(
        out,
        "notification count problems {}",
        notification_problems.len()
    );
    let _ = writeln!(out, "receiver parse problems    {}", bad.len());
    let _ = writeln!(
        out,
        "panics                     {}",
        PANICS.load(Ordering::SeqCst)
    );
    let _ = writeln!(
        out,
        "RSS first / last / max     {:.1} / {:.1} / {:.1} MiB  (flat: {rss_flat})",
        samples[0].rss_kib as f64 / 1024.0,
        last.rss_kib as f64 / 1024.0,
        max_rss as f64 / 1024.0
    );
    let _ = writeln!(
        out,
        "fds first / last / max     {} / {} / {max_fds}  (bounded: {fds_bounded})",
        samples[0].fds, last.fds
    );
    print!("{out}");
    for (what, list) in [
        ("session error", errors.iter().collect::<Vec<_>>()),
        ("lost", lost.iter().collect()),
        ("phantom", phantom.clone()),
        ("notification count", notification_problems.iter().collect()),
        ("receiver", bad.iter().collect()),
    ] {
        for e in list.iter().take(10) {
            println!("{what}: {e}");
        }
    }

    let ok = started >= args.sessions
        && ended == started
        && unbounded == 0
        && errors.is_empty()
        && internal == 0
        && fired == delivered + failed
        && lost.is_empty()
        && phantom.is_empty()
        && notification_problems.is_empty()
        && bad.is_empty()
        && PANICS.load(Ordering::SeqCst) == 0
        && rss_flat
        && fds_bounded;
    println!("{}", if ok { "PASS" } else { "FAIL" });
    i32::from(!ok)
}
